#!/usr/bin/env python3
"""synqc reference executor: runs circuits on Qiskit Aer's density-matrix simulator.

synqc starts this program once per bound hardware target and speaks JSON
lines with it on stdin/stdout, one object per line (docs/operations.md):

  {"op":"hello","protocol":1}            -> hello, with backend and capabilities
  {"op":"ping","id":I}                   -> {"op":"pong","id":I}
  {"op":"run","id":I,"seed":S,"noise_profile":{...},
   "circuits":[{"name":N,"qasm":Q,"shots":K}, ...]}
                                         -> {"op":"result","id":I,"results":[{"name":N,"counts":{...}}],...}
  anything wrong                         -> {"op":"error","id":I,"error":{"code","message","retryable"}}

Counts are keyed by classical bits, bit 0 rightmost within a register,
registers joined by a space, last declared register first (Qiskit's own
convention). Logs go to stderr only: stdout carries nothing but replies.

To wrap your own instrument, copy this file and replace `run_circuit` with
a call to your driver (and `lower` with your own compilation, if the
instrument takes something other than a Qiskit circuit); keep the loop, the
validation and the reply shapes.

The simulation reproduces synqc's own noise model, version 2, exactly
(docs/physics.md): each circuit is rebuilt as an explicit list of unitaries
and noise channels following the hardware's timing (per-qubit clocks; a
qubit that waits idles: relaxation, then the phase of its detuning; after
each physical gate's unitary, relaxation for the gate's duration on each of
its qubits, then the depolarizing parameter synqc sends; virtual Z-type
gates exact; readout confusion), and Aer evolves the density matrix through
it. The quasi-static detuning (constant within a shot, Gaussian across
shots) is averaged by the same Gauss-Hermite rule synqc uses, with the
same node count K from the circuit's duration: one Aer run per node of
the grid (bound parameters of one circuit), averaged with the rule's
weights. Counts are one multinomial draw from that exact averaged
distribution with a numpy generator seeded by the run's seed plus the
circuit's position, so a seed fixes the counts; the result's metadata
names K per circuit.

Needs: pip install qiskit qiskit-aer qiskit-qasm3-import (tests/aer/requirements.txt
pins the versions this file is tested with).
"""

import functools
import json
import logging
import math
import os
import re
import sys

# This file is named like the package it drives: keep its own directory off
# the import path, or `import qiskit_aer` would import this file again.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

try:
    import numpy as np
    import qiskit
    import qiskit_aer
    from qiskit import QuantumCircuit, qasm2, qasm3
    from qiskit.circuit import Parameter
    from qiskit.circuit.library import PhaseGate, SXGate, UGate, get_standard_gate_name_mapping
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import depolarizing_error, kraus_error, pauli_error
except ImportError as missing:
    sys.stderr.write(
        f"qiskit_aer.py: {missing}. Install the executor's dependencies with "
        "`pip install qiskit qiskit-aer qiskit-qasm3-import` for the Python that runs it.\n"
    )
    sys.exit(2)

PROTOCOL = 1
# A density matrix of n qubits takes 16 * 4^n bytes: 12 qubits is 256 MiB.
MAX_QUBITS = 12
MAX_SHOTS = 1_000_000
GATES = ["x", "y", "z", "h", "s", "sdg", "t", "tdg", "sx", "rx", "ry", "rz", "p", "u1",
         "u2", "u3", "u", "cx", "cz", "swap", "ccx"]
# Qiskit's library gates: a gate outside GATES with one of these names is
# refused; any other name is a `gate` the program defines.
STANDARD = set(get_standard_gate_name_mapping())
NS_PER_UNIT = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9, "dt": 1.0}
PI = math.pi

log = logging.getLogger("qiskit_aer_executor")


class RequestError(Exception):
    """A request this executor cannot run as sent: answered, never retried."""


# ---------------------------------------------------------------- noise profile

