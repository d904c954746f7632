#!/usr/bin/env python3
"""Fault executor: dies in the middle of a run the first time it sees that
run_id, then behaves (every shot on the all-zero key).

The run ids already crashed on are kept, one a line, in the file named by
CRASH_ONCE_STATE, so the restarted process knows the run was attempted
(synqc restarts a dead executor and retries the run).
"""

import os
import sys

import proto

NAME = "fault_crash_once"
STATE = os.environ.get("CRASH_ONCE_STATE")
if not STATE:
    proto.log(NAME, "set CRASH_ONCE_STATE to a file path for the crashed run ids")
    sys.exit(2)


def on_run(req):
    seen = open(STATE).read().split() if os.path.exists(STATE) else []
    if req["run_id"] not in seen:
        with open(STATE, "a") as f:  # on disk before dying, or the retry would crash again
            f.write(req["run_id"] + "\n")
            f.flush()
            os.fsync(f.fileno())
        proto.log(NAME, f"crashing mid-run {req['run_id']}")
        os._exit(3)  # no reply, no cleanup: as a crash
    return proto.result(req, proto.zero_results(req))


proto.serve(NAME, on_run)
