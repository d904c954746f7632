# Shared by the observability tests that start several processes on
# loopback (tests/fleet.sh, tests/alert_delivery.sh); source it, never run
# it. The sourcing script sets NAME (its summary's name) and TMP (a fresh
# temp dir) first, and calls `trap obs_cleanup EXIT` so that every process
# started through obs_start is stopped and TMP removed however it exits.
#
# SC2317: calls made through traps and "$@" look unreachable to shellcheck.
# shellcheck disable=SC2317,SC2034

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPER=$ROOT/tests/dashboard_queries.py
PROMETHEUS=${PROMETHEUS:-prometheus}

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok     $*"; }
fail() { failed=$((failed + 1)); echo "FAIL   $*"; }

declare -a OBS_PIDS=() OBS_LOGS=()
LOGS_SHOWN=0
# The logs are the only trace of why a process misbehaved: shown once, on
# failure, before the closing line (so that line stays the last one).
show_logs() {
  local log
  [[ $LOGS_SHOWN == 0 ]] || return 0
  LOGS_SHOWN=1
  for log in "${OBS_LOGS[@]}"; do
    [[ -s $log ]] || continue
    echo "--- last lines of ${log#"$TMP"/}"
    tail -n 15 "$log"
  done
}
finish() {
  [[ $failed -eq 0 ]] || show_logs
  echo "$NAME: $passed passed, $failed failed"
  [[ $failed -eq 0 && $passed -gt 0 ]] || exit 1
  exit 0
}
# abort MSG: a step everything after it depends on failed.
abort() {
  fail "$*"
  finish
}

# stop PID: SIGTERM, up to 10 s for a clean exit, then SIGKILL.
stop() {
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

obs_cleanup() {
  local rc=$? i
  for ((i = ${#OBS_PIDS[@]} - 1; i >= 0; i--)); do stop "${OBS_PIDS[i]}"; done
  [[ $rc -eq 0 ]] || show_logs
  if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "$NAME: kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}

# obs_start LOG CMD...: start CMD in the background, logging to LOG; its pid
# is left in OBS_PID (and stopped by obs_cleanup).
obs_start() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  OBS_PID=$!
  OBS_PIDS+=("$OBS_PID")
  OBS_LOGS+=("$log")
}

# require TOOL...: each must be on PATH (or a path), else the test fails.
require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || abort "$tool not found"
  done
}

# apt_install PACKAGE...: Debian's packages, when missing and we are root,
# never beside another apt/dpkg run (bounded wait for it to end).
apt_install() {
  local missing=() p i
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [[ ${#missing[@]} -gt 0 && $(id -u) == 0 ]] && command -v apt-get >/dev/null || return 0
  for ((i = 0; i < 60; i++)); do
    pgrep -x apt-get >/dev/null || pgrep -x dpkg >/dev/null || break
    sleep 5
  done
  echo "# installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "${missing[@]}" >>"$TMP/apt.log" 2>&1 \
    || { timeout 600 apt-get update -qq >>"$TMP/apt.log" 2>&1 \
      && DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "${missing[@]}" >>"$TMP/apt.log" 2>&1; } \
    || true
}

# curl that never goes through a proxy (loopback only) and never hangs.
c() { curl -sS --noproxy '*' --max-time 10 "$@"; }

# wait_until SECONDS PID CMD...: poll CMD every 0.5 s until it succeeds;
# give up at the deadline or as soon as process PID has died.
wait_until() {
  local deadline=$((SECONDS + $1)) pid=$2
  shift 2
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || return 1
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  return 1
}

# free_ports N: N distinct free loopback ports on one line, held open
# together while picking so they cannot collide.
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
' "$1"
}

# Isolate synqc from the host's settings: an installed
# /etc/synqc/synqc.toml or SYNQC_* variables (an API key would turn every
# request into a 401) are replaced by the given config file and no SYNQC_*
# environment (SYNQC_BIN is ours, not a synqc setting).
clean_env=()
while IFS= read -r var; do clean_env+=(-u "$var"); done < <(compgen -e | grep '^SYNQC_' || true)

# start_synqc DIR HOST:PORT [ARGS...]: synqc serve with DIR/synqc.toml
# (created empty if absent) and data in DIR/data; waits until ready.
start_synqc() {
  local dir=$1 addr=$2
  shift 2
  mkdir -p "$dir"
  [[ -f $dir/synqc.toml ]] || : >"$dir/synqc.toml"
  obs_start "$dir/synqc.log" env "${clean_env[@]}" "$SYNQC_BIN" serve --config "$dir/synqc.toml" \
    --listen "$addr" --data-dir "$dir/data" "$@"
  wait_until 60 "$OBS_PID" c -f "http://$addr/health/ready"
}

# start_prometheus DIR PORT: Prometheus with DIR/prometheus.yml; waits
# until ready.
start_prometheus() {
  local dir=$1 port=$2
  obs_start "$dir/prometheus.log" "$PROMETHEUS" --config.file="$dir/prometheus.yml" \
    --storage.tsdb.path="$dir/data" --web.listen-address="127.0.0.1:$port" --log.level=warn
  wait_until 60 "$OBS_PID" c -f "http://127.0.0.1:$port/-/ready"
}

# prom_value URL EXPR: the first sample's value of an instant query ("" if none).
prom_value() {
  c -G "$1/api/v1/query" --data-urlencode "query=$2" | python3 -c '
import json, sys
r = json.load(sys.stdin).get("data", {}).get("result", [])
print(r[0]["value"][1] if r else "")'
}
# prom_true URL EXPR: succeeds when EXPR (a filter) returns at least one series.
prom_true() { [[ -n $(prom_value "$1" "$2") ]]; }

# submit BASE N: N runs of hello_quantum_sim through POST /runs; prints the
# number answered 202.
submit() {
  local base=$1 n=$2 i ok=0
  for ((i = 0; i < n; i++)); do
    [[ $(c -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
      -d '{"preset":"hello_quantum_sim"}' "$base/runs" || true) == 202 ]] && ok=$((ok + 1))
  done
  echo "$ok"
}

# py_checks CMD...: run a dashboard_queries.py subcommand, show its lines and
# add its closing "name: N passed, M failed" to our totals.
py_checks() {
  local out summary
  out=$(python3 "$HELPER" "$@") || true
  printf '%s\n' "$out" | sed '$d'
  summary=$(printf '%s\n' "$out" | tail -n 1)
  if [[ $summary =~ :\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
    echo "       ($summary)"
  else
    fail "$1: helper crashed: $summary"
  fi
}
