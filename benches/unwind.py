#!/usr/bin/env python3
"""Unwind + symbolize throughput: Flare beside perf, on the very same samples.

Records a deep-stack workload (200-deep recursion, -O2 -fomit-frame-pointer)
with `perf record --call-graph dwarf,16384` twice, a short and a three times
longer run, then times `perf script` (perf unwinds DWARF at report time) and
`flare convert` (Flare's compiled unwind tables) on each perf.data file,
interleaved, and reports samples per second for each tool and their ratio:
end to end on the long recording, and per sample (the long minus the short
recording, which cancels the start-up both tools pay once). Also reports the size of libc's compiled
unwind table per MB of .eh_frame and the time to compile it.

Usage: benches/unwind.py [--runs 3] [--rounds 2500]
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
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


def timed(command):
    start = time.monotonic()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr}")
    return time.monotonic() - start


def record(args, scratch, workload, rounds, name):
    data = os.path.join(scratch, name)
    subprocess.run(["perf", "record", "-q", "--call-graph", "dwarf,16384", "-e", "cpu-clock", "-F", "999",
                    "-o", data, workload, str(rounds)], check=True, stderr=subprocess.DEVNULL)
    summary = subprocess.run([args.flare, "convert", data], capture_output=True, text=True).stdout
    return data, int(re.search(r"Recorded (\d+) samples", summary).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2500, help="workload size of the short recording (about 1 ms per round)")
    parser.add_argument("--flare", default=os.path.join(ROOT, ".build/release/flare"))
    args = parser.parse_args()
    if not os.access(args.flare, os.X_OK):
        sys.exit(f"{args.flare} is missing: run scripts/build-release first")

    with tempfile.TemporaryDirectory() as scratch:
        workload = os.path.join(scratch, "recursion")
        subprocess.run(["gcc", "-O2", "-fomit-frame-pointer", "-o", workload,
                        os.path.join(ROOT, "Tests/FlareTests/Workloads/recursion.c")], check=True)
        # Two recordings, one three times the other: the difference between
        # them is pure per-sample work, without the start-up both tools pay
        # once (process start, /proc/kallsyms, libc's debug info).
        short, short_samples = record(args, scratch, workload, args.rounds, "short.data")
        long, long_samples = record(args, scratch, workload, 3 * args.rounds, "long.data")

        times = {(tool, size): [] for tool in ("perf", "flare") for size in ("short", "long")}
        commands = {
            "perf": lambda data: ["perf", "script", "--max-stack", "1024", "-i", data],
            "flare": lambda data: [args.flare, "convert", data, "--format", "folded", "-q"],
        }
        for run in range(args.runs):
            for size, data in (("short", short), ("long", long)):
                for tool in ("perf", "flare"):
                    times[(tool, size)].append(timed(commands[tool](data)))
            print(f"run {run + 1}: " + ", ".join(f"{tool} {size} {times[(tool, size)][-1]:.2f}s" for tool, size in times),
                  file=sys.stderr)

    median = {key: statistics.median(values) for key, values in times.items()}
    print(f"recordings of a 200-deep stack, 16 KiB stack copies: {short_samples} and {long_samples} samples; "
          f"{args.runs} interleaved runs, medians")
    print("| tool | short s | long s | end-to-end samples/s (long) | per-sample samples/s (long - short) |")
    print("|---|---|---|---|---|")
    rates = {}
    for tool, label in (("perf", "perf script"), ("flare", "flare convert")):
        end_to_end = long_samples / median[(tool, "long")]
        marginal = (long_samples - short_samples) / max(median[(tool, "long")] - median[(tool, "short")], 1e-6)
        rates[tool] = (end_to_end, marginal)
        print(f"| {label} | {median[(tool, 'short')]:.2f} | {median[(tool, 'long')]:.2f} | {end_to_end:,.0f} | {marginal:,.0f} |")
    print(f"flare / perf: end-to-end {rates['flare'][0] / rates['perf'][0]:.1f}x, "
          f"per-sample {rates['flare'][1] / rates['perf'][1]:.1f}x")

    compile_ms, table_bytes = [], 0
    for _ in range(5):
        out = subprocess.run([args.flare, "unwind-table", LIBC], capture_output=True, text=True, check=True).stdout
        compile_ms.append(float(re.search(r"compile_ms: ([\d.]+)", out).group(1)))
        table_bytes = int(re.search(r"bytes: (\d+)", out).group(1))
        rows = int(re.search(r"rows: (\d+)", out).group(1))
    sections = subprocess.run(["readelf", "-SW", LIBC], capture_output=True, text=True).stdout
    eh_frame = int(re.search(r"\.eh_frame\s+\S+\s+\S+\s+\S+\s+([0-9a-f]+)", sections).group(1), 16)
    print(f"libc: .eh_frame {eh_frame:,} bytes -> {rows:,} rows, {table_bytes:,} bytes "
          f"({table_bytes / (eh_frame / 1e6) / 1e6:.2f} MB per MB of .eh_frame), "
          f"compiled in {statistics.median(compile_ms):.1f} ms (median of 5)")


if __name__ == "__main__":
    main()
