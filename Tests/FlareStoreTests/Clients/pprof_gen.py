"""Synthetic agent-sized CPU profiles in pprof format (gzip), for the store's
load, crash and benchmark clients. Hand-written protobuf: field numbers from
perftools.profiles (profile.proto)."""
import gzip
import random


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field, wire):
    return _varint(field << 3 | wire)


def _uint(field, value):
    return _key(field, 0) + _varint(value) if value else b""


def _bytes(field, data):
    return _key(field, 2) + _varint(len(data)) + data


def _packed(field, values):
    return _bytes(field, b"".join(_varint(v) for v in values)) if values else b""


class Universe:
    """A service's code: a fixed set of functions and of possible stacks."""

    def __init__(self, seed=1, functions=400, stacks=2000, max_depth=32):
        rng = random.Random(seed)
        self.functions = [f"svc::module{i // 20}::function_{i}" for i in range(functions)]
        self.stacks = []
        for _ in range(stacks):
            depth = rng.randint(4, max_depth)
            # Shared prefixes, like real call trees: a few roots, then variety.
            stack = [rng.randrange(0, 5)] + [rng.randrange(5, functions) for _ in range(depth - 1)]
            self.stacks.append(stack)
        # Zipf-like weights: a few hot stacks, a long tail.
        self.weights = [1.0 / (i + 1) ** 0.9 for i in range(stacks)]


def profile(universe, rng, time_ns, duration_ns=10_000_000_000, samples=1000, distinct=150,
            span_fraction=0.3, period=10_101_010):
    """One window: `samples` samples over at most `distinct` stacks, some with
    span_id/trace_id labels. Returns (gzip bytes, {function: self samples}, total samples)."""
    chosen = rng.choices(range(len(universe.stacks)), weights=universe.weights, k=distinct)
    counts = {}
    for _ in range(samples):
        stack = chosen[int(rng.random() ** 2 * len(chosen))]
        span = None
        if rng.random() < span_fraction:
            span = rng.randrange(0, 20)
        counts[(stack, span)] = counts.get((stack, span), 0) + 1

    strings = ["", "samples", "count", "cpu", "nanoseconds", "span_id", "trace_id"]
    index = {s: i for i, s in enumerate(strings)}

    def intern(s):
        if s not in index:
            index[s] = len(strings)
            strings.append(s)
        return index[s]

    body = bytearray()
    body += _bytes(1, _uint(1, 1) + _uint(2, 2))
    body += _bytes(1, _uint(1, 3) + _uint(2, 4))
    used_functions = set()
    self_totals = {}
    trace_base = rng.getrandbits(64)
    for (stack, span), n in counts.items():
        frames = universe.stacks[stack]
        used_functions.update(frames)
        leaf_first = [f + 1 for f in reversed(frames)]
        sample = _packed(1, leaf_first) + _packed(2, [n, n * period])
        if span is not None:
            span_hex = f"{(trace_base + span) & 0xFFFFFFFFFFFFFFFF or 1:016x}"
            trace_hex = f"{trace_base:016x}{span % 4 + 1:016x}"
            sample += _bytes(3, _uint(1, index["span_id"]) + _uint(2, intern(span_hex)))
            sample += _bytes(3, _uint(1, index["trace_id"]) + _uint(2, intern(trace_hex)))
        body += _bytes(2, sample)
        name = universe.functions[frames[-1]]
        self_totals[name] = self_totals.get(name, 0) + n
    for f in sorted(used_functions):
        body += _bytes(4, _uint(1, f + 1) + _bytes(4, _uint(1, f + 1)))
    file_index = intern("src/svc.swift")
    for f in sorted(used_functions):
        name = intern(universe.functions[f])
        body += _bytes(5, _uint(1, f + 1) + _uint(2, name) + _uint(3, name) + _uint(4, file_index))
    for s in strings:
        body += _bytes(6, s.encode())
    body += _uint(9, time_ns) + _uint(10, duration_ns)
    body += _bytes(11, _uint(1, 3) + _uint(2, 4)) + _uint(12, period)
    return gzip.compress(bytes(body), 6), self_totals, samples
