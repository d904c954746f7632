#!/usr/bin/env bash
# The shipped Qiskit Aer executor against synqc's own simulator.
#
# Installs the pinned Python side (tests/aer/venv.sh), then:
#   1. executor: tests/aer/test_executor.py (protocol, closed forms, an
#      independent model of the engine);
#   2. crosscheck: random circuits on a synqc that simulates all six
#      targets (allow_provider_simulation); each artifacts.noisy_distribution
#      must match Aer's exact distribution to 1e-9 (tests/aer/crosscheck.py);
#   3. presets crosscheck: every circuit of every preset on every built-in
#      target (and a few control variants), as `synqc physics circuits`
#      prints it with the engine's exact distribution, against Aer's to
#      1e-9 (tests/aer/presets_crosscheck.py; no server);
#   4. e2e: a second synqc with ibm_quantum bound to
#      assets/executors/qiskit_aer.py; every preset a circuit can express
#      and a circuit run go to it and to the first synqc's simulated
#      ibm_quantum, and their KPIs must agree statistically (tests/aer/e2e.py);
#   5. bench: Aer's throughput on synqc's bench circuits of 2-6 qubits
#      (tests/aer/bench_aer.py), beside `synqc bench circuits` when a
#      release binary exists (a debug build's timings say nothing).
#
# Usage: SYNQC_BIN=target/debug/synqc tests/aer.sh
# Env:   SYNQC_BIN (default target/debug/synqc), SYNQC_RELEASE_BIN (default
#        target/release/synqc, else the static build tests/packaging.sh
#        makes), AER_VENV (see tests/aer/venv.sh), KEEP_TMP=1 (keep logs).
# Prints each runner's summary line, a line per part and `aer: N parts
# passed, M failed`;
# exits non-zero on any failure. Loopback only (apart from pip installing
# into the venv); every wait is bounded; everything started is stopped.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${SYNQC_BIN:-$ROOT/target/debug/synqc}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
VENV=${AER_VENV:-$ROOT/target/aer-venv}
PY=$VENV/bin/python
# The helpers import each other; no __pycache__ left in the source tree.
export PYTHONDONTWRITEBYTECODE=1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/synqc-aer.XXXXXX")
PIDS=()
declare -a parts=()