def noise_from_profile(profile):
    """The model's parameters from synqc's noise_profile, in ns; T1/T2/T2*
    null = infinite. The derived parameters synqc sends beside the profile
    (depolarizing_1q/2q, detuning_sigma_rad_per_ns) are used as sent; an
    older synqc that sends none gets them derived here by the same rules."""
    if not isinstance(profile, dict):
        raise RequestError("noise_profile must be a JSON object; send the target's profile.")

    def number(key, lo=0.0, hi=math.inf, nullable=False, default=None):
        v = profile.get(key, default)
        if v is None and nullable:
            return math.inf
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise RequestError(
                f"noise_profile.{key} must be a number between {lo} and {hi}; got {v!r}. "
                "Send the target's complete noise profile.")
        return float(v)

    n = {
        "relax_cache": {},  # relaxation channels by duration: building one is not cheap
        "t1_ns": number("t1_us", 1e-12, nullable=True) * 1e3,
        "t2_ns": number("t2_us", 1e-12, nullable=True) * 1e3,
        "p1q": number("p1q", hi=1.0),
        "p2q": number("p2q", hi=1.0),
        "pe": number("residual_excited_population", hi=1.0),
        "p10": number("readout_p10", hi=1.0),
        "p01": number("readout_p01", hi=1.0),
        "gate_1q_ns": number("gate_1q_ns"),
        "gate_2q_ns": number("gate_2q_ns"),
        "drive_bias": number("drive_bias", hi=10.0),
    }
    # Absent (a profile from before T2* existed): no quasi-static part.
    n["t2star_ns"] = number("t2star_us", 1e-12, nullable=True, default=profile.get("t2_us")) * 1e3
    if "depolarizing_1q" in profile:
        n["dep1_p"] = number("depolarizing_1q", hi=1.0)
    else:
        n["dep1_p"] = depolarizing_for(n["p1q"], 2, relaxation_fidelity(n, n["gate_1q_ns"]))
    if "depolarizing_2q" in profile:
        n["dep2_p"] = number("depolarizing_2q", hi=1.0)
    else:
        n["dep2_p"] = depolarizing_for(n["p2q"], 4, relaxation_fidelity(n, n["gate_2q_ns"]) ** 2)
    if "detuning_sigma_rad_per_ns" in profile:
        n["sigma"] = number("detuning_sigma_rad_per_ns")
    else:
        n["sigma"] = detuning_sigma(n["t2_ns"], n["t2star_ns"])
    # The channels every circuit uses, built once per request.
    n["dep1"] = depolarizing_error(n["dep1_p"], 1) if n["dep1_p"] > 0 else None
    n["dep2"] = depolarizing_error(n["dep2_p"], 2) if n["dep2_p"] > 0 else None
    n["thermal"] = pauli_error([("X", n["pe"]), ("I", 1 - n["pe"])]) if n["pe"] > 0 else None
    n["readout"] = readout_error(n)
    return n


def relaxation_constants(noise, t_ns):
    """(gamma, lambda) of relaxation for t_ns: amplitude damping
    1 - exp(-t/T1) and the pure-dephasing factor exp(-t/Tphi),
    1/Tphi = 1/T2 - 1/(2 T1)."""
    g = 1.0 - math.exp(-t_ns / noise["t1_ns"])
    rate_phi = max(0.0, 1.0 / noise["t2_ns"] - 0.5 / noise["t1_ns"])
    return g, math.exp(-t_ns * rate_phi)


def relaxation_fidelity(noise, t_ns):
    """Process fidelity of relaxation for t_ns, (1 + 2c + 1 - gamma) / 4 with
    c = sqrt(1 - gamma) lambda (its Pauli transfer diagonal); the residual
    excited population does not enter."""
    g, lam = relaxation_constants(noise, t_ns)
    c = math.sqrt(1 - g) * lam
    return (1 + 2 * c + (1 - g)) / 4


def depolarizing_for(r, d, f_relax):
    """The depolarizing parameter that, after relaxation of process fidelity
    f_relax, makes a d-dimensional gate's average infidelity r: the
    composition has process fidelity (1 - p) f_relax + p / d^2."""
    target = 1 - r * (d + 1) / d
    return min(1.0, max(0.0, (f_relax - target) / (f_relax - 1 / d**2)))


def detuning_sigma(t2_ns, t2star_ns):
    """Width (rad/ns) of the quasi-static detuning: the Ramsey envelope
    exp(-t/T2 - sigma^2 t^2 / 2) reaches 1/e at T2*."""
    if not (math.isfinite(t2_ns) and math.isfinite(t2star_ns)) or t2star_ns >= t2_ns:
        return 0.0
    return math.sqrt(2 * (1 - t2star_ns / t2_ns)) / t2star_ns


