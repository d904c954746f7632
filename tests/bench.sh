#!/usr/bin/env bash
# Performance benchmark of the appliance (issue 2 targets), printed, not
# asserted: run it on a quiet machine. Needs wrk (Debian package) and a
# release build: cargo build --release && bash tests/bench.sh
#   durable submits/s at 32 connections and submit latency percentiles,
#   GET /runs/{id} requests/s, hello_quantum_sim runs/s end to end,
#   idle RSS, start-to-ready with 1,000,000 runs stored, simulator table.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SYNQC_BIN:-target/release/synqc}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # data_dir [extra args]
  local dir=$1; shift
  P=$(port)
  local t0; t0=$(date +%s%N)
  SYNQC_LOG=warn "$BIN" serve --listen "127.0.0.1:$P" --data-dir "$dir" --max-pending 10000000 \
    --max-shots-per-session 100000000000 "$@" & pid=$!
  for _ in $(seq 1 2000); do
    curl -sf "http://127.0.0.1:$P/health/ready" >/dev/null && break
    sleep 0.005
  done
  READY_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
}
stop() { # SIGTERM; STOP_MS is how long the clean stop took
  local t0; t0=$(date +%s%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  STOP_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
}

cat > "$tmp/submit.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"preset":"hello_quantum_sim"}'
wrk.headers["Content-Type"] = "application/json"
LUA

echo "== idle RSS and start-up (empty store)"
start "$tmp/idle"
sleep 2
echo "start to ready: ${READY_MS} ms (includes process spawn and the poll interval)"
echo "idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"

echo "== durable submits, 32 connections, 10 s, intake only (--workers 0)"
stop
start "$tmp/intake" --workers 0
wrk -t2 -c32 -d10s --latency -s "$tmp/submit.lua" "http://127.0.0.1:$P/runs" | grep -E 'Requests/sec|Latency|50%|90%|99%|requests in|Non-2xx'
id=$(curl -s "http://127.0.0.1:$P/runs?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["id"])')
echo "== GET /runs/{id} of the newest queued run (queue_position from the order index), 32 connections, 10 s"
wrk -t2 -c32 -d10s --latency "http://127.0.0.1:$P/runs/$id" | grep -E 'Requests/sec|99%'
stop
echo "== hello_quantum_sim end to end: the backlog drained by the default workers"
start "$tmp/intake"
t0=$(date +%s.%N); s0=$(curl -s "http://127.0.0.1:$P/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue"]["succeeded"])')
while [ "$(curl -s "http://127.0.0.1:$P/health" | python3 -c 'import json,sys; q=json.load(sys.stdin)["queue"]; print(q["queued"]+q["running"])')" != 0 ]; do sleep 0.5; done
t1=$(date +%s.%N); s1=$(curl -s "http://127.0.0.1:$P/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue"]["succeeded"])')
python3 -c "print(f'executed {$s1-$s0} runs in {$t1-$t0:.1f} s: {($s1-$s0)/($t1-$t0):.0f} runs/s end to end')"
echo "== GET /runs/{id} of a finished run, 32 connections, 10 s"
wrk -t2 -c32 -d10s --latency "http://127.0.0.1:$P/runs/$id" | grep -E 'Requests/sec|99%'
echo "== durable submits, 32 connections, 10 s, while the workers execute them"
wrk -t2 -c32 -d10s --latency -s "$tmp/submit.lua" "http://127.0.0.1:$P/runs" | grep -E 'Requests/sec|50%|99%'
stop
echo "clean stop after that session (drain, flush, sled snapshot): ${STOP_MS} ms"

echo "== start to ready after the drain above (results written to the archive as the runs finished)"
start "$tmp/intake"
echo "start to ready: ${READY_MS} ms"
echo "== the same store 30 s later, once the runs submitted during the drain have executed, then stopped"
# The main store's file grew to hold the queued backlog, and sled shrinks
# it only when the segments at its end are free; this stop finds it
# mostly free and compacts it, unless sled already did.
sleep 30
stop
echo "clean stop: ${STOP_MS} ms; main store now $(du -sh "$tmp/intake/main-"* 2>/dev/null | cut -f1 || echo "not compacted")"
start "$tmp/intake"
echo "start to ready after that stop: ${READY_MS} ms"
stop

echo "== start to ready with 1,000,000 runs stored (retention raised so none is pruned)"
# bench fill writes finished runs where a finish puts them: the
# archive database, which opens in the background after ready. "archive
# open" is when /health first reports it (reads of finished runs wait
# until then); the first start after the fill also replays the archive's
# whole log, as sled 0.34 writes its snapshot only when it opens a store.
archive_open() {
  local t0=$1
  for _ in $(seq 1 4000); do
    [ "$(curl -s "http://127.0.0.1:$P/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["store"]["archive"])')" = open ] && break
    sleep 0.005
  done
  echo $(( ($(date +%s%N) - t0) / 1000000 ))
}
"$BIN" bench fill --data-dir "$tmp/big" --runs 1000000
for attempt in "first start after the fill" "restart" "restart"; do
  t0=$(date +%s%N)
  start "$tmp/big" --retention-runs 2000000
  echo "start to ready ($attempt): ${READY_MS} ms; archive open after $(archive_open "$t0") ms"
  stop
done
start "$tmp/big" --retention-runs 2000000
curl -s "http://127.0.0.1:$P/health" | python3 -c 'import json,sys; q=json.load(sys.stdin)["queue"]; print("runs stored:", q["total"])'
stop

echo "== simulator"
"$BIN" bench sim
