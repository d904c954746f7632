#!/usr/bin/env bash
# Alert delivery end to end: synqc appliances on loopback, Debian's
# Prometheus evaluating the shipped alert rules (with test-sized `for:` and
# thresholds, see derive_rules), Debian's Alertmanager routing every alert
# to a local webhook receiver that appends each POSTed body to a file. One
# appliance per row of FAULTS runs at the same time as the others:
#
#   healthy   a short `synqc loadtest`: delivers no alert at all;
#   backlog   `workers = 0` and runs submitted, none executed: delivers
#             SynqcNoActiveWorkers and SynqcQueueBacklog;
#   executor  a target bound to a command that exits at once (/bin/false):
#             delivers SynqcExecutorDown with its `target` label;
#   paused    sim_local paused: delivers SynqcQueuePaused;
#   stale     a schedule whose runs never execute: delivers
#             SynqcScheduleStale (and the backlog alerts of its runs);
#   drift     a health run, then the same appliance restarted with a lower
#             T1 and a second health run: delivers SynqcCalibrationDrift
#             with `target` and `quantity` labels.
#
# Every delivered alert must carry alertname, job, the appliance's instance,
# the rule's severity and the row's extra labels, and fully rendered
# summary, description and runbook annotations; an appliance gets exactly
# the alerts of its row, no other.
#
# Usage: SYNQC_BIN=target/debug/synqc tests/alert_delivery.sh
# Env:   PROMETHEUS, ALERTMANAGER (binaries), KEEP_TMP=1 (keep logs).
# Prints one line per check and `alert-delivery: N passed, M failed`.
# Loopback only; every wait is bounded; every process it starts is stopped.
set -euo pipefail

NAME=alert-delivery
SYNQC_BIN=${SYNQC_BIN:-target/debug/synqc}
ALERTMANAGER=${ALERTMANAGER:-prometheus-alertmanager}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/synqc-alerts.XXXXXX")
# shellcheck source=tests/obs_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/obs_lib.sh"
trap obs_cleanup EXIT
trap 'exit 130' INT TERM
RULES=$ROOT/assets/prometheus/synqc-alerts.yml

# --- the induced faults ------------------------------------------------------------
# One row per appliance: name, the alerts it must deliver ("-": none), and
# labels each of them must carry besides alertname/job/instance/severity
# ("-": none). A row NAME needs config_NAME DIR (writes DIR/synqc.toml) and
# induce_NAME BASE_URL (runs once every appliance is up).
FAULTS=(
  "healthy   -                                      -"
  "backlog   SynqcNoActiveWorkers,SynqcQueueBacklog -"
  "executor  SynqcExecutorDown                      target=ionq_cloud"
  "paused    SynqcQueuePaused                       target=sim_local"
  "stale     SynqcScheduleStale,SynqcNoActiveWorkers,SynqcQueueBacklog -"
  "drift     SynqcCalibrationDrift                  target=sim_local,quantity=T1"
)
# Test-sized rules: every `for:` becomes RULE_FOR, and these thresholds
# replace the number an alert's expr compares against.
RULE_FOR=10s
declare -A THRESHOLDS=(
  [SynqcQueueBacklog]=3 # the backlog row queues BACKLOG_RUNS runs
)
BACKLOG_RUNS=5

