#!/usr/bin/env python3
"""Scripted writer for the context ABI tests: the Python twin of writer.c.

Runs the same scenarios and speaks the same line protocol (READY, EVENT,
RESOURCE, CHECK then wait for a stdin line, DONE), so test_context.py checks
the Python client exactly as it checks the C header.
"""

import errno
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))

import flare_context as fc  # noqa: E402


def emit(kind, obj=None):
    line = kind if obj is None else f"{kind} {json.dumps(obj)}"
    os.write(1, (line + "\n").encode())


def wait_go():
    if not sys.stdin.readline():
        sys.exit(3)


def mono():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def make_span(k):
    b = k.to_bytes(8, "big")
    return {"trace_id": b + b, "span_id": b, "root_id": bytes(x ^ 0x5A for x in b), "name": f"op-{k}"}


TID = threading.get_native_id()


def event(op, before, after, rc, span=None, flags=0, name=None):
    obj = {"op": op, "before": before, "after": after, "rc": rc, "tid": threading.get_native_id()}
    if span is not None:
        obj.update(
            trace_id=span["trace_id"].hex(),
            span_id=span["span_id"].hex(),
            root_id=span["root_id"].hex(),
            trace_flags=flags,
            name_hex=None if name is None else name.encode().hex(),
        )
    emit("EVENT", obj)


def do_attach(span, flags, name):
    before = mono()
    ok = fc.span_attach(span["trace_id"], span["span_id"], span["root_id"], flags, name)
    after = mono()
    event("attach", before, after, 0 if ok else -1, span, flags, name)
    return 0 if ok else -1


def do_detach():
    before = mono()
    ok = fc.span_detach()
    after = mono()
    event("detach", before, after, 0 if ok else -1)


def publish(*args):
    try:
        fc.publish_resource(*args)
        return 0
    except OSError as e:
        return -(e.errno or errno.EIO)


def scenario_basic():
    emit("RESOURCE", {"rc": publish("checkout", "1.2.3", "prod")})
    a, b = make_span(0xA1), make_span(0xB2)
    time.sleep(0.003)
    do_attach(a, 1, a["name"])
    time.sleep(0.003)
    b = dict(b, root_id=a["span_id"])
    do_attach(b, 1, "root-from-other-tu")
    time.sleep(0.003)
    do_attach(a, 0, a["name"])
    time.sleep(0.003)
    do_detach()
    time.sleep(0.003)
    emit("CHECK", {"name": "basic"})
    wait_go()
    emit("RESOURCE", {"rc": publish("checkout", "1.2.4", None)})
    emit("CHECK", {"name": "resource-updated"})
    wait_go()


def scenario_wrap(ops):
    for i in range(ops):
        if i % 2 == 0:
            s = make_span(i + 1000)
            do_attach(s, 1, s["name"])
        else:
            do_detach()
        time.sleep(0.001)
    emit("CHECK", {"name": "wrap", "ops": ops})
    wait_go()


def scenario_names():
    names = ["\u00e9" * 50, "a" + "\u00e9" * 50, "\U0001f525" * 20, "x" * 72, "", None]
    for i, name in enumerate(names):
        do_attach(make_span(i + 77), 1, name)
        time.sleep(0.002)
    emit("CHECK", {"name": "names"})
    wait_go()


def scenario_churn(total):
    def work(k, detach):
        s = make_span(k)
        fc.span_attach(s["trace_id"], s["span_id"], s["root_id"], 1, s["name"])
        # Half the threads end while still attached: their slot must be freed anyway.
        if detach:
            fc.span_detach()

    done = 0
    while done < total:
        batch = [threading.Thread(target=work, args=(done + i, (done + i) % 2)) for i in range(min(64, total - done))]
        for t in batch:
            t.start()
        for t in batch:
            t.join()
        done += len(batch)
    emit("CHECK", {"name": "churn", "threads": total})
    wait_go()


