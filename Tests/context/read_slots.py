#!/usr/bin/env python3
"""Reference reader for the Flare context ABI (docs/context-abi.md).

Reads another process's OTEL_CTX and FLARE_SLOTS mappings from outside, the
way the agent does: find the mapping in /proc/PID/maps, copy bytes with
process_vm_readv, validate everything (the bytes belong to a process we do not
trust), and answer "which span was thread TID running at time T?".

It is deliberately small and literal so the spec can be checked against it;
it is not the agent's implementation.

    read_slots.py PID                 dump FLARE_SLOTS header and slots
    read_slots.py PID TID [--at NS]   span of TID at CLOCK_MONOTONIC time NS (default now)
    read_slots.py PID --otel          decode the OTEL_CTX process context
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import struct
import sys
import time
from dataclasses import asdict, dataclass, field

SLOTS_NAME = "FLARE_SLOTS"
OTEL_CTX_NAME = "OTEL_CTX"

SLOTS_MAGIC = b"FLARESLT"
SLOTS_VERSION = 1
SLOTS_HEADER_SIZE = 64
SLOT_HEADER_SIZE = 64
ENTRY_SIZE = 128
ROOT_NAME_MAX = 72
CLOCK_MONOTONIC_ID = 1
CLOCK_TSC_ID = 256  # x86-64 time-stamp counter ticks; lookups then take --at in ticks
MAX_RING_LENGTH = 4096
MAX_SLOT_COUNT = 65536
ATTACHED = 0x01

OTEL_CTX_SIGNATURE = b"OTEL_CTX"
OTEL_CTX_VERSION = 2
OTEL_CTX_MAX_PAYLOAD = 65536  # the same cap the OpenTelemetry eBPF profiler applies
OTEL_CTX_RETRIES = 3

SLOTS_HEADER = struct.Struct("<8sIIIIIIII Q Q 8x")
SLOT_HEADER = struct.Struct("<II QQQ")  # the 32 bytes that are re-read
SLOT_SCAN = struct.Struct("<II QQQ Q")  # ... and release_time_ns (ABI 1.1)
ENTRY = struct.Struct("<Q BBH I Q 16s 8s 8s 72s")
OTEL_HEADER = struct.Struct("<8sIIQQ")

assert SLOTS_HEADER.size == 64 and SLOT_HEADER.size == 32 and ENTRY.size == 128 and OTEL_HEADER.size == 32


class ReadError(Exception):
    """The target's memory could not be read (it exited, or permission)."""


class InvalidMapping(Exception):
    """The mapping's bytes do not describe a valid v1 layout."""


# ---- memory access -------------------------------------------------------


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


_libc = ctypes.CDLL(None, use_errno=True)
_process_vm_readv = _libc.process_vm_readv
_process_vm_readv.restype = ctypes.c_ssize_t
_process_vm_readv.argtypes = [
    ctypes.c_int,
    ctypes.POINTER(_IoVec),
    ctypes.c_ulong,
    ctypes.POINTER(_IoVec),
    ctypes.c_ulong,
    ctypes.c_ulong,
]
_IOV_MAX = 1024


def read_many(pid: int, regions: list[tuple[int, int]]) -> list[bytes]:
    """Copies several remote regions, batching them into process_vm_readv calls.

    Falls back to /proc/PID/mem where process_vm_readv is unavailable (e.g. a
    seccomp filter). A short read means part of a region is unmapped: the
    target unmapped it or exited, and nothing from it can be trusted.
    """
    out: list[bytes] = []
    for start in range(0, len(regions), _IOV_MAX):
        batch = regions[start : start + _IOV_MAX]
        total = sum(n for _, n in batch)
        buf = ctypes.create_string_buffer(max(total, 1))
        local = _IoVec(ctypes.cast(buf, ctypes.c_void_p), total)
        remote = (_IoVec * len(batch))(*[_IoVec(addr, n) for addr, n in batch])
        got = _process_vm_readv(pid, ctypes.byref(local), 1, remote, len(batch), 0)
        if got < 0:
            err = ctypes.get_errno()
            if err in (errno.ENOSYS, errno.EPERM):
                out.extend(_read_proc_mem(pid, batch))
                continue
            raise ReadError(f"process_vm_readv(pid {pid}): {os.strerror(err)}")
        if got != total:
            raise ReadError(f"short read from pid {pid}: {got} of {total} bytes")
        raw = buf.raw
        offset = 0
        for _, n in batch:
            out.append(raw[offset : offset + n])
            offset += n
    return out


