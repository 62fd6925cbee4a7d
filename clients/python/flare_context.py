"""Publish span context for the Flare profiler from Python.

Writes the two mappings specified in docs/context-abi.md, with the standard
library only:

* ``OTEL_CTX``: the OpenTelemetry process context (OTEP 4719) carrying the
  resource attributes service.name, service.version and
  deployment.environment.name.
* ``FLARE_SLOTS``: one slot per thread with a short timestamped ring of span
  attach/detach transitions (FLARE_SLOTS v1, ABI 1.1), so the profiler can tell
  which span a thread ran at the instant of each sample.

API, mirroring clients/c/flare_context.h::

    publish_resource(service_name, service_version=None, environment=None)
    span_attach(trace_id, span_id, local_root_span_id, trace_flags, root_span_name) -> bool
    span_detach() -> bool
    thread_release()

A thread's slot is freed when the thread ends (its threading.local state is
collected) or by thread_release(). After os.fork() the child owns neither
mapping (they are MADV_DONTFORK) and creates its own on first use.

Tuning, read when the FLARE_SLOTS mapping is created: FLARE_SLOT_COUNT
(default 256) and FLARE_RING_LENGTH (power of two, default 16).

Memory ordering: entries are committed with single 8-byte stores through
ctypes, in program order. That is the ordering the protocol needs on x86-64
(stores are not reordered with stores there); on weakly ordered CPUs such as
arm64 pure Python has no fence to offer, and a reader may in rare cases see a
committed seq before the entry's fields. Prefer the C header there.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import struct
import threading
import time

__all__ = [
    "publish_resource",
    "span_attach",
    "span_detach",
    "thread_release",
    "SLOTS_VERSION",
]

SLOTS_MAGIC = b"FLARESLT"
SLOTS_VERSION = 1
SLOTS_HEADER_SIZE = 64
SLOT_HEADER_SIZE = 64
ENTRY_SIZE = 128
ROOT_NAME_MAX = 72
ATTACHED = 0x01
# ABI 1.1 (docs/context-abi.md 3.5.3): releases leave released_tid and
# release_time_ns, claim_count (header offset 48) moves with every claim and
# release, and a released slot waits out RELEASE_GRACE_NS before reuse.
FEATURE_RELEASE_TIMES = 0x1
RELEASE_GRACE_NS = 1_000_000_000
_CLAIM_COUNT = 48
DEFAULT_SLOT_COUNT = 256
DEFAULT_RING_LENGTH = 16
_MAX_SLOT_COUNT = 65536
_MAX_RING_LENGTH = 4096
_MAX_MAPPING_BYTES = 256 * 1024 * 1024

OTEL_CTX_VERSION = 2
OTEL_CTX_HEADER_SIZE = 32

# Set to False to exercise the anonymous-mapping fallback (tests), or where a
# seccomp policy forbids memfd_create.
use_memfd = True

_PR_SET_VMA = 0x53564D41
_PR_SET_VMA_ANON_NAME = 0
_MFD_NOEXEC_SEAL = 0x0008
_CLOCK_MONOTONIC_ID = 1

# Header fields after the magic (offset 8..39), written before the magic.
_SLOTS_HEADER_FIELDS = struct.Struct("<IIIIIIII")
# Entry bytes 8..127: flags, trace_flags, name_length, reserved, t_ns, ids, name.
_ENTRY_BODY = struct.Struct("<BBHIQ16s8s8s72s")
_OTEL_HEADER_FIELDS = struct.Struct("<II")  # version, payload_size at offset 8
assert _ENTRY_BODY.size == ENTRY_SIZE - 8

_ZERO16 = bytes(16)
_ZERO8 = bytes(8)

_libc = ctypes.CDLL(None, use_errno=True)
_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_munmap = _libc.munmap
_munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_madvise = _libc.madvise
_madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_char_p]
_MAP_FAILED = ctypes.c_void_p(-1).value


def _now_mono() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class _Region:
    """A mapping made through libc rather than the mmap module, so that no
    Python object ever munmaps it behind our back (after fork the address may
    hold something else) and no memfd descriptor is kept open."""

    def __init__(self, addr: int, size: int) -> None:
        self.addr = addr
        self.size = size
        self.u64 = (ctypes.c_uint64 * (size // 8)).from_address(addr)
        self.u32 = (ctypes.c_uint32 * (size // 4)).from_address(addr)
        self.raw = (ctypes.c_char * size).from_address(addr)


def _map_named(name: str, size: int, shared: bool, name_memfd: bool) -> _Region | None:
    """A discoverable mapping: memfd first, else anonymous memory named with
    PR_SET_VMA_ANON_NAME; MADV_DONTFORK so children never inherit it.
    None when it could not be made findable."""
    prot = mmap.PROT_READ | mmap.PROT_WRITE
    addr = None
    via_memfd = False
    if use_memfd:
        fd = -1
        for flags in (
            os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING | _MFD_NOEXEC_SEAL,
            os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING,
        ):
            try:
                fd = os.memfd_create(name, flags)
                break
            except OSError:
                continue
        if fd >= 0:
            try:
                os.ftruncate(fd, size)
                p = _mmap(None, size, prot, mmap.MAP_SHARED if shared else mmap.MAP_PRIVATE, fd, 0)
                if p not in (None, _MAP_FAILED):
                    addr, via_memfd = p, True
            except OSError:
                pass
            finally:
                os.close(fd)
    if addr is None:
        p = _mmap(None, size, prot, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
        if p in (None, _MAP_FAILED):
            return None
        addr = p
    if _madvise(addr, size, mmap.MADV_DONTFORK) != 0:
        _munmap(addr, size)
        return None
    if not via_memfd or name_memfd:
        named = _prctl(_PR_SET_VMA, _PR_SET_VMA_ANON_NAME, addr, size, name.encode()) == 0
        if not via_memfd and not named:
            _munmap(addr, size)
            return None
    return _Region(addr, size)


class _Process:
    """Per-process state; replaced wholesale in a forked child."""

    def __init__(self) -> None:
        self.epoch = 0
        self.slots: _Region | None = None
        self.slots_failed = False
        self.slot_count = 0
        self.slot_size = 0
        self.ring_length = 0
        self.otel_ctx: _Region | None = None


_state = _Process()
_lock = threading.Lock()
_tls = threading.local()


def _env_u32(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if 0 < value <= 0xFFFFFFFF else default


def _create_slots_locked() -> None:
    ring = _env_u32("FLARE_RING_LENGTH", DEFAULT_RING_LENGTH)
    count = _env_u32("FLARE_SLOT_COUNT", DEFAULT_SLOT_COUNT)
    if ring > _MAX_RING_LENGTH or ring & (ring - 1):
        ring = DEFAULT_RING_LENGTH
    if count > _MAX_SLOT_COUNT:
        count = DEFAULT_SLOT_COUNT
    slot_size = SLOT_HEADER_SIZE + ring * ENTRY_SIZE
    if SLOTS_HEADER_SIZE + count * slot_size > _MAX_MAPPING_BYTES:
        ring, count = DEFAULT_RING_LENGTH, DEFAULT_SLOT_COUNT
        slot_size = SLOT_HEADER_SIZE + ring * ENTRY_SIZE
    region = _map_named("FLARE_SLOTS", SLOTS_HEADER_SIZE + count * slot_size, shared=True, name_memfd=False)
    if region is None:
        _state.slots_failed = True
        return
    _SLOTS_HEADER_FIELDS.pack_into(
        region.raw, 8, SLOTS_VERSION, SLOTS_HEADER_SIZE, slot_size, ring, ENTRY_SIZE, _CLOCK_MONOTONIC_ID, count,
        FEATURE_RELEASE_TIMES,
    )
    # The magic goes last, in one store, so a reader never validates a half-written header.
    region.u64[0] = int.from_bytes(SLOTS_MAGIC, "little")
    _state.slot_count, _state.slot_size, _state.ring_length = count, slot_size, ring
    _state.slots = region


class _ThreadSlot:
    """The calling thread's claimed slot. Lives in threading.local, so it is
    collected when its thread ends, and that frees the slot."""

    __slots__ = ("region", "epoch", "base", "entries", "mask", "u64_head")

    def __init__(self, region: _Region, epoch: int, base: int, ring: int) -> None:
        self.region = region
        self.epoch = epoch
        self.base = base  # byte offset of the slot in the mapping
        self.entries = base + SLOT_HEADER_SIZE
        self.mask = ring - 1
        self.u64_head = (base + 24) // 8

    def release(self) -> None:
        # A slot from before a fork lives in memory the child does not have.
        region = self.region
        if region is not None and self.epoch == _state.epoch:
            # ABI 1.1: who released it and when, before owner_tid goes to 0,
            # so readers still resolve this thread's earlier samples.
            now = _now_mono()
            region.u32[self.base // 4 + 1] = region.u32[self.base // 4]
            region.u64[(self.base + 32) // 8] = now  # release_time_ns (this mapping's clock)
            region.u64[(self.base + 40) // 8] = now  # release_mono_ns (the grace period)
            region.u32[self.base // 4] = 0
            region.u64[_CLAIM_COUNT // 8] += 1
        self.region = None

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # interpreter shutdown: module globals may be gone
            pass


class _Overflowed:
    """Marks a thread that found no free slot, so it does not rescan on every call."""

    __slots__ = ("epoch",)

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch


def _claim() -> _ThreadSlot | None:
    with _lock:
        if _state.slots is None and not _state.slots_failed:
            _create_slots_locked()
        region = _state.slots
        if region is None:
            return None
        tid = threading.get_native_id()
        count, slot_size = _state.slot_count, _state.slot_size
        # Python threads claim under _lock, so a check-then-store is a CAS here;
        # other writer libraries in this process use mappings of their own.
        # A slot released within the grace period is taken only when no other
        # free slot is: the first free one out of it, else the oldest release.
        now = _now_mono()
        chosen, oldest = None, None
        for k in range(count):
            i = (tid + k) % count
            base = SLOTS_HEADER_SIZE + i * slot_size
            if region.u32[base // 4] != 0:
                continue
            released = region.u64[(base + 40) // 8]
            if released == 0 or released > now or now - released >= RELEASE_GRACE_NS:
                chosen = base
                break
            if oldest is None or released < oldest[0]:
                oldest = (released, base)
        if chosen is None and oldest is not None:
            chosen = oldest[1]
        if chosen is not None:
            base = chosen
            region.u32[base // 4] = tid
            region.u64[(base + 24) // 8] = 0
            region.u32[base // 4 + 1] = 0  # released_tid
            region.u64[(base + 32) // 8] = 0  # release_time_ns
            region.u64[(base + 16) // 8] = _now_mono()
            region.u64[(base + 8) // 8] += 1  # generation last: it validates the claim
            region.u64[_CLAIM_COUNT // 8] += 1
            slot = _ThreadSlot(region, _state.epoch, base, _state.ring_length)
            _tls.slot = slot
            return slot
        region.u64[40 // 8] += 1  # overflow_count
        _tls.slot = _Overflowed(_state.epoch)
        return None


def _publish(flags: int, trace_flags: int, trace_id: bytes, span_id: bytes, root_id: bytes, name: bytes) -> bool:
    slot = getattr(_tls, "slot", None)
    if slot is None or slot.epoch != _state.epoch:
        slot = _claim()
        if slot is None:
            return False
    elif type(slot) is _Overflowed:
        return False
    region = slot.region
    u64 = region.u64
    n = u64[slot.u64_head]
    off = slot.entries + (n & slot.mask) * ENTRY_SIZE
    u64[off // 8] = 2 * n + 1  # seq odd: entry n is being written
    _ENTRY_BODY.pack_into(
        region.raw, off + 8, flags, trace_flags, len(name), 0, _now_mono(), trace_id, span_id, root_id, name
    )
    u64[off // 8] = 2 * n + 2  # seq even: entry n is complete
    u64[slot.u64_head] = n + 1
    return True


def _truncate_name(name) -> bytes:
    if name is None:
        return b""
    raw = name.encode("utf-8", errors="replace") if isinstance(name, str) else bytes(name)
    if len(raw) <= ROOT_NAME_MAX:
        return raw
    cut = ROOT_NAME_MAX
    while cut > 0 and raw[cut] & 0xC0 == 0x80:  # never split a UTF-8 character
        cut -= 1
    return raw[:cut]


def span_attach(
    trace_id: bytes,
    span_id: bytes,
    local_root_span_id: bytes | None,
    trace_flags: int,
    root_span_name: str | bytes | None,
) -> bool:
    """Records that the calling thread now runs the given span.

    Ids are big-endian bytes as in W3C traceparent (16, 8 and 8 bytes; the
    local root may be None when unknown). The root span name is cut to 72
    UTF-8 bytes on a character boundary. Returns False when the thread has no
    slot (all taken, or the mapping could not be made); nothing is published.
    """
    if len(trace_id) != 16 or len(span_id) != 8 or (local_root_span_id is not None and len(local_root_span_id) != 8):
        raise ValueError("trace_id must be 16 bytes, span_id and local_root_span_id 8 bytes")
    return _publish(
        ATTACHED,
        trace_flags & 0xFF,
        bytes(trace_id),
        bytes(span_id),
        bytes(local_root_span_id) if local_root_span_id is not None else _ZERO8,
        _truncate_name(root_span_name),
    )


def span_detach() -> bool:
    """Records that the calling thread no longer runs any span."""
    return _publish(0, 0, _ZERO16, _ZERO8, _ZERO8, b"")


def thread_release() -> None:
    """Frees the calling thread's slot now rather than when the thread ends."""
    slot = getattr(_tls, "slot", None)
    if isinstance(slot, _ThreadSlot):
        slot.release()
    _tls.slot = None


