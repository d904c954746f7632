#!/usr/bin/env python3
"""Tests of the shipped Aer executor (assets/executors/qiskit_aer.py).

1. The protocol: the executor runs as a child process and is spoken to over
   stdin/stdout as synqc would (handshake, ping, runs, every error path,
   seeded determinism, counts summing to the shots, the key convention).
2. The model (v2): exact_distribution() against closed forms (T1 decay,
   Ramsey dephasing, relaxation during 1q and 2q gates, depolarizing as
   derived and as sent, the derived parameters' gate infidelity, Ramsey at
   T2* and the echo refocusing the quasi-static detuning, thermal start,
   readout, drive bias, barrier, reset) and against an independent numpy
   implementation of synqc's engine (written from its equations, block by
   block as the engine does, the detuning grid as a batch of density
   matrices on its own Gauss-Hermite rule) on seeded random circuits over
   the whole language, K included.

Usage: tests/aer/venv.sh && target/aer-venv/bin/python tests/aer/test_executor.py
Prints one line per failure and `aer executor: N passed, M failed`; exit 0/1.
"""

import importlib.util
import itertools
import json
import math
import os
import random
import subprocess
import sys
import traceback

import numpy as np
from qiskit.quantum_info import average_gate_fidelity

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXECUTOR = os.path.join(ROOT, "assets", "executors", "qiskit_aer.py")
sys.path.insert(0, HERE)
import randcirc  # noqa: E402


def load_executor():
    # Under another name: the file is called like the qiskit_aer package.
    spec = importlib.util.spec_from_file_location("synqc_aer_executor", EXECUTOR)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ex = load_executor()

NOISELESS = dict(t1_us=None, t2_us=None, t2star_us=None, p1q=0.0, p2q=0.0, readout_p10=0.0, readout_p01=0.0,
                 residual_excited_population=0.0, gate_1q_ns=35.0, gate_2q_ns=300.0,
                 readout_ns=1000.0, drive_bias=1.0, thermal_guard_enabled=True)
# sim_local's profile (guard on), and a harsher one with a miscalibrated
# drive and the guard off; as_sent() adds the derived keys synqc sends.
SIM_LOCAL = dict(t1_us=120.0, t2_us=90.0, t2star_us=60.0, p1q=5e-4, p2q=8e-3,
                 readout_p10=0.01, readout_p01=0.02,
                 residual_excited_population=0.002, gate_1q_ns=35.0, gate_2q_ns=300.0,
                 readout_ns=1000.0, drive_bias=1.0, thermal_guard_enabled=True)
HARSH = dict(t1_us=20.0, t2_us=15.0, t2star_us=8.0, p1q=2e-3, p2q=3e-2, readout_p10=0.05, readout_p01=0.07,
             residual_excited_population=0.02, gate_1q_ns=40.0, gate_2q_ns=200.0,
             readout_ns=2000.0, drive_bias=1.07, thermal_guard_enabled=False)


def prof(**kw):
    return {**NOISELESS, **kw}


def qasm1(body, n=1, bits=1):
    return (f'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[{n}] q;\nbit[{bits}] c;\n'
            f'{body}\n' + "".join(f"c[{i}] = measure q[{i}];\n" for i in range(bits)))


# ------------------------------------------------------------ reference model
# synqc's engine equations (docs/physics.md, model v2), written independently
# of the executor: qubit q is basis bit n-1-q, single-qubit maps act on 2x2
# blocks, and the quasi-static detuning is a batch of density matrices, one
# per node of the quadrature grid (Golub-Welsch nodes, not numpy's hermgauss).

def blocks(rho, n, q, f):
    """rho (branches, d, d) with f applied to the 2x2 blocks of qubit q."""
    t = rho.reshape([rho.shape[0]] + [2] * (2 * n))
    t = np.moveaxis(t, [1 + q, 1 + n + q], [1, 2])
    b = f(t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], t[:, 1, 1])
    t = np.stack([np.stack([b[0], b[1]], axis=1), np.stack([b[2], b[3]], axis=1)], axis=1)
    return np.moveaxis(t, [1, 2], [1 + q, 1 + n + q]).reshape(rho.shape)


