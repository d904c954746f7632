#!/usr/bin/env python3
"""Fault executor: alive (answers hello and ping) but never answers a run,
so synqc's request timeout has to end the attempt."""

import proto

NAME = "fault_hang"


def on_run(req):
    proto.log(NAME, f"ignoring run request {req.get('id')}")
    return None


proto.serve(NAME, on_run)
