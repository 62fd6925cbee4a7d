#!/usr/bin/env python3
"""End-to-end tests of the span-context ABI (docs/context-abi.md).

Each writer (clients/c/flare_context.h built as C and as C++, and
clients/python/flare_context.py) runs in a child process and follows a script;
at every checkpoint this process reads the child's mappings from outside with
the reference reader read_slots.py, exactly as the agent would, and checks
what it finds against what the writer says it did.

Run through run.sh, which installs what is needed; prints "N passed, M failed".
"""

from __future__ import annotations

import ctypes
import errno
import http.server
import json
import mmap
import os
import queue
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
HEADER = os.path.join(REPO, "clients", "c", "flare_context.h")
sys.path.insert(0, HERE)

import read_slots as rs  # noqa: E402

BUILD_DIR = tempfile.mkdtemp(prefix="flare-context-tests-")
WARNINGS = ["-Wall", "-Wextra", "-Wpedantic", "-Werror"]
TIMEOUT = 60.0


def mono() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


# ---- building the C writers ----------------------------------------------

_builds: dict[str, tuple[str | None, str]] = {}


def _run(cmd: list[str]) -> tuple[bool, str]:
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode == 0, " ".join(cmd) + "\n" + p.stdout + p.stderr


def build(kind: str) -> tuple[str | None, str]:
    """Builds a writer once; returns (path or None, compiler log)."""
    if kind in _builds:
        return _builds[kind]
    src, other = os.path.join(HERE, "writer.c"), os.path.join(HERE, "writer_other_tu.c")
    out = os.path.join(BUILD_DIR, f"writer_{kind}")
    other_obj = os.path.join(BUILD_DIR, f"other_{kind}.o")
    extra = ["-DFLARE_CONTEXT_NO_MEMFD"] if kind == "fallback" else []
    # The second translation unit is always C, so the C++ build also proves
    # that C and C++ code in one program share the header's state.
    ok, log = _run(["gcc", "-std=c11", "-O2", *WARNINGS, *extra, "-pthread", "-c", other, "-o", other_obj])
    if ok:
        if kind == "cxx":
            ok, log2 = _run(["g++", "-std=c++17", "-O2", *WARNINGS, "-pthread", "-x", "c++", src, "-x", "none",
                             other_obj, "-o", out])
        else:
            ok, log2 = _run(["gcc", "-std=c11", "-O2", *WARNINGS, *extra, "-pthread", src, other_obj, "-o", out])
        log += log2
    _builds[kind] = (out if ok else None, log)
    return _builds[kind]


def binary(kind: str) -> str:
    path, log = build(kind)
    if path is None:
        raise AssertionError(f"writer build {kind} failed:\n{log}")
    return path


# ---- driving a writer ----------------------------------------------------