def read_memory(pid: int, addr: int, length: int) -> bytes:
    return read_many(pid, [(addr, length)])[0]


def _read_proc_mem(pid: int, regions: list[tuple[int, int]]) -> list[bytes]:
    try:
        fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    except OSError as e:
        raise ReadError(f"/proc/{pid}/mem: {e.strerror}") from e
    try:
        out = []
        for addr, n in regions:
            try:
                data = os.pread(fd, n, addr)
            except OSError as e:
                raise ReadError(f"/proc/{pid}/mem at {addr:#x}: {e.strerror}") from e
            if len(data) != n:
                raise ReadError(f"short read from /proc/{pid}/mem at {addr:#x}")
            out.append(data)
        return out
    finally:
        os.close(fd)


# ---- discovery -----------------------------------------------------------


@dataclass
class Mapping:
    start: int
    end: int
    perms: str
    path: str

    @property
    def size(self) -> int:
        return self.end - self.start


def mapping_names(name: str) -> set[str]:
    """Every spelling under which /proc/PID/maps can show a mapping called name.

    memfd mappings show as "/memfd:NAME (deleted)" once the fd is closed;
    anonymous ones named with PR_SET_VMA_ANON_NAME as "[anon:NAME]", and shared
    anonymous (or renamed memfd) ones as "[anon_shmem:NAME]".
    """
    return {f"/memfd:{name}", f"/memfd:{name} (deleted)", f"[anon:{name}]", f"[anon_shmem:{name}]"}


