#!/usr/bin/env python3
"""Cost of `flare agent` on a busy host, beside `perf record -a --call-graph dwarf`.

1. Agent cost: a store and the agent (its defaults: every process, 99 Hz, DWARF
   stacks, span labels) run for --duration seconds while a busy multi-process
   workload (benches/workloads/busy.c, -O2 without frame pointers) keeps both
   CPUs loaded. Reports the agent's CPU (% of one core) and peak RSS.
2. Slowdown: the same workload runs without pause (busy --count: each worker
   counts its finished rounds in a shared file) while segments of
   --segment seconds alternate: nothing else running, the agent, nothing,
   `perf record -a --call-graph dwarf -F 99`, nothing, the agent, ... Each
   segment's throughput is rounds per second; each agent or perf segment is
   compared with the mean of the two quiet segments around it, which cancels
   the machine's slow drifts. The agent is started before its segment and
   measured only after it has met the workload and cut its first window, as
   on a host where it has been running; a segment as long as a window then
   holds one cut and upload, its share. Short segments, many cycles: the
   machine drifts by several per cent over a minute. Reports the median and the mean
   (with its standard error) of those per-cycle slowdowns, the agent's and
   the local store's CPU during the agent segments, and perf's CPU and bytes
   written per minute.

Usage: benches/agent_bench.py [--duration 120] [--cycles 24] [--segment 10] [--flare .build/release/flare]
"""
import argparse
import mmap
import os
import signal
import socket
import statistics
import struct
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


class RoundCounter:
    """The shared counters of a `busy PROCS --count FILE` run."""

    def __init__(self, path, procs):
        self.procs = procs
        deadline = time.monotonic() + 10
        while not (os.path.exists(path) and os.path.getsize(path) >= 64 * procs):
            if time.monotonic() > deadline:
                sys.exit(f"the workload did not create {path}")
            time.sleep(0.05)
        with open(path, "r+b") as f:
            self.map = mmap.mmap(f.fileno(), 64 * procs)

    def total(self):
        return sum(struct.unpack_from("Q", self.map, 64 * p)[0] for p in range(self.procs))

    def rate(self, seconds):
        """Rounds per second over the next `seconds`."""
        start_rounds, started = self.total(), time.monotonic()
        time.sleep(seconds)
        return (self.total() - start_rounds) / (time.monotonic() - started)


