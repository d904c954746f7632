#!/usr/bin/env python3
"""Every preset's circuits, on every built-in target, against Qiskit Aer.

For each preset (every one but circuit, whose circuits are the client's)
on each built-in target, with the default controls and with a few control
variants, `synqc physics circuits` prints every circuit the preset runs as
the OpenQASM 3 an executor is sent, the noise parameters of its target,
the quadrature's node count K and the engine's exact outcome distribution.
The Aer executor computes the same circuit's exact density-matrix
distribution under the same parameters and K; the two must agree to 1e-9
on every outcome, as must the noise-free distributions; the executor's
own K rule must give the engine's K, and the depolarizing and detuning
parameters synqc sends must follow from the profile it sends beside them.

One known limit is reported, not compared: with drive_bias != 1 a
calibrated Clifford pulse (health's RB circuits) over-rotates about its own
axis, which no OpenQASM gate says; its U(theta, phi, lambda) runs as the
pulse ry(theta * bias) between two frame changes on any executor.

Usage: target/aer-venv/bin/python tests/aer/presets_crosscheck.py
         [--bin target/debug/synqc] [--seed 7] [--targets a,b] [--presets a,b]
Prints each mismatch and `aer crosscheck (presets): N circuits, P presets x
T targets, max |dp| = X, F failed`; exits 1 on any failure.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from crosscheck import TOLERANCE, ideal  # noqa: E402
from test_executor import derived, ex, max_diff  # noqa: E402

PRESETS = ["hello_quantum_sim", "health", "latency", "backend_compare", "dpd_demo", "grover_demo"]
TARGETS = ["sim_local", "ibm_quantum", "aws_braket", "rigetti_forest", "azure_quantum", "ionq_cloud"]
# (label, extra arguments, targets it runs on: None = all)
VARIANTS = [
    ("default", [], None),
    ("drive_bias 1.08", ["--control", "drive_bias=1.08"], ["sim_local", "rigetti_forest"]),
    ("guard off", ["--control", "thermal_guard_enabled=false"], ["sim_local", "aws_braket"]),
    ("bias 0.93, guard off", ["--control", "drive_bias=0.93", "--control", "thermal_guard_enabled=false"],
     ["ibm_quantum"]),
]
COMMAND_TIMEOUT_S = 600


def dump(binary, preset, target, seed, extra):
    cmd = [binary, "physics", "circuits", "--preset", preset, "--target", target, "--seed", str(seed)] + extra
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} exited {p.returncode}: {p.stderr.strip()[-500:]}")
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("SYNQC_BIN", os.path.join(ROOT, "target/debug/synqc")))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--targets", default=",".join(TARGETS))
    args = ap.parse_args()
    presets, targets = args.presets.split(","), args.targets.split(",")
    started = time.monotonic()

    failures, worst, done, skipped = [], 0.0, 0, 0
    per_pair = {}  # (preset, target) -> [circuits, max |dp|]
    runs = [(label, extra, preset, target) for label, extra, only in VARIANTS for preset in presets
            for target in targets if only is None or target in only]
    # backend_compare against the noise-free twin as well.
    runs += [("vs ideal", ["--compare-with", "ideal"], "backend_compare", t)
             for t in targets[:2] if "backend_compare" in presets]
    for label, extra, preset, target in runs:
        try:
            doc = dump(args.bin, preset, target, args.seed, extra)
        except Exception as e:  # a refusal, a crash, unparsable output
            failures.append(f"{preset} on {target} ({label}): {e}")
            continue
        if not doc.get("circuits"):
            failures.append(f"{preset} on {target} ({label}): no circuits")
            continue
        pair = per_pair.setdefault((preset, target), [0, 0.0])
        for c in doc["circuits"]:
            where = f"{preset} on {target} ({label}) {c['name']} [{c['target']}]"
            params, k = c["noise_params"], c["quadrature_nodes"]
            if params.get("drive_bias", 1.0) != 1.0 and "U(" in c["qasm"]:
                skipped += 1
                continue
            try:
                low = ex.lower(c["qasm"], ex.noise_from_profile(params), nodes=k)
                aer = {key: float(v) for key, v in low.keyed(low.probabilities()).items()}
                own_k = ex.quadrature_nodes(low.sigma, low.duration_ns, c["qubits"])
                aer_ideal = ex.exact_distribution(c["qasm"], ideal(params))
            except Exception as e:
                failures.append(f"{where}: Aer cannot run it: {type(e).__name__}: {e}")
                continue
            done += 1
            d, d_ideal = max_diff(c["distribution"], aer), max_diff(c["ideal"], aer_ideal)
            worst = max(worst, d, d_ideal)
            pair[0] += 1
            pair[1] = max(pair[1], d, d_ideal)
            problems = []
            if d > TOLERANCE:
                key = max(set(aer) | set(c["distribution"]),
                          key=lambda x: abs(aer.get(x, 0.0) - c["distribution"].get(x, 0.0)))
                problems.append(f"distribution differs from Aer by {d:.3e} (outcome {key!r}: synqc "
                                f"{c['distribution'].get(key, 0.0)!r}, Aer {aer.get(key, 0.0)!r}, K {k})")
            if d_ideal > TOLERANCE:
                problems.append(f"ideal differs from noise-free Aer by {d_ideal:.3e}")
            if own_k != k:
                problems.append(f"K: synqc {k}, the executor's rule {own_k} "
                                f"(duration {low.duration_ns} ns, sigma {low.sigma})")
            if abs(low.quadrature_error - c["quadrature_error"]) > 1e-12:
                problems.append(f"quadrature error: synqc {c['quadrature_error']}, "
                                f"Aer side {low.quadrature_error}")
            # The derived parameters synqc sends, against the model's rules
            # recomputed from the profile it sends beside them.
            for key, want in zip(("depolarizing_1q", "depolarizing_2q", "detuning_sigma_rad_per_ns"),
                                 derived(params)):
                if abs(params[key] - want) > 1e-12 * max(1.0, abs(want)):
                    problems.append(f"noise_params.{key} is {params[key]!r}; the model's rule gives {want!r}")
            if problems:
                failures.append(f"{where}: {'; '.join(problems)}\n{c['qasm']}")

    for (preset, target), (n, d) in sorted(per_pair.items()):
        print(f"  {preset:18} {target:15} {n:4} circuits  max |dp| = {d:.2e}")
    if skipped:
        print(f"  not compared: {skipped} circuits with a calibrated pulse under drive_bias != 1 "
              "(not expressible in OpenQASM)")
    for f in failures:
        print(f"FAIL {f}")
    print(f"  ({time.monotonic() - started:.0f} s)")
    print(f"aer crosscheck (presets): {done} circuits, {len(presets)} presets x {len(targets)} targets, "
          f"max |dp| = {worst:.3e}, {len(failures)} failed")
    return 0 if not failures and done > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