config_healthy() { : >"$1/synqc.toml"; }
induce_healthy() {
  "$SYNQC_BIN" loadtest --url "$1" --runs 20 --concurrency 4 --timeout-seconds 60 \
    >"$TMP/loadtest.log" 2>&1
}
config_backlog() { echo 'workers = 0' >"$1/synqc.toml"; }
induce_backlog() { [[ $(submit "$1" "$BACKLOG_RUNS") == "$BACKLOG_RUNS" ]]; }
config_executor() {
  cat >"$1/synqc.toml" <<'TOML'
[executors.ionq_cloud]
command = ["/bin/false"]
TOML
}
induce_executor() { :; }
# A schedule whose runs never execute (no workers) goes stale after two
# of its (2 s) periods; the runs it leaves queued also raise the backlog
# alerts (the stale alert's own labels are checked in the delivery).
config_stale() { echo 'workers = 0' >"$1/synqc.toml"; }
induce_stale() {
  curl -sS --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code}' -X POST "$1/schedules" \
    -H 'content-type: application/json' \
    -d '{"name": "hourly-health", "request": {"preset": "hello_quantum_sim"}, "every_seconds": 2}' \
    | grep -qx 201
}
# A pause held past the (test-sized) `for:`; the workers idle, nothing else fires.
config_paused() { : >"$1/synqc.toml"; }
induce_paused() {
  curl -sS --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code}' -X POST "$1/queue/pause" \
    -H 'content-type: application/json' -d '{"hardware_target": "sim_local", "reason": "alert delivery test"}' \
    | grep -qx 200
}
# A qubit that drifts, for real: a health run measures sim_local's T1 with
# its built-in profile and Prometheus scrapes it; then the appliance is
# restarted on the same data dir and port (so the series keeps its
# instance) with sim_local's T1 lowered, and a second health run measures
# the lower T1 against the first one's 24 h maximum. A calibration
# write-back cannot do this: it only takes a run on the same target, which
# measured the T1 already in force. T2 stays at the built-in value, which a
# T1 of DRIFT_T1_US still allows (T2 <= 2 T1), so only the T1 ratio drops.
# The restart is far shorter than SynqcDown's test-sized `for:`.
DRIFT_T1_US=50.0
config_drift() { : >"$1/synqc.toml"; }
induce_drift() {
  local instance=${1#http://} row=drift
  health_run "$1" || return 1
  wait_until 30 "$PROM_PID" prom_true "$PROM" \
    "synqc_calibration_t1_seconds{instance=\"$instance\",target=\"sim_local\"} > 0" || return 1
  stop "${APPLIANCE_PID[$row]}"
  printf '[noise.sim_local]\nt1_us = %s\n' "$DRIFT_T1_US" >"$TMP/$row/synqc.toml"
  start_synqc "$TMP/$row" "$instance" || return 1
  APPLIANCE_PID[$row]=$OBS_PID
  health_run "$1"
}
# health_run BASE: one health run on sim_local (fixed seed) that must
# succeed within 60 s.
health_run() {
  local id status i
  id=$(c -H 'Content-Type: application/json' -d '{"preset":"health","mode":"calibrate","seed":1}' "$1/runs" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])') || return 1
  for ((i = 0; i < 120; i++)); do
    status=$(c "$1/runs/$id" | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])') || return 1
    case $status in
      succeeded) return 0 ;;
      failed | cancelled) return 1 ;;
    esac
    sleep 0.5
  done
  return 1
}

apt_install prometheus prometheus-alertmanager
require "$SYNQC_BIN" "$PROMETHEUS" "$ALERTMANAGER" curl python3

# derive_rules OUT: the shipped rules with RULE_FOR and THRESHOLDS applied,
# line by line on the rule file's fixed layout (one-line exprs), so every
# alert added to the file is delivered here too.
derive_rules() {
  local spec=""
  for name in "${!THRESHOLDS[@]}"; do spec+="$name=${THRESHOLDS[$name]} "; done
  python3 - "$RULES" "$1" "$RULE_FOR" "$spec" <<'PY'
import re, sys
src, out, for_, spec = sys.argv[1:5]
thresholds = dict(kv.split("=", 1) for kv in spec.split())
alert, lines, done = None, [], set()
for line in open(src, encoding="utf-8"):
    m = re.match(r"\s*- alert: (\S+)\s*$", line)
    if m:
        alert = m.group(1)
    line = re.sub(r"^(\s+for: ).*$", r"\g<1>" + for_, line)
    if alert in thresholds and re.match(r"\s+expr: ", line):
        new = re.sub(r"(\s(?:==|!=|>=|<=|>|<)\s*)-?[\d.]+(\s*)$", r"\g<1>" + thresholds[alert] + r"\g<2>", line)
        if new != line:
            done.add(alert)
        line = new
    lines.append(line)
missing = set(thresholds) - done
if missing:
    sys.exit(f"no threshold to replace in the expr of {sorted(missing)}")
open(out, "w", encoding="utf-8").writelines(lines)
PY
}

# severity ALERT: the severity label of ALERT in the shipped rule file.
severity() {
  awk -v name="$1" '$0 ~ "- alert: " name " *$" { on = 1 } on && /severity:/ { print $2; exit }' "$RULES"
}

