#!/usr/bin/env python3
"""Throughput of the Aer executor's simulation, to set beside synqc's own.

Times every DIR/q{n}_{i}.qasm (or q{n}_c{i}.qasm) through the executor's lower and run_circuit
(parse, lowering to the noisy circuit, Aer density-matrix run on one thread,
sampling), grouped by qubit count n, under one noise profile (sim_local's
by default). Each qubit count runs in a fresh subprocess, so its peak
memory (getrusage maxrss) is its own; the baseline after the imports is
shown beside it.

Usage: target/aer-venv/bin/python tests/aer/bench_aer.py DIR
         [--shots 1000] [--noise profile.json] [--json] [--timeout 1800]
Prints per qubit count: circuits, circuits/s, mean ms per circuit, peak
RSS; with --json one JSON object per line instead.
"""

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# q{n}_{i}.qasm, or `synqc bench circuits --qasm-dir`'s q{nn}_c{iii}.qasm
NAME = re.compile(r"^q(\d+)_c?(\d+)\.qasm$")
# sim_local with the thermal guard on, as synqc sends it to an executor.
SIM_LOCAL = dict(t1_us=120.0, t2_us=90.0, t2star_us=60.0, p1q=5e-4, p2q=8e-3,
                 readout_p10=0.01, readout_p01=0.02,
                 residual_excited_population=0.002, gate_1q_ns=35.0, gate_2q_ns=300.0,
                 readout_ns=1000.0, drive_bias=1.0, thermal_guard_enabled=True)


def maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(n, files, shots, noise):
    """One qubit count, in its own process: prints one JSON object."""
    sys.path.insert(0, HERE)
    from test_executor import ex

    # The executor refuses widths whose density matrix it would rather not
    # hold; the bench measures whatever width the files have.
    ex.MAX_QUBITS = max(ex.MAX_QUBITS, n)
    base = maxrss_mib()
    sources = [open(f).read() for f in files]
    # One model for all, as for the circuits of one request.
    model = ex.noise_from_profile(noise)
    # Warm-up (Aer's first run loads its library), not timed; one qubit, so
    # a wide register is not simulated twice.
    warm = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[1] q;\nbit[1] c;\nh q[0];\nc[0] = measure q[0];\n'
    ex.run_circuit(ex.lower(warm, model), shots, 0)
    start = time.perf_counter()
    for i, src in enumerate(sources):
        ex.run_circuit(ex.lower(src, model), shots, i)
    elapsed = time.perf_counter() - start
    print(json.dumps({"qubits": n, "circuits": len(sources), "seconds": elapsed,
                      "circuits_per_s": len(sources) / elapsed,
                      "ms_per_circuit": 1e3 * elapsed / len(sources),
                      "peak_rss_mib": maxrss_mib(), "baseline_rss_mib": base, "shots": shots}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--shots", type=int, default=1000)
    ap.add_argument("--noise", help="JSON file with a noise profile (default: sim_local's)")
    ap.add_argument("--json", action="store_true", help="one JSON object per qubit count")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per qubit count")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    noise = json.load(open(args.noise)) if args.noise else SIM_LOCAL

    groups = {}
    for f in sorted(os.listdir(args.dir)):
        m = NAME.match(f)
        if m:
            groups.setdefault(int(m.group(1)), []).append((int(m.group(2)), os.path.join(args.dir, f)))
    if args.child is not None:
        child(args.child, [f for _, f in sorted(groups[args.child])], args.shots, noise)
        return 0
    if not groups:
        print(f"bench_aer: no q{{n}}_{{i}}.qasm files in {args.dir}", file=sys.stderr)
        return 1

    rc = 0
    for n in sorted(groups):
        cmd = [sys.executable, os.path.abspath(__file__), args.dir, "--child", str(n),
               "--shots", str(args.shots)] + (["--noise", args.noise] if args.noise else [])
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"q{n}: stopped after {args.timeout:.0f} s")
            rc = 1
            continue
        if p.returncode != 0:
            print(f"q{n}: failed: {p.stderr.strip().splitlines()[-1:] or p.returncode}")
            rc = 1
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        if args.json:
            print(json.dumps(r))
        else:
            print(f"q{n}: {r['circuits']} circuits, {r['circuits_per_s']:.1f} circuits/s "
                  f"({r['ms_per_circuit']:.2f} ms each, {r['shots']} shots), "
                  f"peak RSS {r['peak_rss_mib']:.0f} MiB (after imports {r['baseline_rss_mib']:.0f} MiB)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
