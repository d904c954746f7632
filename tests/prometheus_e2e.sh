#!/usr/bin/env bash
# End-to-end check of the observability pack against the real binary:
# starts synqc and a real Prometheus (Debian's package) on loopback,
# Prometheus scraping synqc every second with the shipped alert rules loaded;
# submits a load through the HTTP API; then evaluates every expression of the
# Grafana dashboard and every alert expression through the Prometheus HTTP
# API (tests/dashboard_queries.py query). Every one must evaluate without
# error, and the queue-depth, run-outcome, HTTP-rate and fidelity panels must
# return data, and every series selector they use must match series of the
# appliance (a renamed metric would leave a panel or alert silently dead).
# On the way it also checks the /metrics contract at start-up and after the
# load (families, types, HELP, labels), `promtool check metrics`, the second
# metrics listener (same registry), process_* against /proc, and that the
# appliance serves the shipped asset files unchanged.
#
# Usage: SYNQC_BIN=target/debug/synqc tests/prometheus_e2e.sh
# Env:   PROMETHEUS, PROMTOOL (binaries), E2E_RUNS (default 100),
#        KEEP_TMP=1 (keep logs and data for debugging).
# Prints one line per check and `prometheus-e2e: N passed, M failed`;
# exits non-zero if anything failed. Uses loopback only; every wait is
# bounded; every process it starts is stopped on exit.

# SC2317: shellcheck 0.9 cannot see calls made from traps or through
# wait_until "$@", and reports those function bodies as unreachable.
# shellcheck disable=SC2317
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${SYNQC_BIN:?set SYNQC_BIN to the synqc binary to test}"
PROMETHEUS=${PROMETHEUS:-prometheus}
PROMTOOL=${PROMTOOL:-promtool}
RUNS=${E2E_RUNS:-100}
HELPER=$ROOT/tests/dashboard_queries.py
DASHBOARD=$ROOT/assets/grafana/synqc-dashboard.json
RULES=$ROOT/assets/prometheus/synqc-alerts.yml

for tool in "$SYNQC_BIN" "$PROMETHEUS" "$PROMTOOL" curl python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "prometheus-e2e: $tool not found" >&2
    echo "prometheus-e2e: 0 passed, 1 failed"
    exit 1
  fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/synqc-e2e.XXXXXX")
SYNQC_PID=""
PROM_PID=""
NAME=prometheus-e2e
# Process start and stop, checks and their totals, curl and waits, shared
# with the fleet and alert-delivery tests.
# shellcheck source=tests/obs_lib.sh
source "$ROOT/tests/obs_lib.sh"
trap obs_cleanup EXIT
trap 'exit 130' INT TERM

# Three distinct free loopback ports (API, metrics listener, Prometheus),
# held open together while picking so they cannot collide.
read -r PORT MPORT PPORT < <(free_ports 3)
INSTANCE=127.0.0.1:$PORT
BASE=http://$INSTANCE
PROM=http://127.0.0.1:$PPORT

