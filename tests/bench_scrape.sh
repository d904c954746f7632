#!/usr/bin/env bash
# Scrape-cost benchmark (a benchmark, NOT part of the CI test run).
#
# docs/metrics.md: a scrape costs O(1) in the number of stored runs (gauges are
# kept up to date as runs change state, never recounted by scanning the
# store). This measures GET /metrics latency with BENCH_SMALL_RUNS (1,000)
# stored runs, fills the store up to BENCH_LARGE_RUNS (1,000,000) with
# `synqc bench fill` while the server is stopped, restarts it and measures
# again. Exits non-zero when median(large) / median(small) >= BENCH_MAX_RATIO
# (2), or when the store does not hold the runs it should.
#
# Usage: SYNQC_BIN=target/release/synqc tests/bench_scrape.sh
# Env:   BENCH_SMALL_RUNS (1000), BENCH_LARGE_RUNS (1000000),
#        BENCH_REQUESTS (200 sequential scrapes per measurement),
#        BENCH_MAX_RATIO (2), BENCH_TMPDIR (where the store goes: a million
#        runs need several GB), BENCH_START_TIMEOUT (s, 900),
#        BENCH_FILL_TIMEOUT (s, 7200), KEEP_TMP=1.
# Prefer a release build, and an otherwise idle host: other jobs on shared
# cores add noise of the same order as the effect being measured.

# SC2317: shellcheck 0.9 cannot see calls made from traps or through
# wait_until "$@", and reports those function bodies as unreachable.
# shellcheck disable=SC2317
set -euo pipefail

: "${SYNQC_BIN:?set SYNQC_BIN to the synqc binary to benchmark}"
SMALL=${BENCH_SMALL_RUNS:-1000}
LARGE=${BENCH_LARGE_RUNS:-1000000}
REQUESTS=${BENCH_REQUESTS:-200}
MAX_RATIO=${BENCH_MAX_RATIO:-2}
START_TIMEOUT=${BENCH_START_TIMEOUT:-900}
FILL_TIMEOUT=${BENCH_FILL_TIMEOUT:-7200}

for tool in "$SYNQC_BIN" curl python3 timeout; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench-scrape: $tool not found" >&2; exit 2; }
done
if ((LARGE <= SMALL)); then
  echo "bench-scrape: BENCH_LARGE_RUNS ($LARGE) must exceed BENCH_SMALL_RUNS ($SMALL)" >&2
  exit 2
fi

TMP=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/synqc-bench.XXXXXX")
DATA=$TMP/data
SYNQC_PID=""

