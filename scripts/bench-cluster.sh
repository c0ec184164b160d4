#!/bin/bash
# The cluster against a single node, same run: starts redis-server (appendonly yes,
# appendfsync everysec) on a free port, one single node and two cluster nodes on
# loopback, runs `herald bench` against each (one publisher, batch 100 and 1, twice),
# then eight concurrent publishers (batch 1) against the single node and A -> B.
# Usage: scripts/bench-cluster.sh [path/to/herald]   (default .build/release/herald)
set -euo pipefail
BIN=${1:-.build/release/herald}
BIN=$(realpath "$BIN")
WORK=$(mktemp -d /tmp/herald-bench-cluster-XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RPORT=$(free_port); S=$(free_port); A=$(free_port); B=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$WORK" --appendonly yes --appendfsync everysec --save "" \
  --logfile "$WORK/redis.log" &
PIDS=($!)
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
sleep 0.5
BASE='"publicDirectory":null,"auth":{"anonymous":true},"limits":{"maxBatchEvents":500},"log":{"level":"warning","lwsLevel":"none"}'
echo "{$BASE}" > "$WORK/single.json"
echo "{$BASE,\"cluster\":{\"redis\":\"redis://127.0.0.1:$RPORT\",\"stream\":\"bench\"}}" > "$WORK/cluster.json"
export HERALD_PUBLISHER_KEY=bench-key
"$BIN" serve --config "$WORK/single.json" --host 127.0.0.1 --port "$S" 2>"$WORK/s.log" & PIDS+=($!)
"$BIN" serve --config "$WORK/cluster.json" --host 127.0.0.1 --port "$A" 2>"$WORK/a.log" & PIDS+=($!)
"$BIN" serve --config "$WORK/cluster.json" --host 127.0.0.1 --port "$B" 2>"$WORK/b.log" & PIDS+=($!)
sleep 1
summary() {
  python3 -c '
import sys, json
d = json.load(sys.stdin)
lat, ack = d["latency_ms"], d["ack_ms"]
print("ingest %d ev/s, latency p50 %.2f p99 %.2f ms, ack p50 %.2f p99 %.2f ms, failures %d"
      % (d["achieved_rate"], lat["p50"], lat["p99"], ack["p50"], ack["p99"], len(d["failures"])))'
}
for spec in "100 50000" "1 5000"; do
  set -- $spec
  for round in 1 2; do
    echo "batch $1, single node:     $("$BIN" bench --json --publishers 1 --pipeline 1 --url "http://127.0.0.1:$S" --events "$2" --batch "$1" | summary)"
    echo "batch $1, cluster, 1 node: $("$BIN" bench --json --publishers 1 --pipeline 1 --url "http://127.0.0.1:$A" --events "$2" --batch "$1" | summary)"
    echo "batch $1, cluster, A -> B: $("$BIN" bench --json --publishers 1 --pipeline 1 --url "http://127.0.0.1:$A" --subscribe-node "http://127.0.0.1:$B" --events "$2" --batch "$1" | summary)"
  done
done
for target in "single-node $S $S" "cluster-A-to-B $A $B"; do
  set -- $target
  started=$(date +%s.%N)
  runs=()
  for i in 1 2 3 4 5 6 7 8; do
    "$BIN" bench --json --publishers 1 --pipeline 1 --url "http://127.0.0.1:$2" --subscribe-node "http://127.0.0.1:$3" --events 2000 --batch 1 > "$WORK/conc.$i.json" &
    runs+=($!)
  done
  wait "${runs[@]}"
  ended=$(date +%s.%N)
  python3 - "$1" "$started" "$ended" "$WORK" <<'P'
import sys, json
name, started, ended, work = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
runs = [json.load(open(f"{work}/conc.{i}.json")) for i in range(1, 9)]
acks = sorted(r["ack_ms"]["p50"] for r in runs)
print(f"8 publishers, batch 1, {name}: {sum(r['events'] for r in runs) / (ended - started):.0f} ev/s overall "
      f"(process start included), median ack p50 {acks[4]:.2f} ms, failures {sum(len(r['failures']) for r in runs)}")
P
done
