#!/usr/bin/env bash
# Static checks of the observability assets (no synqc binary needed):
#   - promtool check config on the scrape example (copied with its rule file
#     into a temp dir, so the relative rule path resolves as installed);
#   - promtool check rules and promtool test rules;
#   - the rule file holds exactly the alerts of docs/metrics.md, each with a
#     severity and summary/description/runbook annotations;
#   - mutation checks: each alert's expr is broken in two ways (never true;
#     threshold removed) and `promtool test rules` must then FAIL, which
#     proves every alert has a firing test and a quiet test that bite;
#   - tests/dashboard_queries.py lint on the Grafana dashboard.
# Prints one line per check and `prometheus-rules: N passed, M failed`;
# exits non-zero on any failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROM_DIR=$ROOT/assets/prometheus
RULES=$PROM_DIR/synqc-alerts.yml
RULE_TESTS=$PROM_DIR/synqc-alerts.test.yml
PROMTOOL=${PROMTOOL:-promtool}

# Alerts and severities fixed by docs/metrics.md; "-" = severity left to us
# (must still be one of critical, warning, info).
declare -A EXPECTED=(
  [SynqcDown]=critical
  [SynqcStoreDown]=critical
  [SynqcQueueBacklog]=-
  [SynqcOldestRunWaiting]=-
  [SynqcExpiredLeases]=critical
  [SynqcNoActiveWorkers]=critical
  [SynqcRunFailures]=warning
  [SynqcHttpLatencyHigh]=-
  [SynqcBudgetKeyChurnSpike]=-
  [SynqcBudgetRejections]=info
  [SynqcExecutorDown]=warning
  [SynqcQueuePaused]=warning
  [SynqcCalibrationDrift]=warning
  [SynqcScheduleStale]=warning
)

if ! command -v "$PROMTOOL" >/dev/null 2>&1; then
  echo "prometheus-rules: promtool not found (apt-get install prometheus)" >&2
  echo "prometheus-rules: 0 passed, 1 failed"
  exit 1
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok     $*"; }
fail() { failed=$((failed + 1)); echo "FAIL   $*"; }

# run NAME CMD...: a check that must exit 0; shows its output on failure.
run() {
  local name=$1
  shift
  if "$@" >"$TMP/out" 2>&1; then
    pass "$name"
  else
    fail "$name"
    sed 's/^/       | /' "$TMP/out"
  fi
}

# --- promtool ---------------------------------------------------------------
mkdir -p "$TMP/config"
cp "$PROM_DIR/prometheus.yml" "$RULES" "$TMP/config/"
run "promtool check config prometheus.yml" "$PROMTOOL" check config "$TMP/config/prometheus.yml"
# check config succeeds with zero rule files too: insist the rules load.
if grep -q '^ *- synqc-alerts.yml *$' "$PROM_DIR/prometheus.yml" \
  && grep -q 'SUCCESS: 1 rule files found' "$TMP/out"; then
  pass "prometheus.yml loads synqc-alerts.yml by relative path"
else
  fail "prometheus.yml loads synqc-alerts.yml by relative path"
fi
if grep -q 'job_name: synqc$' "$PROM_DIR/prometheus.yml" \
  && grep -q 'scrape_interval: 5s' "$PROM_DIR/prometheus.yml" \
  && grep -q -- '- 127.0.0.1:8001' "$PROM_DIR/prometheus.yml"; then
  pass "prometheus.yml: job synqc, 5s interval, 127.0.0.1:8001"
else
  fail "prometheus.yml: job synqc, 5s interval, 127.0.0.1:8001"
fi

run "promtool check rules synqc-alerts.yml" "$PROMTOOL" check rules "$RULES"
# promtool resolves rule_files relative to the test file: run from its dir.
test_rules() { (cd "$PROM_DIR" && "$PROMTOOL" test rules "$(basename "$RULE_TESTS")"); }
run "promtool test rules synqc-alerts.test.yml" test_rules

# --- rule file content ------------------------------------------------------
# The rule file is YAML written in one fixed layout (see its header); the
# python below reads that layout with the standard library only.
python3 - "$RULES" >"$TMP/alerts.txt" <<'PY'
import re, sys
alert = None
fields = {}
def flush():
    if alert:
        # \x1f separates fields: not whitespace, so `read` keeps empty ones.
        annots = ",".join(k for k in ("summary", "description", "runbook") if fields.get(k, "").strip('" '))
        print("\x1f".join([alert, fields.get("severity", ""), fields.get("expr", ""), annots]))