def relax_error(noise, t_ns):
    """Relaxation for t_ns: generalized amplitude damping towards the residual
    excited population pe, then pure dephasing, so populations relax with T1
    and coherences decay as exp(-t/T2). None when nothing happens."""
    if t_ns <= 0:
        return None
    if t_ns in noise["relax_cache"]:
        return noise["relax_cache"][t_ns]
    pe = noise["pe"]
    g, lam = relaxation_constants(noise, t_ns)
    if g <= 0.0 and lam >= 1.0:
        noise["relax_cache"][t_ns] = None
        return None
    s, r = math.sqrt(1 - g), math.sqrt(g)
    damping = [  # decay to |0> with weight 1-pe, "heating" to |1> with weight pe
        math.sqrt(1 - pe) * np.array([[1, 0], [0, s]]),
        math.sqrt(1 - pe) * np.array([[0, r], [0, 0]]),
        math.sqrt(pe) * np.array([[s, 0], [0, 1]]),
        math.sqrt(pe) * np.array([[0, 0], [r, 0]]),
    ]
    dephasing = [math.sqrt((1 + lam) / 2) * np.eye(2), math.sqrt((1 - lam) / 2) * np.diag([1, -1])]
    kraus = [d @ a for d in dephasing for a in damping]
    err = noise["relax_cache"][t_ns] = kraus_error([k.astype(complex) for k in kraus if np.any(k)])
    return err


def readout_error(noise):
    """Readout confusion as a channel just before the measurement: a prepared
    0 reads 1 with p10, a prepared 1 reads 0 with p01. (A real instrument has
    this built in; here it has to be modeled.)"""
    p10, p01 = noise["p10"], noise["p01"]
    kraus = [
        np.array([[math.sqrt(1 - p10), 0], [0, 0]]),
        np.array([[0, 0], [math.sqrt(p10), 0]]),
        np.array([[0, 0], [0, math.sqrt(1 - p01)]]),
        np.array([[0, math.sqrt(p01)], [0, 0]]),
    ]
    return kraus_error([k.astype(complex) for k in kraus if np.any(k)])


# ---------------------------------------------------------------- quadrature
# The quasi-static detuning is averaged over a Gauss-Hermite grid, with the
# node count K chosen from the circuit's duration by synqc's rule, so both
# sides average over the same grid and agree to rounding.

QUADRATURE_TOLERANCE = 1e-10
MAX_NODES = 32
# K^n branches of a 4^n density matrix: at most 4^8 of work.
WORK_BUDGET = 4**8


@functools.lru_cache(maxsize=None)
def gauss_hermite(k):
    """Nodes x_k and normalized weights w_k / sqrt(pi) of the K-point rule
    for the weight exp(-x^2)."""
    x, w = np.polynomial.hermite.hermgauss(k)
    return x, w / math.sqrt(PI)


def quadrature_error(a, k):
    """|GH_K(a) - exp(-a^2/2)|: how far the K-node average of cos(delta T)
    is from the Gaussian's, a = sigma T."""
    x, w = gauss_hermite(k)
    return abs(float(np.sum(w * np.cos(math.sqrt(2) * a * x))) - math.exp(-a * a / 2))


def quadrature_nodes(sigma, duration_ns, qubits):
    """K for a circuit of `qubits` qubits lasting duration_ns: the fewest
    nodes that get the Ramsey factor of the whole circuit to the tolerance,
    capped by the work budget."""
    if sigma == 0 or duration_ns == 0:
        return 1
    a = sigma * duration_ns
    need = next((k for k in range(1, MAX_NODES + 1) if quadrature_error(a, k) <= QUADRATURE_TOLERANCE),
                MAX_NODES)
    cap = 1
    while cap < need and (4 * (cap + 1)) ** qubits <= WORK_BUDGET:
        cap += 1
    return min(need, cap)


# ---------------------------------------------------------------- parsing

