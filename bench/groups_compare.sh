#!/bin/bash
# One group against 16 at 256 increments in flight, alternating, 3 rounds; one line per run with
# throughput, p50, p99 and CPU µs per increment (client and each node) from `bench --json`.
#
#   bench/groups_compare.sh                       this checkout
#   DIR=/path/to/other/checkout bench/groups_compare.sh
#
# Check /proc/loadavg first: nothing else may run while this measures.
set -euo pipefail
cd "${DIR:-$(dirname "$0")/..}"
for r in 1 2 3; do
  for g in 1 16; do
    echo -n "round $r groups $g load $(cut -d' ' -f1-3 /proc/loadavg) "
    deno run -A main.ts bench --local --groups "$g" --concurrency 256 --ops 200000 --warmup 60000 \
      --json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({'opsPerSec':d['opsPerSec'],'p50':d['latencyMs']['p50'],'p99':d['latencyMs']['p99'],'cpuTotal':d['cpu']['totalUsPerOp'],'procs':[p['usPerOp'] for p in d['cpu']['processes']]}))"
  done
done
