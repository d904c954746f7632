#!/usr/bin/env python3
"""Fault executor: answers every run with garbage of the kind named by
GARBAGE_MODE, hello and ping correctly:

  bad_json         a line that is not JSON
  wrong_id         a well-formed result for another request id
  bad_sum          counts summing to one shot more than asked
  missing_circuit  a result without the request's last circuit
"""

import os
import sys

import proto

NAME = "fault_garbage"
MODE = os.environ.get("GARBAGE_MODE", "")


def bad_json(req):
    return '{"op":"result","id":' + '"' + str(req["id"]) + '","results":[\n'


def wrong_id(req):
    return proto.result({**req, "id": f"{req['id']}-not-this-one"}, proto.zero_results(req))


def bad_sum(req):
    results = proto.zero_results(req)
    for r in results:
        for k in r["counts"]:
            r["counts"][k] += 1
    return proto.result(req, results)


def missing_circuit(req):
    return proto.result(req, proto.zero_results(req)[:-1])


MODES = {"bad_json": bad_json, "wrong_id": wrong_id, "bad_sum": bad_sum,
         "missing_circuit": missing_circuit}
if MODE not in MODES:
    proto.log(NAME, f"set GARBAGE_MODE to one of {', '.join(MODES)}")
    sys.exit(2)

proto.serve(f"{NAME}_{MODE}", MODES[MODE])
