#!/usr/bin/env python3
"""Span attribution against switch rate: the ABI's timestamped ring reader beside
a naive "newest entry" reader, from the same slot copies, in one run.

The ground-truth workload of the span-label tests
(`Tests/FlareTests/Workloads/spans.c`, -O0 with frame pointers): 2 threads run
short spans in turn at RATE switches per second per thread, span K burning CPU
in its own function span_work_K, with ids that encode K and the thread
(span_id = 5A | thread << 40 | K << 32 | counter). Each run is recorded with
`flare record -F 999 --call-graph fp --compare-span-readers`, which labels every
sample twice: `span_id` (+ `trace_id`, `span_name`) from the ring reader (the
entry in force at the sample's timestamp) and `newest_span_id` from the naive
reader (the newest entry of the same copy, i.e. the span current when the
sample is read). For every sample whose stack holds span_work_K:

  labelled     the reader gave it a span
  mislabelled  that span is not one of span K's on that thread (for the ring
               reader also: trace_id does not end in span_id, or span_name is
               not span-K)

Both as % of the samples in span functions; medians over --repeats runs per rate.

Usage: benches/attribution.py [--rates 100,1000,10000] [--repeats 3] [--milliseconds 3000]
                              [--flare .build/release/flare]
Needs root (perf_event).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Tests", "viewer"))

import pprof_util  # noqa: E402  (the pprof reader the viewer tests use)

SPAN_FUNCTION = re.compile(r"^span_work_([0-9]+)$")


def read_profile(path):
    """Returns [(count, [function names, leaf first], {label key: str value})]."""
    with open(path, "rb") as f:
        _, samples = pprof_util.read_profile(f.read())
    return [(s["values"][0] if s["values"] else 1, [name for name, _ in s["frames"]], s["labels"]) for s in samples]


# --- the ground truth (as Tests/FlareTests/SpanLabelTests.swift checks it) -------

def attribution(samples, label_key):
    """(samples in span functions, labelled, mislabelled, examples) for one reader's label."""
    in_span = labelled = mislabelled = 0
    examples = []
    for count, names, labels in samples:
        k = next((int(m.group(1)) for m in map(SPAN_FUNCTION.match, names) if m), None)
        if k is None:
            continue
        in_span += count
        span_hex = labels.get(label_key)
        if not span_hex:
            continue
        labelled += count
        span = int(span_hex, 16)
        # A thread whose rename Flare has not seen yet keeps the process's name: no thread check then.
        thread_name = labels.get("thread_name", "")
        thread = int(thread_name[6:]) if thread_name.startswith("worker") and thread_name[6:].isdigit() else None
        ok = span >> 56 == 0x5A and (span >> 32) & 0xFF == k and (thread is None or thread == (span >> 40) & 0xFF)
        if label_key == "span_id":
            ok = ok and labels.get("trace_id", "").endswith(span_hex) and labels.get("span_name") == f"span-{k}"
        if not ok:
            mislabelled += count
            if len(examples) < 3:
                examples.append(f"span_work_{k} on {thread_name or '?'} labelled {label_key}={span_hex}")
    return in_span, labelled, mislabelled, examples


def percent(part, whole):
    return 100 * part / whole if whole else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="100,1000,10000", help="span switches per second per thread, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="recordings per rate")
    parser.add_argument("--milliseconds", type=int, default=3000, help="how long the workload runs per recording")
    parser.add_argument("--frequency", default="999", help="flare record -F")
    parser.add_argument("--flare", default=os.path.join(ROOT, ".build/release/flare"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("benches/attribution.py needs root: flare record opens perf_event for the workload (run it with sudo)")
    if not os.access(args.flare, os.X_OK):
        sys.exit(f"{args.flare} is missing: run `swift build -c release --product flare` first")
    rates = [int(r) for r in args.rates.split(",")]

    readers = [("ring (ABI: entry at the sample's time)", "span_id"), ("naive (newest entry when read)", "newest_span_id")]
    results = {(rate, key): [] for rate in rates for _, key in readers}
    delays = {rate: [] for rate in rates}
    with tempfile.TemporaryDirectory() as scratch:
        workload = os.path.join(scratch, "spans")
        subprocess.run(["gcc", "-pthread", "-O0", "-fno-omit-frame-pointer", "-I", os.path.join(ROOT, "clients/c"),
                        "-o", workload, os.path.join(ROOT, "Tests/FlareTests/Workloads/spans.c")], check=True)
        profile = os.path.join(scratch, "out.pb.gz")
        for repeat in range(args.repeats):
            for rate in rates:  # interleaved, so drift hits every rate alike
                command = [args.flare, "record", "-F", args.frequency, "--call-graph", "fp", "--compare-span-readers",
                           "-o", profile, "--", workload, str(rate), str(args.milliseconds)]
                result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                if result.returncode != 0:
                    sys.exit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stdout}{result.stderr}")
                samples = read_profile(profile)
                line = []
                for _, key in readers:
                    in_span, labelled, mislabelled, examples = attribution(samples, key)
                    if in_span == 0:
                        sys.exit(f"no samples in span functions at rate {rate}: is {args.flare} symbolizing the workload?")
                    results[(rate, key)].append((in_span, percent(labelled, in_span), percent(mislabelled, in_span)))
                    line.append(f"{key} {percent(labelled, in_span):.1f}% labelled, {percent(mislabelled, in_span):.2f}% mislabelled"
                                + (f" (e.g. {examples[0]})" if examples else ""))
                match = re.search(r"read delay after the sample: median ≤ ([\d.]+) ms, p99 ≤ ([\d.]+) ms", result.stdout)
                if match:
                    delays[rate].append((float(match.group(1)), float(match.group(2))))
                print(f"run {repeat + 1}/{args.repeats}, {rate}/s: {results[(rate, 'span_id')][-1][0]} samples in span functions; "
                      + "; ".join(line), file=sys.stderr)

    print(f"spans.c (-O0, frame pointers), 2 threads, {args.milliseconds} ms per run, flare record -F {args.frequency} --call-graph fp, "
          f"{args.repeats} runs per rate, medians; % of the samples in span functions")
    print("| switches/s per thread | reader | samples in span functions | labelled % | mislabelled % | read delay median / p99 (ms, ≤ bucket) |")
    print("|---:|---|---:|---:|---:|---:|")
    for rate in rates:
        delay = "n/a"
        if delays[rate]:
            delay = f"{statistics.median(d[0] for d in delays[rate]):.2f} / {statistics.median(d[1] for d in delays[rate]):.2f}"
        for name, key in readers:
            runs = results[(rate, key)]
            print(f"| {rate} | {name} | {statistics.median(r[0] for r in runs):.0f} | {statistics.median(r[1] for r in runs):.1f} "
                  f"| {statistics.median(r[2] for r in runs):.2f} | {delay} |")


if __name__ == "__main__":
    main()
