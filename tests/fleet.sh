#!/usr/bin/env bash
# A lab with two appliances, watched the way labs watch several: two synqc
# processes on loopback (free ports, temp data dirs), one Prometheus
# scraping both (job "synqc", one instance each) and a second Prometheus
# federating the first through /federate with honor_labels: true, the shipped
# alert rules loaded on the federating one. After a few runs on each
# appliance, every dashboard panel query (the instance variable set to each
# appliance, to the multi-select of both and to "All") and every alert
# expression is evaluated on the federating Prometheus
# (tests/dashboard_queries.py fleet): per-instance queries must return the
# series of exactly the selected appliances, and each alert must keep the
# instance label and watch series of both.
#
# Usage: SYNQC_BIN=target/debug/synqc tests/fleet.sh
# Env:   PROMETHEUS (binary), FLEET_RUNS (runs per appliance, default 5),
#        KEEP_TMP=1 (keep logs and data).
# Prints one line per check and `fleet: N passed, M failed`; exits non-zero
# if anything failed. Loopback only; every wait is bounded; every process
# it starts is stopped on exit.
set -euo pipefail

NAME=fleet
SYNQC_BIN=${SYNQC_BIN:-target/debug/synqc}
RUNS=${FLEET_RUNS:-5}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/synqc-fleet.XXXXXX")
# shellcheck source=tests/obs_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/obs_lib.sh"
trap obs_cleanup EXIT
trap 'exit 130' INT TERM
DASHBOARD=$ROOT/assets/grafana/synqc-dashboard.json

apt_install prometheus
require "$SYNQC_BIN" "$PROMETHEUS" curl python3

read -r P1 P2 PSITE PCENTRAL < <(free_ports 4)
INSTANCES=("127.0.0.1:$P1" "127.0.0.1:$P2")
SITE=http://127.0.0.1:$PSITE
CENTRAL=http://127.0.0.1:$PCENTRAL

# --- two appliances ------------------------------------------------------------
# ionq_cloud is bound to a well-behaved fake executor on both, so the
# executor series (and SynqcExecutorDown's expression) exist per appliance.
for i in 0 1; do
  mkdir -p "$TMP/synqc$i"
  cat >"$TMP/synqc$i/synqc.toml" <<TOML
[executors.ionq_cloud]
command = ["$(command -v python3)", "$ROOT/tests/executors/good.py"]
TOML
  if start_synqc "$TMP/synqc$i" "${INSTANCES[i]}" --workers 1; then
    pass "appliance $((i + 1)) ready on ${INSTANCES[i]}"
  else
    abort "appliance $((i + 1)) did not answer GET /health/ready within 60 s"
  fi
done

# --- the site Prometheus scrapes both; the central one federates it --------------
mkdir -p "$TMP/site" "$TMP/central"
cat >"$TMP/site/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: synqc
    static_configs:
      - targets: ['${INSTANCES[0]}', '${INSTANCES[1]}']
EOF
cp "$ROOT/assets/prometheus/synqc-alerts.yml" "$TMP/central/"
cat >"$TMP/central/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - synqc-alerts.yml
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['{job="synqc"}']
    static_configs:
      - targets: ['127.0.0.1:$PSITE']
EOF
start_prometheus "$TMP/site" "$PSITE" && pass "site Prometheus ready on 127.0.0.1:$PSITE" \
  || abort "site Prometheus did not become ready within 60 s"
SITE_PID=$OBS_PID
start_prometheus "$TMP/central" "$PCENTRAL" && pass "central Prometheus ready on 127.0.0.1:$PCENTRAL" \
  || abort "central Prometheus did not become ready within 60 s"
CENTRAL_PID=$OBS_PID

if wait_until 30 "$SITE_PID" prom_true "$SITE" 'count(up{job="synqc"} == 1) == 2'; then
  pass "site Prometheus scrapes both appliances (up == 1)"
else
  abort "site Prometheus did not scrape both appliances within 30 s"
fi

