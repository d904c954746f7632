#!/usr/bin/env bash
# The whole synqc test suite on a fresh Debian machine: installs what the
# tests need (real peers: promtool, Prometheus and Alertmanager, Chromium,
# podman, dpkg tooling, python3-venv for the Schemathesis fuzzer, which
# tests/fuzz.sh installs from PyPI into a venv of its own), then runs the
# static checks, the unit and integration tests, and the checks by real
# peers. Exits non-zero if any stage failed; runs every stage regardless,
# so one report shows everything.
set -uo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n=== %s\n' "$*"; }

install_tools() {
  local want=(prometheus prometheus-alertmanager chromium podman buildah skopeo umoci runc lintian file curl python3 python3-venv systemd)
  local missing=()
  for p in "${want[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  rustup component add clippy rustfmt >/dev/null 2>&1 || true
  command -v cargo-deb >/dev/null || cargo install cargo-deb --locked -q
}

declare -a results=()
stage() {
  local name=$1; shift
  log "$name"
  local start=$SECONDS
  if "$@"; then
    results+=("ok      $name ($((SECONDS - start)) s)")
  else
    results+=("FAILED  $name ($((SECONDS - start)) s)")
  fi
}

install_tools || { echo "could not install the test tools"; exit 1; }

stage "cargo fmt --check" cargo fmt --all -- --check
stage "cargo clippy -D warnings" cargo clippy --all-targets --quiet -- -D warnings
stage "cargo test (unit + integration, real binary)" cargo test --no-fail-fast
# The physics statistics: health's fit recovery over 50+ seeds per target
# and interval coverage over 1,000 seeds, optimized (Cargo.toml [profile.stats]);
# each prints its table.
stage "physics statistics: fit recovery, interval coverage (optimized)" \
  cargo test --profile stats --lib stats_ -- --ignored --nocapture --test-threads 2
bin=target/debug/synqc
stage "promtool: rules and alert unit tests" bash tests/prometheus_rules.sh
stage "real Prometheus scraping synqc: dashboard and alert queries" env SYNQC_BIN="$bin" bash tests/prometheus_e2e.sh
# Several appliances: one Prometheus scraping two, a second federating it;
# every panel and alert per instance on the federated one.
stage "fleet: two appliances, federation, every panel and alert per instance" env SYNQC_BIN="$bin" bash tests/fleet.sh
# Induced faults (a table in the script) delivered through Debian's
# Alertmanager to a local webhook; a healthy load test delivers nothing.
stage "Alertmanager: induced faults delivered to a webhook" env SYNQC_BIN="$bin" bash tests/alert_delivery.sh
# dashboard-linter rules (and mutants proving each bites), then the JSON
# type-checked against npm @grafana/schema with tsc (node/npm: the script
# installs Debian's when missing; packages go to target/grafana_schema).
stage "dashboard quality: linter rules, @grafana/schema type check" bash tests/dashboard_quality.sh
stage "headless Chromium: console and API docs" env SYNQC_BIN="$bin" bash tests/console.sh
stage "packaging: static binary, .deb, systemd unit, container" bash tests/packaging.sh
stage "Schemathesis: every check against /openapi.json, with and without an API key" env SYNQC_BIN="$bin" bash tests/fuzz.sh
# The shipped Qiskit Aer executor (pinned qiskit/qiskit-aer from PyPI in a
# venv of its own, tests/aer/venv.sh): its tests, synqc's simulation against
# Aer to 1e-9, a target bound to it against synqc's own model, and the
# circuit bench beside synqc's (packaging's release binary, if built).
stage "Qiskit Aer: executor, crosscheck, bound-target e2e, bench" \
  env SYNQC_BIN="$bin" SYNQC_RELEASE_BIN="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/synqc" \
  bash tests/aer.sh
# A short soak of the release binary packaging built (an hour for a
# release: DURATION=3600 bash tests/soak.sh); it prints RSS, fds and store
# size, and fails only if the server does not stop cleanly.
stage "soak benchmark (2 min): RSS, fds and store size under mixed load" \
  env SYNQC_BIN="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/synqc" \
  DURATION=120 INTERVAL=30 PAUSE=0.04 bash tests/soak.sh

log "summary"
printf '%s\n' "${results[@]}"
if printf '%s\n' "${results[@]}" | grep -q '^FAILED'; then
  exit 1
fi