def parse_program(source):
    """A Qiskit circuit from OpenQASM 3 (stdgates.inc) or OpenQASM 2 (qelib1.inc)."""
    if not isinstance(source, str) or not source.strip():
        raise RequestError("qasm must be a non-empty OpenQASM program.")
    header = re.search(r"OPENQASM\s+(\d+)(\.\d+)?\s*;", source)
    try:
        if header and header.group(1) == "2":
            # synqc's OpenQASM 2 also knows sx, p and u, which qelib1.inc lacks.
            extra = [qasm2.CustomInstruction(name, n_params, 1, cls, builtin=True)
                     for name, n_params, cls in (("sx", 0, SXGate), ("p", 1, PhaseGate), ("u", 3, UGate))
                     if not re.search(rf"\bgate\s+{name}\b", source)]
            names = {e.name for e in extra}
            legacy = [c for c in qasm2.LEGACY_CUSTOM_INSTRUCTIONS if c.name not in names]
            return qasm2.loads(source, custom_instructions=legacy + extra)
        if re.search(r"(?<![\w.])u\s*\(", source) and not re.search(r"\bgate\s+u\b", source):
            # synqc accepts `u` (= u3), which stdgates.inc does not define:
            # define it from the builtin U, on the header's line so error
            # positions stay those of the program as sent.
            at = header.end() if header else 0
            source = source[:at] + " gate u(t, p, l) a { U(t, p, l) a; }" + source[at:]
        return qasm3.loads(source)
    except Exception as e:  # the parsers raise several exception types
        raise RequestError(f"The OpenQASM program does not parse: {e}. Fix the program.") from e


def registers_of(qc):
    """Classical registers as lists of clbit indices, in declaration order;
    a loose `bit b;` counts as a register of its own."""
    regs, seen = [], set()
    for i, bit in enumerate(qc.clbits):
        loc = qc.find_bit(bit)
        if loc.registers:
            reg = loc.registers[0][0]
            if reg.name not in seen:
                seen.add(reg.name)
                regs.append([qc.find_bit(b).index for b in reg])
        else:
            regs.append([i])
    return regs


def key_of(values, registers):
    """Counts key of clbit values: bit 0 rightmost, last register first."""
    return " ".join("".join(str(values[i]) for i in reversed(r)) for r in reversed(registers))


# ---------------------------------------------------------------- lowering