for line in open(sys.argv[1], encoding="utf-8"):
    m = re.match(r"\s*- alert: (\S+)\s*$", line)
    if m:
        flush()
        alert, fields = m.group(1), {}
        continue
    m = re.match(r"\s+(severity|summary|description|runbook|expr): (.*)$", line)
    if m and alert:
        fields[m.group(1)] = m.group(2).strip()
flush()
PY

declare -A SEEN=()
while IFS=$'\x1f' read -r name severity expr annots; do
  SEEN[$name]=1
  problems=""
  if [[ -z ${EXPECTED[$name]+x} ]]; then
    problems+=" not an alert of docs/metrics.md;"
  elif [[ ${EXPECTED[$name]} != - && $severity != "${EXPECTED[$name]}" ]]; then
    problems+=" severity '$severity', docs/metrics.md says '${EXPECTED[$name]}';"
  fi
  [[ $severity =~ ^(critical|warning|info)$ ]] || problems+=" severity '$severity' not critical|warning|info;"
  [[ -n $expr ]] || problems+=" no single-line expr;"
  [[ $annots == *summary* && $annots == *description* && $annots == *runbook* ]] \
    || problems+=" needs summary, description and runbook annotations;"
  [[ $name == SynqcDown || $expr == *'job="synqc"'* ]] || problems+=" expr does not select job=\"synqc\";"
  if [[ -z $problems ]]; then pass "alert $name ($severity)"; else fail "alert $name:$problems"; fi
done <"$TMP/alerts.txt"
for name in "${!EXPECTED[@]}"; do
  [[ -n ${SEEN[$name]+x} ]] || fail "alert $name (docs/metrics.md) missing from synqc-alerts.yml"
done

# --- mutation checks ----------------------------------------------------------
# mutate NAME MODE: copy of the rules with NAME's expr replaced.
#   never:       expr that is never true -> the "fires" test must break;
#   unthreshold: trailing comparison removed, so the alert fires on any
#                value of the series -> the "quiet" test must break.
mutate() {
  awk -v name="$1" -v mode="$2" '
    $0 ~ "^ *- alert: " name " *$" { inblock = 1 }
    inblock && /^ *expr: / {
      if (mode == "never") {
        sub(/expr: .*/, "expr: vector(1) == 0")
      } else {
        sub(/ (==|!=|>=|<=|>|<) -?[0-9.]+ *$/, "")
      }
      inblock = 0
    }
    { print }
  ' "$RULES"
}

# caught_by NAME MODE <promtool-output: did the right kind of test fail?
# promtool prints "alertname: NAME, time: T," then "exp:[...]" then "got:[...]".
# A "never" mutant must break a test expecting the alert (got:[]); an
# "unthreshold" mutant must break a test expecting silence (exp:[]).
declare -A want=([never]=firing [unthreshold]=quiet)
caught_by() {
  awk -v name="$1" -v mode="$2" '
    /alertname: / { cur = ($0 ~ "alertname: " name ",") }
    cur && mode == "never" && /got:\[\]/ { found = 1 }
    cur && mode == "unthreshold" && /exp:\[\]/ { found = 1 }
    END { exit !found }
  '
}

mkdir -p "$TMP/mut"
cp "$RULE_TESTS" "$TMP/mut/"
for name in $(printf '%s\n' "${!SEEN[@]}" | sort); do
  for mode in never unthreshold; do
    mutate "$name" "$mode" >"$TMP/mut/synqc-alerts.yml"
    if cmp -s "$RULES" "$TMP/mut/synqc-alerts.yml"; then
      fail "mutant $name/$mode: mutation did not apply (expr layout changed?)"
    elif ! "$PROMTOOL" check rules "$TMP/mut/synqc-alerts.yml" >"$TMP/out" 2>&1; then
      fail "mutant $name/$mode: mutant is not a valid rule file"
      sed 's/^/       | /' "$TMP/out"
    elif (cd "$TMP/mut" && "$PROMTOOL" test rules synqc-alerts.test.yml) >"$TMP/out" 2>&1; then
      fail "mutant $name/$mode: promtool test rules still passes (an alert test is missing)"
    elif caught_by "$name" "$mode" <"$TMP/out"; then
      pass "mutant $name/$mode caught by its ${want[$mode]} test"
    else
      fail "mutant $name/$mode: no ${want[$mode]} test of $name failed"
      sed 's/^/       | /' "$TMP/out" | head -20
    fi
  done
done

# --- dashboard lint -----------------------------------------------------------
run "dashboard lint (tests/dashboard_queries.py lint)" \
  python3 "$ROOT/tests/dashboard_queries.py" lint "$ROOT/assets/grafana/synqc-dashboard.json"

echo "prometheus-rules: $passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
