#!/usr/bin/env bash
# Schema fuzzing of the HTTP API with Schemathesis (from PyPI, pinned):
# starts `synqc serve` on a free loopback port with a fresh data dir and
# runs every Schemathesis check against the appliance's own /openapi.json,
# all phases (examples, coverage, fuzzing, stateful), a bounded number of
# examples per operation and a fixed seed. A second, shorter pass runs
# against an appliance with an API key configured, the key sent as
# X-Api-Key, so the auth paths are fuzzed too (and the ignored_auth check
# sees every protected route refuse requests without it). After each pass
# the appliance must still be ready, its queue must drain (no run stuck
# queued or running) and its log must hold no panic.
#
# Usage: SYNQC_BIN=target/debug/synqc tests/fuzz.sh
# Env:   SYNQC_BIN (default target/debug/synqc),
#        FUZZ_EXAMPLES (max examples per operation, default 25),
#        FUZZ_AUTH_EXAMPLES (same, for the API-key pass, default 5),
#        FUZZ_SEED (default 1), FUZZ_WORKERS (default 1: with more, the
#        fuzzer's threads can hit a CPython 3.11 ast.parse race inside
#        Hypothesis and report an error of its own, not of the appliance),
#        FUZZ_VENV (default target/fuzz-venv; reused when it holds the
#        pinned version), KEEP_TMP=1 (keep logs, reports and data).
# Prints Schemathesis's report of each pass and
# `fuzz: N test cases, M failures`; exits non-zero on any failure.
# Loopback only (apart from pip installing into the venv); every wait is
# bounded; everything started is stopped on exit.
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${SYNQC_BIN:-$ROOT/target/debug/synqc}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
VENV=${FUZZ_VENV:-$ROOT/target/fuzz-venv}
EXAMPLES=${FUZZ_EXAMPLES:-25}
AUTH_EXAMPLES=${FUZZ_AUTH_EXAMPLES:-5}
SEED=${FUZZ_SEED:-1}
WORKERS=${FUZZ_WORKERS:-1}
# A pass that runs past this is stuck (an answer that never comes, a
# stream that never ends): it is stopped and counted as failed.
PASS_TIME_LIMIT=600

[[ -x $BIN ]] || { echo "fuzz: $BIN not found (cargo build first)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/synqc-fuzz.XXXXXX")
SYNQC_PID=""

# stop: SIGTERM to the appliance, up to 15 s for a clean exit, then SIGKILL.
stop() {
  local i
  [[ -n $SYNQC_PID ]] || return 0
  kill -TERM "$SYNQC_PID" 2>/dev/null || true
  for ((i = 0; i < 75; i++)); do
    kill -0 "$SYNQC_PID" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL "$SYNQC_PID" 2>/dev/null || true
  wait "$SYNQC_PID" 2>/dev/null || true
  SYNQC_PID=""
}