def rot(axis, th):
    c, s = math.cos(th / 2), math.sin(th / 2)
    return np.array([[c, -1j * s], [-1j * s, c]]) if axis == "x" else np.array([[c, -s], [s, c]])


def full(n, qs, u):
    """The 2^n operator of a k-qubit matrix u on qubits qs (qs[0] = u's high bit)."""
    d = 1 << n
    k = len(qs)
    out = np.zeros((d, d), complex)
    for i in range(d):
        sub_i = sum(((i >> (n - 1 - q)) & 1) << (k - 1 - j) for j, q in enumerate(qs))
        for s in range(1 << k):
            if u[s, sub_i] == 0:
                continue
            o = i
            for j, q in enumerate(qs):
                bit = (s >> (k - 1 - j)) & 1
                o = (o & ~(1 << (n - 1 - q))) | (bit << (n - 1 - q))
            out[o, i] += u[s, sub_i]
    return out


PAULI = [np.eye(2), np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1, -1])]
CX = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
CZ = np.diag([1, 1, 1, -1])
SWAP = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])


def us_or_inf(v):
    return math.inf if v is None else v * 1e3


def relax_constants(p, t):
    """(gamma, coherence factor) of relaxation for t ns."""
    t1, t2 = us_or_inf(p["t1_us"]), us_or_inf(p["t2_us"])
    g = 1 - math.exp(-t / t1)
    return g, math.sqrt(1 - g) * math.exp(-t * max(0.0, 1 / t2 - 0.5 / t1))


def derived(p):
    """(p_dep1, p_dep2, sigma) of a profile by the model's rules."""
    def f_relax(t):
        g, c = relax_constants(p, t)
        return (1 + 2 * c + 1 - g) / 4

    def dep(r, d, f):
        return min(1.0, max(0.0, (f - (1 - r * (d + 1) / d)) / (f - 1 / d**2)))

    t2 = us_or_inf(p["t2_us"])
    t2s = us_or_inf(p.get("t2star_us", p["t2_us"]))
    sigma = 0.0 if not math.isfinite(t2s) or t2s >= t2 else math.sqrt(2 * (1 - t2s / t2)) / t2s
    return (dep(p["p1q"], 2, f_relax(p["gate_1q_ns"])), dep(p["p2q"], 4, f_relax(p["gate_2q_ns"]) ** 2),
            sigma)


def as_sent(p):
    """A profile with the derived keys synqc sends beside it."""
    d1, d2, sigma = derived(p)
    return {**p, "depolarizing_1q": d1, "depolarizing_2q": d2, "detuning_sigma_rad_per_ns": sigma}


def hermite_rule(k):
    """Gauss-Hermite nodes and probability weights (sum 1) by Golub-Welsch:
    the eigenvalues of the Jacobi matrix of the Hermite polynomials, and the
    squared first components of its eigenvectors."""
    off = np.sqrt(np.arange(1, k) / 2)
    x, v = np.linalg.eigh(np.diag(off, 1) + np.diag(off, -1))
    return x, v[0] ** 2


def nodes_rule(sigma, duration, n):
    """The model's K: fewest nodes reaching 1e-10 on exp(-a^2/2), a = sigma T,
    at most 32, within (4K)^n <= 4^8; 1 without detuning or time."""
    if sigma == 0 or duration == 0:
        return 1
    a = sigma * duration
    need = 32
    for k in range(1, 33):
        x, w = hermite_rule(k)
        if abs(np.sum(w * np.cos(math.sqrt(2) * a * x)) - math.exp(-a * a / 2)) <= 1e-10:
            need = k
            break
    cap = max(k for k in range(1, 33) if (4 * k) ** n <= 4**8)
    return min(need, cap)