def scenario_overflow(threads):
    ready, go = threading.Barrier(threads + 1), threading.Barrier(threads + 1)
    results = [None] * threads

    def work(i):
        s = make_span(i + 500)
        ok = fc.span_attach(s["trace_id"], s["span_id"], s["root_id"], 1, s["name"])
        results[i] = [threading.get_native_id(), 0 if ok else -1, i + 500]
        ready.wait()
        go.wait()

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    ready.wait()
    emit("CHECK", {"name": "overflow", "threads": results})
    wait_go()
    go.wait()
    for t in ts:
        t.join()
    emit("CHECK", {"name": "overflow-exited"})
    wait_go()


def scenario_fork():
    publish("parent-svc", "1", None)
    a, b = make_span(0xAAAA), make_span(0xBBBB)
    do_attach(a, 1, "parent-root")
    ready_r, ready_w = os.pipe()
    release_r, release_w = os.pipe()
    child = os.fork()
    if child == 0:
        # Only the parent holds the write end, so the child exits if it dies.
        os.close(release_w)
        os.close(ready_r)
        rc_ctx = publish("child-svc", "2", None)
        ok = fc.span_attach(b["trace_id"], b["span_id"], b["root_id"], 1, "child-root")
        os.write(ready_w, f"{os.getpid()} {threading.get_native_id()} {0 if ok else -1} {rc_ctx}".encode())
        os._exit(0 if os.read(release_r, 1) else 7)
    os.close(release_r)
    os.close(ready_w)
    cpid, ctid, crc, cctx = (int(x) for x in os.read(ready_r, 128).split())
    emit("CHECK", {"name": "fork", "child_pid": cpid, "child_tid": ctid, "child_rc": crc, "child_ctx_rc": cctx})
    wait_go()
    os.write(release_w, b"x")
    _, status = os.waitpid(child, 0)
    emit("CHECK", {"name": "fork-reaped", "child_status": status})
    wait_go()


def scenario_stress():
    stop = threading.Event()
    info = {}

    def work():
        info["tid"] = threading.get_native_id()
        k = 1
        while not stop.is_set():
            s = make_span(k)
            fc.span_attach(s["trace_id"], s["span_id"], s["root_id"], 1, s["name"])
            k += 1
            if k % 3 == 0:
                fc.span_detach()
        info["written"] = k

    t = threading.Thread(target=work)
    t.start()
    while "tid" not in info:
        time.sleep(0.0001)
    time.sleep(0.02)
    emit("CHECK", {"name": "stress", "writer_tid": info["tid"]})
    wait_go()
    stop.set()
    t.join()
    emit("CHECK", {"name": "stress-done", "written": info["written"]})
    wait_go()


def scenario_bench(iterations):
    s = make_span(42)
    args = (s["trace_id"], s["span_id"], s["root_id"], 1, s["name"])
    fc.span_attach(*args)
    t0 = mono()
    for _ in range(iterations):
        fc.span_attach(*args)
        fc.span_detach()
    t1 = mono()
    emit("CHECK", {"name": "bench", "pair_ns": (t1 - t0) / iterations})
    wait_go()


def scenario_fallback():
    fc.use_memfd = False
    ctx_rc = publish("fallback-svc", None, None)
    rc = do_attach(make_span(0xFA11), 1, "op-64017")
    emit("CHECK", {"name": "fallback", "rc": rc, "ctx_rc": ctx_rc})
    wait_go()


def main():
    emit("READY", {"pid": os.getpid(), "tid": TID})
    scenario = sys.argv[1] if len(sys.argv) > 1 else "basic"
    arg = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    if scenario == "basic":
        scenario_basic()
    elif scenario == "wrap":
        scenario_wrap(arg or 40)
    elif scenario == "names":
        scenario_names()
    elif scenario == "churn":
        scenario_churn(arg or 3000)
    elif scenario == "overflow":
        scenario_overflow(arg or 6)
    elif scenario == "fork":
        scenario_fork()
    elif scenario == "stress":
        scenario_stress()
    elif scenario == "bench":
        scenario_bench(arg or 100000)
    elif scenario == "fallback":
        scenario_fallback()
    else:
        print(f"unknown scenario {scenario}", file=sys.stderr)
        sys.exit(2)
    emit("DONE")


if __name__ == "__main__":
    main()
