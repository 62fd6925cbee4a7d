#!/usr/bin/env python3
"""Cost of `flare agent` on a busy host, beside `perf record -a --call-graph dwarf`.

1. Agent cost: a store and the agent (its defaults: every process, 99 Hz, DWARF
   stacks, span labels) run for --duration seconds while a busy multi-process
   workload (benches/workloads/busy.c, -O2 without frame pointers) keeps both
   CPUs loaded. Reports the agent's CPU (% of one core) and peak RSS.
2. Slowdown: the same fixed amount of work, timed alone, with the agent
   running (started, warmed by a short run of the same workload and left to
   cut its first window, as on a host where it has been running), and with
   `perf record -a --call-graph dwarf -F 99` running, in interleaved rounds;
   medians and the slowdown of each, also as the median of per-round ratios.
   For perf also its own CPU and the bytes it writes per minute.

Usage: benches/agent_bench.py [--duration 120] [--runs 5] [--flare .build/release/flare]
"""
import argparse
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.2)
    sys.exit(f"nothing answers at {url}")


def wait_for_window(metrics_port, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        metrics = wait_http(f"http://127.0.0.1:{metrics_port}/metrics")
        if any(l.startswith("flare_agent_windows_total ") and float(l.split()[1]) >= 1 for l in metrics.splitlines()):
            return
        time.sleep(0.5)
    sys.exit("the agent cut no window in time")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0


def run_workload(binary, procs, rounds):
    out = subprocess.run([binary, str(procs), str(rounds)], check=True, capture_output=True, text=True).stdout
    return float(out.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=120, help="seconds of the agent-cost phase")
    parser.add_argument("--runs", type=int, default=5, help="interleaved rounds of the slowdown phase")
    parser.add_argument("--work-seconds", type=float, default=15, help="about how long one timed workload run takes alone")
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--flare", default=os.path.join(ROOT, ".build/release/flare"))
    args = parser.parse_args()
    if not os.access(args.flare, os.X_OK):
        sys.exit(f"{args.flare} is missing: run scripts/build-release first")

    with tempfile.TemporaryDirectory() as scratch:
        busy = os.path.join(scratch, "busy")
        subprocess.run(["gcc", "-O2", "-fomit-frame-pointer", "-o", busy, os.path.join(ROOT, "benches/workloads/busy.c")], check=True)
        # Calibrate: rounds for about --work-seconds alone.
        probe = run_workload(busy, args.procs, 100)
        rounds = max(100, int(100 * args.work_seconds / max(probe, 0.01)))

        store_port, metrics_port = free_port(), free_port()
        store = subprocess.Popen([args.flare, "store", "--data-dir", os.path.join(scratch, "data"), "--address", f"127.0.0.1:{store_port}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{store_port}/health")
        agent_command = [args.flare, "agent", "--store", f"http://127.0.0.1:{store_port}", "--spool-dir", os.path.join(scratch, "spool"),
                         "--metrics-address", f"127.0.0.1:{metrics_port}"]

        def start_agent():
            agent = subprocess.Popen(agent_command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_http(f"http://127.0.0.1:{metrics_port}/health")
            return agent

        def stop(process):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)

        try:
            # Phase 1: the agent's own cost under a busy workload.
            agent = start_agent()
            time.sleep(2)
            cpu_start, started = cpu_seconds(agent.pid), time.monotonic()
            workload = subprocess.Popen(["/bin/sh", "-c", f"while :; do {busy} {args.procs} {rounds} >/dev/null; done"])
            time.sleep(args.duration)
            elapsed = time.monotonic() - started
            agent_cpu = cpu_seconds(agent.pid) - cpu_start
            agent_rss = peak_rss_mib(agent.pid)
            metrics = wait_http(f"http://127.0.0.1:{metrics_port}/metrics")
            workload.kill()
            subprocess.run(["pkill", "-f", busy])
            workload.wait()
            stop(agent)
            values = {l.split()[0]: float(l.split()[1]) for l in metrics.splitlines() if l and not l.startswith("#")}

            # Phase 2: paired slowdown runs, interleaved.
            times = {"alone": [], "flare agent": [], "perf record -a --call-graph dwarf": []}
            perf_cpu, perf_bytes_per_minute = [], []
            for _ in range(args.runs):
                times["alone"].append(run_workload(busy, args.procs, rounds))
                agent = start_agent()
                # As on a host where the agent has been running: it has met the
                # workload's binaries once (symbols, unwind tables) and cut its
                # first window (which loads kallsyms) before the timed run.
                run_workload(busy, args.procs, max(1, rounds // 20))
                wait_for_window(metrics_port)
                times["flare agent"].append(run_workload(busy, args.procs, rounds))
                stop(agent)
                data = os.path.join(scratch, "perf.data")
                perf = subprocess.Popen(["perf", "record", "-q", "-a", "-e", "cpu-clock", "-F", "99", "--call-graph", "dwarf", "-o", data],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1)
                perf_started = time.monotonic()
                times["perf record -a --call-graph dwarf"].append(run_workload(busy, args.procs, rounds))
                perf.send_signal(signal.SIGINT)
                _, _, usage = os.wait4(perf.pid, 0)
                perf_minutes = (time.monotonic() - perf_started + 1) / 60
                perf_cpu.append(usage.ru_utime + usage.ru_stime)
                perf_bytes_per_minute.append(os.path.getsize(data) / perf_minutes)
                os.unlink(data)
        finally:
            store.send_signal(signal.SIGTERM)
            store.wait(timeout=30)

    alone = statistics.median(times["alone"])
    print(f"agent cost over {elapsed:.0f} s, {args.procs} busy processes on {os.cpu_count()} CPUs, defaults (99 Hz, DWARF):")
    print(f"  agent CPU: {agent_cpu:.2f} s = {100 * agent_cpu / elapsed:.2f} % of one core (target <= 1 %)")
    print(f"  agent peak RSS: {agent_rss:.1f} MiB (target <= 64 MiB)")
    print(f"  samples {values.get('flare_agent_samples_total', 0):.0f}, lost {values.get('flare_agent_lost_samples_total', 0):.0f}, "
          f"unwind failures {values.get('flare_agent_unwind_failures_total', 0):.0f}, windows {values.get('flare_agent_windows_total', 0):.0f}")
    print(f"slowdown, fixed work ({rounds} rounds x {args.procs} processes), median of {args.runs} interleaved runs:")
    for name, values_ in times.items():
        median = statistics.median(values_)
        print(f"  {name:36s} {median:7.3f} s  slowdown {100 * (median / alone - 1):+6.2f} %   runs: {' '.join(f'{v:.2f}' for v in values_)}")
    # Each round's runs are back to back: the median of per-round ratios cancels slow drifts of the machine.
    for name, values_ in times.items():
        if name == "alone": continue
        ratios = [v / a for v, a in zip(values_, times["alone"])]
        print(f"  {name:36s} median of per-round ratios to alone: {100 * (statistics.median(ratios) - 1):+6.2f} %")
    print(f"  perf record: its own CPU {statistics.median(perf_cpu):.2f} s per run, "
          f"{statistics.median(perf_bytes_per_minute) / 1048576:.1f} MiB written per minute")


if __name__ == "__main__":
    main()
