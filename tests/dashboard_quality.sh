#!/usr/bin/env bash
# Dashboard quality, two ways:
#   1. tests/dashboard_queries.py lint: Grafana dashboard-linter's rules
#      (datasource, job and instance variables; job and instance matchers;
#      $__rate_interval; counters under rate/increase; units; descriptions)
#      plus the project's own, on the shipped dashboard; then on mutants of
#      it (one rule broken each), which lint must refuse by that rule.
#   2. The dashboard type-checks against the Dashboard type of Grafana's own
#      npm package @grafana/schema with `tsc --noEmit`.
#
# The npm packages (pinned in tests/grafana_schema/package-lock.json) are
# installed with `npm ci` into target/grafana_schema/node_modules, never into
# the source tree. A JSON module import would widen every string to
# `string`, which no enum field of the schema (color mode, thresholds mode,
# ...) accepts, so the check compiles a module that holds the dashboard file
# as an `as const` literal and assigns it to JsonOf<Dashboard>
# (tests/grafana_schema/schema.ts). A mutant with a misspelled enum value
# must be refused, which proves the check can fail.
#
# Usage: tests/dashboard_quality.sh [DASHBOARD.json]
# Prints one line per check and `dashboard-quality: N passed, M failed`.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$ROOT/tests/grafana_schema
DASHBOARD=${1:-$ROOT/assets/grafana/synqc-dashboard.json}
WORK=${CARGO_TARGET_DIR:-$ROOT/target}/grafana_schema

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok     $*"; }
fail() { failed=$((failed + 1)); echo "FAIL   $*"; }
finish() {
  echo "dashboard-quality: $passed passed, $failed failed"
  [[ $failed -eq 0 && $passed -gt 0 ]]
  exit
}

# --- 1. lint ------------------------------------------------------------------
out=$(python3 "$ROOT/tests/dashboard_queries.py" lint "$DASHBOARD") && rc=0 || rc=$?
if [[ $rc -eq 0 ]]; then
  pass "lint $(basename "$DASHBOARD"): $(tail -n 1 <<<"$out")"
else
  fail "lint $(basename "$DASHBOARD"): $(tail -n 1 <<<"$out")"
  grep -v '^ok' <<<"$out" | sed 's/^/       | /'
fi