class Writer:
    """A scripted writer process and the lines it printed."""

    def __init__(self, argv: list[str], env: dict | None = None) -> None:
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=full_env)
        self.lines: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self.resources: list[dict] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.ready = self.expect("READY")

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, kind: str) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"timed out waiting for {kind}") from None
            if line is None:
                raise AssertionError(f"writer exited ({self.proc.wait()}) before {kind}")
            word, _, rest = line.partition(" ")
            obj = json.loads(rest) if rest else {}
            if word == "EVENT":
                self.events.append(obj)
            elif word == "RESOURCE":
                self.resources.append(obj)
            if word == kind:
                return obj

    def go(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    @property
    def pid(self) -> int:
        return self.ready["pid"]

    @property
    def tid(self) -> int:
        return self.ready["tid"]

    def finish(self) -> None:
        """Lets the writer run to DONE and exit cleanly."""
        try:
            while True:
                self.go()
                line = self.lines.get(timeout=TIMEOUT)
                while line is not None and not line.startswith(("CHECK", "DONE")):
                    line = self.lines.get(timeout=TIMEOUT)
                if line is None or line.startswith("DONE"):
                    break
        except (BrokenPipeError, queue.Empty):
            pass
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def span_of(k: int) -> dict:
    b = k.to_bytes(8, "big")
    return {"trace_id": (b + b).hex(), "span_id": b.hex(), "root_id": bytes(x ^ 0x5A for x in b).hex()}


def anon_naming_supported() -> bool:
    """Whether this kernel names anonymous mappings (CONFIG_ANON_VMA_NAME)."""
    libc = ctypes.CDLL(None, use_errno=True)
    buf = mmap.mmap(-1, mmap.PAGESIZE)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    rc = libc.prctl(0x53564D41, ctypes.c_ulong(0), ctypes.c_ulong(addr), ctypes.c_ulong(mmap.PAGESIZE),
                    ctypes.c_char_p(b"flare-probe"))
    return rc == 0


# ---- the scenarios, run against each writer ------------------------------


class Scenarios:
    impl = ""

    def writer(self, scenario: str, *args, env: dict | None = None, prefix: list[str] | None = None) -> Writer:
        if self.impl == "python":
            argv = [sys.executable, os.path.join(HERE, "py_writer.py"), scenario, *map(str, args)]
        else:
            argv = [binary(self.impl), scenario, *map(str, args)]
            # The protocol tests compare times with CLOCK_MONOTONIC read around
            # each call; test_tsc_clock covers the C writer's default clock.
            env = {"FLARE_CLOCK": "monotonic", **(env or {})}
        w = Writer((prefix or []) + argv, env)
        self.addCleanup(w.close)
        return w

    def assertLookup(self, pid, tid, at, kind, reason=None, event=None, msg=""):
        got = rs.lookup(pid, tid, at)
        where = f"{msg} at {at}: {got}"
        self.assertEqual(got.kind, kind, where)
        if reason is not None:
            self.assertEqual(got.reason, reason, where)
        if event is not None:
            self.assertEqual(got.trace_id, event["trace_id"], where)
            self.assertEqual(got.span_id, event["span_id"], where)
            self.assertEqual(got.local_root_span_id, event["root_id"], where)
            self.assertEqual(got.trace_flags, event["trace_flags"], where)
            self.assertEqual(got.root_span_name, bytes.fromhex(event["name_hex"] or "").decode(), where)
        return got

    def test_tsc_clock(self):
        """Where the kernel keeps time with the TSC, C writers stamp with it by
        default (clock_id 256); elsewhere, and in Python, CLOCK_MONOTONIC."""
        w = self.writer("basic", env={"FLARE_CLOCK": ""})
        w.expect("CHECK")
        ev = w.events
        try:
            with open("/sys/devices/system/clocksource/clocksource0/current_clocksource") as f:
                source = f.read().strip()
        except OSError:
            source = ""
        tsc = self.impl != "python" and source == "tsc" and os.uname().machine == "x86_64"
        dump = rs.dump(w.pid)
        self.assertEqual(dump["mappings"][0]["header"]["clock_id"], rs.CLOCK_TSC_ID if tsc else rs.CLOCK_MONOTONIC_ID)
        slot = dump["mappings"][0]["owned"][0]
        entries = rs.read_entries(w.pid, w.tid)
        self.assertEqual(len(entries), len(ev))
        self.assertLessEqual(slot["claim_time_ns"], entries[0].t_ns)
        self.assertEqual(sorted(e.t_ns for e in entries), [e.t_ns for e in entries], "times never go back")
        if tsc:
            # Ticks, not nanoseconds: far from CLOCK_MONOTONIC read around the call.
            self.assertFalse(ev[0]["before"] <= entries[0].t_ns <= ev[0]["after"])
        for i, e in enumerate(entries):
            kind, reason = self.expected_after(ev[i])
            self.assertLookup(w.pid, w.tid, e.t_ns, kind, reason, ev[i] if kind == "span" else None, f"entry {i}")

    def expected_after(self, event):
        return ("span", "attached") if event["op"] == "attach" else ("none", "detached")

    def test_attach_detach_sequence_with_timestamps(self):
        w = self.writer("basic")
        w.expect("CHECK")
        ev = w.events
        self.assertEqual([e["op"] for e in ev], ["attach", "attach", "attach", "detach"])
        self.assertTrue(all(e["rc"] == 0 for e in ev), ev)

        maps = rs.find_mappings(w.pid, rs.SLOTS_NAME)
        self.assertEqual([m.path for m in maps], ["/memfd:FLARE_SLOTS (deleted)"], "one memfd mapping per process")
        dump = rs.dump(w.pid)
        self.assertEqual(dump["rejected"], [])
        h = dump["mappings"][0]["header"]
        self.assertEqual(
            h,
            {"version": 1, "header_size": 64, "slot_size": 64 + 16 * 128, "ring_length": 16, "entry_size": 128,
             "clock_id": 1, "slot_count": 256, "overflow_count": 0, "features": 1, "claim_count": 1},
        )
        self.assertGreaterEqual(maps[0].size, 64 + 256 * (64 + 16 * 128))
        owned = dump["mappings"][0]["owned"]
        self.assertEqual(len(owned), 1, "both translation units must share the thread's slot")
        slot = owned[0]
        self.assertEqual(slot["owner_tid"], w.tid)
        self.assertEqual(slot["generation"], 1)
        self.assertEqual(slot["head"], 4)
        self.assertTrue(ev[0]["before"] <= slot["claim_time_ns"] <= ev[0]["after"], (slot, ev[0]))

        entries = rs.read_entries(w.pid, w.tid)
        self.assertEqual([e.index for e in entries], [0, 1, 2, 3])
        for e, x in zip(entries, ev):
            self.assertEqual(e.seq, 2 * e.index + 2)
            self.assertTrue(x["before"] <= e.t_ns <= x["after"], "t_ns is CLOCK_MONOTONIC at the call")
            self.assertEqual(e.attached, x["op"] == "attach")
            if x["op"] == "attach":
                self.assertEqual((e.trace_id.hex(), e.span_id.hex(), e.local_root_span_id.hex(), e.trace_flags),
                                 (x["trace_id"], x["span_id"], x["root_id"], x["trace_flags"]))
            else:
                self.assertEqual((e.flags, e.trace_flags, e.name_length), (0, 0, 0))
                self.assertEqual(e.trace_id + e.span_id + e.local_root_span_id, bytes(32), "detach has zero ids")
        self.assertGreaterEqual(entries[0].t_ns, slot["claim_time_ns"], "claimed before the first entry")

        # Before the claim nothing can be known; between claim and first entry
        # the thread provably ran no span.
        self.assertLookup(w.pid, w.tid, slot["claim_time_ns"] - 1, "unknown", "claimed_after_sample")
        if entries[0].t_ns > slot["claim_time_ns"]:
            self.assertLookup(w.pid, w.tid, slot["claim_time_ns"], "none", "no_span_yet")
        # Exact boundaries: an entry applies from its own t_ns on.
        for i, e in enumerate(entries):
            kind, reason = self.expected_after(ev[i])
            self.assertLookup(w.pid, w.tid, e.t_ns, kind, reason, ev[i] if kind == "span" else None, f"entry {i}")
            if i and entries[i - 1].t_ns < e.t_ns:
                pk, pr = self.expected_after(ev[i - 1])
                self.assertLookup(w.pid, w.tid, e.t_ns - 1, pk, pr, ev[i - 1] if pk == "span" else None)
        # Midpoints of the windows between calls.
        for i in range(len(ev) - 1):
            mid = (ev[i]["after"] + ev[i + 1]["before"]) // 2
            kind, reason = self.expected_after(ev[i])
            self.assertLookup(w.pid, w.tid, mid, kind, reason, ev[i] if kind == "span" else None, f"window {i}")
        self.assertLookup(w.pid, w.tid, mono(), "none", "detached")
        w.finish()

    def test_process_context_resource_and_update(self):
        w = self.writer("basic")
        w.expect("CHECK")
        self.assertEqual(w.resources[0]["rc"], 0)
        boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        ctx = rs.read_otel_ctx(w.pid)
        self.assertEqual(
            ctx["resource"],
            {"service.name": "checkout", "service.version": "1.2.3", "deployment.environment.name": "prod"},
        )
        self.assertEqual(ctx["attributes"], {})
        self.assertEqual(ctx["mapping"], "/memfd:OTEL_CTX (deleted)")
        self.assertEqual(ctx["mapping_size"], 2 * mmap.PAGESIZE)
        self.assertEqual((ctx["version"], ctx["payload_offset"]), (2, 32))
        self.assertTrue(0 < ctx["published_at_ns"] <= boot, "published_at_ns is CLOCK_BOOTTIME")
        payload = bytes.fromhex(ctx["payload_hex"])
        self.assertEqual(payload[0], 0x0A, "ProcessContext.resource is field 1, length-delimited")
        self.assert_protobuf_resource(payload, ctx["resource"])

        w.go()
        w.expect("CHECK")
        self.assertEqual(w.resources[1]["rc"], 0)
        ctx2 = rs.read_otel_ctx(w.pid)
        self.assertEqual(ctx2["resource"], {"service.name": "checkout", "service.version": "1.2.4"})
        self.assertGreater(ctx2["published_at_ns"], ctx["published_at_ns"], "an update moves the timestamp")
        self.assertEqual(len(rs.find_mappings(w.pid, rs.OTEL_CTX_NAME)), 1, "updated in place")
        w.finish()

    def assert_protobuf_resource(self, payload: bytes, expected: dict):
        """Decodes the Resource with the official generated protobuf classes,
        an independent check on the hand-written encoders."""
        try:
            from opentelemetry.proto.resource.v1 import resource_pb2
        except ImportError:
            self.fail("opentelemetry-proto is needed to cross-check the payload (run through run.sh)")
        fields = list(rs.protobuf_fields(payload))
        self.assertEqual([(n, wt) for n, wt, _ in fields], [(1, 2)])
        resource = resource_pb2.Resource.FromString(fields[0][2])
        decoded = {kv.key: kv.value.string_value for kv in resource.attributes}
        self.assertEqual(decoded, expected)

    def test_ring_wraparound(self):
        w = self.writer("wrap", 40)
        w.expect("CHECK")
        ev = w.events
        self.assertEqual(len(ev), 40)
        owned = rs.dump(w.pid)["mappings"][0]["owned"]
        self.assertEqual(owned[0]["head"], 40)
        entries = rs.read_entries(w.pid, w.tid)
        self.assertEqual([e.index for e in entries], list(range(24, 40)), "the ring keeps the newest 16")
        # With head at 40 the writer's next entry (40) reuses index 24's place,
        # so only 25..39 are trustworthy: a ring of R answers for R - 1.
        for i in range(len(ev)):
            end = ev[i + 1]["before"] if i + 1 < len(ev) else mono()
            mid = (ev[i]["after"] + end) // 2
            if i >= 25:
                kind, reason = self.expected_after(ev[i])
                self.assertLookup(w.pid, w.tid, mid, kind, reason, ev[i] if kind == "span" else None, f"op {i}")
            else:
                # The entry that was current then has been overwritten: no guess.
                self.assertLookup(w.pid, w.tid, mid, "unknown", "ring_overrun", msg=f"op {i}")
        w.finish()

    def test_root_span_name_truncation(self):
        w = self.writer("names")
        w.expect("CHECK")
        entries = rs.read_entries(w.pid, w.tid)
        expected = [
            "\u00e9" * 36,  # 100 bytes of two-byte characters cut to 72
            "a" + "\u00e9" * 35,  # 72 would split a character: 71 bytes
            "\U0001f525" * 18,  # 18 four-byte characters are exactly 72
            "x" * 72,
            "",
            "",  # NULL / None name
        ]
        self.assertEqual(len(entries), len(expected))
        for e, want in zip(entries, expected):
            raw = e.root_span_name[: e.name_length]
            self.assertLessEqual(e.name_length, 72)
            self.assertEqual(raw.decode("utf-8"), want)  # strict: no partial character
        for i, x in enumerate(w.events):
            got = rs.lookup(w.pid, w.tid, entries[i].t_ns)
            self.assertEqual(got.root_span_name, expected[i])
        w.finish()

    def test_thread_churn_frees_every_slot(self):
        threads = 3000
        w = self.writer("churn", threads)
        w.expect("CHECK")
        deadline = time.monotonic() + 5
        while True:
            m = rs.dump(w.pid)["mappings"][0]
            if not m["owned"] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(m["owned"], [], "every exited thread released its slot")
        self.assertEqual(m["generation_sum"], threads, "each thread claimed (and published into) a slot")
        self.assertEqual(m["header"]["overflow_count"], 0)
        # ABI 1.1: each release left its thread's tid and time, after the
        # slot's claim, and the counter moved once per claim and per release.
        self.assertEqual(m["header"]["features"] & 1, 1)
        self.assertEqual(m["header"]["claim_count"], 2 * threads)
        used = min(threads, m["header"]["slot_count"])
        self.assertEqual(len(m["released"]), used, "every used slot shows its last release")
        for s in m["released"]:
            self.assertGreaterEqual(s["release_time_ns"], s["claim_time_ns"])
        w.finish()

    def test_overflow_is_counted_and_never_guessed(self):
        w = self.writer("overflow", 6, env={"FLARE_SLOT_COUNT": "4"})
        check = w.expect("CHECK")
        m = rs.dump(w.pid)["mappings"][0]
        self.assertEqual(m["header"]["slot_count"], 4)
        self.assertEqual(m["header"]["overflow_count"], 2)
        rcs = sorted(rc for _, rc, _ in check["threads"])
        self.assertEqual(rcs, [-1, -1, 0, 0, 0, 0])
        self.assertEqual(sorted(s["owner_tid"] for s in m["owned"]),
                         sorted(tid for tid, rc, _ in check["threads"] if rc == 0))
        now = mono()
        for tid, rc, k in check["threads"]:
            if rc == 0:
                got = rs.lookup(w.pid, tid, now)
                self.assertEqual((got.kind, got.span_id), ("span", span_of(k)["span_id"]))
            else:
                self.assertLookup(w.pid, tid, now, "unknown", "overflow")
        w.go()
        w.expect("CHECK")
        self.assertEqual(rs.dump(w.pid)["mappings"][0]["owned"], [])
        w.finish()

    def test_fork_child_builds_its_own_mappings(self):
        w = self.writer("fork")
        check = w.expect("CHECK")
        self.assertEqual((check["child_rc"], check["child_ctx_rc"]), (0, 0))
        child, ctid = check["child_pid"], check["child_tid"]
        now = mono()
        parent_span = self.assertLookup(w.pid, w.tid, now, "span")
        self.assertEqual(parent_span.span_id, span_of(0xAAAA)["span_id"])
        self.assertEqual(parent_span.root_span_name, "parent-root")
        child_span = self.assertLookup(child, ctid, now, "span")
        self.assertEqual(child_span.span_id, span_of(0xBBBB)["span_id"])
        self.assertEqual(child_span.root_span_name, "child-root")

        pm, cm = rs.dump(w.pid)["mappings"], rs.dump(child)["mappings"]
        self.assertEqual((len(pm), len(cm)), (1, 1), "the child did not inherit the parent's mapping")
        self.assertEqual([(s["owner_tid"], s["head"]) for s in pm[0]["owned"]], [(w.tid, 1)])
        self.assertEqual(pm[0]["generation_sum"], 1, "the child claimed nothing in the parent's mapping")
        self.assertEqual([(s["owner_tid"], s["head"]) for s in cm[0]["owned"]], [(ctid, 1)])
        self.assertEqual(rs.read_otel_ctx(w.pid)["resource"]["service.name"], "parent-svc")
        self.assertEqual(rs.read_otel_ctx(child)["resource"]["service.name"], "child-svc")
        self.assertEqual(len(rs.find_mappings(child, rs.OTEL_CTX_NAME)), 1)
        w.go()
        reaped = w.expect("CHECK")
        self.assertEqual(reaped["child_status"], 0)
        w.finish()

    def test_concurrent_reads_are_never_torn(self):
        w = self.writer("stress")
        tid = w.expect("CHECK")["writer_tid"]
        outcomes: dict[str, int] = {}
        checked = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            # "Now" mostly lands before the oldest entry by the time the copy is
            # made; a far-future sample always asks for the newest entry.
            for at in (mono(), mono() + 10**12):
                got = rs.lookup(w.pid, tid, at)
                outcomes[f"{got.kind}/{got.reason}"] = outcomes.get(f"{got.kind}/{got.reason}", 0) + 1
                if got.kind != "span":
                    continue
                k = int(got.span_id, 16)
                want = span_of(k)
                self.assertEqual((got.trace_id, got.local_root_span_id, got.root_span_name),
                                 (want["trace_id"], want["root_id"], f"op-{k}"), "torn entry accepted")
                checked += 1
        self.assertGreater(checked, 100, outcomes)
        w.go()
        done = w.expect("CHECK")
        self.assertGreater(done["written"], checked)
        w.finish()

    def test_fallback_anonymous_mapping(self):
        if self.impl == "python":
            w = self.writer("fallback")
        else:
            path = binary("fallback")
            w = Writer([path, "fallback"])
            self.addCleanup(w.close)
        check = w.expect("CHECK")
        maps = rs.find_mappings(w.pid, rs.SLOTS_NAME)
        if anon_naming_supported():
            self.assertEqual(check["rc"], 0)
            self.assertEqual([m.path for m in maps], ["[anon:FLARE_SLOTS]"])
            self.assertEqual(rs.lookup(w.pid, w.tid, mono()).span_id, span_of(0xFA11)["span_id"])
            self.assertEqual(check["ctx_rc"], 0)
            self.assertEqual([m.path for m in rs.find_mappings(w.pid, rs.OTEL_CTX_NAME)], ["[anon:OTEL_CTX]"])
        else:
            # Neither a memfd name nor an anon name: readers could never find
            # it, so the writer must not pretend to publish.
            self.assertEqual(check["rc"], -1)
            self.assertEqual(maps, [])
            self.assertEqual(check["ctx_rc"], -errno.ENOTSUP)
            self.assertEqual(rs.lookup(w.pid, w.tid, mono()).reason, "no_mapping")
        w.finish()

    def test_pid_namespace_tid_mapping(self):
        if shutil.which("unshare") is None:
            self.fail("unshare(1) is missing (util-linux)")
        probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
        if probe.returncode != 0:
            self.skipTest(f"cannot create a pid namespace here: {probe.stderr.decode().strip()}")
        w = self.writer("basic", prefix=["unshare", "--pid", "--fork", "--mount-proc"])
        w.expect("CHECK")
        self.assertEqual(w.pid, 1, "the writer runs as pid 1 of its namespace")
        children = open(f"/proc/{w.proc.pid}/task/{w.proc.pid}/children").read().split()
        host_pid = int(children[0])
        self.assertNotEqual(host_pid, w.tid)
        self.assertEqual(rs.namespaced_tid(host_pid, host_pid), w.tid)
        owned = rs.dump(host_pid)["mappings"][0]["owned"]
        self.assertEqual([s["owner_tid"] for s in owned], [1], "owner_tid is the namespaced tid")
        ev = w.events
        mid = (ev[0]["after"] + ev[1]["before"]) // 2
        self.assertLookup(host_pid, host_pid, mid, "span", "attached", ev[0])
        w.finish()


class CWriterTests(Scenarios, unittest.TestCase):
    impl = "c"


class CxxWriterTests(Scenarios, unittest.TestCase):
    impl = "cxx"


class PythonWriterTests(Scenarios, unittest.TestCase):
    impl = "python"


class HotPathTests(unittest.TestCase):
    """The attach/detach pair must stay cheap: no syscall but clock_gettime
    (a vDSO call, so strace never sees it)."""

    def test_no_syscalls_on_hot_path(self):
        if shutil.which("strace") is None:
            self.fail("strace is missing (run.sh installs it)")
        iterations = 200000
        log = os.path.join(BUILD_DIR, "strace.txt")
        p = subprocess.run(["strace", "-f", "-c", "-o", log, binary("c"), "bench", str(iterations)],
                           input="go\n", capture_output=True, text=True, timeout=120)
        if "PTRACE" in p.stderr or "Operation not permitted" in p.stderr:
            self.skipTest(f"ptrace not permitted here: {p.stderr.strip()}")
        self.assertEqual(p.returncode, 0, p.stderr)
        total = [line for line in open(log) if line.strip().endswith("total")]
        calls = int(total[0].split()[3])
        # Startup, the slot claim and the test's own output take ~50 calls;
        # one syscall per pair would add 200000.
        self.assertLess(calls, 200, open(log).read())


class BuildTests(unittest.TestCase):
    """The header builds cleanly, warnings as errors, in every dialect a user
    may compile it with."""

    def test_gcc_c11(self):
        path, log = build("c")
        self.assertIsNotNone(path, log)

    def test_gxx_cxx17(self):
        path, log = build("cxx")
        self.assertIsNotNone(path, log)

    def include_only(self, compiler: str, std: str, lang: str) -> None:
        """A translation unit that includes the header and uses nothing must
        build warning-free: that is what every user's other files do."""
        src = os.path.join(BUILD_DIR, "include_only.c")
        with open(src, "w") as f:
            f.write(f'#include "{HEADER}"\nint main(void) {{ return 0; }}\n')
        ok, log = _run([compiler, f"-std={std}", *WARNINGS, "-x", lang, "-c", src, "-o", os.devnull])
        self.assertTrue(ok, log)

    def test_older_dialects(self):
        self.include_only("gcc", "gnu99", "c")
        self.include_only("g++", "c++11", "c++")

    def test_clang(self):
        clang = shutil.which("clang")
        if clang is None:
            self.skipTest("clang not installed")
        self.include_only(clang, "c11", "c")
        self.include_only(clang, "c++17", "c++")


def slot_bytes(owner=7, generation=1, claim=100, head=0, entries=(), ring=4):
    """A slot image: entries are (index, seq, flags, t_ns, name)."""
    buf = bytearray(rs.SLOT_HEADER_SIZE + ring * rs.ENTRY_SIZE)
    struct.pack_into("<IIQQQ", buf, 0, owner, 0, generation, claim, head)
    for index, seq, flags, t_ns, name in entries:
        raw = name.encode()
        rs.ENTRY.pack_into(buf, rs.SLOT_HEADER_SIZE + (index % ring) * rs.ENTRY_SIZE, seq, flags, 1, len(raw), 0,
                           t_ns, bytes([index]) * 16, bytes([index]) * 8, bytes(8), raw)
    return bytes(buf)


class ReaderTests(unittest.TestCase):
    """The reader protocol on crafted bytes: hostile input and races."""

    def header(self, **override):
        f = {"magic": b"FLARESLT", "version": 1, "header_size": 64, "slot_size": 64 + 4 * 128, "ring": 4,
             "entry": 128, "clock": 1, "count": 2, "overflow": 0}
        f.update(override)
        return rs.SLOTS_HEADER.pack(f["magic"], f["version"], f["header_size"], f["slot_size"], f["ring"],
                                    f["entry"], f["clock"], f["count"], 0, f["overflow"], 0)

    def test_header_validation(self):
        size = 64 + 2 * (64 + 4 * 128)
        self.assertEqual(rs.parse_slots_header(self.header(), size).ring_length, 4)
        bad = {
            "magic": {"magic": b"FLARESLX"},
            "version": {"version": 2},
            "header size": {"header_size": 128},
            "entry size": {"entry": 64},
            "clock": {"clock": 0},
            "ring not power of two": {"ring": 3, "slot_size": 64 + 3 * 128},
            "slot size": {"slot_size": 64 + 5 * 128},
            "no slots": {"count": 0},
            "more slots than mapped": {"count": 3},
            "absurd slot count": {"count": 2**31},
        }
        for what, override in bad.items():
            with self.subTest(what), self.assertRaises(rs.InvalidMapping):
                rs.parse_slots_header(self.header(**override), size)
        with self.assertRaises(rs.InvalidMapping):
            rs.parse_slots_header(self.header()[:40], size)

    def test_newest_entry_at_or_before_sample(self):
        copy = slot_bytes(head=3, entries=[(0, 2, 1, 200, "a"), (1, 4, 0, 300, ""), (2, 6, 1, 400, "c")])
        hdr = copy[:32]
        self.assertEqual(rs.resolve_slot(copy, hdr, 7, 4, 250).root_span_name, "a")
        self.assertEqual(rs.resolve_slot(copy, hdr, 7, 4, 300).reason, "detached")
        self.assertEqual(rs.resolve_slot(copy, hdr, 7, 4, 10**9).root_span_name, "c")
        self.assertEqual(rs.resolve_slot(copy, hdr, 7, 4, 150).reason, "no_span_yet")
        self.assertEqual(rs.resolve_slot(copy, hdr, 7, 4, 99).reason, "claimed_after_sample")

    def test_slot_reclaimed_or_reowned_during_copy(self):
        copy = slot_bytes(head=1, entries=[(0, 2, 1, 200, "a")])
        regen = slot_bytes(generation=2, head=0)[:32]
        self.assertEqual(rs.resolve_slot(copy, regen, 7, 4, 10**9).reason, "slot_changed")
        other = slot_bytes(owner=8, head=1)[:32]
        self.assertEqual(rs.resolve_slot(copy, other, 7, 4, 10**9).reason, "slot_changed")
        self.assertEqual(rs.resolve_slot(copy, copy[:32], 9, 4, 10**9).reason, "slot_changed")

    def test_entries_overwritten_during_copy_are_rejected(self):
        # Copy saw head 5 (entries 1..4); by the re-read the writer reached
        # head 7: entries 5 and 6 replaced 1 and 2, and 7 may be replacing 3.
        entries = [(i, 2 * i + 2, 1, 100 + 10 * i, f"e{i}") for i in range(1, 5)]
        copy = slot_bytes(head=5, entries=entries)
        later = slot_bytes(head=7)[:32]
        self.assertEqual(rs.resolve_slot(copy, later, 7, 4, 10**9).root_span_name, "e4")
        self.assertEqual(rs.resolve_slot(copy, later, 7, 4, 140).root_span_name, "e4")
        self.assertEqual(rs.resolve_slot(copy, later, 7, 4, 135).reason, "ring_overrun")  # e3 is suspect
        # Without the re-read the same copy would have answered e3.
        self.assertEqual(rs.resolve_slot(copy, copy[:32], 7, 4, 135).root_span_name, "e3")

    def test_torn_and_hostile_entries(self):
        # Entry 2 is mid-write (odd seq): only entries newer than it count.
        copy = slot_bytes(head=4, entries=[(0, 2, 1, 100, "a"), (1, 4, 1, 110, "b"), (2, 5, 1, 120, "c"),
                                           (3, 8, 1, 130, "d")])
        self.assertEqual(rs.resolve_slot(copy, copy[:32], 7, 4, 10**9).root_span_name, "d")
        self.assertEqual(rs.resolve_slot(copy, copy[:32], 7, 4, 115).reason, "ring_overrun")
        # name_length past the field, time running backwards, head shrinking.
        bad_name = bytearray(slot_bytes(head=1, entries=[(0, 2, 1, 100, "a")]))
        struct.pack_into("<H", bad_name, rs.SLOT_HEADER_SIZE + 10, 200)
        self.assertEqual(rs.resolve_slot(bytes(bad_name), bytes(bad_name[:32]), 7, 4, 10**9).kind, "unknown")
        backwards = slot_bytes(head=2, entries=[(0, 2, 1, 500, "a"), (1, 4, 1, 300, "b")])
        self.assertEqual(rs.resolve_slot(backwards, backwards[:32], 7, 4, 400).root_span_name, "b")
        self.assertEqual(rs.resolve_slot(backwards, backwards[:32], 7, 4, 250).reason, "ring_overrun")
        shrunk = slot_bytes(head=1)[:32]
        self.assertEqual(rs.resolve_slot(backwards, shrunk, 7, 4, 10**9).reason, "slot_changed")

    def test_hostile_process_mapping(self):
        """A live process whose FLARE_SLOTS mapping is garbage: the reader says
        bad_header and never raises."""
        script = (
            "import os, mmap, sys\n"
            "fd = os.memfd_create('FLARE_SLOTS')\n"
            "os.ftruncate(fd, 4096)\n"
            "m = mmap.mmap(fd, 4096)\n"
            "m[0:64] = b'FLARESLT' + b'\\xff' * 56\n"
            "print('READY {\"pid\": %d, \"tid\": %d}' % (os.getpid(), os.getpid()), flush=True)\n"
            "sys.stdin.readline()\n"
        )
        w = Writer([sys.executable, "-c", script])
        self.addCleanup(w.close)
        got = rs.lookup(w.pid, w.tid, mono())
        self.assertEqual((got.kind, got.reason), ("unknown", "bad_header"))
        self.assertEqual(len(rs.dump(w.pid)["rejected"]), 1)

    def test_process_without_mappings(self):
        self.assertEqual(rs.lookup(os.getpid(), threading.get_native_id(), mono()).reason, "no_mapping")
        with self.assertRaises(rs.InvalidMapping):
            rs.read_otel_ctx(os.getpid())

    def test_thread_gone(self):
        p = subprocess.Popen([sys.executable, "-c", "pass"])
        p.wait()
        self.assertEqual(rs.namespaced_tid(p.pid, p.pid), None)
        self.assertEqual(rs.namespaced_tid(os.getpid(), threading.get_native_id()), threading.get_native_id())


class _OtlpCollector(http.server.BaseHTTPRequestHandler):
    spans: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server naming)
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        req = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        for rs_ in req.resource_spans:
            for ss in rs_.scope_spans:
                for s in ss.spans:
                    _OtlpCollector.spans.append(
                        {"name": s.name, "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                         "parent": s.parent_span_id.hex()}
                    )
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

    def log_message(self, *args):
        pass


class OpenTelemetryTests(unittest.TestCase):
    """Spans of the real OpenTelemetry SDK appear in the slot with the ids the
    SDK exported over OTLP."""

    @classmethod
    def setUpClass(cls):
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OtlpCollector)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.url = f"http://127.0.0.1:{cls.server.server_address[1]}/v1/traces"

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()

    def run_app(self, mode: str, env: dict | None = None):
        _OtlpCollector.spans = []
        w = Writer([sys.executable, os.path.join(HERE, "otel_writer.py"), mode, self.url], env)
        self.addCleanup(w.close)
        self.assertEqual(w.ready["runtime_context"], "FlareRuntimeContext")
        seen = {}
        while True:
            check = w.expect("CHECK")
            step = check["name"]
            seen[step] = check
            now = mono()
            if step in ("root", "child", "back-to-root", "remote-child", "worker", "explicit-parent"):
                got = rs.lookup(w.pid, check["tid"], now)
                self.assertEqual(got.kind, "span", (step, got))
                want_root = check["root_id"]
                want_name = check["root_name"]
                if mode == "entrypoint" and step == "explicit-parent":
                    # No span processor without install(): a parent that never
                    # became current is unknown, and the slot says so.
                    want_root, want_name = "0" * 16, ""
                self.assertEqual(
                    (got.trace_id, got.span_id, got.trace_flags, got.local_root_span_id, got.root_span_name),
                    (check["trace_id"], check["span_id"], check["trace_flags"], want_root, want_name), step)
            elif step in ("no-span", "remote-parent-only"):
                got = rs.lookup(w.pid, check["tid"], now)
                self.assertEqual((got.kind, got.reason), ("none", "detached"), step)
            elif step == "worker-exited":
                owned = [s["owner_tid"] for m in rs.dump(w.pid)["mappings"] for s in m["owned"]]
                self.assertNotIn(check["worker_tid"], owned, "a finished thread's slot is freed")
            elif step == "exported":
                w.go()
                break
            w.go()
        w.expect("DONE")
        exported = {s["span_id"]: s for s in _OtlpCollector.spans}
        for step in ("root", "child", "remote-child", "worker", "explicit-parent"):
            self.assertIn(seen[step]["span_id"], exported, f"{step} span was exported with the same id")
            self.assertEqual(exported[seen[step]["span_id"]]["trace_id"], seen[step]["trace_id"])
        self.assertEqual(seen["remote-child"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736")
        return w

    def test_install_publishes_current_spans(self):
        w = self.run_app("install")
        self.assertEqual(w.proc.wait(timeout=10), 0)

    def test_install_publishes_sdk_resource(self):
        _OtlpCollector.spans = []
        w = Writer([sys.executable, os.path.join(HERE, "otel_writer.py"), "install", self.url])
        self.addCleanup(w.close)
        w.expect("CHECK")
        ctx = rs.read_otel_ctx(w.pid)
        self.assertEqual(ctx["resource"], {"service.name": "shop", "service.version": "9.9",
                                           "deployment.environment.name": "staging"})
        w.finish()

    def test_entry_point_selects_flare_runtime_context(self):
        self.run_app("entrypoint", env={"OTEL_PYTHON_CONTEXT": "flare"})


# ---- runner --------------------------------------------------------------


def main() -> int:
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    if len(sys.argv) > 1:
        suite = unittest.defaultTestLoader.loadTestsFromNames(sys.argv[1:], sys.modules[__name__])
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stderr)
    result = runner.run(suite)
    shutil.rmtree(BUILD_DIR, ignore_errors=True)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    for test, reason in result.skipped:
        print(f"SKIPPED {test.id()}: {reason}")
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