class Reference:
    def __init__(self, n, p, nodes=1):
        self.n, self.p = n, p
        self.dep1, self.dep2, sigma = derived(p)
        # One density matrix per node of the K^n grid: per branch, each
        # qubit's detuning and the branch's weight.
        x, w = hermite_rule(nodes)
        grid = list(itertools.product(range(nodes), repeat=n))
        self.delta = np.array([[math.sqrt(2) * sigma * x[i] for i in g] for g in grid])
        self.weight = np.array([math.prod(w[i] for i in g) for g in grid])
        pe = p["residual_excited_population"]
        diag = np.array([1.0])
        for _ in range(n):
            diag = np.kron(diag, [1 - pe, pe])
        self.rho = np.repeat(np.diag(diag).astype(complex)[None], len(grid), axis=0)
        self.clock = [0.0] * n

    def u1(self, q, u):
        ud = u.conj().T
        self.rho = blocks(self.rho, self.n, q, lambda a, b, c, d: [
            u[i, 0] * (a * ud[0, j] + b * ud[1, j]) + u[i, 1] * (c * ud[0, j] + d * ud[1, j])
            for i in (0, 1) for j in (0, 1)])

    def relax(self, q, t):
        if t <= 0:
            return
        pe = self.p["residual_excited_population"]
        g, coh = relax_constants(self.p, t)
        self.rho = blocks(self.rho, self.n, q, lambda a, b, c, d: [
            a * (1 - pe * g) + d * (1 - pe) * g, b * coh, c * coh, d * (1 - (1 - pe) * g) + a * pe * g])

    def idle(self, q, t):
        """Relaxation, then the phase diag(1, e^{i delta t}) of each branch's detuning."""
        if t <= 0:
            return
        self.relax(q, t)
        shape = (-1,) + (1,) * (2 * self.n - 2)
        turn = np.exp(1j * self.delta[:, q] * t).reshape(shape)
        self.rho = blocks(self.rho, self.n, q, lambda a, b, c, d: [a, b / turn, c * turn, d])

    def sync(self, qs):
        start = max(self.clock[q] for q in qs)
        for q in qs:
            self.idle(q, start - self.clock[q])
            self.clock[q] = start
        return start

    def pulse(self, q, axis, th):
        start = self.sync([q])
        self.u1(q, rot(axis, th * self.p["drive_bias"]))
        self.relax(q, self.p["gate_1q_ns"])
        p = self.dep1
        self.rho = blocks(self.rho, self.n, q, lambda a, b, c, d: [
            a * (1 - p) + (a + d) * p / 2, b * (1 - p), c * (1 - p), d * (1 - p) + (a + d) * p / 2])
        self.clock[q] = start + self.p["gate_1q_ns"]

    def two(self, u, a, b):
        start = self.sync([a, b])
        U = full(self.n, [a, b], u)
        self.rho = U @ self.rho @ U.conj().T
        self.relax(a, self.p["gate_2q_ns"])
        self.relax(b, self.p["gate_2q_ns"])
        rho, p = self.rho, self.dep2
        mixed = sum(full(self.n, [a, b], np.kron(P, Q)) @ rho @ full(self.n, [a, b], np.kron(P, Q)).conj().T
                    for P in PAULI for Q in PAULI) / 16  # = I/4 (x) Tr_ab rho
        self.rho = (1 - p) * rho + p * mixed
        self.clock[a] = self.clock[b] = start + self.p["gate_2q_ns"]

    def phase(self, q, phi):
        self.u1(q, np.diag([1, np.exp(1j * phi)]))

    def op(self, name, qs, *v):
        q = qs[0]
        virtual = {"z": math.pi, "s": math.pi / 2, "sdg": -math.pi / 2, "t": math.pi / 4, "tdg": -math.pi / 4}
        if name in virtual:
            self.phase(q, virtual[name])
        elif name in ("rz", "p"):
            self.phase(q, v[0])
        elif name in ("x", "y"):
            self.pulse(q, name, math.pi)
        elif name in ("rx", "ry"):
            self.pulse(q, name[1], v[0])
        elif name == "sx":
            self.pulse(q, "x", math.pi / 2)
        elif name == "h":
            self.phase(q, math.pi)
            self.pulse(q, "y", math.pi / 2)
        elif name == "u":
            self.phase(q, v[2])
            self.pulse(q, "y", v[0])
            self.phase(q, v[1])
        elif name in ("cx", "cz", "swap"):
            self.two({"cx": CX, "cz": CZ, "swap": SWAP}[name], *qs)
        elif name == "ccx":
            a, b, t = qs
            for g, *w in [("h", t), ("cx", b, t), ("tdg", t), ("cx", a, t), ("t", t), ("cx", b, t),
                          ("tdg", t), ("cx", a, t), ("t", b), ("t", t), ("h", t), ("cx", a, b),
                          ("t", a), ("tdg", b), ("cx", a, b)]:
                self.op(g, list(w))
        elif name == "delay":
            start = self.sync([q])
            self.idle(q, v[0])
            self.clock[q] = start + v[0]
        elif name == "reset":
            self.sync([q])
            self.rho = blocks(self.rho, self.n, q, lambda a, b, c, d: [a + d, 0 * b, 0 * c, 0 * d])
        elif name == "barrier":
            self.sync(qs)
        else:
            raise ValueError(name)

    def distribution(self, measures, registers):
        self.sync(range(self.n))
        p = np.einsum("b,bii->i", self.weight, self.rho).real.clip(min=0).reshape([2] * self.n)
        e10, e01 = self.p["readout_p10"], self.p["readout_p01"]
        conf = np.array([[1 - e10, e01], [e10, 1 - e01]])
        for q in range(self.n):
            p = np.moveaxis(np.tensordot(conf, p, axes=([1], [q])), 0, q)
        nbits = sum(size for _, size in registers)
        regs, start = [], 0
        for _, size in registers:
            regs.append(list(range(start, start + size)))
            start += size
        out = {}
        for idx in np.ndindex(*p.shape):
            values = [0] * nbits
            for qb, cb in measures:
                values[cb] = idx[qb]
            key = " ".join("".join(str(values[i]) for i in reversed(r)) for r in reversed(regs))
            out[key] = out.get(key, 0.0) + float(p[idx])
        return out