# ---- OTEL_CTX -------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, body: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(body)) + body


def encode_process_context(attributes: dict[str, str]) -> bytes:
    """ProcessContext{resource = 1: Resource{attributes = 1: KeyValue{key = 1,
    value = 2: AnyValue{string_value = 1}}}} (opentelemetry-proto,
    processcontext/v1development)."""
    resource = b"".join(
        _field(1, _field(1, k.encode()) + _field(2, _field(1, v.encode()))) for k, v in attributes.items()
    )
    return _field(1, resource)


def publish_resource(service_name: str, service_version: str | None = None, environment: str | None = None) -> None:
    """Publishes (or updates in place) the OpenTelemetry process context.

    Raises OSError when no discoverable mapping can be made, or when the
    encoded resource does not fit the two-page mapping.
    """
    attrs = {"service.name": service_name}
    if service_version is not None:
        attrs["service.version"] = service_version
    if environment is not None:
        attrs["deployment.environment.name"] = environment
    payload = encode_process_context(attrs)
    with _lock:
        region = _state.otel_ctx
        if region is None:
            # Two pages: the OTEP's size hint for readers that cannot see mapping names.
            region = _map_named("OTEL_CTX", 2 * mmap.PAGESIZE, shared=False, name_memfd=False)
            if region is None:
                raise OSError(errno.ENOTSUP, "cannot create a discoverable OTEL_CTX mapping")
        if len(payload) > region.size - OTEL_CTX_HEADER_SIZE:
            raise OSError(errno.E2BIG, f"process context payload of {len(payload)} bytes does not fit")
        previous = region.u64[2]
        region.u64[2] = 0  # published_at_ns = 0: update in progress
        ctypes.memmove(region.addr + OTEL_CTX_HEADER_SIZE, payload, len(payload))
        region.raw[0:8] = b"OTEL_CTX"
        _OTEL_HEADER_FIELDS.pack_into(region.raw, 8, OTEL_CTX_VERSION, len(payload))
        region.u64[3] = region.addr + OTEL_CTX_HEADER_SIZE
        # Readers detect updates by a changed timestamp, so it must move.
        region.u64[2] = max(time.clock_gettime_ns(time.CLOCK_BOOTTIME), previous + 1)
        # Named after every publication even where unsupported: eBPF readers may hook prctl.
        _prctl(_PR_SET_VMA, _PR_SET_VMA_ANON_NAME, region.addr, region.size, b"OTEL_CTX")
        _state.otel_ctx = region


# ---- fork -----------------------------------------------------------------


def _before_fork() -> None:
    _lock.acquire()


def _after_fork_in_parent() -> None:
    _lock.release()


def _after_fork_in_child() -> None:
    """Both mappings are gone from the child (MADV_DONTFORK). Start a new epoch
    so every cached slot, in this thread's threading.local included, is
    treated as foreign and the next attach builds a fresh mapping."""
    global _state, _lock
    epoch = _state.epoch + 1
    _state = _Process()
    _state.epoch = epoch
    _lock = threading.Lock()


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)
