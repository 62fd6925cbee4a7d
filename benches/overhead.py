#!/usr/bin/env python3
"""Overhead of `flare record` on its target, beside `perf record`.

Runs a CPU-bound two-thread workload alone, under `flare record -F 99` and under
`perf record -F 99 -g`, interleaved, and reports the median wall time of each,
the slowdown each profiler adds, and Flare's own CPU time per 1000 samples.

Usage: benches/overhead.py [--runs 5] [--flare .build/release/flare]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_workload(directory):
    binary = os.path.join(directory, "threads")
    source = os.path.join(ROOT, "Tests/FlareTests/Workloads/threads.c")
    subprocess.run(["gcc", "-O2", "-fno-omit-frame-pointer", "-pthread", "-o", binary, source], check=True)
    return binary


def timed(command):
    start = time.monotonic()
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr}")
    return elapsed, result.stdout + result.stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", default="2500", help="workload size (1M iterations per round per thread)")
    parser.add_argument("--flare", default=os.path.join(ROOT, ".build/release/flare"))
    args = parser.parse_args()
    if not os.access(args.flare, os.X_OK):
        sys.exit(f"{args.flare} is missing: run scripts/build-release first")

    with tempfile.TemporaryDirectory() as scratch:
        workload = build_workload(scratch)
        profile = os.path.join(scratch, "out.pb.gz")
        perf_data = os.path.join(scratch, "perf.data")
        modes = {
            "alone": [workload, args.rounds],
            "flare record -F 99": [args.flare, "record", "-F", "99", "-o", profile, "--", workload, args.rounds],
            "perf record -F 99 -g": ["perf", "record", "-q", "-e", "cpu-clock", "-F", "99", "-g", "-o", perf_data,
                                     "--", workload, args.rounds],
        }
        times = {name: [] for name in modes}
        flare_cpu_per_1000 = []
        for run in range(args.runs):
            for name, command in modes.items():  # interleaved, so drift hits every mode alike
                elapsed, output = timed(command)
                times[name].append(elapsed)
                match = re.search(r"\(([\d.]+) ms per 1000 samples\)", output)
                if name.startswith("flare") and match:
                    flare_cpu_per_1000.append(float(match.group(1)))
            print(f"run {run + 1}/{args.runs}: " + ", ".join(f"{n} {t[-1]:.3f}s" for n, t in times.items()), file=sys.stderr)

    alone = statistics.median(times["alone"])
    print(f"workload: 2 threads x {args.rounds}M iterations, {args.runs} interleaved runs per mode, medians")
    print(f"| mode | median wall s | added vs alone |")
    print(f"|---|---|---|")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"| {name} | {median:.3f} | {100 * (median - alone) / alone:+.2f}% |")
    flare = statistics.median(times["flare record -F 99"]) - alone
    perf = statistics.median(times["perf record -F 99 -g"]) - alone
    ratio = "n/a (perf added nothing measurable)" if perf <= 0 else f"{flare / perf:.2f}"
    print(f"flare added {flare * 1000:.1f} ms, perf added {perf * 1000:.1f} ms; flare/perf ratio of added time: {ratio}")
    if flare_cpu_per_1000:
        print(f"flare's own CPU per 1000 samples (median): {statistics.median(flare_cpu_per_1000):.1f} ms")


if __name__ == "__main__":
    main()