def run_workload(binary, procs, rounds):
    out = subprocess.run([binary, str(procs), str(rounds)], check=True, capture_output=True, text=True).stdout
    return float(out.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=120, help="seconds of the agent-cost phase")
    parser.add_argument("--cycles", type=int, default=24, help="cycles (quiet, agent, quiet, perf) of the slowdown phase")
    parser.add_argument("--segment", type=float, default=10, help="seconds of one measured segment (one window cut falls in each agent segment)")
    parser.add_argument("--settle", type=float, default=3, help="seconds left after a profiler stops before the next segment")
    parser.add_argument("--work-seconds", type=float, default=8, help="about how long one workload run of the cost phase takes")
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

            # Phase 2: throughput of a steady workload in alternating segments.
            workload = subprocess.Popen([busy, str(args.procs), "--count", os.path.join(scratch, "counters")])
            counter = RoundCounter(os.path.join(scratch, "counters"), args.procs)
            time.sleep(args.settle)
            quiet, with_agent, with_perf = [], [], []
            agent_cpu_share, store_cpu_share, perf_cpu, perf_bytes_per_minute = [], [], [], []
            for cycle in range(args.cycles):
                quiet.append(counter.rate(args.segment))
                agent = start_agent()
                wait_for_window(metrics_port)
                agent_cpu_start, store_cpu_start, started = cpu_seconds(agent.pid), cpu_seconds(store.pid), time.monotonic()
                with_agent.append(counter.rate(args.segment))
                seconds = time.monotonic() - started
                agent_cpu_share.append(100 * (cpu_seconds(agent.pid) - agent_cpu_start) / seconds)
                store_cpu_share.append(100 * (cpu_seconds(store.pid) - store_cpu_start) / seconds)
                stop(agent)
                time.sleep(args.settle)
                quiet.append(counter.rate(args.segment))
                data = os.path.join(scratch, "perf.data")
                perf = subprocess.Popen(["perf", "record", "-q", "-a", "-e", "cpu-clock", "-F", "99", "--call-graph", "dwarf", "-o", data],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1)
                perf_started = time.monotonic()
                with_perf.append(counter.rate(args.segment))
                perf.send_signal(signal.SIGINT)
                _, _, usage = os.wait4(perf.pid, 0)
                perf_minutes = (time.monotonic() - perf_started + 1) / 60
                perf_cpu.append(100 * (usage.ru_utime + usage.ru_stime) / (perf_minutes * 60))
                perf_bytes_per_minute.append(os.path.getsize(data) / perf_minutes)
                os.unlink(data)
                time.sleep(args.settle)
                print(f"cycle {cycle + 1}/{args.cycles}: quiet {quiet[-2]:.0f}, agent {with_agent[-1]:.0f}, quiet {quiet[-1]:.0f}, "
                      f"perf {with_perf[-1]:.0f} rounds/s", file=sys.stderr, flush=True)
            quiet.append(counter.rate(args.segment))
            workload.kill()
            workload.wait()
        finally:
            # The workload's forked workers outlive a killed parent: stop them on any exit.
            subprocess.run(["pkill", "-f", busy])
            store.send_signal(signal.SIGTERM)
            store.wait(timeout=30)

    print(f"agent cost over {elapsed:.0f} s, {args.procs} busy processes on {os.cpu_count()} CPUs, defaults (99 Hz, DWARF):")
    print(f"  agent CPU: {agent_cpu:.2f} s = {100 * agent_cpu / elapsed:.2f} % of one core (target <= 1 %)")
    print(f"  agent peak RSS: {agent_rss:.1f} MiB (target <= 64 MiB)")
    print(f"  samples {values.get('flare_agent_samples_total', 0):.0f}, lost {values.get('flare_agent_lost_samples_total', 0):.0f}, "
          f"unwind failures {values.get('flare_agent_unwind_failures_total', 0):.0f}, windows {values.get('flare_agent_windows_total', 0):.0f}")
    print(f"slowdown of a steady workload ({args.procs} processes), {args.cycles} cycles of {args.segment:.0f} s segments "
          f"(quiet, agent, quiet, perf); quiet median {statistics.median(quiet):.0f} rounds/s:")
    # Slowdown as time per round: a quiet neighbour's rate over the segment's rate.
    agent_slowdowns = [100 * ((quiet[2 * k] + quiet[2 * k + 1]) / 2 / rate - 1) for k, rate in enumerate(with_agent)]
    perf_slowdowns = [100 * ((quiet[2 * k + 1] + quiet[2 * k + 2]) / 2 / rate - 1) for k, rate in enumerate(with_perf)]
    quiet_noise = [100 * (quiet[k + 1] / quiet[k] - 1) for k in range(len(quiet) - 1)]
    for name, slowdowns in (("flare agent", agent_slowdowns), ("perf record -a --call-graph dwarf", perf_slowdowns)):
        error = statistics.stdev(slowdowns) / len(slowdowns) ** 0.5 if len(slowdowns) > 1 else float("nan")
        print(f"  {name:34s} median {statistics.median(slowdowns):+6.2f} %  mean {statistics.mean(slowdowns):+6.2f} % "
              f"± {error:.2f} (standard error)   per cycle: {' '.join(f'{v:+.1f}' for v in slowdowns)}")
    print(f"  quiet against the quiet segment before it (noise): median {statistics.median(quiet_noise):+.2f} %, "
          f"spread {min(quiet_noise):+.1f} … {max(quiet_noise):+.1f} %")
    print(f"  during the agent segments: agent {statistics.median(agent_cpu_share):.2f} %, local store {statistics.median(store_cpu_share):.2f} % "
          f"of one core (medians)")
    print(f"  perf record: its own CPU {statistics.median(perf_cpu):.2f} % of one core, "
          f"{statistics.median(perf_bytes_per_minute) / 1048576:.1f} MiB written per minute")


if __name__ == "__main__":
    main()