read -r PPORT AMPORT HOOKPORT < <(free_ports 3)
PROM=http://127.0.0.1:$PPORT

# --- webhook receiver ------------------------------------------------------------------
cat >"$TMP/receiver.py" <<'PY'
import http.server, json, sys

port, out = int(sys.argv[1]), sys.argv[2]

class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(json.loads(body)) + "\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", port), Hook).serve_forever()
PY
: >"$TMP/delivered.jsonl"
obs_start "$TMP/receiver.log" python3 "$TMP/receiver.py" "$HOOKPORT" "$TMP/delivered.jsonl"
RECEIVER_PID=$OBS_PID

# --- appliances, one per fault -----------------------------------------------------------
declare -A INSTANCE=() EXPECT=() LABELS=() APPLIANCE_PID=()
ROWS=()
read -r -a ports < <(free_ports "${#FAULTS[@]}")
for i in "${!FAULTS[@]}"; do
  read -r row expect labels <<<"${FAULTS[i]}"
  ROWS+=("$row")
  INSTANCE[$row]=127.0.0.1:${ports[i]}
  EXPECT[$row]=$expect
  LABELS[$row]=$labels
  mkdir -p "$TMP/$row"
  "config_$row" "$TMP/$row"
  if start_synqc "$TMP/$row" "${INSTANCE[$row]}"; then
    APPLIANCE_PID[$row]=$OBS_PID
    pass "appliance '$row' ready on ${INSTANCE[$row]}"
  else
    abort "appliance '$row' did not answer GET /health/ready within 60 s"
  fi
done

# --- Alertmanager and Prometheus ----------------------------------------------------------
mkdir -p "$TMP/am" "$TMP/prom"
cat >"$TMP/am/alertmanager.yml" <<EOF
route:
  receiver: webhook
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: webhook
    webhook_configs:
      - url: http://127.0.0.1:$HOOKPORT/
        send_resolved: false
EOF
# --cluster.listen-address= : a single Alertmanager, no gossip port.
obs_start "$TMP/am/alertmanager.log" "$ALERTMANAGER" --config.file="$TMP/am/alertmanager.yml" \
  --storage.path="$TMP/am/data" --web.listen-address="127.0.0.1:$AMPORT" --cluster.listen-address=
if wait_until 60 "$OBS_PID" c -f "http://127.0.0.1:$AMPORT/-/ready"; then
  pass "Alertmanager ready on 127.0.0.1:$AMPORT, routing to the webhook on 127.0.0.1:$HOOKPORT"
else
  abort "Alertmanager did not become ready within 60 s"
fi

if derive_rules "$TMP/prom/synqc-alerts.yml" 2>"$TMP/derive.log" \
  && promtool check rules "$TMP/prom/synqc-alerts.yml" >"$TMP/derive.log" 2>&1; then
  pass "test-sized rules derived from synqc-alerts.yml (for: $RULE_FOR; thresholds: $(for k in "${!THRESHOLDS[@]}"; do printf '%s>%s ' "$k" "${THRESHOLDS[$k]}"; done))"
else
  sed 's/^/       | /' "$TMP/derive.log"
  abort "could not derive valid test-sized rules from synqc-alerts.yml"
fi
targets=$(for row in "${ROWS[@]}"; do printf "'%s', " "${INSTANCE[$row]}"; done)
cat >"$TMP/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - synqc-alerts.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$AMPORT']
scrape_configs:
  - job_name: synqc
    static_configs:
      - targets: [${targets%, }]
EOF
start_prometheus "$TMP/prom" "$PPORT" && pass "Prometheus ready on 127.0.0.1:$PPORT" \
  || abort "Prometheus did not become ready within 60 s"
PROM_PID=$OBS_PID
if wait_until 30 "$PROM_PID" prom_true "$PROM" "count(up{job=\"synqc\"} == 1) == ${#ROWS[@]}"; then
  pass "Prometheus scrapes the ${#ROWS[@]} appliances"
else
  abort "Prometheus did not scrape the ${#ROWS[@]} appliances within 30 s"
fi

# --- induce the faults -----------------------------------------------------------------
for row in "${ROWS[@]}"; do
  if "induce_$row" "http://${INSTANCE[$row]}"; then
    pass "induced '$row' on ${INSTANCE[$row]}"
  else
    fail "could not induce '$row' on ${INSTANCE[$row]}"
    [[ $row != healthy ]] || sed 's/^/       | /' "$TMP/loadtest.log" | tail -15
  fi
