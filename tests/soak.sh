#!/usr/bin/env bash
# Soak benchmark (not a test): starts the release binary on a free loopback
# port with a temporary data dir, drives sustained mixed load (submits of
# hello_quantum_sim, GETs of submitted runs, /metrics scrapes) for DURATION
# seconds, prints the server's RSS, open fds and store size every INTERVAL
# seconds, then stops it with SIGTERM and reports its exit status.
#
#   cargo build --release && tests/soak.sh
#   DURATION=3600 INTERVAL=60 tests/soak.sh
#
# Environment: SYNQC_BIN (default target/release/synqc), DURATION (300),
# INTERVAL (30), SUBMITTERS (2), READERS (2), PAUSE (seconds each submitter
# and reader waits between requests, 0: as fast as answered), SCRAPE_EVERY
# (seconds between scrapes, 1), SOAK_ARGS (extra `synqc serve` flags, e.g.
# "--store-cache-bytes 16777216"). Needs curl and python3 (stdlib only).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${SYNQC_BIN:-$root/target/release/synqc}
duration=${DURATION:-300}
interval=${INTERVAL:-30}
submitters=${SUBMITTERS:-2}
readers=${READERS:-2}
scrape_every=${SCRAPE_EVERY:-1}
pause=${PAUSE:-0}
[ -x "$bin" ] || { echo "soak: no synqc binary at $bin; run cargo build --release or set SYNQC_BIN" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/synqc-soak.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pid=""
driver=""
cleanup() {
    [ -n "$driver" ] && kill "$driver" 2>/dev/null || true
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# shellcheck disable=SC2086 # SOAK_ARGS is a list of flags
SYNQC_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" ${SOAK_ARGS:-} \
    >"$work/synqc.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
    curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { echo "soak: synqc exited at start:" >&2; cat "$work/synqc.log" >&2; exit 1; }
    sleep 0.05
done
curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null || { echo "soak: synqc never became ready" >&2; exit 1; }

sample() {
    local rss fds store
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    fds=$(ls "/proc/$pid/fd" | wc -l)
    store=$(du -sk "$work/data" | cut -f1)
    printf '%6s s  rss %7s KiB  fds %4s  store %8s KiB\n' "$1" "$rss" "$fds" "$store"
}

echo "soak: synqc pid $pid on 127.0.0.1:$port, ${duration} s, $submitters submitters and $readers readers (pause ${pause} s), a scrape every ${scrape_every} s"
sample 0

python3 - "$port" "$duration" "$submitters" "$readers" "$scrape_every" "$pause" >"$work/driver.out" 2>&1 <<'EOF' &
import http.client, json, random, sys, threading, time

port, duration = int(sys.argv[1]), float(sys.argv[2])
submitters, readers, scrape_every = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
pause = float(sys.argv[6])
end = time.monotonic() + duration
ids, lock = [], threading.Lock()
counts = {}

def count(kind, status):
    with lock:
        counts[(kind, status)] = counts.get((kind, status), 0) + 1

def loop(kind, one, pause=0.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.monotonic() < end:
        try:
            status = one(conn)
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            status = "error"
        count(kind, status)
        if pause:
            time.sleep(pause)
    conn.close()

def submitter(n):
    sent = [0]
    def one(conn):
        # A fresh budget session every 1000 runs keeps the default
        # per-session budget from refusing the load.
        session = "soak-%d-%d" % (n, sent[0] // 1000)
        sent[0] += 1
        body = json.dumps({"preset": "hello_quantum_sim", "shot_budget": 256})
        conn.request("POST", "/runs", body, {"Content-Type": "application/json", "X-Session-Id": session})
        r = conn.getresponse()
        doc = r.read()
        if r.status == 202:
            with lock:
                ids.append(json.loads(doc)["id"])
        return r.status
    return one

def reader(conn):
    with lock:
        run = random.choice(ids[-5000:]) if ids else None
    conn.request("GET", "/runs/%s" % run if run else "/runs?limit=10")
    r = conn.getresponse()
    r.read()
    return r.status

def scrape(conn):
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    r.read()
    return r.status

threads = [threading.Thread(target=loop, args=("submit", submitter(i), pause)) for i in range(submitters)]
threads += [threading.Thread(target=loop, args=("get", reader, pause)) for _ in range(readers)]
threads.append(threading.Thread(target=loop, args=("scrape", scrape, scrape_every)))
for t in threads:
    t.start()
for t in threads:
    t.join()
for (kind, status), n in sorted(counts.items(), key=str):
    print("%-6s %-5s %d" % (kind, status, n))
EOF
driver=$!

started=$(date +%s)
while kill -0 "$driver" 2>/dev/null; do
    sleep "$interval" &
    wait $! || true
    kill -0 "$driver" 2>/dev/null || break
    sample $(( $(date +%s) - started ))
done
wait "$driver" || true
driver=""
sample "$(( $(date +%s) - started ))"
echo "soak: requests by kind and status:"
cat "$work/driver.out"
curl -fsS "http://127.0.0.1:$port/health" | python3 -c 'import json,sys; q=json.load(sys.stdin)["queue"]; print("soak: queue", {k: q[k] for k in ("total","queued","running","succeeded","failed","cancelled")})'

kill -TERM "$pid"
for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
    echo "soak: synqc did not stop within 30 s of SIGTERM" >&2
    exit 1
fi
status=0
wait "$pid" || status=$?
pid=""
echo "soak: synqc stopped, exit status $status"
[ "$status" -eq 0 ]