class Lowering:
    """Rebuilds a parsed circuit as the hardware executes it: every physical
    gate waits for its qubits to be free (the early ones idle meanwhile),
    acts, relaxes for its duration, is followed by its depolarizing error,
    and advances the clocks. Each idle carries the qubit's quasi-static
    detuning as a phase gate whose angle is a circuit parameter (one per
    idle), bound per quadrature branch when the circuit runs."""

    # ccx a, b, t (indices into its qubits) as synqc's engine decomposes it.
    CCX = [("h", 2), ("cx", 1, 2), ("tdg", 2), ("cx", 0, 2), ("t", 2), ("cx", 1, 2),
           ("tdg", 2), ("cx", 0, 2), ("t", 1), ("t", 2), ("h", 2), ("cx", 0, 1),
           ("t", 0), ("tdg", 1), ("cx", 0, 1)]
    VIRTUAL = {"z": PI, "s": PI / 2, "sdg": -PI / 2, "t": PI / 4, "tdg": -PI / 4}

    def __init__(self, qc, noise):
        n = qc.num_qubits
        if n > MAX_QUBITS:
            raise RequestError(f"The circuit has {n} qubits; this executor runs at most "
                               f"{MAX_QUBITS}. Use fewer qubits.")
        self.noise = noise
        self.clock = [0.0] * n
        self.measured = {}  # qubit -> clbit
        # (parameter, qubit, idle ns) of every idle's detuning phase.
        self.detunings = []
        self.out = QuantumCircuit(n, len(qc.clbits))
        # Initial state: each qubit thermally excited with probability pe.
        if noise["thermal"] is not None:
            for q in range(n):
                self.out.append(noise["thermal"], [q])
        for ins in qc.data:
            qubits = [qc.find_bit(b).index for b in ins.qubits]
            clbits = [qc.find_bit(b).index for b in ins.clbits]
            self.instruction(ins.operation, qubits, clbits)
        if not self.measured:
            raise RequestError("The circuit measures nothing; add a measurement.")
        # Readout starts together: every qubit waits for the last one.
        self.duration_ns = self.sync(range(n))
        for q in self.measured:
            self.out.append(noise["readout"], [q])

    def sync(self, qs):
        qs = list(qs)
        start = max((self.clock[q] for q in qs), default=0.0)
        for q in qs:
            self.idle(q, start - self.clock[q])
            self.clock[q] = start
        return start

    def relax(self, q, t_ns):
        err = relax_error(self.noise, t_ns)
        if err is not None:
            self.out.append(err, [q])

    def idle(self, q, t_ns):
        """Free evolution: relaxation, then the detuning's phase delta_q * t."""
        if t_ns <= 0:
            return
        self.relax(q, t_ns)
        if self.noise["sigma"] > 0:
            angle = Parameter(f"detuning_{len(self.detunings)}")
            self.out.p(angle, q)
            self.detunings.append((angle, q, t_ns))

    def phase(self, q, phi):
        self.out.p(phi, q)  # virtual: a frame change, no time, no error

    def pulse(self, q, axis, theta):
        start = self.sync([q])
        angle = theta * self.noise["drive_bias"]  # a miscalibrated drive over/under-rotates
        (self.out.rx if axis == "x" else self.out.ry)(angle, q)
        self.relax(q, self.noise["gate_1q_ns"])
        if self.noise["dep1"] is not None:
            self.out.append(self.noise["dep1"], [q])
        self.clock[q] = start + self.noise["gate_1q_ns"]

    def two_qubit(self, name, a, b):
        start = self.sync([a, b])
        getattr(self.out, name)(a, b)
        self.relax(a, self.noise["gate_2q_ns"])
        self.relax(b, self.noise["gate_2q_ns"])
        if self.noise["dep2"] is not None:
            self.out.append(self.noise["dep2"], [a, b])
        self.clock[a] = self.clock[b] = start + self.noise["gate_2q_ns"]

    def gate(self, name, qs, params):
        q = qs[0]
        if name in self.VIRTUAL:
            self.phase(q, self.VIRTUAL[name])
        elif name in ("rz", "p", "u1"):
            self.phase(q, params[0])
        elif name in ("x", "y"):
            self.pulse(q, name, PI)
        elif name in ("rx", "ry"):
            self.pulse(q, name[1], params[0])
        elif name == "sx":
            self.pulse(q, "x", PI / 2)
        elif name == "h":  # H = ry(pi/2) . Z
            self.phase(q, PI)
            self.pulse(q, "y", PI / 2)
        elif name in ("u", "u3", "u2"):  # U(theta, phi, lambda) = Rz(phi) Ry(theta) Rz(lambda)
            theta, phi, lam = (PI / 2, *params) if name == "u2" else params
            self.phase(q, lam)
            self.pulse(q, "y", theta)
            self.phase(q, phi)
        elif name in ("cx", "cz", "swap"):
            self.two_qubit(name, qs[0], qs[1])
        elif name == "ccx":
            for step in self.CCX:
                self.gate(step[0], [qs[i] for i in step[1:]], [])
        else:
            raise AssertionError(name)

    def instruction(self, op, qs, cs):
        name = op.name
        touched = [q for q in qs if q in self.measured]
        if touched:
            raise RequestError(f"'{name}' acts on qubit {touched[0]} after its measurement; "
                               "measurements must come last on each qubit.")
        if name == "measure":
            if cs[0] in self.measured.values():
                raise RequestError(f"Classical bit {cs[0]} is written twice; measure each bit once.")
            self.measured[qs[0]] = cs[0]
        elif name == "barrier":
            self.sync(qs)
        elif name == "reset":
            self.sync(qs)
            self.out.reset(qs[0])
        elif name == "delay":
            if op.unit not in NS_PER_UNIT:
                raise RequestError(f"Delay unit '{op.unit}' is not supported; use ns, us, ms, s or dt.")
            start = self.sync(qs)
            t = float(op.duration) * NS_PER_UNIT[op.unit]
            self.idle(qs[0], t)
            self.clock[qs[0]] = start + max(t, 0.0)
        elif name in GATES:
            self.gate(name, qs, [float(p) for p in op.params])
        elif name not in STANDARD and getattr(op, "definition", None) is not None:
            # A `gate` defined in the program: run its body on these qubits.
            body = op.definition
            for ins in body.data:
                self.instruction(ins.operation, [qs[body.find_bit(b).index] for b in ins.qubits], [])
        else:
            raise RequestError(f"Instruction '{name}' is not supported; use the gates "
                               f"{', '.join(GATES)}, measure, reset, barrier or delay.")


