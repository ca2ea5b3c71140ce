#!/usr/bin/env bash
# etcd 3.4 side by side with counter: a wrapper around ../shared/bench/etcd (cluster.sh, bench.mjs).
#
#   bench/sidebyside/etcd.sh setup                       copy the shared bench to $ETCD_SIDE, npm install
#   bench/sidebyside/etcd.sh start                       3 members on 127.0.0.1, fsync on (etcd's default)
#   bench/sidebyside/etcd.sh bench --c C --n N --workload put|get [--warmup K] [--quiet-wait S]
#   bench/sidebyside/etcd.sh stop                        stop the members, remove their data
#   bench/sidebyside/etcd.sh status
#
# `bench` prints bench.mjs's text line and a last line `JSON {...}` (ops_per_s, p50_ms, p99_ms, CPU).
# Needs etcd and etcdctl on PATH: apt-get install -y etcd-server etcd-client (etcd 3.4.23 on Debian 12).
# Environment: SHARED_ETCD (default: the shared/bench/etcd next to the repository),
# ETCD_SIDE (default /tmp/etcd-side: the copy with node_modules), ETCD_DATA (default /tmp/etcd-bench).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
SHARED_ETCD="${SHARED_ETCD:-}"
if [[ -z "$SHARED_ETCD" ]]; then
  for d in "$REPO/../shared/bench/etcd" /work/shared/bench/etcd; do
    if [[ -f "$d/bench.mjs" ]]; then SHARED_ETCD="$(cd "$d" && pwd)"; break; fi
  done
fi
ETCD_SIDE="${ETCD_SIDE:-/tmp/etcd-side}"
export ETCD_DATA="${ETCD_DATA:-/tmp/etcd-bench}"

die() { echo "etcd.sh: $*" >&2; exit 1; }

setup() {
  command -v etcd >/dev/null || die "etcd not on PATH: apt-get install -y etcd-server etcd-client"
  command -v etcdctl >/dev/null || die "etcdctl not on PATH: apt-get install -y etcd-client"
  [[ -n "$SHARED_ETCD" && -f "$SHARED_ETCD/bench.mjs" ]] ||
    die "shared etcd bench not found; set SHARED_ETCD to the folder with cluster.sh and bench.mjs"
  mkdir -p "$ETCD_SIDE"
  cp "$SHARED_ETCD/cluster.sh" "$SHARED_ETCD/bench.mjs" "$SHARED_ETCD/package.json" "$ETCD_SIDE/"
  chmod +x "$ETCD_SIDE/cluster.sh"
  if [[ ! -d "$ETCD_SIDE/node_modules/etcd3" ]]; then
    (cd "$ETCD_SIDE" && npm install --no-audit --no-fund --loglevel=error)
  fi
  echo "etcd bench ready in $ETCD_SIDE ($(etcd --version | head -1))"
}

ensure_setup() {
  [[ -d "$ETCD_SIDE/node_modules/etcd3" && -x "$ETCD_SIDE/cluster.sh" ]] || setup
}

bench() {
  local c=64 n=2000 workload=put warmup=1000 quiet=0
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --c) c="$2"; shift 2 ;;
      --n) n="$2"; shift 2 ;;
      --workload) workload="$2"; shift 2 ;;
      --warmup) warmup="$2"; shift 2 ;;
      --quiet-wait) quiet="$2"; shift 2 ;;
      *) die "unknown bench option $1" ;;
    esac
  done
  [[ "$workload" == put || "$workload" == get ]] || die "--workload must be put or get"
  ensure_setup
  # --quiet-wait 0: counter's bench does not wait for a quiet machine either.
  (cd "$ETCD_SIDE" && node bench.mjs --workload "$workload" --c "$c" --n "$n" \
    --warmup "$warmup" --quiet-wait "$quiet" --json)
}

case "${1:-}" in
  setup) setup ;;
  start) ensure_setup; "$ETCD_SIDE/cluster.sh" start ;;
  stop)
    if [[ -x "$ETCD_SIDE/cluster.sh" ]]; then "$ETCD_SIDE/cluster.sh" stop; else echo "nothing to stop"; fi
    ;;
  status) "$ETCD_SIDE/cluster.sh" status ;;
  bench) shift; bench "$@" ;;
  *) echo "usage: $0 setup|start|stop|status|bench --c C --n N --workload put|get" >&2; exit 2 ;;
esac