# stop_synqc: SIGTERM (graceful drain and flush), up to 30 s, then SIGKILL.
stop_synqc() {
  local i
  [[ -n $SYNQC_PID ]] || return 0
  kill -TERM "$SYNQC_PID" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$SYNQC_PID" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL "$SYNQC_PID" 2>/dev/null || true
  wait "$SYNQC_PID" 2>/dev/null || true
  SYNQC_PID=""
}
cleanup() {
  local rc=$?
  stop_synqc
  if [[ $rc -ne 0 && -s $TMP/synqc.log ]]; then
    echo "--- last lines of synqc.log"
    tail -n 25 "$TMP/synqc.log"
  fi
  if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "bench-scrape: kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

c() { curl -sS --noproxy '*' --max-time 30 "$@"; }

clean_env=()
while IFS= read -r var; do clean_env+=(-u "$var"); done < <(compgen -e | grep '^SYNQC_' || true)
: >"$TMP/synqc.toml"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT

start_synqc() {
  local deadline=$((SECONDS + START_TIMEOUT))
  # Isolated from the host's settings (an installed /etc/synqc/synqc.toml,
  # SYNQC_* variables such as an API key); retention would prune the runs
  # we measure with, so it is lifted above the fill.
  env "${clean_env[@]}" SYNQC_RETENTION_RUNS=$((LARGE * 2)) \
    "$SYNQC_BIN" serve --config "$TMP/synqc.toml" --listen "127.0.0.1:$PORT" \
    --data-dir "$DATA" >>"$TMP/synqc.log" 2>&1 &
  SYNQC_PID=$!
  while ((SECONDS < deadline)); do
    kill -0 "$SYNQC_PID" 2>/dev/null || { echo "bench-scrape: synqc exited during start-up" >&2; exit 1; }
    c -f -o /dev/null "$BASE/health/ready" 2>/dev/null && return 0
    sleep 0.5
  done
  echo "bench-scrape: synqc not ready within ${START_TIMEOUT} s" >&2
  exit 1
}

fill() {
  local n=$1 t0=$SECONDS
  echo "bench-scrape: synqc bench fill --runs $n (server stopped)"
  if ! timeout "$FILL_TIMEOUT" env "${clean_env[@]}" "$SYNQC_BIN" bench fill --data-dir "$DATA" --runs "$n" >>"$TMP/fill.log" 2>&1; then
    tail -n 20 "$TMP/fill.log" >&2
    echo "bench-scrape: synqc bench fill --runs $n failed" >&2
    exit 1
  fi
  echo "bench-scrape: filled $n runs in $((SECONDS - t0)) s"
}

# stored_runs: queue.total and store.size_bytes from the health document.
stored_runs() {
  c -f "$BASE/health" | python3 -c '
import json, sys
h = json.load(sys.stdin)
print(h["queue"]["total"], h.get("store", {}).get("size_bytes", "?"))'
}

# measure LABEL: REQUESTS sequential scrapes after a warm-up; prints a line
# and sets MEDIAN (seconds). Sequential on purpose: this is the cost of one
# scrape, not server throughput.
measure() {
  local label=$1 i
  for ((i = 0; i < 20; i++)); do c -f -o /dev/null "$BASE/metrics"; done
  : >"$TMP/times"
  for ((i = 0; i < REQUESTS; i++)); do
    c -o /dev/null -w '%{http_code} %{time_total}\n' "$BASE/metrics" >>"$TMP/times"
  done
  read -r MEDIAN P95 < <(python3 - "$TMP/times" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
bad = [r for r in rows if r[0] != "200"]
if bad:
    sys.exit(f"bench-scrape: {len(bad)} scrapes did not answer 200 (first: {bad[0][0]})")
t = sorted(float(r[1]) for r in rows)
print(f"{statistics.median(t):.6f} {t[min(len(t) - 1, int(round(0.95 * (len(t) - 1))))]:.6f}")
PY
  )
  printf 'bench-scrape: %-28s median %8.3f ms, p95 %8.3f ms (%d scrapes, %s bytes)\n' \
    "$label" "$(python3 -c "print($MEDIAN * 1000)")" "$(python3 -c "print($P95 * 1000)")" \
    "$REQUESTS" "$(c -f "$BASE/metrics" | wc -c)"
}

# check_stored WANT: the store must really hold the runs (else the
# comparison would be meaningless).
check_stored() {
  local want=$1 total size
  read -r total size < <(stored_runs)
  echo "bench-scrape: store holds $total runs ($size bytes on disk)"
  if ((total < want)); then
    echo "bench-scrape: expected at least $want stored runs, found $total" >&2
    exit 1
  fi
}

fill "$SMALL"
start_synqc
check_stored "$SMALL"
measure "$SMALL stored runs:"
SMALL_MEDIAN=$MEDIAN
SMALL_P95=$P95
stop_synqc

fill $((LARGE - SMALL))
start_synqc
check_stored "$LARGE"
measure "$LARGE stored runs:"
LARGE_MEDIAN=$MEDIAN
LARGE_P95=$P95

read -r RATIO P95_RATIO VERDICT < <(python3 -c "
small, large, sp, lp, limit = $SMALL_MEDIAN, $LARGE_MEDIAN, $SMALL_P95, $LARGE_P95, $MAX_RATIO
r = large / small if small > 0 else float('inf')
print(f'{r:.2f} {(lp / sp if sp > 0 else float(\"inf\")):.2f}', 'ok' if r < limit else 'FAIL')
")
echo "bench-scrape: ratio (median) $LARGE/$SMALL runs = $RATIO (p95 ratio $P95_RATIO), limit < $MAX_RATIO: $VERDICT"
[[ $VERDICT == ok ]]
