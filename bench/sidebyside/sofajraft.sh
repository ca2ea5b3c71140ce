#!/usr/bin/env bash
# SOFAJRaft counter side by side with counter: 3 JVMs on 127.0.0.1 plus a JVM bench client.
#
#   bench/sidebyside/sofajraft.sh build                 mvn package (needs Maven Central)
#   bench/sidebyside/sofajraft.sh start                 3 members, fsync on (RaftOptions.sync default)
#   bench/sidebyside/sofajraft.sh bench --c C --n N [--warmup W] [--get]
#   bench/sidebyside/sofajraft.sh stop                  stop the members, remove their data
#   bench/sidebyside/sofajraft.sh status
#
# `bench` prints one JSON line: {"opsPerSec":…,"p50Ms":…,"p99Ms":…,…}. Without --get it sends
# IncrementAndGetRequest(1) through the log; with --get, GetValueRequest(readOnlySafe): a ReadIndex
# read. The warm-up (default max(N/5, 1000) requests) runs in the same client JVM first.
# Environment: SOFA_DATA (default /tmp/sofajraft-bench: data dirs, logs, pids),
# SOFA_PORTS (default "18081 18082 18083"), SOFA_JVM_OPTS (default "-Xms256m -Xmx1g"),
# SOFA_CP (a ready classpath instead of the Maven build's target/classes:target/lib/*).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJ="$HERE/sofajraft"
SOFA_DATA="${SOFA_DATA:-/tmp/sofajraft-bench}"
read -r -a PORTS <<< "${SOFA_PORTS:-18081 18082 18083}"
GROUP=counter
CONF="127.0.0.1:${PORTS[0]},127.0.0.1:${PORTS[1]},127.0.0.1:${PORTS[2]}"
read -r -a JVM_OPTS <<< "${SOFA_JVM_OPTS:--Xms256m -Xmx1g}"
# JDK 9+: SOFAJRaft, bolt and netty reach into these packages.
OPENS=(--add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED
  --add-opens java.base/jdk.internal.misc=ALL-UNNAMED -Dio.netty.tryReflectionSetAccessible=true)

die() { echo "sofajraft.sh: $*" >&2; exit 1; }

classpath() {
  if [[ -n "${SOFA_CP:-}" ]]; then echo "$SOFA_CP"; return; fi
  [[ -d "$PROJ/target/classes" && -d "$PROJ/target/lib" ]] || die "not built: run '$0 build' first"
  echo "$PROJ/target/classes:$PROJ/target/lib/*"
}

build() {
  command -v mvn >/dev/null || die "mvn not found (apt-get install -y maven)"
  (cd "$PROJ" && mvn -q -B package -DskipTests "$@") ||
    die "mvn package failed (is Maven Central reachable? see bench/sidebyside/README.md)"
  echo "built $PROJ/target (jraft-core $(ls "$PROJ/target/lib" | grep -o 'jraft-core-.*\.jar' || true))"
}

start() {
  local cp; cp="$(classpath)"
  mkdir -p "$SOFA_DATA"
  for i in 0 1 2; do
    local pidf="$SOFA_DATA/n$i.pid"
    if [[ -f "$pidf" ]] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
      die "member n$i already running (pid $(cat "$pidf")); run '$0 stop' first"
    fi
  done
  for i in 0 1 2; do
    rm -rf "$SOFA_DATA/n$i"
    setsid java "${JVM_OPTS[@]}" "${OPENS[@]}" -cp "$cp" counterbench.CounterServer \
      "$SOFA_DATA/n$i" "$GROUP" "127.0.0.1:${PORTS[$i]}" "$CONF" \
      > "$SOFA_DATA/n$i.log" 2>&1 < /dev/null &
    echo $! > "$SOFA_DATA/n$i.pid"
    echo "started n$i pid $(cat "$SOFA_DATA/n$i.pid") on 127.0.0.1:${PORTS[$i]}"
  done
  # Wait until a leader answers a read (max ~60 s: three JVMs start on two cores).
  for _ in $(seq 1 60); do
    if java "${OPENS[@]}" -cp "$cp" counterbench.BenchClient "$GROUP" "$CONF" --c 1 --n 1 --warmup 0 --get \
      > "$SOFA_DATA/probe.out" 2>&1; then
      echo "group $GROUP is up: $(cat "$SOFA_DATA/probe.out" | tail -1)"
      return 0
    fi
    for i in 0 1 2; do
      kill -0 "$(cat "$SOFA_DATA/n$i.pid")" 2>/dev/null || die "member n$i died; see $SOFA_DATA/n$i.log"
    done
    sleep 1
  done
  die "no leader answered within 60 s; logs in $SOFA_DATA/n*.log"
}

stop() {
  for i in 0 1 2; do
    local f="$SOFA_DATA/n$i.pid"
    if [[ -f "$f" ]]; then
      local pid; pid=$(cat "$f")
      if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" || true
        echo "stopped n$i (pid $pid)"
      fi
      rm -f "$f"
    fi
  done
  rm -rf "$SOFA_DATA"
  echo "removed $SOFA_DATA"
}

status() {
  for i in 0 1 2; do
    local f="$SOFA_DATA/n$i.pid"
    if [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null; then
      echo "n$i running pid $(cat "$f") 127.0.0.1:${PORTS[$i]}"
    else
      echo "n$i not running"
    fi
  done
}

bench() {
  local cp; cp="$(classpath)"
  java "${JVM_OPTS[@]}" "${OPENS[@]}" -cp "$cp" counterbench.BenchClient "$GROUP" "$CONF" "$@" |
    grep '^{'
}

case "${1:-}" in
  build) shift; build "$@" ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  bench) shift; bench "$@" ;;
  *) echo "usage: $0 build|start|stop|status|bench --c C --n N [--warmup W] [--get]" >&2; exit 2 ;;
esac
