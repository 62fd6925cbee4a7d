"""Minimal pprof (perftools.profiles.Profile) writer and reader for the viewer
tests, written from the published schema's field numbers and independent of
Flare's own codec, so the tests can state expected results on their own."""

import gzip
import zlib


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _key(field, wire):
    return _varint(field << 3 | wire)


def _uint(field, value):
    return _key(field, 0) + _varint(value)


def _bytes(field, data):
    return _key(field, 2) + _varint(len(data)) + data


def _packed(field, values):
    return _bytes(field, b"".join(_varint(v) for v in values))


def write_profile(samples, time_ns=0, duration_ns=10_000_000_000, period=10_000_000, start_lines=None):
    """samples: [(frames root first as [(name, file)], count, {label: value})];
    start_lines: {name: the function's first line}. Returns gzip-compressed
    pprof bytes with samples/count and cpu/nanoseconds."""
    strings = [""]
    index = {"": 0}

    def s(text):
        if text not in index:
            index[text] = len(strings)
            strings.append(text)
        return index[text]

    functions = {}
    body = bytearray()
    body += _bytes(1, _uint(1, s("samples")) + _uint(2, s("count")))
    body += _bytes(1, _uint(1, s("cpu")) + _uint(2, s("nanoseconds")))
    for frames, count, labels in samples:
        ids = []
        for name, file in reversed(frames):  # leaf first
            key = (name, file)
            if key not in functions:
                functions[key] = len(functions) + 1
            ids.append(functions[key])
        sample = _packed(1, ids) + _packed(2, [count, count * period])
        for k, v in sorted(labels.items()):
            sample += _bytes(3, _uint(1, s(k)) + _uint(2, s(v)))
        body += _bytes(2, sample)
    for (name, file), fid in functions.items():
        body += _bytes(4, _uint(1, fid) + _bytes(4, _uint(1, fid)))  # location id = function id, one line
        line = (start_lines or {}).get(name, 0)
        body += _bytes(5, _uint(1, fid) + _uint(2, s(name)) + _uint(3, s(name)) + _uint(4, s(file)) + (_uint(5, line) if line else b""))
    tail = _uint(9, time_ns) + _uint(10, duration_ns) + _bytes(11, _uint(1, s("cpu")) + _uint(2, s("nanoseconds"))) + _uint(12, period)
    for text in strings:
        body += _bytes(6, text.encode())
    return gzip.compress(bytes(body + tail))


def _fields(data):
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(data, i)
        elif wire == 2:
            n, i = _read_varint(data, i)
            value = data[i:i + n]
            i += n
        elif wire == 1:
            value = int.from_bytes(data[i:i + 8], "little")
            i += 8
        elif wire == 5:
            value = int.from_bytes(data[i:i + 4], "little")
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield field, wire, value


def _read_varint(data, i):
    result = shift = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _ints(wire, value):
    if wire == 0:
        return [value]
    out, i = [], 0
    while i < len(value):
        v, i = _read_varint(value, i)
        out.append(v)
    return out


def read_profile(raw):
    """Returns (sample_types, samples) with samples as dicts
    {frames: [(name, file)] leaf first (inlined calls expanded), values: [...], labels: {k: v}}."""
    if raw[:2] == b"\x1f\x8b":
        raw = zlib.decompress(raw, 47)
    strings, types, samples, locations, functions = [], [], [], {}, {}
    for field, wire, value in _fields(raw):
        if field == 6:
            strings.append(value.decode("utf-8", "replace"))
        elif field == 1:
            t = dict((f, v) for f, _, v in _fields(value))
            types.append((t.get(1, 0), t.get(2, 0)))
        elif field == 2:
            sample = {"locations": [], "values": [], "labels": []}
            for f, w, v in _fields(value):
                if f == 1:
                    sample["locations"] += _ints(w, v)
                elif f == 2:
                    sample["values"] += _ints(w, v)
                elif f == 3:
                    sample["labels"].append(dict((lf, lv) for lf, _, lv in _fields(v)))
            samples.append(sample)
        elif field == 4:
            loc_id, lines = 0, []
            for f, w, v in _fields(value):
                if f == 1:
                    loc_id = v
                elif f == 4:
                    lines.append(dict((lf, lv) for lf, _, lv in _fields(v)).get(1, 0))
            locations[loc_id] = lines
        elif field == 5:
            fn = dict((f, v) for f, _, v in _fields(value))
            functions[fn.get(1, 0)] = (fn.get(2, 0), fn.get(4, 0))
    sample_types = [(strings[t], strings[u]) for t, u in types]
    result = []
    for sample in samples:
        frames = []
        for loc in sample["locations"]:
            # Lines of one location: the innermost (inlined) first, as pprof stores them.
            for function_id in locations.get(loc, []):
                name, file = functions.get(function_id, (0, 0))
                frames.append((strings[name], strings[file]))
        labels = {strings[l.get(1, 0)]: strings[l.get(2, 0)] for l in sample["labels"] if l.get(2)}
        result.append({"frames": frames, "values": sample["values"], "labels": labels})
    return sample_types, result


def value_index(sample_types, kind="samples"):
    for i, (t, _) in enumerate(sample_types):
        if t == kind:
            return i
    return 0


def tree_of(samples, index, keep=lambda s: True):
    """The call tree as {root-first path tuple of names: total}, from samples."""
    totals = {}
    for s in samples:
        if not keep(s):
            continue
        v = s["values"][index]
        if v == 0:
            continue
        path = ()
        totals[path] = totals.get(path, 0) + v
        for name, _ in reversed(s["frames"]):
            path = path + (name,)
            totals[path] = totals.get(path, 0) + v
    return totals
