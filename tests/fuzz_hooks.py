"""Schemathesis hooks for tests/fuzz.sh (run requests' programs, schedules' cron).

A run request's `qasm` is a program: a schema can say it is a string, not
that it is one synqc can run, so a schema-valid body with random text in
`qasm` is rightly refused (422 naming the line and column) and would read
as "a valid request rejected". Where the fuzzer drew a string for `qasm`,
it gets one of a few real programs instead (chosen by the drawn text, so a
seed still fixes the run); every other field stays as drawn, and a `qasm`
of the wrong type is left alone for the negative checks. The parser itself
is fuzzed by its own property tests (src/sim/circuit/tests.rs).
"""

import zlib

import schemathesis

PROGRAMS = [
    'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[2] c; h q[0]; cx q[0], q[1]; c = measure q;',
    'OPENQASM 2.0; include "qelib1.inc"; qreg q[3]; creg c[3]; h q[0]; cx q[0],q[1]; cx q[1],q[2]; measure q -> c;',
    'OPENQASM 3.0; include "stdgates.inc"; qubit[1] q; bit[1] c; x q[0]; delay[2us] q[0]; c[0] = measure q[0];',
    'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[1] a; bit[1] b; ry(pi/3) q[0]; reset q[1]; '
    'barrier q; cz q[0], q[1]; a[0] = measure q[0]; b[0] = measure q[1];',
]


# A five-field cron expression: the API document's pattern bounds its
# grammar, but not each field's range and step rules, so a drawn string
# gets one of these instead (the cron parsing is unit-tested in
# src/schedule/tests.rs).
CRONS = ["0 * * * *", "*/15 * * * *", "30 6 * * 1-5", "0 0 1 * *"]


def real_program(request):
    if isinstance(request, dict) and isinstance(request.get("qasm"), str):
        drawn = request["qasm"].encode("utf-8", "surrogatepass")
        request["qasm"] = PROGRAMS[zlib.crc32(drawn) % len(PROGRAMS)]


@schemathesis.hook
def map_body(ctx, body):
    # A run request is the body of POST /runs and /experiments/run, and the
    # `request` of a schedule.
    real_program(body)
    if isinstance(body, dict):
        real_program(body.get("request"))
        if isinstance(body.get("cron"), str):
            drawn = body["cron"].encode("utf-8", "surrogatepass")
            body["cron"] = CRONS[zlib.crc32(drawn) % len(CRONS)]
    return body
