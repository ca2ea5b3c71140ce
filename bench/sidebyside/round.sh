#!/usr/bin/env bash
# One side-by-side round: counter, SOFAJRaft, etcd, one after the other, each on a fresh 3-node
# cluster on 127.0.0.1, incr/put at 64 and 256 in flight and linearizable gets at 256.
#
#   bench/sidebyside/round.sh [--n 60000] [--get-n 200000] [--warmup 20000] [--only counter|sofajraft|etcd]
#
# Prints one line per measurement, "ROUND <system> <workload> <c> <json>", so that 5 rounds can be
# run back to back (interleaved) and the medians taken per line kind. Run from the repository root.
# Build SOFAJRaft first (sofajraft.sh build) and set up etcd (etcd.sh setup).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
N=60000 GET_N=200000 WARMUP=20000 ONLY=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --n) N="$2"; shift 2 ;;
    --get-n) GET_N="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
want() { [[ -z "$ONLY" || "$ONLY" == "$1" ]]; }

if want counter; then
  out=$(cd "$REPO" && deno run -A bench/figures.ts --ops "$N" --get-ops "$GET_N" | tail -1)
  echo "ROUND counter figures - $out"
fi

if want sofajraft; then
  trap '"$HERE/sofajraft.sh" stop >/dev/null 2>&1 || true' EXIT
  "$HERE/sofajraft.sh" start >/dev/null
  for c in 64 256; do
    echo "ROUND sofajraft incr $c $("$HERE/sofajraft.sh" bench --c "$c" --n "$N" --warmup "$WARMUP")"
  done
  echo "ROUND sofajraft get 256 $("$HERE/sofajraft.sh" bench --c 256 --n "$GET_N" --warmup "$WARMUP" --get)"
  "$HERE/sofajraft.sh" stop >/dev/null
  trap - EXIT
fi

if want etcd; then
  trap '"$HERE/etcd.sh" stop >/dev/null 2>&1 || true' EXIT
  "$HERE/etcd.sh" start >/dev/null
  for c in 64 256; do
    echo "ROUND etcd put $c $("$HERE/etcd.sh" bench --workload put --c "$c" --n "$N" --warmup "$WARMUP" | grep '^JSON' | cut -c6-)"
  done
  echo "ROUND etcd get 256 $("$HERE/etcd.sh" bench --workload get --c 256 --n "$GET_N" --warmup "$WARMUP" | grep '^JSON' | cut -c6-)"
  "$HERE/etcd.sh" stop >/dev/null
  trap - EXIT
fi