done
induced_at=$SECONDS

# delivered ROW: succeeds once every alert the row expects has reached the
# webhook for its instance.
delivered_names() {
  python3 - "$TMP/delivered.jsonl" "$1" <<'PY'
import json, sys
names = set()
for line in open(sys.argv[1], encoding="utf-8"):
    for a in json.loads(line).get("alerts", []):
        if a["labels"].get("instance") == sys.argv[2]:
            names.add(a["labels"].get("alertname"))
print(",".join(sorted(names)))
PY
}
all_delivered() {
  local row want
  for row in "${ROWS[@]}"; do
    [[ ${EXPECT[$row]} != - ]] || continue
    want=$(tr ',' '\n' <<<"${EXPECT[$row]}" | sort | paste -sd,)
    [[ $(delivered_names "${INSTANCE[$row]}") == *"$want"* ]] || return 1
  done
}
if wait_until 120 "$RECEIVER_PID" all_delivered; then
  pass "every expected alert reached the webhook $((SECONDS - induced_at)) s after the faults"
else
  fail "not every expected alert reached the webhook within 120 s"
fi
# The healthy appliance must stay quiet for longer than any `for:`.
quiet_until=$((induced_at + ${RULE_FOR%s} * 2 + 5))
while ((SECONDS < quiet_until)); do sleep 1; done

# --- what was delivered ----------------------------------------------------------------------
for row in "${ROWS[@]}"; do
  spec=""
  if [[ ${EXPECT[$row]} != - ]]; then
    for name in ${EXPECT[$row]//,/ }; do spec+="$name=$(severity "$name") "; done
  fi
  python3 - "$TMP/delivered.jsonl" "$row" "${INSTANCE[$row]}" "$spec" "${LABELS[$row]}" <<'PY' || true
import json, sys
path, row, instance, spec, extra = sys.argv[1:6]
want = dict(kv.split("=", 1) for kv in spec.split())          # alertname -> severity
labels_want = dict(kv.split("=", 1) for kv in extra.split(",") if "=" in kv)
got = {}
for line in open(path, encoding="utf-8"):
    body = json.loads(line)
    for a in body.get("alerts", []):
        if a["labels"].get("instance") == instance:
            got.setdefault(a["labels"].get("alertname"), a)
def say(ok, what):
    print(("ok     " if ok else "FAIL   ") + what)
if not want:
    say(not got, f"'{row}' {instance}: no alert delivered" + (f" (got {sorted(got)})" if got else ""))
for name, sev in sorted(want.items()):
    a = got.get(name)
    if a is None:
        say(False, f"'{row}' {instance}: {name} not delivered")
        continue
    problems = []
    l, ann = a["labels"], a.get("annotations", {})
    for k, v in {"job": "synqc", "instance": instance, "severity": sev, **labels_want}.items():
        if l.get(k) != v:
            problems.append(f"label {k}={l.get(k)!r}, want {v!r}")
    for k in ("summary", "description", "runbook"):
        text = ann.get(k, "")
        if not text.strip() or "{{" in text or "<no value>" in text:
            problems.append(f"annotation {k} missing or not rendered: {text!r}")
    if instance not in ann.get("summary", ""):
        problems.append("summary does not name the instance")
    if a.get("status") != "firing":
        problems.append(f"status {a.get('status')!r}")
    say(not problems, f"'{row}' {instance}: {name} delivered" +
        (": " + "; ".join(problems) if problems else
         f" ({', '.join(f'{k}={l[k]}' for k in sorted(l) if k not in ('alertname', 'instance'))}; runbook: {ann['runbook'][:60]}...)"))
extra_alerts = sorted(set(got) - set(want))
if want:
    say(not extra_alerts, f"'{row}' {instance}: no other alert" + (f" (also got {extra_alerts})" if extra_alerts else ""))
PY
done > "$TMP/verdicts.txt"
while IFS= read -r line; do
  case $line in
    "ok     "*) pass "${line#ok     }" ;;
    "FAIL   "*) fail "${line#FAIL   }" ;;
    *) echo "$line" ;;
  esac
done <"$TMP/verdicts.txt"

finish
