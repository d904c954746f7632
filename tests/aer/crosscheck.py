#!/usr/bin/env python3
"""Cross-check synqc's circuit simulation against Qiskit Aer.

Submits `circuit` runs to a running synqc and compares, for each, the
result's exact noisy distribution (artifacts.noisy_distribution) with the
one the Aer executor computes from the same program and the noise
parameters the result reports (result.noise.params), the quasi-static
detuning averaged over the K nodes the result reports
(artifacts.quadrature.nodes_per_qubit; absent, the executor's K by the
same rule); likewise the noise-free expected_distribution with Aer under
the ideal model. Two independent simulators of the same model must agree
to 1e-9 on every outcome.

Circuits: (a) seeded random circuits on 1 to 5 qubits over the whole
language (every gate, defined gates, delay, barrier, reset, OpenQASM 2 and
3, two classical registers), on sim_local, some with a miscalibrated drive
or the thermal guard off; (b) a few on every other available simulated
target of GET /hardware/targets (a target bound to an executor is not
simulated by synqc and is skipped).

Usage: target/aer-venv/bin/python tests/aer/crosscheck.py http://127.0.0.1:PORT
         [--per-size 8] [--per-target 3] [--shots 256] [--seed 19] [--api-key K]
Prints each mismatch and `aer crosscheck: N circuits, max |dp| = X, M failed`;
exits 1 on any failure. Loopback only; every wait is bounded.
"""

import argparse
import http.client
import json
import os
import random
import sys
import time
import urllib.error
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import randcirc  # noqa: E402
from test_executor import ex, max_diff  # noqa: E402

TOLERANCE = 1e-9
RUN_TIMEOUT_S = 300


class Api:
    def __init__(self, base, api_key):
        self.base = base.rstrip("/")
        # A session of its own so the budget of other sessions is untouched.
        self.headers = {"Content-Type": "application/json",
                        "X-Session-Id": f"aer-crosscheck-{uuid.uuid4().hex[:12]}"}
        if api_key:
            self.headers["X-Api-Key"] = api_key
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=self.headers)
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, text
        except (OSError, http.client.HTTPException) as e:  # refused, reset, timed out
            return 0, f"no answer ({e})"


def ideal(params):
    """The noise-free model the expected distribution is computed on."""
    return {**params, "t1_us": None, "t2_us": None, "t2star_us": None, "p1q": 0.0, "p2q": 0.0,
            "depolarizing_1q": 0.0, "depolarizing_2q": 0.0, "detuning_sigma_rad_per_ns": 0.0,
            "readout_p10": 0.0, "readout_p01": 0.0, "residual_excited_population": 0.0,
            "drive_bias": 1.0}