# proc_sample MOMENT: scrape process_* and read /proc/PID right after, to
# check the series describe this very process. Taken at several moments
# (start-up, after the load, ...): CPU seconds are compared to 0.1 s, and a
# value truncated to whole seconds (a staircase CPU panel) cannot stay
# within 0.1 s of the real one at every reading.
proc_samples=0
proc_bad=0
: >"$TMP/proc.log"
proc_sample() {
  local moment=$1
  proc_samples=$((proc_samples + 1))
  # /proc is read immediately after the scrape so the readings barely differ.
  if ! c -f -o "$TMP/proc-metrics.txt" "$BASE/metrics" \
    || ! cp "/proc/$SYNQC_PID/stat" "$TMP/proc-stat.txt" 2>/dev/null \
    || ! ls "/proc/$SYNQC_PID/fd" >"$TMP/proc-fds.txt" 2>/dev/null; then
    proc_bad=$((proc_bad + 1))
    echo "$moment: could not scrape /metrics or read /proc/$SYNQC_PID" >>"$TMP/proc.log"
    return 0
  fi
  if ! python3 - "$moment" "$TMP" "$(getconf CLK_TCK)" "$(getconf PAGESIZE)" >>"$TMP/proc.log" 2>&1 <<'PY'; then
import sys
moment, tmp, hz, page = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
m = {}
for line in open(f"{tmp}/proc-metrics.txt"):
    if line.startswith("process_"):
        name, value = line.split()[:2]
        m[name] = float(value)
stat = open(f"{tmp}/proc-stat.txt").read().rsplit(")", 1)[1].split()
cpu = (int(stat[11]) + int(stat[12])) / hz   # utime + stime
start = int(stat[19]) / hz                   # starttime, ticks after boot
rss = int(stat[21]) * page
btime = next(float(l.split()[1]) for l in open("/proc/stat") if l.startswith("btime "))
fds = sum(1 for _ in open(f"{tmp}/proc-fds.txt"))
checks = [
    ("process_cpu_seconds_total", cpu, 0.1),
    ("process_start_time_seconds", btime + start, 1.0),
    ("process_resident_memory_bytes", rss, 0.25 * rss),
    ("process_open_fds", fds, 5),
]
out, bad = [], 0
for name, want, tol in checks:
    got = m.get(name)
    ok = got is not None and abs(got - want) <= tol
    bad += not ok
    out.append(f"{name} {got} vs {want:.2f}{'' if ok else ' <-- differs'}")
print(f"{moment}: " + "; ".join(out))
sys.exit(1 if bad else 0)
PY
    proc_bad=$((proc_bad + 1))
  fi
}

# --- synqc -------------------------------------------------------------------
# Isolate synqc from the host's settings: an installed
# /etc/synqc/synqc.toml or SYNQC_* variables (an API key would turn every
# request into a 401) are replaced by an empty config file and no SYNQC_*
# environment (SYNQC_BIN is ours, not a synqc setting).
clean_env=()
while IFS= read -r var; do clean_env+=(-u "$var"); done < <(compgen -e | grep '^SYNQC_' || true)
# ionq_cloud is bound to a well-behaved fake executor (python3 only), so
# the executor series and SynqcExecutorDown have something to show.
cat >"$TMP/synqc.toml" <<TOML
[executors.ionq_cloud]
command = ["$(command -v python3)", "$ROOT/tests/executors/good.py"]
TOML
obs_start "$TMP/synqc.log" env "${clean_env[@]}" \
  "$SYNQC_BIN" serve --config "$TMP/synqc.toml" \
  --listen "$INSTANCE" --metrics-listen "127.0.0.1:$MPORT" \
  --data-dir "$TMP/data"
SYNQC_PID=$OBS_PID
if wait_until 60 "$SYNQC_PID" c -f "$BASE/health/ready"; then
  pass "synqc serve ready on $INSTANCE"
else
  abort "synqc serve did not answer GET /health/ready within 60 s"
fi
proc_sample "start-up"

# Before any load: every series must already exist (zero values).
if c -f -o "$TMP/metrics-start.txt" "$BASE/metrics"; then
  pass "GET /metrics at start-up ($(wc -l <"$TMP/metrics-start.txt") lines)"
else
  fail "GET /metrics at start-up"
fi
echo "--- /metrics contract at start-up"
py_checks metrics "$TMP/metrics-start.txt"
if "$PROMTOOL" check metrics <"$TMP/metrics-start.txt" >"$TMP/out" 2>&1; then
  pass "promtool check metrics (start-up scrape)"
else
  fail "promtool check metrics (start-up scrape)"
  sed 's/^/       | /' "$TMP/out" | head -20
fi

# The appliance serves the shipped files, byte for byte (air-gapped labs
# fetch them from it).
for asset in grafana/synqc-dashboard.json grafana/README.md \
  grafana/provisioning/datasources/synqc.yml grafana/provisioning/dashboards/synqc.yml \
  prometheus/prometheus.yml prometheus/synqc-alerts.yml prometheus/synqc-alerts.test.yml; do
  if c -f -o "$TMP/asset" "$BASE/assets/$asset" && cmp -s "$TMP/asset" "$ROOT/assets/$asset"; then
    pass "GET /assets/$asset matches assets/$asset"
  else
    fail "GET /assets/$asset missing or different from assets/$asset"
  fi
