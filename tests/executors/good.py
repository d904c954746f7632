#!/usr/bin/env python3
"""A well-behaved executor for the integration tests: every shot on the
all-zero key. With STDERR_MARK set it also writes that line on stderr at
start, so a test can find it in synqc's log."""

import os

import proto

NAME = "fake_good"
MARK = os.environ.get("STDERR_MARK")
if MARK:
    proto.log(NAME, MARK)

proto.serve(NAME, lambda req: proto.result(req, proto.zero_results(req)))