cleanup() {
  local rc=$?
  stop
  if [[ ${KEEP_TMP:-0} == 1 ]]; then
    echo "fuzz: kept $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A venv of its own, so neither the system Python nor a reused venv with
# another version decides what is tested.
st_version() { "$VENV/bin/st" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1; }
if [[ $(st_version) != "$SCHEMATHESIS_VERSION" ]]; then
  echo "fuzz: installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv --clear "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
[[ $(st_version) == "$SCHEMATHESIS_VERSION" ]] || { echo "fuzz: schemathesis $SCHEMATHESIS_VERSION did not install" >&2; exit 1; }

c() { curl -sS --noproxy '*' --max-time 10 "$@"; }

# start NAME FLAGS...: the appliance on a free port with a fresh data dir;
# sets BASE. Fails if it is not ready within 30 s.
start() {
  local name=$1 port i
  shift
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  BASE=http://127.0.0.1:$port
  SYNQC_LOG=warn "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$TMP/$name-data" "$@" \
    >"$TMP/$name.log" 2>&1 &
  SYNQC_PID=$!
  for ((i = 0; i < 150; i++)); do
    kill -0 "$SYNQC_PID" 2>/dev/null || break
    [[ $(c -o /dev/null -w '%{http_code}' "$BASE/health/ready" 2>/dev/null) == 200 ]] && return 0
    sleep 0.2
  done
  echo "fuzz: synqc did not become ready; its log:" >&2
  tail -n 25 "$TMP/$name.log" >&2
  return 1
}

# after_pass NAME HEADER...: the appliance survived the pass: still ready,
# every run it accepted leaves queued/running within 120 s, and no panic
# in its log. Prints what is wrong; returns non-zero if anything is.
after_pass() {
  local name=$1 bad=0 queue i
  shift
  if ! kill -0 "$SYNQC_PID" 2>/dev/null; then
    echo "fuzz: $name: synqc died during the pass"
    tail -n 25 "$TMP/$name.log"
    return 1
  fi
  if [[ $(c -o /dev/null -w '%{http_code}' "$BASE/health/ready") != 200 ]]; then
    echo "fuzz: $name: /health/ready is not 200 after the pass"
    bad=1
  fi
  # The fuzzer may have paused the queue or a target, and submitted runs
  # whose not_before is years ahead: resume everything and cancel those
  # scheduled runs (they would rightly wait past the test), then the rest
  # must drain.
  local t id
  for t in null '"sim_local"' '"aws_braket"' '"ibm_quantum"' '"azure_quantum"' '"ionq_cloud"' '"rigetti_forest"'; do
    c "$@" -o /dev/null -X POST -H 'Content-Type: application/json' \
      -d "{\"hardware_target\": $t}" "$BASE/queue/resume" || true
  done
  for id in $(c "$@" "$BASE/runs?status=queued&limit=1000" | python3 -c '
import json, sys
body = json.load(sys.stdin)
for r in body.get("runs", body.get("items", [])):
    if r.get("scheduled_for"):
        print(r["id"])'); do
    c "$@" -o /dev/null -X POST "$BASE/runs/$id/cancel" || true
  done
  for ((i = 0; i < 240; i++)); do
    # Runs whose not_before is still ahead (synqc_queue_future_depth) are
    # rightly waiting, not stuck.
    future=$(c "$@" "$BASE/metrics" | sed -n 's/^synqc_queue_future_depth \([0-9.e+]*\)$/\1/p' | head -n 1)
    queue=$(c "$@" "$BASE/health" | FUTURE=${future:-0} python3 -c '
import json, os, sys
q = json.load(sys.stdin)["queue"]
print(q["queued"] + q["running"] - int(float(os.environ["FUTURE"])), json.dumps(q))')
    [[ ${queue%% *} == 0 ]] && break
    sleep 0.5
  done
  if [[ ${queue%% *} != 0 ]]; then
    echo "fuzz: $name: runs still queued or running 120 s after the pass: ${queue#* }"
    bad=1
  fi
  if grep -n -m 5 'panicked' "$TMP/$name.log"; then
    echo "fuzz: $name: synqc panicked during the pass (lines above)"
    bad=1
  fi
  return "$bad"
}

total_cases=0
total_failures=0
failed_passes=()

# fuzz NAME EXAMPLES SCHEMA ST_OPTIONS...: one Schemathesis pass; adds its
# test cases and failures to the totals.
fuzz() {
  local name=$1 examples=$2 schema=$3 rc=0 counts
  shift 3
  echo "--- fuzz pass: $name"
  # Each pass in a directory of its own: Schemathesis keeps a cache of past
  # failures in ./.schemathesis and replays it, so a pass would depend on
  # earlier ones.
  mkdir "$TMP/$name-cwd"
  # tests/fuzz_hooks.py gives `qasm` real programs (see there why).
  (cd "$TMP/$name-cwd" && PYTHONPATH="$ROOT/tests" SCHEMATHESIS_HOOKS=fuzz_hooks \
    timeout -k 10 "$PASS_TIME_LIMIT" "$VENV/bin/st" run "$schema" \
    --checks all --max-examples "$examples" --seed "$SEED" --workers "$WORKERS" \
    --request-timeout 10 --generation-database none --no-color \
    --report json --report-json-path "$TMP/$name-report.json" "$@") || rc=$?
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    echo "fuzz: $name: stopped after $PASS_TIME_LIMIT s"
  fi
  counts=$(python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["test_cases"]
print(t["generated"], t["unique_failures"] + t["errored"])' "$TMP/$name-report.json" 2>/dev/null) \
    || counts="0 1"
  total_cases=$((total_cases + ${counts% *}))
  total_failures=$((total_failures + ${counts#* }))
  [[ $rc -eq 0 ]] || failed_passes+=("$name")
}

# Pass 1: no API key (the default). A session budget that cannot run out,
# so the fuzzer's runs reach the queue instead of stopping at 429; one
# worker leaves a core to the fuzzer.
start open --workers 1 --max-shots-per-session 1000000000000
c -f -o "$TMP/openapi.json" "$BASE/openapi.json"
fuzz open "$EXAMPLES" "$BASE/openapi.json"
after_pass open || failed_passes+=("open: appliance state after the pass")
stop

# Pass 2: an API key configured, the fuzzer sending it on every request,
# and public only the routes the document marks public (`security: []`).
# The document also offers "no auth" as an alternative, true of the keyless
# default only; the fuzzer gets a copy without it, so its ignored_auth
# check probes every protected operation without the key and with a wrong
# one, and expects them refused.
KEY=fuzz-$RANDOM$RANDOM$RANDOM
public=$(python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
doc["security"] = [alt for alt in doc["security"] if alt]
json.dump(doc, open(sys.argv[2], "w"))
ops = lambda item: [op for m, op in item.items() if m in ("get", "head", "post")]
print(",".join(p for p, item in doc["paths"].items() if all(op.get("security") == [] for op in ops(item))))
' "$TMP/openapi.json" "$TMP/openapi-key-required.json")
start key --workers 1 --max-shots-per-session 1000000000000 --api-key "$KEY" --public-paths "$public"
fuzz key "$AUTH_EXAMPLES" "$TMP/openapi-key-required.json" --url "$BASE" --header "X-Api-Key: $KEY"
after_pass key -H "X-Api-Key: $KEY" || failed_passes+=("key: appliance state after the pass")
stop

echo "fuzz: $total_cases test cases, $total_failures failures"
if [[ ${#failed_passes[@]} -gt 0 ]]; then
  echo "fuzz: failed: ${failed_passes[*]}"
  exit 1
fi
