#!/usr/bin/env bash
# The Python environment of the Aer executor's tests: a venv at
# target/aer-venv (AER_VENV overrides) holding tests/aer/requirements.txt.
# Reused while it holds exactly those pins (a stamp of the file's hash);
# otherwise created afresh, as tests/fuzz.sh does with its own venv, so
# neither the system Python nor a stale venv decides what is tested.
# When the system Python cannot make a venv (Debian without python3-venv),
# python3-venv is installed with apt-get, as root and only while no other
# apt/dpkg runs.
#
# Usage: tests/aer/venv.sh      Prints one line: the venv and its versions.
# Then:  target/aer-venv/bin/python tests/aer/test_executor.py
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REQ=$ROOT/tests/aer/requirements.txt
VENV=${AER_VENV:-$ROOT/target/aer-venv}
STAMP=$VENV/.requirements.sha256
want=$(sha256sum "$REQ" | cut -d' ' -f1)

if [[ ! -x $VENV/bin/python || $(cat "$STAMP" 2>/dev/null) != "$want" ]]; then
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    if [[ $(id -u) != 0 ]]; then
      echo "aer venv: python3 cannot create a venv; install python3-venv (apt-get install python3-venv)" >&2
      exit 1
    fi
    if pgrep -x apt-get >/dev/null || pgrep -x dpkg >/dev/null; then
      echo "aer venv: python3-venv is missing and apt/dpkg is busy; run again when it is done" >&2
      exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv --clear "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$REQ"
  echo "$want" >"$STAMP"
fi

"$VENV/bin/python" -c '
import sys, qiskit, qiskit_aer, qiskit_qasm3_import
print(f"aer venv: {sys.prefix} (qiskit {qiskit.__version__}, qiskit-aer {qiskit_aer.__version__}, qiskit-qasm3-import {qiskit_qasm3_import.__version__})")'
