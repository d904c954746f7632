"""The executor protocol's honest parts, shared by the fault executors here.

Each fault executor (crash_once.py, hang.py, garbage.py) answers hello and
ping correctly and gives `serve` a function for run requests; whatever it
returns is written as the reply (a dict as one JSON line, a str as is, None
for no reply). Counts are plausible: every shot on the all-zero key of the
circuit's classical registers (bit 0 rightmost, last register first).
"""

import json
import re
import sys

GATES = ["x", "y", "z", "h", "s", "sdg", "t", "tdg", "sx", "rx", "ry", "rz", "p", "u1",
         "u2", "u3", "u", "cx", "cz", "swap", "ccx"]


def log(name, msg):
    sys.stderr.write(f"{name}: {msg}\n")
    sys.stderr.flush()


def zero_key(qasm):
    """The all-zero counts key of a program: one group of zeros per
    classical register (`bit[n] c;`, `bit c;`, `creg c[n];`), last first."""
    sizes = []
    for m in re.finditer(r"\bbit\s*(?:\[\s*(\d+)\s*\])?\s+\w+\s*;|\bcreg\s+\w+\s*\[\s*(\d+)\s*\]", qasm):
        sizes.append(int(m.group(1) or m.group(2) or 1))
    return " ".join("0" * n for n in reversed(sizes)) or "0"


def zero_results(req):
    return [{"name": c["name"], "counts": {zero_key(c["qasm"]): c["shots"]}} for c in req["circuits"]]


def result(req, results):
    return {"op": "result", "id": req["id"], "results": results, "metadata": {"executor": "fault test"}}


def write(reply):
    sys.stdout.write(reply if isinstance(reply, str) else json.dumps(reply) + "\n")
    sys.stdout.flush()


def serve(name, on_run):
    """Read requests until stdin closes; hello and ping are answered here."""
    log(name, "started")
    for line in iter(sys.stdin.readline, ""):
        try:
            req = json.loads(line)
        except ValueError:
            write({"op": "error", "id": None, "error": {
                "code": "PROVIDER_ERROR", "message": "The line is not JSON.", "retryable": False}})
            continue
        op = req.get("op")
        if op == "hello":
            write({"op": "hello", "protocol": 1, "backend": {"name": name, "version": "1"},
                   "capabilities": {"max_qubits": 30, "max_shots": 1000000, "gates": GATES,
                                    "delay": True, "noise_profile": True}})
        elif op == "ping":
            write({"op": "pong", "id": req.get("id")})
        elif op == "run":
            reply = on_run(req)
            if reply is not None:
                write(reply)
        else:
            write({"op": "error", "id": req.get("id"), "error": {
                "code": "PROVIDER_ERROR", "message": f"Unknown op {op!r}.", "retryable": False}})
    log(name, "stdin closed, exiting")