done

# --- Prometheus --------------------------------------------------------------
mkdir -p "$TMP/prom"
cp "$RULES" "$TMP/prom/synqc-alerts.yml"
cat >"$TMP/prom/prometheus.yml" <<EOF
# Generated by tests/prometheus_e2e.sh: scrape every second so the test
# needs only a few seconds of history.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - synqc-alerts.yml
scrape_configs:
  - job_name: synqc
    static_configs:
      - targets: ['$INSTANCE']
EOF
obs_start "$TMP/prometheus.log" "$PROMETHEUS" --config.file="$TMP/prom/prometheus.yml" \
  --storage.tsdb.path="$TMP/prom/data" \
  --web.listen-address="127.0.0.1:$PPORT" \
  --log.level=warn
PROM_PID=$OBS_PID
if wait_until 60 "$PROM_PID" c -f "$PROM/-/ready"; then
  pass "prometheus ready on 127.0.0.1:$PPORT"
else
  abort "prometheus did not become ready within 60 s"
fi

# On this test's one Prometheus (obs_lib.sh's take its URL first).
e2e_value() { prom_value "$PROM" "$1"; }
e2e_true() { prom_true "$PROM" "$1"; }

if wait_until 30 "$PROM_PID" e2e_true "up{job=\"synqc\", instance=\"$INSTANCE\"} == 1"; then
  pass "prometheus scrapes synqc (up == 1)"
else
  abort "prometheus never scraped synqc successfully within 30 s"
fi

# --- load ----------------------------------------------------------------------
accepted=0
ids=()
for ((i = 0; i < RUNS; i++)); do
  code=$(c -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"preset":"hello_quantum_sim"}' "$BASE/runs" || true)
  id=$(sed -n 's/.*"id" *: *"\([0-9a-f-]\{36\}\)".*/\1/p' "$TMP/body" 2>/dev/null || true)
  if [[ $code == 202 && -n $id ]]; then
    accepted=$((accepted + 1))
    ids+=("$id")
  fi
done
if [[ $accepted -eq $RUNS ]]; then
  pass "POST /runs hello_quantum_sim: $accepted/$RUNS answered 202 with an id"
else
  fail "POST /runs hello_quantum_sim: only $accepted/$RUNS answered 202 with an id"
fi
proc_sample "after the submits"

# One health run, so the calibration gauges and the dashboard's
# Calibration row have a target with values.
code=$(c -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"preset":"health","mode":"calibrate","seed":5}' "$BASE/runs" || true)
if [[ $code == 202 ]]; then
  accepted=$((accepted + 1))
  pass "POST /runs health: 202"
else
  fail "POST /runs health: answered $code"
fi

# One schedule (hourly: it does not fire during the test), so the
# schedule series and SynqcScheduleStale have something to evaluate.
code=$(c -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"name":"hourly-health","request":{"preset":"health"},"cron":"0 * * * *"}' "$BASE/schedules" || true)
if [[ $code == 201 ]]; then
  pass "POST /schedules hourly-health: 201"
else
  fail "POST /schedules hourly-health: answered $code: $(head -c 300 "$TMP/body")"
fi