def find_mappings(pid: int, name: str) -> list[Mapping]:
    wanted = mapping_names(name)
    found = []
    try:
        with open(f"/proc/{pid}/maps", "r", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split(maxsplit=5)
                if len(parts) < 6 or parts[5] not in wanted:
                    continue
                lo, _, hi = parts[0].partition("-")
                found.append(Mapping(int(lo, 16), int(hi, 16), parts[1], parts[5]))
    except FileNotFoundError:
        return []
    return found


def namespaced_tid(pid: int, host_tid: int) -> int | None:
    """Maps a tid as the host sees it to the tid the writer sees in its own pid
    namespace: the last NSpid field. None when the thread is gone."""
    try:
        with open(f"/proc/{pid}/task/{host_tid}/status", "r", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    fields = line.split()[1:]
                    return int(fields[-1]) if fields else host_tid
    except (FileNotFoundError, ProcessLookupError):
        return None
    return host_tid  # kernels before 4.1 have no NSpid: no namespaces to map


# ---- FLARE_SLOTS ---------------------------------------------------------


@dataclass
class SlotsHeader:
    version: int
    header_size: int
    slot_size: int
    ring_length: int
    entry_size: int
    clock_id: int
    slot_count: int
    overflow_count: int
    features: int = 0
    claim_count: int = 0

    @property
    def total_size(self) -> int:
        return SLOTS_HEADER_SIZE + self.slot_count * self.slot_size

    def slot_address(self, base: int, index: int) -> int:
        return base + SLOTS_HEADER_SIZE + index * self.slot_size


def parse_slots_header(raw: bytes, mapping_size: int) -> SlotsHeader:
    if len(raw) < SLOTS_HEADER_SIZE:
        raise InvalidMapping("header truncated")
    magic, version, header_size, slot_size, ring, entry_size, clock_id, count, features, overflow, claims = (
        SLOTS_HEADER.unpack_from(raw)
    )
    if magic != SLOTS_MAGIC:
        raise InvalidMapping(f"bad magic {magic!r}")
    if version != SLOTS_VERSION:
        raise InvalidMapping(f"unsupported version {version}")
    if header_size != SLOTS_HEADER_SIZE or entry_size != ENTRY_SIZE:
        raise InvalidMapping(f"header_size {header_size} / entry_size {entry_size} are not v1's 64 / 128")
    if clock_id not in (CLOCK_MONOTONIC_ID, CLOCK_TSC_ID):
        raise InvalidMapping(f"clock_id {clock_id} is neither CLOCK_MONOTONIC (1) nor the TSC (256)")
    if ring == 0 or ring > MAX_RING_LENGTH or ring & (ring - 1):
        raise InvalidMapping(f"ring_length {ring} is not a power of two in 1..{MAX_RING_LENGTH}")
    if slot_size != SLOT_HEADER_SIZE + ring * ENTRY_SIZE:
        raise InvalidMapping(f"slot_size {slot_size} does not match ring_length {ring}")
    if count == 0 or count > MAX_SLOT_COUNT:
        raise InvalidMapping(f"slot_count {count} out of range")
    h = SlotsHeader(version, header_size, slot_size, ring, entry_size, clock_id, count, overflow, features, claims)
    if h.total_size > mapping_size:
        raise InvalidMapping(f"layout needs {h.total_size} bytes, mapping has {mapping_size}")
    return h


@dataclass
class SlotState:
    index: int
    owner_tid: int
    generation: int
    claim_time_ns: int
    head: int
    released_tid: int = 0
    release_time_ns: int = 0


@dataclass
class SlotsView:
    mapping: Mapping
    header: SlotsHeader
    slots: list[SlotState]


def read_slots(pid: int) -> tuple[list[SlotsView], list[str]]:
    """Reads the header and every slot header of each FLARE_SLOTS mapping.

    A process normally has one; a second appears when two writer libraries
    (say the C header and the Python module) live in one process. Returns the
    valid views and the reasons the others were rejected.
    """
    views, rejected = [], []
    for m in find_mappings(pid, SLOTS_NAME):
        try:
            header = parse_slots_header(read_memory(pid, m.start, SLOTS_HEADER_SIZE), m.size)
            regions = [(header.slot_address(m.start, i), SLOT_SCAN.size) for i in range(header.slot_count)]
            raws = read_many(pid, regions)
        except (InvalidMapping, ReadError) as e:
            rejected.append(f"{m.path}@{m.start:#x}: {e}")
            continue
        slots = []
        for i, raw in enumerate(raws):
            owner, released_tid, generation, claim_time_ns, head, release_time_ns = SLOT_SCAN.unpack(raw)
            slots.append(SlotState(i, owner, generation, claim_time_ns, head, released_tid, release_time_ns))
        views.append(SlotsView(m, header, slots))
    return views, rejected


@dataclass
class Entry:
    index: int
    seq: int
    flags: int
    trace_flags: int
    name_length: int
    t_ns: int
    trace_id: bytes
    span_id: bytes
    local_root_span_id: bytes
    root_span_name: bytes

    @property
    def attached(self) -> bool:
        return bool(self.flags & ATTACHED)


@dataclass
class Lookup:
    """The answer for one sample.

    kind is "span" (label the sample), "none" (the thread provably ran no span)
    or "unknown" (no label, and the agent counts the reason).
    """

    kind: str
    reason: str
    trace_id: str = ""
    span_id: str = ""
    local_root_span_id: str = ""
    trace_flags: int = 0
    root_span_name: str = ""
    entry_index: int = -1
    entry_t_ns: int = 0
    details: dict = field(default_factory=dict)


def parse_entry(raw: bytes, offset: int, index: int) -> Entry:
    seq, flags, trace_flags, name_length, _res, t_ns, trace_id, span_id, root_id, name = ENTRY.unpack_from(raw, offset)
    return Entry(index, seq, flags, trace_flags, name_length, t_ns, trace_id, span_id, root_id, name)


def resolve_slot(copy: bytes, reread: bytes, ns_tid: int, ring: int, sample_ns: int) -> Lookup:
    """Applies the reader protocol to one slot copy and its re-read header.

    copy is the whole slot taken with one read; reread is its first 32 bytes
    read again afterwards. Kept free of I/O so tests can feed it crafted bytes.
    """
    owner1, _, gen1, claim1, h1 = SLOT_HEADER.unpack_from(copy)
    owner2, _, gen2, _claim2, h2 = SLOT_HEADER.unpack_from(reread)
    details = {"H1": h1, "H2": h2, "generation": gen1, "claim_time_ns": claim1}
    if owner1 != ns_tid or owner2 != ns_tid or gen1 != gen2:
        return Lookup("unknown", "slot_changed", details=details)
    if h2 < h1:
        return Lookup("unknown", "slot_changed", details=details)  # head only grows within a generation
    if claim1 > sample_ns:
        return Lookup("unknown", "claimed_after_sample", details=details)
    if h1 == 0:
        return Lookup("none", "no_span_yet", details=details)

    # Entries [H1 - ring, H1) were complete when head was copied. Once head
    # reached H2 the writer may be rewriting index H2 - ring, so any index
    # <= H2 - ring may be torn: a ring of R entries answers for R - 1.
    lo = max(0, h1 - ring, h2 - ring + 1)
    entries: list[Entry] = []  # newest first
    for i in range(h1 - 1, lo - 1, -1):
        e = parse_entry(copy, SLOT_HEADER_SIZE + (i & (ring - 1)) * ENTRY_SIZE, i)
        torn_or_hostile = e.seq != 2 * i + 2 or e.name_length > ROOT_NAME_MAX
        time_reversed = bool(entries) and e.t_ns > entries[-1].t_ns
        if torn_or_hostile or time_reversed:
            lo = i + 1  # nothing older than a bad entry is a history we can trust
            break
        entries.append(e)

    for e in entries:
        if e.t_ns > sample_ns:
            continue
        details["entry"] = e.index
        if not e.attached:
            return Lookup("none", "detached", entry_index=e.index, entry_t_ns=e.t_ns, details=details)
        return Lookup(
            "span",
            "attached",
            trace_id=e.trace_id.hex(),
            span_id=e.span_id.hex(),
            local_root_span_id=e.local_root_span_id.hex(),
            trace_flags=e.trace_flags,
            root_span_name=e.root_span_name[: e.name_length].decode("utf-8", errors="replace"),
            entry_index=e.index,
            entry_t_ns=e.t_ns,
            details=details,
        )
    if lo == 0:
        # Every entry since the claim is here and all are newer than the sample:
        # the thread had claimed its slot but not yet attached anything.
        return Lookup("none", "no_span_yet", details=details)
    return Lookup("unknown", "ring_overrun", details=details)


def lookup(pid: int, host_tid: int, sample_ns: int) -> Lookup:
    """Which span was host_tid of pid running at CLOCK_MONOTONIC time sample_ns?"""
    if not find_mappings(pid, SLOTS_NAME):
        return Lookup("none", "no_mapping")
    ns_tid = namespaced_tid(pid, host_tid)
    if ns_tid is None:
        return Lookup("unknown", "thread_gone")
    try:
        views, rejected = read_slots(pid)
    except ReadError as e:
        return Lookup("unknown", "read_error", details={"error": str(e)})
    if not views:
        return Lookup("unknown", "bad_header", details={"rejected": rejected})

    # Several slots can name one tid only if a thread died without releasing
    # and its tid was reused; the latest claim is the live one.
    candidates = [(v, s) for v in views for s in v.slots if s.owner_tid == ns_tid]
    if not candidates:
        if any(v.header.overflow_count for v in views):
            return Lookup("unknown", "overflow")
        return Lookup("none", "no_slot")
    view, slot = max(candidates, key=lambda c: c[1].claim_time_ns)
    addr = view.header.slot_address(view.mapping.start, slot.index)
    try:
        copy = read_memory(pid, addr, view.header.slot_size)
        reread = read_memory(pid, addr, SLOT_HEADER.size)
    except ReadError as e:
        return Lookup("unknown", "read_error", details={"error": str(e)})
    result = resolve_slot(copy, reread, ns_tid, view.header.ring_length, sample_ns)
    result.details["slot"] = slot.index
    return result


def dump(pid: int) -> dict:
    views, rejected = read_slots(pid)
    return {
        "rejected": rejected,
        "mappings": [
            {
                "path": v.mapping.path,
                "start": v.mapping.start,
                "size": v.mapping.size,
                "header": asdict(v.header),
                "owned": [asdict(s) for s in v.slots if s.owner_tid],
                "released": [asdict(s) for s in v.slots if not s.owner_tid and s.released_tid],
                "generation_sum": sum(s.generation for s in v.slots),
            }
            for v in views
        ],
    }


def read_entries(pid: int, host_tid: int) -> list[Entry]:
    """All entries the tid's slot currently holds, oldest first (for tests)."""
    ns_tid = namespaced_tid(pid, host_tid)
    views, _ = read_slots(pid)
    for v in views:
        for s in v.slots:
            if s.owner_tid == ns_tid:
                copy = read_memory(pid, v.header.slot_address(v.mapping.start, s.index), v.header.slot_size)
                head = SLOT_HEADER.unpack_from(copy)[4]
                ring = v.header.ring_length
                return [
                    parse_entry(copy, SLOT_HEADER_SIZE + (i & (ring - 1)) * ENTRY_SIZE, i)
                    for i in range(max(0, head - ring), head)
                ]
    return []


# ---- OTEL_CTX ------------------------------------------------------------


class ProtobufError(Exception):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ProtobufError("truncated or overlong varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def protobuf_fields(buf: bytes):
    """Yields (field_number, wire_type, value) with every length checked."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise ProtobufError("truncated fixed64")
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if n > len(buf) - pos:
                raise ProtobufError("length past end of message")
            value, pos = buf[pos : pos + n], pos + n
        elif wire == 5:
            if pos + 4 > len(buf):
                raise ProtobufError("truncated fixed32")
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        yield number, wire, value


def decode_any_value(buf: bytes, depth: int = 0):
    if depth > 8:
        raise ProtobufError("AnyValue nested too deeply")
    value = None
    for number, wire, v in protobuf_fields(buf):
        if number == 1 and wire == 2:
            value = v.decode("utf-8", errors="replace")
        elif number == 2 and wire == 0:
            value = bool(v)
        elif number == 3 and wire == 0:
            value = v - (1 << 64) if v >= 1 << 63 else v
        elif number == 4 and wire == 1:
            value = struct.unpack("<d", v)[0]
        elif number == 5 and wire == 2:
            value = [decode_any_value(item, depth + 1) for n, w, item in protobuf_fields(v) if n == 1 and w == 2]
        elif number == 6 and wire == 2:
            value = decode_key_values([item for n, w, item in protobuf_fields(v) if n == 1 and w == 2], depth + 1)
        elif number == 7 and wire == 2:
            value = bytes(v)
    return value


def decode_key_values(items: list[bytes], depth: int = 0) -> dict:
    out = {}
    for item in items:
        key, value = None, None
        for number, wire, v in protobuf_fields(item):
            if number == 1 and wire == 2:
                key = v.decode("utf-8", errors="replace")
            elif number == 2 and wire == 2:
                value = decode_any_value(v, depth)
        if key is not None:
            out[key] = value
    return out


def decode_process_context(payload: bytes) -> dict:
    """ProcessContext{resource = 1: Resource{attributes = 1}, attributes = 2}."""
    resource_attrs: list[bytes] = []
    extra_attrs: list[bytes] = []
    for number, wire, v in protobuf_fields(payload):
        if number == 1 and wire == 2:
            resource_attrs += [a for n, w, a in protobuf_fields(v) if n == 1 and w == 2]
        elif number == 2 and wire == 2:
            extra_attrs.append(v)
    return {"resource": decode_key_values(resource_attrs), "attributes": decode_key_values(extra_attrs)}


def read_otel_ctx(pid: int) -> dict:
    """Reads and decodes the OTEL_CTX process context, re-checking the
    timestamp so a concurrent update is never returned half-written."""
    mappings = find_mappings(pid, OTEL_CTX_NAME)
    if not mappings:
        raise InvalidMapping("no OTEL_CTX mapping")
    m = mappings[0]
    last_error = "concurrent update"
    for _ in range(OTEL_CTX_RETRIES):
        (t1,) = struct.unpack("<Q", read_memory(pid, m.start + 16, 8))
        if t1 == 0:
            time.sleep(0.001)  # an update is in progress
            continue
        signature, version, size, t_hdr, pointer = OTEL_HEADER.unpack(read_memory(pid, m.start, 32))
        if signature != OTEL_CTX_SIGNATURE:
            raise InvalidMapping(f"bad signature {signature!r}")
        if version != OTEL_CTX_VERSION:
            raise InvalidMapping(f"unsupported version {version}")
        if size == 0 or size > OTEL_CTX_MAX_PAYLOAD:
            raise InvalidMapping(f"payload_size {size} out of range")
        try:
            payload = read_memory(pid, pointer, size)
        except ReadError as e:
            payload, last_error = None, str(e)  # maybe freed by an update; the re-check decides
        (t2,) = struct.unpack("<Q", read_memory(pid, m.start + 16, 8))
        if t1 != t2 or t_hdr != t1:
            continue
        if payload is None:
            raise ReadError(last_error)
        ctx = decode_process_context(payload)
        ctx.update(
            {
                "mapping": m.path,
                "mapping_size": m.size,
                "version": version,
                "payload_size": size,
                "payload_offset": pointer - m.start,
                "published_at_ns": t1,
                "payload_hex": payload.hex(),
            }
        )
        return ctx
    raise ReadError(f"OTEL_CTX kept changing: {last_error}")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    pid = int(argv[1])
    if "--otel" in argv:
        print(json.dumps(read_otel_ctx(pid), indent=2, default=str))
        return 0
    if len(argv) >= 3 and not argv[2].startswith("--"):
        at = int(argv[argv.index("--at") + 1]) if "--at" in argv else time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        print(json.dumps(asdict(lookup(pid, int(argv[2]), at)), indent=2))
        return 0
    print(json.dumps(dump(pid), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