# --- load on each ------------------------------------------------------------------
# Requests sent to each appliance after its runs, for series that exist
# only once an object does (every alert's series must exist per appliance):
# one line per request, "METHOD PATH JSON-BODY".
SEED=(
  'POST /runs {"preset":"health","mode":"calibrate","seed":1}'
  'POST /schedules {"name":"hourly-health","request":{"preset":"health"},"cron":"0 * * * *"}'
)
# Runs among them, which the wait below counts with the load's.
SEED_RUNS=0
for req in "${SEED[@]}"; do [[ $req == "POST /runs "* ]] && SEED_RUNS=$((SEED_RUNS + 1)); done
for i in 0 1; do
  base=http://${INSTANCES[i]}
  ok=$(submit "$base" "$RUNS")
  # One refused submit per appliance, so the HTTP error panels have data.
  code=$(c -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{"preset":"nope"}' "$base/runs" || true)
  if [[ $ok == "$RUNS" && $code == 422 ]]; then
    pass "appliance $((i + 1)): $RUNS runs answered 202, an unknown preset 422"
  else
    fail "appliance $((i + 1)): $ok/$RUNS runs answered 202, unknown preset answered $code"
  fi
  for req in "${SEED[@]}"; do
    read -r method path body <<<"$req"
    code=$(c -o "$TMP/seed.out" -w '%{http_code}' -X "$method" -H 'Content-Type: application/json' \
      ${body:+-d "$body"} "$base$path" || true)
    if [[ $code == 2?? ]]; then
      pass "appliance $((i + 1)): $method $path answered $code"
    else
      fail "appliance $((i + 1)): $method $path answered $code: $(head -c 300 "$TMP/seed.out")"
    fi
  done
done

# finished INSTANCE: the central Prometheus has every run of INSTANCE done.
finished() {
  prom_true "$CENTRAL" "sum(synqc_queue_depth{job=\"synqc\", instance=\"$1\", status=~\"succeeded|failed|cancelled\"}) >= $((RUNS + SEED_RUNS))"
}
for i in 0 1; do
  if wait_until 120 "$CENTRAL_PID" finished "${INSTANCES[i]}"; then
    pass "central Prometheus sees the $RUNS finished runs of ${INSTANCES[i]}"
  else
    fail "central Prometheus did not see $RUNS finished runs of ${INSTANCES[i]} within 120 s"
  fi
done
# Enough federated history for rate() over the queries' window.
if wait_until 60 "$CENTRAL_PID" prom_true "$CENTRAL" 'count(count_over_time(up{job="synqc"}[1m]) >= 10) == 2'; then
  pass "central Prometheus holds 10+ federated samples of each appliance"
else
  fail "central Prometheus did not collect 10 federated samples of each appliance within 60 s"
fi

# --- federation kept the labels --------------------------------------------------------
# honor_labels: the federated series keep job="synqc" and their instance;
# without it they would be relabelled job="federate" with the original
# labels moved to exported_job / exported_instance.
got=$(c -G "$CENTRAL/api/v1/query" --data-urlencode 'query=count by (job, instance) (synqc_build_info)' | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(" ".join(sorted("%s/%s" % (s["metric"].get("job"), s["metric"].get("instance")) for s in r)))' || true)
want=$(printf 'synqc/%s\n' "${INSTANCES[@]}" | sort | tr '\n' ' ' | sed 's/ $//')
if [[ $got == "$want" ]]; then
  pass "federated synqc_build_info keeps job and instance: $got"
else
  fail "federated synqc_build_info labels: got '$got', want '$want'"
fi
n=$(prom_value "$CENTRAL" 'count({exported_job!=""} or {exported_instance!=""})')
if [[ -z $n ]]; then
  pass "no federated series carries exported_job or exported_instance"
else
  fail "$n federated series carry exported_job/exported_instance (honor_labels lost?)"
fi

# --- every panel and alert per instance on the central Prometheus ----------------------
echo "--- dashboard and alert expressions per appliance on $CENTRAL"
py_checks fleet --prom "$CENTRAL" --dashboard "$DASHBOARD" \
  --instance "${INSTANCES[0]}" --instance "${INSTANCES[1]}" \
  --rate-interval 1m --timeout 60

finish