part() { # part NAME COMMAND...: runs one part, records its outcome
  local name=$1 start=$SECONDS
  shift
  echo "=== aer: $name"
  "$@" 2>&1 | tee "$TMP/part.${#parts[@]}.log"
  if [[ ${PIPESTATUS[0]} == 0 ]]; then
    parts+=("ok      aer $name ($((SECONDS - start)) s)")
  else
    parts+=("FAILED  aer $name ($((SECONDS - start)) s)")
  fi
}
finish() {
  local p failed=0
  echo "=== aer: summary"
  # Each runner's own summary line, then each part's outcome.
  cat "$TMP"/part.*.log 2>/dev/null | grep -E '^aer [a-z0-9 ()]+: [0-9]+ ' || true
  for p in "${parts[@]}"; do
    echo "$p"
    [[ $p == FAILED* ]] && failed=$((failed + 1))
  done
  echo "aer: $((${#parts[@]} - failed)) parts passed, $failed failed"
  [[ $failed == 0 ]]
  exit
}
cleanup() {
  local p i
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for ((i = 0; i < 75; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "aer: kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

c() { curl -sS --noproxy '*' --max-time 10 "$@"; }

# start NAME CONFIG_TOML FLAGS...: synqc on a free port with a fresh data
# dir and the given config; sets BASE. Fails unless ready within 60 s.
start() {
  local name=$1 config=$2 port pid i
  shift 2
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  BASE=http://127.0.0.1:$port
  # The machine's own SYNQC_* settings must not leak in.
  local unset_env=()
  while IFS= read -r v; do unset_env+=(-u "$v"); done < <(env | sed -n 's/^\(SYNQC_[A-Z0-9_]*\)=.*/\1/p')
  env "${unset_env[@]}" SYNQC_LOG=warn "${START_ENV[@]}" "$BIN" serve --config "$config" --listen "127.0.0.1:$port" \
    --data-dir "$TMP/$name-data" --workers 2 "$@" >"$TMP/$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    [[ $(c -o /dev/null -w '%{http_code}' "$BASE/health/ready" 2>/dev/null) == 200 ]] && return 0
    sleep 0.2
  done
  echo "aer: synqc ($name) did not become ready; its log:"
  tail -n 25 "$TMP/$name.log"
  return 1
}

# ---------------------------------------------------------------- setup
[[ -x $BIN ]] || { echo "aer: $BIN not found (cargo build first, or set SYNQC_BIN)"; parts+=("FAILED  aer setup: no synqc binary"); finish; }
echo "aer: synqc $BIN, temp $TMP"
part "venv" bash "$ROOT/tests/aer/venv.sh"
[[ -x $PY ]] || finish

printf 'allow_provider_simulation = true\n' >"$TMP/sim.toml"
cat >"$TMP/bound.toml" <<EOF
[executors.ibm_quantum]
command = ["$PY", "$ROOT/assets/executors/qiskit_aer.py"]
timeout_seconds = 120
EOF

START_ENV=()
SIM_BASE="" BOUND_BASE=""
start sim "$TMP/sim.toml" && SIM_BASE=$BASE
start bound "$TMP/bound.toml" && BOUND_BASE=$BASE

# ---------------------------------------------------------------- parts
part "executor tests" "$PY" "$ROOT/tests/aer/test_executor.py"

crosscheck() {
  [[ -n $SIM_BASE ]] || { echo "aer crosscheck: no simulating synqc"; return 1; }
  "$PY" "$ROOT/tests/aer/crosscheck.py" "$SIM_BASE" | tee "$TMP/crosscheck.out"
  local rc=${PIPESTATUS[0]}
  # The script's own exit is authoritative; the summary line must say the same.
  grep -Eq '^aer crosscheck: [0-9]+ circuits, max \|dp\| = [0-9.e+-]+, 0 failed$' "$TMP/crosscheck.out" || rc=1
  return "$rc"
}
part "crosscheck (simulated targets vs Aer, 1e-9)" crosscheck

presets_crosscheck() {
  "$PY" "$ROOT/tests/aer/presets_crosscheck.py" --bin "$BIN" | tee "$TMP/presets.out"
  local rc=${PIPESTATUS[0]}
  grep -Eq '^aer crosscheck \(presets\): [0-9]+ circuits, 6 presets x 6 targets, max \|dp\| = [0-9.e+-]+, 0 failed$' \
    "$TMP/presets.out" || rc=1
  return "$rc"
}
part "crosscheck (every preset x every target vs Aer, 1e-9)" presets_crosscheck

e2e() {
  [[ -n $SIM_BASE && -n $BOUND_BASE ]] || { echo "aer e2e: a synqc did not start"; return 1; }
  local rc=0
  "$PY" "$ROOT/tests/aer/e2e.py" "$BOUND_BASE" "$SIM_BASE" || rc=1
  if grep -n -m 5 'panicked' "$TMP/sim.log" "$TMP/bound.log"; then
    echo "aer e2e: synqc panicked (lines above)"
    rc=1
  fi
  return "$rc"
}
part "e2e (ibm_quantum bound to the Aer executor vs simulated)" e2e

# The old service's binding: SYNQC_QISKIT_BACKEND_<TARGET> alone (no
# [executors] table) binds the target to the shipped executor.
old_binding() {
  local empty="$TMP/empty.toml" base
  : >"$empty"
  START_ENV=(SYNQC_QISKIT_BACKEND_AWS_BRAKET=aer_simulator "SYNQC_PYTHON=$PY" "SYNQC_EXECUTORS_DIR=$ROOT/assets/executors")
  start oldenv "$empty" || { START_ENV=(); return 1; }
  START_ENV=()
  base=$BASE
  "$PY" - "$base" <<'PY'
import json, sys, time, urllib.request
base = sys.argv[1]
def get(path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return json.load(r)
deadline = time.time() + 120
while True:
    t = next(t for t in get("/hardware/targets")["targets"] if t["id"] == "aws_braket")
    if (t.get("executor") or {}).get("up"):
        break
    if time.time() > deadline:
        sys.exit(f"aer old binding: aws_braket never came up: {t}")
    time.sleep(0.5)
assert t["execution"] == "executor" and t["executor"]["backend"]["name"] == "aer_simulator", t
body = json.dumps({"preset": "hello_quantum_sim", "hardware_target": "aws_braket", "seed": 3}).encode()
req = urllib.request.Request(base + "/runs", body, {"content-type": "application/json"})
with urllib.request.urlopen(req, timeout=10) as r:
    run_id = json.load(r)["id"]
while True:
    run = get(f"/runs/{run_id}")
    if run["status"] not in ("queued", "running"):
        break
    if time.time() > deadline:
        sys.exit(f"aer old binding: run {run_id} still {run['status']}")
    time.sleep(0.3)
plant = (run.get("result") or {}).get("physics_contract", {}).get("plant", {})
assert run["status"] == "succeeded" and plant.get("kind") == "executor", run
print(f"aer old binding: SYNQC_QISKIT_BACKEND_AWS_BRAKET bound aws_braket to {plant['backend']['name']} "
      f"{plant['backend']['version']}; hello_quantum_sim succeeded there (fidelity {run['result']['kpis']['fidelity']:.4f})")
PY
}
part "old service binding (SYNQC_QISKIT_BACKEND_<TARGET>)" old_binding

bench() {
  local rel="" qasm=$TMP/qasm small=$TMP/qasm-small f
  for f in ${SYNQC_RELEASE_BIN:+"$SYNQC_RELEASE_BIN"} "$ROOT/target/release/synqc" \
    "${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-gnu/release/synqc"; do
    [[ -x $f ]] && { rel=$f; break; }
  done
  if [[ -n $rel ]]; then
    echo "synqc bench circuits ($rel):"
    timeout 240 "$rel" bench circuits --qubits 2-10 --circuits 3 --qasm-dir "$qasm" || return 1
  else
    echo "SKIP synqc bench circuits: no release binary (a debug build's timings say nothing); writing its circuits only"
    # The debug binary writes the same circuits; its timing table is dropped.
    timeout 240 "$BIN" bench circuits --qubits 2-6 --circuits 3 --qasm-dir "$qasm" >/dev/null || return 1
  fi
  mkdir -p "$small"
  cp "$qasm"/q0[2-6]_c*.qasm "$small"/ || return 1
  echo "Aer executor, the same circuits (2-6 qubits), sim_local noise:"
  "$PY" "$ROOT/tests/aer/bench_aer.py" "$small" --timeout 120
}
part "bench (circuits/s, synqc beside Aer)" bench

finish