bad=0
for body in '{"preset":"nope"}' '{"preset":"nope"}' '{"preset":"hello_quantum_sim","shot_budget":0}' '{"preset":'; do
  code=$(c -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$body" "$BASE/runs" || true)
  [[ $code == 422 ]] || bad=$((bad + 1))
done
if [[ $bad -eq 0 ]]; then pass "invalid POST /runs answered 422 (4 requests)"; else fail "invalid POST /runs: $bad of 4 not answered 422"; fi

bad=0
for id in "${ids[@]:0:10}"; do
  code=$(c -o /dev/null -w '%{http_code}' "$BASE/runs/$id" || true)
  [[ $code == 200 ]] || bad=$((bad + 1))
done
code=$(c -o /dev/null -w '%{http_code}' "$BASE/runs/00000000-0000-4000-8000-000000000000" || true)
[[ $code == 404 ]] || bad=$((bad + 1))
if [[ $bad -eq 0 && ${#ids[@]} -gt 0 ]]; then
  pass "GET /runs/{id}: 200 for known runs, 404 for an unknown id"
else
  fail "GET /runs/{id}: $bad unexpected answers"
fi

# Wait for the queue to drain, per the health document.
drained() {
  c -f "$BASE/health" | python3 -c '
import json, sys
q = json.load(sys.stdin)["queue"]
sys.exit(0 if q["queued"] == 0 and q["running"] == 0 else 1)'
}
if wait_until 120 "$SYNQC_PID" drained; then
  pass "queue drained (GET /health: 0 queued, 0 running)"
else
  fail "queue did not drain within 120 s"
fi
proc_sample "queue drained"

# Wait until Prometheus has seen the drained state and has enough history
# for rate() (several scrapes after the load).
finished_expr="sum(synqc_queue_depth{instance=\"$INSTANCE\", status=~\"succeeded|failed|cancelled\"}) >= $accepted"
scrapes_expr="count_over_time(up{instance=\"$INSTANCE\"}[5m]) >= 10"
if wait_until 60 "$PROM_PID" e2e_true "$finished_expr" && wait_until 30 "$PROM_PID" e2e_true "$scrapes_expr"; then
  pass "prometheus has scraped the finished runs ($(e2e_value "count_over_time(up{instance=\"$INSTANCE\"}[5m])") scrapes)"
else
  fail "prometheus did not see $accepted finished runs within 60 s"
fi

# After the load: labels must still be bounded (ids were in the paths).
if c -f -o "$TMP/metrics-after.txt" "$BASE/metrics"; then
  echo "--- /metrics contract after the load"
  py_checks metrics "$TMP/metrics-after.txt"
  if "$PROMTOOL" check metrics <"$TMP/metrics-after.txt" >"$TMP/out" 2>&1; then
    pass "promtool check metrics (after the load)"
  else
    fail "promtool check metrics (after the load)"
    sed 's/^/       | /' "$TMP/out" | head -20
  fi
else
  fail "GET /metrics after the load"
fi

# metrics_listen serves the same registry: the same run counts as the API
# listener (not a second registry that saw no runs).
submitted_sum() {
  awk '/^synqc_runs_submitted_total[{ ]/ { s += $NF } END { printf "%d\n", s }'
}
api_sum=$(c -f "$BASE/metrics" | submitted_sum || true)
mlisten_sum=$(c -f "http://127.0.0.1:$MPORT/metrics" | submitted_sum || true)
if [[ -n $mlisten_sum && $mlisten_sum == "$api_sum" && $api_sum -ge $accepted && $accepted -gt 0 ]]; then
  pass "metrics_listen 127.0.0.1:$MPORT serves the same registry ($mlisten_sum runs submitted)"
else
  fail "metrics_listen: synqc_runs_submitted_total sums differ (api '$api_sum', metrics listener '$mlisten_sum', accepted $accepted)"
fi

proc_sample "before the queries"
# process_* checked against the readings taken at several moments.
if [[ $proc_samples -gt 0 && $proc_bad -eq 0 ]]; then
  pass "process_* series match /proc/$SYNQC_PID ($proc_samples readings)"
else
  fail "process_* series differ from /proc/$SYNQC_PID in $proc_bad of $proc_samples readings"
fi
sed 's/^/       | /' "$TMP/proc.log"

# --- every dashboard and alert expression --------------------------------------
echo "--- dashboard and alert expressions through $PROM/api/v1/query"
py_checks query --prom "$PROM" --dashboard "$DASHBOARD" --instance "$INSTANCE" \
  --rate-interval 1m --timeout 60 \
  --require "Queue depth by status" \
  --require "Run outcomes per minute" \
  --require "HTTP requests/s" \
  --require "Fidelity trend by preset and target" \
  --require "T1 by target" \
  --require "Error per Clifford by target" \
  --require "Last calibrated age"

finish
