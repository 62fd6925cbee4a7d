#!/usr/bin/env python3
"""Concurrency check: N ingesting and M querying clients against a running
store for D seconds. Every profile must be acknowledged, and afterwards the
store must hold each acknowledged window exactly once (window count and
sample sum match). Exits non-zero on any error."""
import argparse
import http.client
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pprof_gen  # noqa: E402


def request(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.read()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--writers", type=int, default=8)
    p.add_argument("--readers", type=int, default=4)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--service", default="loadtest")
    a = p.parse_args()

    universe = pprof_gen.Universe(seed=7, functions=200, stacks=800)
    # Recent times, so retention and downsampling leave the windows alone.
    base = (int(time.time()) - 12 * 3600) * 10**9
    lo, hi = base // 10**9 - 100, base // 10**9 + 30 * 86400
    errors = []
    acked = {}            # window id -> samples
    lock = threading.Lock()
    stop = time.monotonic() + a.seconds
    queries = [0]

    def writer(w):
        rng = random.Random(w)
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
        i = 0
        while time.monotonic() < stop:
            t = base + (i * a.writers + w) * 10**10
            body, _, samples = pprof_gen.profile(universe, rng, t, samples=300, distinct=60)
            wid = f"w{w}-{i}"
            # Every fifth window is sent twice: it must still be stored once.
            for attempt in range(2 if i % 5 == 0 else 1):
                try:
                    status, data = request(conn, "POST", f"/api/v1/profiles?service={a.service}&window_id={wid}&labels=%7Bwriter%3D%22{w}%22%7D", body)
                except Exception as e:  # noqa: BLE001
                    errors.append(f"writer {w}: {e!r}")
                    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
                    continue
                if status != 200:
                    errors.append(f"writer {w}: HTTP {status} {data[:200]!r}")
                elif attempt == 0:
                    with lock:
                        acked[wid] = samples
            i += 1

    def reader(r):
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
        paths = [f"/api/v1/flamegraph?service={a.service}&from={lo}&until={hi}&max_nodes=500",
                 f"/api/v1/top?service={a.service}&from={lo}&until={hi}&limit=20",
                 "/api/v1/services",
                 f"/api/v1/totals?service={a.service}&from={lo}&until={lo + 86400}"]
        n = 0
        while time.monotonic() < stop:
            path = paths[n % len(paths)]
            # Snapshot before sending: a window acknowledged while this query
            # is in flight may or may not be visible to it.
            with lock:
                any_acked_before = bool(acked)
            try:
                status, data = request(conn, "GET", path)
            except Exception as e:  # noqa: BLE001
                errors.append(f"reader {r}: {e!r}")
                conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
                continue
            # Before the first window is acknowledged the service is unknown (404): fine.
            if status != 200 and not (status == 404 and not any_acked_before):
                errors.append(f"reader {r}: {path} HTTP {status} {data[:200]!r}")
            n += 1
            with lock:
                queries[0] += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(a.writers)]
    threads += [threading.Thread(target=reader, args=(r,)) for r in range(a.readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=120)
    status, data = request(conn, "GET", "/api/v1/services")
    services = {s["name"]: s for s in json.loads(data)["services"]}
    windows = services.get(a.service, {}).get("windows", 0)
    status, data = request(conn, "GET", f"/api/v1/top?service={a.service}&from={lo}&until={hi}&limit=1")
    total = json.loads(data).get("total", -1)
    expected_samples = sum(acked.values())
    print(f"profiles acknowledged: {len(acked)} ({len(acked) / a.seconds:.1f}/s), queries answered: {queries[0]}, "
          f"stored windows: {windows}, stored samples: {total}, expected samples: {expected_samples}, errors: {len(errors)}")
    for e in errors[:20]:
        print("error:", e)
    ok = not errors and windows == len(acked) and total == expected_samples and len(acked) > 0
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
