#!/usr/bin/env python3
"""Sends profiles to a store as fast as it answers and appends the id and
sample count of every window answered 2xx to a file (flushed and fsynced
before the next request), until killed or the store goes away."""
import argparse
import http.client
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pprof_gen  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--acked", required=True)
p.add_argument("--seconds", type=float, default=30)
a = p.parse_args()

universe = pprof_gen.Universe(seed=3, functions=150, stacks=600)
rng = random.Random(5)
base = (int(time.time()) - 3600) * 10**9
stop = time.monotonic() + a.seconds
with open(a.acked, "a") as log:
    i = 0
    while time.monotonic() < stop:
        body, _, samples = pprof_gen.profile(universe, rng, base + i * 10**10, samples=200, distinct=50)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
            conn.request("POST", f"/api/v1/profiles?service=crash&window_id=c{i}", body=body)
            r = conn.getresponse()
            r.read()
        except Exception:  # noqa: BLE001 - the store was killed
            break
        if r.status == 200:
            log.write(f"c{i} {samples}\n")
            log.flush()
            os.fsync(log.fileno())
        i += 1
