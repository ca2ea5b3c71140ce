#!/bin/bash
# Two checkouts side by side at G groups: ROUNDS rounds, alternating A and B, one line per run with
# increments/s, p99 ms, CPU µs per increment (all 4 processes) and each process's share.
#
#   bench/ab_dirs.sh ROUNDS GROUPS DIR_A DIR_B
#
# Each run is `bench --local --groups G --concurrency 256 --duration 15 --warmup 30000 --json`
# in that checkout. Check /proc/loadavg first: nothing else may run while this measures.
set -euo pipefail
rounds=$1 groups=$2
for r in $(seq 1 "$rounds"); do
  for d in "$3" "$4"; do
    echo -n "round $r $d load $(cut -d' ' -f1 /proc/loadavg) "
    (cd "$d" && deno run -A main.ts bench --local --groups "$groups" --concurrency 256 \
      --duration 15 --warmup 30000 --json 2>/dev/null) |
      python3 -c "import json,sys; d=json.load(sys.stdin); print(round(d['opsPerSec']), d['latencyMs']['p99'], d['cpu']['totalUsPerOp'], [p['usPerOp'] for p in d['cpu']['processes']], 'verified' if d.get('verified') else 'NOT VERIFIED')"
  done
done