class Lowered:
    """A program as this executor runs it: the explicit noisy circuit (its
    probabilities saved, no measurement), the measured qubit -> clbit map,
    the classical registers, and the quadrature the detuning needs."""

    def __init__(self, qasm, noise, nodes=None):
        qc = parse_program(qasm)
        low = Lowering(qc, noise)
        self.circuit = low.out
        self.measured = low.measured
        self.registers = registers_of(qc)
        self.qubits = list(low.measured)
        self.circuit.save_probabilities(self.qubits)
        self.detunings = low.detunings
        self.sigma = noise["sigma"]
        self.duration_ns = low.duration_ns
        self.nodes = nodes if nodes is not None else \
            quadrature_nodes(self.sigma, self.duration_ns, qc.num_qubits)
        self.quadrature_error = quadrature_error(self.sigma * self.duration_ns, self.nodes)

    def probabilities(self):
        """Exact outcome probabilities over the measured qubits (index bit k
        = self.qubits[k]), readout confusion included: the weighted average
        over the product grid of detuning nodes of the qubits that idle."""
        if not self.detunings:
            return np.asarray(simulator().run(self.circuit).result().data(0)["probabilities"])
        x, w = gauss_hermite(self.nodes)
        idling = sorted({q for _, q, _ in self.detunings})
        column = {q: j for j, q in enumerate(idling)}
        # Every branch's node index per idling qubit, in row-major order.
        grid = np.indices([self.nodes] * len(idling)).reshape(len(idling), -1).T
        delta = math.sqrt(2) * self.sigma * x[grid]  # (branches, idling qubits) in rad/ns
        weights = np.prod(w[grid], axis=1)
        binds = {angle: list(delta[:, column[q]] * t) for angle, q, t in self.detunings}
        result = simulator().run(self.circuit, parameter_binds=[binds]).result()
        return sum(weights[b] * np.asarray(result.data(b)["probabilities"]) for b in range(len(weights)))

    def keyed(self, values_of_index):
        """{counts key: value} of a vector over the measured qubits' outcomes."""
        nbits = self.circuit.num_clbits
        out = {}
        for index, v in enumerate(values_of_index):
            values = [0] * nbits
            for k, q in enumerate(self.qubits):
                values[self.measured[q]] = (index >> k) & 1
            key = key_of(values, self.registers)
            out[key] = out.get(key, 0) + v
        return out


def lower(qasm, noise, nodes=None):
    """A program lowered under a model from noise_from_profile; `nodes`
    overrides the quadrature's K (the cross-check uses synqc's)."""
    return Lowered(qasm, noise, nodes)


def simulator():
    return AerSimulator(method="density_matrix", max_parallel_threads=1)


# ---------------------------------------------------------------- execution

def exact_distribution(qasm, noise_profile, nodes=None):
    """Exact outcome probabilities (readout confusion included), keyed like counts."""
    low = lower(qasm, noise_from_profile(noise_profile), nodes)
    return {k: float(p) for k, p in low.keyed(low.probabilities()).items()}


def run_circuit(lowered, shots, seed):
    """Counts of one lowered circuit. This is the function to replace with your driver.

    The shots are drawn from the exact mixture over the detuning grid (Aer's
    probabilities, averaged) by one multinomial draw of a numpy generator
    seeded with `seed`: the same law as sampling each shot's detuning and
    then its outcome, without a run per branch."""
    p = np.clip(lowered.probabilities(), 0.0, None)
    drawn = np.random.default_rng(seed).multinomial(shots, p / p.sum())
    return {k: int(n) for k, n in lowered.keyed(drawn).items() if n > 0}