def plan(api, rng, per_size, per_target):
    """(label, qasm, target, control_overrides) of every circuit to run."""
    jobs = []
    overrides = [None, None, {"drive_bias": 1.08}, {"thermal_guard_enabled": False},
                 {"drive_bias": 0.93, "thermal_guard_enabled": False}]
    for n in range(1, 6):
        for i in range(per_size):
            version = 2 if i % 4 == 3 else 3
            qasm = randcirc.random_circuit(rng, n, version=version)[0]
            jobs.append((f"q{n}#{i} v{version}", qasm, "sim_local", overrides[i % len(overrides)]))
    status, doc = api.call("GET", "/hardware/targets")
    if status != 200:
        raise SystemExit(f"aer crosscheck: GET /hardware/targets answered {status}: {doc}")
    checked, skipped = ["sim_local"], []
    for t in doc["targets"]:
        if t["id"] == "sim_local":
            continue
        # A target bound to an executor names it; synqc does not simulate it.
        bound = t.get("executor") or (t.get("capabilities") or {}).get("executor")
        if not t.get("available") or bound:
            skipped.append(f"{t['id']} ({'bound to an executor' if bound else 'unavailable'})")
            continue
        checked.append(t["id"])
        for i in range(per_target):
            qasm = randcirc.random_circuit(rng, rng.randint(1, 4))[0]
            jobs.append((f"{t['id']}#{i}", qasm, t["id"], None))
    print(f"aer crosscheck: targets {', '.join(checked)}; skipped: {', '.join(skipped) or 'none'}")
    return jobs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base_url")
    ap.add_argument("--per-size", type=int, default=8, help="random circuits per qubit count")
    ap.add_argument("--per-target", type=int, default=3, help="circuits per other simulated target")
    ap.add_argument("--shots", type=int, default=256)
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--api-key", default=os.environ.get("SYNQC_API_KEY"))
    args = ap.parse_args()
    api = Api(args.base_url, args.api_key)
    rng = random.Random(args.seed)
    jobs = plan(api, rng, args.per_size, args.per_target)

    failures, worst, done = [], 0.0, 0
    submitted = []
    for k, (label, qasm, target, over) in enumerate(jobs):
        body = {"preset": "circuit", "qasm": qasm, "hardware_target": target,
                "shot_budget": args.shots, "seed": args.seed * 1000 + k,
                "notes": f"aer crosscheck {label}"}
        if over:
            body["control_overrides"] = over
        status, doc = api.call("POST", "/runs", body)
        if status not in (200, 202):
            failures.append(f"{label}: POST /runs answered {status}: {doc}")
            continue
        submitted.append((label, qasm, doc["id"]))

    deadline = time.monotonic() + RUN_TIMEOUT_S + 2 * len(submitted)
    for label, qasm, run_id in submitted:
        while True:
            status, run = api.call("GET", f"/runs/{run_id}")
            if status == 200 and run["status"] not in ("queued", "running"):
                break
            if time.monotonic() > deadline:
                run = None
                break
            time.sleep(0.2)
        if run is None or run["status"] != "succeeded":
            why = "still unfinished at the deadline" if run is None else \
                f"{run['status']}: {run.get('error_code')} {run.get('error_message')}"
            failures.append(f"{label} ({run_id}): {why}")
            continue
        result = run["result"]
        try:
            params = result["noise"]["params"]
            got = result["artifacts"]["noisy_distribution"]
            expected = result["kpis"]["expected_distribution"]
            counts = result["kpis"]["raw_counts"]
            # The engine's K when the result reports it; else the executor
            # applies the same rule to the same circuit.
            nodes = ((result.get("artifacts") or {}).get("quadrature") or {}).get("nodes_per_qubit")
            aer = ex.exact_distribution(qasm, params, nodes=nodes)
            aer_ideal = ex.exact_distribution(qasm, ideal(params))
        except Exception as e:  # a result without the fields, or a program Aer refuses
            failures.append(f"{label} ({run_id}): cannot compare: {type(e).__name__}: {e}")
            continue
        done += 1
        d_noisy, d_ideal = max_diff(got, aer), max_diff(expected, aer_ideal)
        worst = max(worst, d_noisy, d_ideal)
        problems = []
        if d_noisy > TOLERANCE:
            problems.append(f"noisy_distribution differs from Aer by {d_noisy:.3e}")
        if d_ideal > TOLERANCE:
            problems.append(f"expected_distribution differs from ideal Aer by {d_ideal:.3e}")
        if sum(counts.values()) != result["shots"]["executed"]:
            problems.append(f"raw_counts sum to {sum(counts.values())}, not {result['shots']['executed']}")
        stray = [k for k in counts if aer.get(k, 0.0) <= 0.0]
        if stray:
            problems.append(f"raw_counts has outcomes Aer gives no probability: {stray[:5]}")
        if problems:
            worst_key = max(set(got) | set(aer), key=lambda k: abs(got.get(k, 0.0) - aer.get(k, 0.0)))
            failures.append(f"{label} ({run_id}): {'; '.join(problems)} (worst outcome {worst_key!r}: "
                            f"synqc {got.get(worst_key)} vs Aer {aer.get(worst_key)})\n{qasm}")

    for f in failures:
        print(f"FAIL {f}")
    print(f"aer crosscheck: {len(jobs)} circuits, max |dp| = {worst:.3e}, {len(failures)} failed")
    return 0 if not failures and done == len(jobs) else 1


if __name__ == "__main__":
    sys.exit(main())
