"""Seeded random circuits over the whole supported language, for the Aer
cross-check and the executor's own tests.

A circuit comes back twice: as OpenQASM text (what synqc and the executor
parse) and as the list of operations it means, with every angle and
duration already evaluated (what tests/aer/test_executor.py's independent
reference model executes), plus its measurements and classical registers.
"""

import math

# Angle expressions with their values: both parsers must evaluate these.
ANGLES = [("pi", math.pi), ("-pi/2", -math.pi / 2), ("pi/4", math.pi / 4),
          ("3*pi/8", 3 * math.pi / 8), ("-pi/3*2", -math.pi / 3 * 2), ("0.37", 0.37),
          ("-(pi - 0.5)", -(math.pi - 0.5))]
# Delays with their length in ns.
DELAYS = [("150ns", 150.0), ("1.5us", 1500.0), ("40dt", 40.0), ("0.002ms", 2000.0),
          ("12us", 12000.0)]
ONE_Q = ["x", "y", "z", "h", "s", "sdg", "t", "tdg", "sx", "rx", "ry", "rz", "p", "u"]
TWO_Q = ["cx", "cz", "swap"]


def angle(rng):
    if rng.random() < 0.3:
        v = rng.uniform(-2 * math.pi, 2 * math.pi)
        return repr(v), v
    return rng.choice(ANGLES)


def random_circuit(rng, n, length=None, version=3):
    """(qasm, ops, measures, registers) of a random n-qubit circuit.

    ops: tuples (name, qubits, *values); measures: (qubit, clbit) pairs;
    registers: (name, size) in declaration order, clbits numbered across them.
    OpenQASM 2 has no delay, so version 2 circuits leave it out.
    """
    length = length if length is not None else rng.randint(1, 6 * n)
    lines, ops = [], []
    q = lambda i: f"q[{i}]"  # noqa: E731
    # A defined gate, used now and then: its body is lowered like any gate.
    defined = version == 3 and n >= 2 and rng.random() < 0.5
    for _ in range(length):
        kinds = ["1q"] * 6 + ["reset", "barrier"] + (["2q"] * 3 if n >= 2 else [])
        kinds += ["delay"] * 2 if version == 3 else []
        kinds += ["ccx"] if n >= 3 else []
        kinds += ["mix"] if defined else []
        kind = rng.choice(kinds)
        if kind == "1q":
            g, a = rng.choice(ONE_Q), rng.randrange(n)
            if version == 2 and g in ("p", "u"):
                g = {"p": "u1", "u": "u3"}[g]
            if g in ("rx", "ry", "rz", "p", "u1"):
                text, v = angle(rng)
                lines.append(f"{g}({text}) {q(a)};")
                ops.append(({"u1": "p"}.get(g, g), [a], v))
            elif g in ("u", "u3"):
                (t1, v1), (t2, v2), (t3, v3) = angle(rng), angle(rng), angle(rng)
                lines.append(f"{g}({t1}, {t2}, {t3}) {q(a)};")
                ops.append(("u", [a], v1, v2, v3))
            else:
                lines.append(f"{g} {q(a)};")
                ops.append((g, [a]))
        elif kind in ("2q", "ccx", "mix"):
            k = 3 if kind == "ccx" else 2
            qs = rng.sample(range(n), k)
            g = rng.choice(TWO_Q) if kind == "2q" else kind
            if kind == "mix":
                text, v = angle(rng)
                lines.append(f"mix({text}) {q(qs[0])}, {q(qs[1])};")
                ops += [("ry", [qs[0]], v), ("cx", qs), ("rz", [qs[1]], v / 2)]
            else:
                lines.append(f"{g} {', '.join(q(i) for i in qs)};")
                ops.append((g, qs))
        elif kind == "reset":
            a = rng.randrange(n)
            lines.append(f"reset {q(a)};")
            ops.append(("reset", [a]))
        elif kind == "delay":
            a = rng.randrange(n)
            text, ns = rng.choice(DELAYS)
            lines.append(f"delay[{text}] {q(a)};")
            ops.append(("delay", [a], ns))
        else:
            if rng.random() < 0.3:
                lines.append("barrier q;")
                ops.append(("barrier", list(range(n))))
            else:
                qs = sorted(rng.sample(range(n), rng.randint(1, n)))
                lines.append(f"barrier {', '.join(q(i) for i in qs)};")
                ops.append(("barrier", qs))
    # Two classical registers; a random non-empty set of qubits measured into
    # distinct bits, some bits left unwritten (they read 0).
    k1 = rng.randint(1, n)
    k2 = rng.randint(1, n)
    registers = [("c", k1), ("d", k2)]
    measured = rng.sample(range(n), rng.randint(1, min(n, k1 + k2)))
    clbits = rng.sample(range(k1 + k2), len(measured))
    measures = list(zip(measured, clbits))
    for qb, cb in measures:
        reg, idx = ("c", cb) if cb < k1 else ("d", cb - k1)
        lines.append(f"measure {q(qb)} -> {reg}[{idx}];" if version == 2
                     else f"{reg}[{idx}] = measure {q(qb)};")
    if version == 2:
        head = ['OPENQASM 2.0;', 'include "qelib1.inc";', f"qreg q[{n}];",
                f"creg c[{k1}];", f"creg d[{k2}];"]
    else:
        head = ['OPENQASM 3.0;', 'include "stdgates.inc";']
        if defined:
            head.append("gate mix(a) x, y { ry(a) x; cx x, y; rz(a/2) y; }")
        head += [f"qubit[{n}] q;", f"bit[{k1}] c;", f"bit[{k2}] d;"]
    return "\n".join(head + lines) + "\n", ops, measures, registers