def reference_distribution(n, ops, measures, registers, profile, nodes=None):
    """(distribution, K): a first pass times the circuit, which sets K by the
    model's rule unless `nodes` is given; the second averages the K^n grid."""
    if nodes is None:
        timing = Reference(n, profile)
        for name, qs, *v in ops:
            timing.op(name, qs, *v)
        nodes = nodes_rule(derived(profile)[2], timing.sync(range(n)), n)
    r = Reference(n, profile, nodes)
    for name, qs, *v in ops:
        r.op(name, qs, *v)
    return r.distribution(measures, registers), nodes


def max_diff(a, b):
    return max(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b))


# ------------------------------------------------------------ the child process

class Child:
    """The executor as synqc runs it: a child process spoken to in JSON lines."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, EXECUTOR], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def send_line(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        assert reply, f"no reply to {line[:80]!r}; stderr: {self.proc.stderr.read()[-2000:]}"
        return json.loads(reply)  # every stdout line must be one JSON object

    def send(self, obj):
        return self.send_line(json.dumps(obj))

    def close(self):
        self.proc.stdin.close()
        rc = self.proc.wait(timeout=30)
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc, err


def run_req(circuits, seed=7, profile=SIM_LOCAL, rid="r1"):
    return {"op": "run", "id": rid, "run_id": "run-1", "target": "sim_local", "seed": seed,
            "noise_profile": profile, "circuits": circuits}


BELL = qasm1("h q[0];\ncx q[0], q[1];", n=2, bits=2)


def check_error(reply, rid):
    assert reply["op"] == "error", reply
    assert reply["id"] == rid, reply
    e = reply["error"]
    assert e["code"] == "PROVIDER_ERROR" and e["retryable"] is False, e
    assert isinstance(e["message"], str) and e["message"].endswith("."), e


# ------------------------------------------------------------ tests

TESTS = []


def test(f):
    TESTS.append(f)
    return f


@test
def protocol_session():
    c = Child()
    try:
        hello = c.send({"op": "hello", "protocol": 1})
        assert hello["op"] == "hello" and hello["protocol"] == 1, hello
        assert hello["backend"] == {"name": "aer_simulator", "version": ex.qiskit_aer.__version__}, hello
        caps = hello["capabilities"]
        assert caps["delay"] is True and caps["noise_profile"] is True, caps
        assert caps["max_qubits"] >= 5 and caps["max_shots"] >= 100000, caps
        assert {"x", "h", "cx", "ccx", "u", "sx", "swap", "cz"} <= set(caps["gates"]), caps

        assert c.send({"op": "ping", "id": "p1"}) == {"op": "pong", "id": "p1"}

        circuits = [{"name": "bell", "qasm": BELL, "shots": 500},
                    {"name": "one", "qasm": qasm1("x q[0];"), "shots": 37}]
        res = c.send(run_req(circuits))
        assert res["op"] == "result" and res["id"] == "r1", res
        assert [r["name"] for r in res["results"]] == ["bell", "one"], res
        for r, circ in zip(res["results"], circuits):
            assert sum(r["counts"].values()) == circ["shots"], r
            assert all(isinstance(k, int) and k > 0 for k in r["counts"].values()), r
        bell = res["results"][0]["counts"]
        assert set(bell) <= {"00", "01", "10", "11"} and bell.get("00", 0) + bell.get("11", 0) > 450, bell
        meta = res["metadata"]
        assert isinstance(meta, dict) and len(meta["quadrature_nodes"]) == 2, res
        assert all(isinstance(k, int) and k >= 1 for k in meta["quadrature_nodes"]), meta

        # Every error path is answered, and the executor keeps serving.
        check_error(c.send_line("{this is not json"), None)
        check_error(c.send_line("[1, 2]"), None)
        check_error(c.send({"op": "frobnicate", "id": "u1"}), "u1")
        check_error(c.send({"id": "u2"}), "u2")
        check_error(c.send({"op": "hello", "protocol": 2}), None)
        bad = {
            "bad qasm": [{"name": "a", "qasm": "OPENQASM 3.0; qubit[1] q; frob q[0];", "shots": 10}],
            "not qasm": [{"name": "a", "qasm": 42, "shots": 10}],
            "no measure": [{"name": "a", "qasm": 'OPENQASM 3.0; include "stdgates.inc"; qubit[1] q; x q[0];',
                            "shots": 10}],
            "unsupported gate": [{"name": "a", "qasm": qasm1("cp(0.3) q[0], q[1];", n=2, bits=2), "shots": 10}],
            "gate after measure": [{"name": "a", "qasm": qasm1("", 1) + "x q[0];\n", "shots": 10}],
            "bit written twice": [{"name": "a", "qasm": qasm1("", 2, 1) + "c[0] = measure q[1];\n",
                                   "shots": 10}],
            "too many qubits": [{"name": "a", "qasm": qasm1("", ex.MAX_QUBITS + 1), "shots": 10}],
            "zero shots": [{"name": "a", "qasm": BELL, "shots": 0}],
            "no name": [{"qasm": BELL, "shots": 3}],
            "no circuits": [],
            "one bad of two": [{"name": "a", "qasm": BELL, "shots": 3},
                               {"name": "b", "qasm": "OPENQASM 3.0; garbage", "shots": 3}],
        }
        for i, (what, circs) in enumerate(bad.items()):
            try:
                check_error(c.send(run_req(circs, rid=f"b{i}")), f"b{i}")
            except AssertionError as e:
                raise AssertionError(f"{what}: {e}") from None
        check_error(c.send(run_req([{"name": "a", "qasm": BELL, "shots": 3}],
                                   profile={**SIM_LOCAL, "p1q": "high"}, rid="np")), "np")
        check_error(c.send(run_req([{"name": "a", "qasm": BELL, "shots": 3}], seed=-1, rid="ns")), "ns")
        assert c.send({"op": "ping", "id": "p2"}) == {"op": "pong", "id": "p2"}

        # Same seed, same counts; another seed, other counts.
        circ = [{"name": "g", "qasm": qasm1("rx(1.1) q[0]; h q[1]; delay[20us] q[1];", n=2, bits=2),
                 "shots": 2000}]
        a = c.send(run_req(circ, seed=99, profile=HARSH))["results"][0]["counts"]
        b = c.send(run_req(circ, seed=99, profile=HARSH))["results"][0]["counts"]
        d = c.send(run_req(circ, seed=100, profile=HARSH))["results"][0]["counts"]
        assert a == b, (a, b)
        assert a != d, (a, d)
        big = c.send(run_req(circ, seed=2**64 - 1, profile=HARSH))
        assert big["op"] == "result" and sum(big["results"][0]["counts"].values()) == 2000, big
    finally:
        rc, err = c.close()
    assert rc == 0, (rc, err[-2000:])
    assert "started" in err, err[-2000:]


@test
def key_convention_two_registers():
    # Bit 0 rightmost, last declared register first, unwritten bits 0; in
    # both OpenQASM versions, and equal to Qiskit's own formatting.
    v3 = ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[4] q;\nbit[3] a;\nbit[2] b;\n'
          "x q[0];\nx q[2];\nx q[3];\n"
          "a[0] = measure q[0];\na[2] = measure q[1];\nb[1] = measure q[2];\nb[0] = measure q[3];\n")
    v2 = ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[4];\ncreg a[3];\ncreg b[2];\n'
          "x q[0];\nx q[2];\nx q[3];\n"
          "measure q[0] -> a[0];\nmeasure q[1] -> a[2];\nmeasure q[2] -> b[1];\nmeasure q[3] -> b[0];\n")
    for src in (v3, v2):
        assert ex.run_circuit(ex.lower(src, ex.noise_from_profile(NOISELESS)), 64, 1) == {"11 001": 64}
        d = ex.exact_distribution(src, NOISELESS)
        assert abs(d["11 001"] - 1) < 1e-12, d
        qc = ex.parse_program(src)
        # Qiskit's own formatting of the same bits.
        native = ex.AerSimulator(method="statevector").run(qc, shots=8, seed_simulator=1).result().get_counts()
        assert native == {"11 001": 8}, native


@test
def closed_forms():
    def p1(src, profile, key="1"):
        return ex.exact_distribution(src, profile).get(key, 0.0)

    def close(a, b, what):
        assert abs(a - b) < 1e-12, f"{what}: {a} != {b}"

    t1 = 100.0
    # T1: |1> idles 30 us -> P(1) = exp(-t/T1); the x pulse itself takes no time here.
    close(p1(qasm1("x q[0];\ndelay[30us] q[0];"), prof(t1_us=t1, t2_us=t1, gate_1q_ns=0.0)),
          math.exp(-30 / t1), "T1 decay")
    # Relaxation towards pe: |0> heats to pe (1 - exp(-t/T1)) on top of the thermal start pe.
    pe = 0.02
    close(p1(qasm1("delay[50us] q[0];"), prof(t1_us=t1, t2_us=t1, residual_excited_population=pe)),
          pe, "thermal state is the fixed point")
    close(p1(qasm1("x q[0];\ndelay[50us] q[0];"),
             prof(t1_us=t1, t2_us=t1, residual_excited_population=pe, gate_1q_ns=0.0)),
          pe + (1 - 2 * pe) * math.exp(-0.5), "GAD from the flipped thermal state")
    # Ramsey (T1 infinite): P(0) = (1 + exp(-t/T2)) / 2.
    close(p1(qasm1("h q[0];\ndelay[40us] q[0];\nh q[0];"), prof(t2_us=80.0, gate_1q_ns=0.0), "0"),
          (1 + math.exp(-0.5)) / 2, "Ramsey dephasing")
    # With T1 finite as well, the second h turns the coherence (decayed as
    # exp(-t/T2) overall) into the population read: same closed form.
    close(p1(qasm1("h q[0];\ndelay[40us] q[0];\nh q[0];"), prof(t1_us=60.0, t2_us=80.0, gate_1q_ns=0.0), "0"),
          (1 + math.exp(-0.5)) / 2, "Ramsey with T1 and T2")
    # Depolarizing on |0>: a zero-angle pulse leaves P(1) = p/2; without
    # relaxation the derived p is 2 r (1q) and 4 r / 3 (2q).
    close(p1(qasm1("rx(0) q[0];"), prof(p1q=0.05)), 0.05, "1q depolarizing")
    close(p1(qasm1("rx(0) q[0];"), {**prof(p1q=0.05), "depolarizing_1q": 0.3}), 0.15,
          "1q depolarizing as sent wins over the derived one")
    d = ex.exact_distribution(qasm1("cz q[0], q[1];", n=2, bits=2), prof(p2q=0.15))
    close(d["00"], 1 - 0.75 * 0.2, "2q depolarizing keeps 00")
    close(d["01"], 0.05, "2q depolarizing to 01")
    # Thermal start and readout confusion.
    close(p1(qasm1(""), prof(residual_excited_population=0.03)), 0.03, "thermal start")
    close(p1(qasm1(""), prof(readout_p10=0.04)), 0.04, "readout p10")
    close(p1(qasm1("x q[0];"), prof(readout_p01=0.06), "0"), 0.06, "readout p01")
    # drive_bias: x turns by pi*b, P(1) = sin^2(pi b / 2); virtual gates ignore it.
    close(p1(qasm1("x q[0];"), prof(drive_bias=0.9)), math.sin(math.pi * 0.9 / 2) ** 2, "drive bias x")
    close(p1(qasm1("rz(1.0) q[0];\nz q[0];\nt q[0];"), prof(drive_bias=0.9)), 0.0, "virtual gates")
    # u(theta, ...) = one ry(theta * b) pulse: P(1) = sin^2(theta b / 2).
    close(p1(qasm1("u(0.8, 0.3, -1.1) q[0];"), prof(drive_bias=1.2)), math.sin(0.48) ** 2, "u pulse")
    # Barrier: q1's second x waits for q0's 1 us delay, so its |1> decays
    # for the first x's 35 ns and the 965 ns wait; each x relaxes 35 ns after.
    body = "x q[1];\ndelay[1us] q[0];\nbarrier q[0], q[1];\nx q[1];"
    close(p1(qasm1(body, n=2, bits=2), prof(t1_us=10.0, t2_us=10.0), "10"),
          (1 - math.exp(-1000 / 10000)) * math.exp(-35 / 10000), "barrier idles the early qubit")
    close(p1(qasm1(body.replace("barrier q[0], q[1];\n", ""), n=2, bits=2),
             prof(t1_us=10.0, t2_us=10.0), "10"),
          (1 - math.exp(-35 / 10000)) * math.exp(-(35 + 930) / 10000),
          "no barrier: no wait, but the readout waits for q0")
    # Relaxation during a gate: x lasting 10 us leaves P(1) = exp(-10/T1)
    # (relaxation alone exceeds r = 0, so no depolarizing is left).
    close(p1(qasm1("x q[0];"), prof(t1_us=20.0, t2_us=20.0, gate_1q_ns=10_000.0)),
          math.exp(-0.5), "relaxation after the pulse")
    close(p1(qasm1("x q[1];\ncx q[1], q[0];", n=2, bits=2),
             prof(t1_us=20.0, t2_us=20.0, gate_1q_ns=0.0, gate_2q_ns=4_000.0), "11"),
          math.exp(-0.2) * math.exp(-0.2), "relaxation on both qubits of a 2q gate")
    # Quasi-static detuning: Ramsey at t = T2* has the envelope
    # exp(-t/T2 - sigma^2 t^2 / 2) = 1/e, to the quadrature's reported error;
    # an echo refocuses every branch exactly, leaving exp(-t/T2).
    ramsey = qasm1("h q[0];\ndelay[40us] q[0];\nh q[0];")
    rp = prof(t2_us=80.0, t2star_us=40.0, gate_1q_ns=0.0)
    low = ex.lower(ramsey, ex.noise_from_profile(rp))
    assert low.nodes == nodes_rule(derived(rp)[2], 40_000.0, 1) and low.nodes > 1, low.nodes
    assert low.quadrature_error <= 1e-10, low.quadrature_error
    # P(0) = (1 + exp(-t/T2) GH_K(sigma t)) / 2, and GH_K is within the reported error.
    got, want = p1(ramsey, rp, "0"), (1 + math.exp(-1)) / 2
    assert abs(got - want) <= math.exp(-0.5) * low.quadrature_error / 2 + 1e-15, (got, want)
    # With K = 1 (the node delta = 0) the quasi-static part is absent.
    close(ex.exact_distribution(ramsey, rp, nodes=1)["0"], (1 + math.exp(-0.5)) / 2, "Ramsey, one node")
    echo = qasm1("h q[0];\ndelay[20us] q[0];\nx q[0];\ndelay[20us] q[0];\nh q[0];")
    close(p1(echo, rp, "0"), (1 + math.exp(-0.5)) / 2, "echo refocuses the detuning")
    # The derived depolarizing parameters make each gate's average
    # infidelity the profile's r (relaxation included, pe irrelevant).
    noise = ex.noise_from_profile({**HARSH})
    for gate_ns, dep, d, r in ((HARSH["gate_1q_ns"], noise["dep1"], 2, HARSH["p1q"]),
                               (HARSH["gate_2q_ns"], noise["dep2"], 4, HARSH["p2q"])):
        relax = ex.relax_error(noise, gate_ns).to_quantumchannel()
        if d == 4:
            relax = relax.tensor(relax)
        chan = relax.compose(dep.to_quantumchannel())
        close(1 - average_gate_fidelity(chan), r, f"derived depolarizing, d = {d}")
    # Reset: back to |0> whatever came before.
    close(p1(qasm1("h q[0];\nreset q[0];"), prof()), 0.0, "reset")


@test
def matches_independent_reference_on_random_circuits():
    # Each profile as a profile alone (the executor derives the depolarizing
    # and detuning parameters) and as synqc sends it (it takes them as sent).
    rng = random.Random(19)
    worst, count, nodes = 0.0, 0, set()
    for n in range(1, 6):
        for profile in (SIM_LOCAL, as_sent(HARSH), NOISELESS, HARSH, as_sent(SIM_LOCAL)):
            for version in (3, 3, 2):
                qasm, ops, measures, registers = randcirc.random_circuit(rng, n, version=version)
                low = ex.lower(qasm, ex.noise_from_profile(profile))
                want, k = reference_distribution(n, ops, measures, registers, profile)
                assert low.nodes == k, f"executor K {low.nodes}, model K {k}:\n{qasm}"
                got = {key: float(p) for key, p in low.keyed(low.probabilities()).items()}
                diff = max_diff(got, want)
                worst, count = max(worst, diff), count + 1
                nodes.add(k)
                assert diff < 1e-9, f"{n} qubits, K {k}, |dp| = {diff}:\n{qasm}"
                assert abs(sum(got.values()) - 1) < 1e-9
    # The grid must actually have been exercised, not only K = 1.
    assert max(nodes) > 2, nodes
    print(f"  reference model: {count} random circuits, K in {sorted(nodes)}, max |dp| = {worst:.2e}")


def main():
    passed = failed = 0
    for t in TESTS:
        try:
            t()
            passed += 1
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__}:\n{traceback.format_exc()}")
    print(f"aer executor: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
