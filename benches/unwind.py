#!/usr/bin/env python3
"""Unwind + symbolize throughput: Flare beside perf, on the very same samples.

Records a deep-stack workload (200-deep recursion, -O2 -fomit-frame-pointer)
once with `perf record --call-graph dwarf,16384`, then times `perf script`
(perf unwinds DWARF at report time) and `flare convert` (Flare's compiled
unwind tables) on that one perf.data file, interleaved, and reports samples
per second for each and their ratio. Also reports the size of libc's compiled
unwind table per MB of .eh_frame and the time to compile it.

Usage: benches/unwind.py [--runs 3] [--seconds 6]
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", default="2500", help="workload size (about 2.5 ms per round)")
    parser.add_argument("--flare", default=os.path.join(ROOT, ".build/release/flare"))
    args = parser.parse_args()
    if not os.access(args.flare, os.X_OK):
        sys.exit(f"{args.flare} is missing: run `swift build -c release` first")

    with tempfile.TemporaryDirectory() as scratch:
        workload = os.path.join(scratch, "recursion")
        subprocess.run(["gcc", "-O2", "-fomit-frame-pointer", "-o", workload,
                        os.path.join(ROOT, "Tests/FlareTests/Workloads/recursion.c")], check=True)
        data = os.path.join(scratch, "perf.data")
        subprocess.run(["perf", "record", "-q", "--call-graph", "dwarf,16384", "-e", "cpu-clock", "-F", "999",
                        "-o", data, workload, args.rounds], check=True, stderr=subprocess.DEVNULL)
        summary = subprocess.run([args.flare, "convert", data], capture_output=True, text=True).stdout
        samples = int(re.search(r"Recorded (\d+) samples", summary).group(1))

        perf_times, flare_times = [], []
        for run in range(args.runs):
            perf_times.append(timed(["perf", "script", "--max-stack", "1024", "-i", data]))
            flare_times.append(timed([args.flare, "convert", data, "--format", "folded", "-q"]))
            print(f"run {run + 1}: perf script {perf_times[-1]:.2f}s, flare convert {flare_times[-1]:.2f}s", file=sys.stderr)

    perf_rate = samples / statistics.median(perf_times)
    flare_rate = samples / statistics.median(flare_times)
    print(f"{samples} samples of a 200-deep stack, 16 KiB stack copies, {args.runs} interleaved runs, medians")
    print("| tool | median s | samples/s |")
    print("|---|---|---|")
    print(f"| perf script | {statistics.median(perf_times):.2f} | {perf_rate:,.0f} |")
    print(f"| flare convert | {statistics.median(flare_times):.2f} | {flare_rate:,.0f} |")
    print(f"flare / perf throughput: {flare_rate / perf_rate:.1f}x")

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