def handle_run(req):
    circuits = req.get("circuits")
    if not isinstance(circuits, list) or not circuits:
        raise RequestError("run needs a non-empty list 'circuits'; send at least one circuit.")
    seed = req.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise RequestError("seed must be a non-negative integer; send the run's seed.")
    noise = noise_from_profile(req.get("noise_profile"))
    lowered = []  # every circuit is checked before any runs
    for i, c in enumerate(circuits):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            raise RequestError(f"circuits[{i}] must be an object with a string 'name'.")
        shots = c.get("shots")
        if isinstance(shots, bool) or not isinstance(shots, int) or not 1 <= shots <= MAX_SHOTS:
            raise RequestError(f"circuits[{i}].shots must be an integer from 1 to {MAX_SHOTS}.")
        try:
            lowered.append(lower(c.get("qasm"), noise))
        except RequestError as e:
            raise RequestError(f"circuits[{i}] ({c['name']}): {e}") from None
    results, seeds = [], []
    for i, (c, low) in enumerate(zip(circuits, lowered)):
        # Each circuit gets a sampling stream of its own.
        s = (seed + i) % 2**64
        seeds.append(s)
        results.append({"name": c["name"], "counts": run_circuit(low, c["shots"], s)})
    metadata = {"method": "density_matrix", "qiskit": qiskit.__version__,
                "qiskit_aer": qiskit_aer.__version__,
                "sampling": "numpy_default_rng_multinomial_of_the_exact_distribution",
                "sampling_seeds": seeds,
                "quadrature_nodes": [low.nodes for low in lowered],
                "quadrature_error": [low.quadrature_error for low in lowered]}
    return {"op": "result", "id": req.get("id"), "results": results, "metadata": metadata}


def handle(req):
    op = req.get("op")
    if op == "hello":
        if req.get("protocol") != PROTOCOL:
            raise RequestError(f"Protocol {req.get('protocol')!r} is not spoken here; "
                               f"this executor speaks protocol {PROTOCOL}.")
        return {"op": "hello", "protocol": PROTOCOL,
                "backend": {"name": BACKEND, "version": qiskit_aer.__version__},
                "capabilities": {"max_qubits": MAX_QUBITS, "max_shots": MAX_SHOTS,
                                 "gates": GATES, "delay": True, "noise_profile": True}}
    if op == "ping":
        return {"op": "pong", "id": req.get("id")}
    if op == "run":
        return handle_run(req)
    raise RequestError(f"Unknown op {op!r}; send hello, ping or run.")


def error(req_id, code, message, retryable):
    return {"op": "error", "id": req_id,
            "error": {"code": code, "message": message, "retryable": retryable}}


# The name this executor reports in its handshake. synqc passes
# `--backend NAME` when a target was bound by the old service's
# SYNQC_QISKIT_BACKEND_<TARGET>=NAME; every name runs the same
# density-matrix simulation here (a lab's own driver would pick a device).
BACKEND = "aer_simulator"


def main():
    global BACKEND
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="qiskit_aer executor: %(levelname)s %(message)s")
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--backend" and args[1].strip():
        BACKEND = args[1].strip()
        if BACKEND not in ("aer_simulator", "aer_simulator_density_matrix"):
            log.warning("backend %r asked for: this executor runs Aer's density-matrix "
                        "simulation under that name", BACKEND)
    elif args:
        log.warning("ignoring arguments %r; the only option is --backend NAME", args)
    log.info("started (qiskit %s, qiskit-aer %s)", qiskit.__version__, qiskit_aer.__version__)
    while True:
        line = sys.stdin.readline()
        if not line:
            break  # synqc closed our stdin: it is stopping us
        if not line.strip():
            continue
        req_id = None
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise RequestError("A request must be a JSON object.")
            req_id = req.get("id")
            reply = handle(req)
        except json.JSONDecodeError as e:
            reply = error(None, "PROVIDER_ERROR",
                          f"The line is not JSON ({e}); send one JSON object per line.", False)
        except RequestError as e:
            reply = error(req_id, "PROVIDER_ERROR", str(e), False)
        except MemoryError:
            reply = error(req_id, "PROVIDER_CAPACITY",
                          "Out of memory simulating the circuits; retry later or use fewer qubits.",
                          True)
        except Exception as e:  # never let one request take the executor down
            log.exception("request %r failed", req_id)
            reply = error(req_id, "PROVIDER_ERROR",
                          f"The simulator failed: {e}. See the executor's log.", False)
        sys.stdout.write(json.dumps(reply, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    log.info("stdin closed, exiting")


if __name__ == "__main__":
    main()