# Mutants: NAME, then the text lint must answer with. Each breaks one rule
# in the first place it applies (see mutate below).
MUTANTS=(
  "no-job-matcher|does not select job=~\"\$job\""
  "no-instance-matcher|does not select instance=~\"\$instance\""
  "fixed-rate-window|should use \$__rate_interval"
  "bare-counter|is not directly under rate, irate or increase"
  "custom-unit|is not a Grafana unit id"
  "no-description|no description"
  "no-job-variable|template-job-rule"
  "instance-all-value|template-instance-rule"
  "datasource-renamed|template-datasource-rule"
  "variable-refresh-on-load|template-on-time-change-reload"
)
MUT=$(mktemp "${TMPDIR:-/tmp}/synqc-dash-mutant.XXXXXX.json")
trap 'rm -f "$MUT"' EXIT
for m in "${MUTANTS[@]}"; do
  name=${m%%|*}
  want=${m#*|}
  if ! python3 - "$DASHBOARD" "$MUT" "$name" <<'PY'; then
import json, re, sys
src, out, name = sys.argv[1:4]
d = json.load(open(src, encoding="utf-8"))

def panels(ps):
    for p in ps or []:
        yield p
        yield from panels(p.get("panels"))

targets = [t for p in panels(d["panels"]) for t in p.get("targets") or []]
variables = {v["name"]: v for v in d["templating"]["list"]}
first_rate = next(t for t in targets if "[$__rate_interval]" in t["expr"])
first_counter = next(t for t in targets if re.search(r"rate\((\w+_total\{[^}]*\})\[\$__rate_interval\]\)", t["expr"]))
timeseries = next(p for p in panels(d["panels"]) if p.get("type") == "timeseries")
if name == "no-job-matcher":
    targets[0]["expr"] = targets[0]["expr"].replace('job=~"$job", ', "", 1)
elif name == "no-instance-matcher":
    targets[0]["expr"] = targets[0]["expr"].replace(', instance=~"$instance"', "", 1)
elif name == "fixed-rate-window":
    first_rate["expr"] = first_rate["expr"].replace("[$__rate_interval]", "[5m]", 1)
elif name == "bare-counter":
    first_counter["expr"] = re.sub(r"rate\((\w+_total\{[^}]*\})\[\$__rate_interval\]\)", r"\1",
                                   first_counter["expr"], count=1)
elif name == "custom-unit":
    timeseries["fieldConfig"]["defaults"]["unit"] = "suffix: runs/min"
elif name == "no-description":
    timeseries["description"] = ""
elif name == "no-job-variable":
    d["templating"]["list"] = [v for v in d["templating"]["list"] if v["name"] != "job"]
elif name == "instance-all-value":
    variables["instance"].pop("allValue", None)
elif name == "datasource-renamed":
    variables["datasource"]["name"] = "ds"
elif name == "variable-refresh-on-load":
    variables["instance"]["refresh"] = 1
else:
    sys.exit(f"unknown mutant {name}")
json.dump(d, open(out, "w", encoding="utf-8"), indent=2)
PY
    fail "lint mutant $name: could not build it (the dashboard changed shape?)"
    continue
  fi
  mout=$(python3 "$ROOT/tests/dashboard_queries.py" lint "$MUT") && rc=0 || rc=$?
  if [[ $rc -ne 0 ]] && grep -v '^ok' <<<"$mout" | grep -qF -- "$want"; then
    pass "lint mutant $name refused: $want"
  else
    fail "lint mutant $name not refused with '$want'"
    grep -v '^ok' <<<"$mout" | sed 's/^/       | /' | head -5
  fi
done

# --- 2. @grafana/schema ------------------------------------------------------------
# Debian's nodejs and npm when missing (root only, and never beside another
# apt/dpkg run).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    for ((i = 0; i < 60; i++)); do
      pgrep -x apt-get >/dev/null || pgrep -x dpkg >/dev/null || break
      sleep 5
    done
    echo "# installing Debian's nodejs and npm"
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq nodejs npm >/dev/null 2>&1 \
      || { timeout 600 apt-get update -qq >/dev/null 2>&1 \
        && DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq nodejs npm >/dev/null 2>&1; }
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    fail "node and npm are available (apt-get install nodejs npm)"
    finish
  fi
fi

mkdir -p "$WORK"
cp "$SRC/package.json" "$SRC/package-lock.json" "$SRC/tsconfig.json" "$SRC/schema.ts" "$WORK/"
# npm ci empties node_modules first: only run it when the lock changed.
if cmp -s "$SRC/package-lock.json" "$WORK/node_modules/.synqc-lock" \
  && [[ -x $WORK/node_modules/.bin/tsc ]]; then
  pass "npm packages already installed in $WORK ($(cd "$WORK" && node -p 'require("@grafana/schema/package.json").version' 2>/dev/null || echo '?'))"
elif (cd "$WORK" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) >"$WORK/npm.log" 2>&1; then
  cp "$SRC/package-lock.json" "$WORK/node_modules/.synqc-lock"
  pass "npm ci @grafana/schema and typescript into $WORK"
else
  fail "npm ci into $WORK"
  sed 's/^/       | /' "$WORK/npm.log" | tail -20
  finish
fi

# module FILE DASHBOARD: the dashboard as a typed `as const` literal. The
# parenthesis keeps `as const` on the literal whatever the file's last line.
module() {
  {
    echo "import type { DashboardJson } from './schema.js';"
    printf 'const dashboard = ('
    cat "$2"
    echo ') as const;'
    echo 'export const checked: DashboardJson = dashboard;'
  } >"$1"
}

tsc() { (cd "$WORK" && timeout 300 node_modules/.bin/tsc -p tsconfig.json "$@"); }

module "$WORK/dashboard.ts" "$DASHBOARD"
if tsc >"$WORK/tsc.log" 2>&1; then
  pass "tsc --noEmit: $(basename "$DASHBOARD") is a @grafana/schema Dashboard"
else
  fail "tsc --noEmit: $(basename "$DASHBOARD") does not type-check as a @grafana/schema Dashboard"
  sed 's/^/       | /' "$WORK/tsc.log" | head -40
fi

# Negative control: a colour mode Grafana does not know must be refused.
sed '0,/"mode": "[a-z-]*"/s//"mode": "no-such-color-mode"/' "$DASHBOARD" >"$WORK/mutant.json"
if cmp -s "$DASHBOARD" "$WORK/mutant.json"; then
  fail "negative control: the dashboard has no colour mode to misspell"
else
  module "$WORK/dashboard.ts" "$WORK/mutant.json"
  if tsc >"$WORK/tsc.log" 2>&1; then
    fail "negative control: tsc accepted a misspelled colour mode (the check cannot fail)"
  elif grep -q 'no-such-color-mode' "$WORK/tsc.log"; then
    pass "negative control: tsc refuses a misspelled colour mode"
  else
    fail "negative control: tsc failed for another reason"
    sed 's/^/       | /' "$WORK/tsc.log" | head -20
  fi
fi
rm -f "$WORK/mutant.json" "$WORK/dashboard.ts"
finish
