#!/usr/bin/env python3
"""Names for stripped code from debuginfod: time to the first named profile
with a cold and a warm cache, and the agent's memory with debuginfod on and off.

A -O1 -g build of Tests/FlareTests/Workloads/proportions.c is stripped (debug
info kept aside, no debuglink) and its debug file served by Debian's
`debuginfod -F` on loopback. Then, interleaved over --runs rounds:
  - `flare record` of the stripped build (1 s of work) with a new, empty
    libdebuginfod cache (cold) and with the cache of an earlier run (warm),
    timed from start to the named profile written (names checked);
  - `flare agent` on its defaults, 1 s windows, profiling the stripped build
    for --agent-seconds, with agent.debuginfod_urls set and with none: its
    peak RSS (VmHWM) and CPU.
perf 6.1 as Debian builds it has no debuginfod support, so the peer here is
Flare without debuginfod.

  scripts/build-release && python3 benches/debuginfod_bench.py --flare .build/release/flare --runs 5
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, **kw):
    return subprocess.run(args, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def build(work):
    binary = os.path.join(work, "proportions_stripped")
    run(["gcc", "-O1", "-g", "-fno-inline", "-o", binary + ".full", os.path.join(REPO, "Tests/FlareTests/Workloads/proportions.c")])
    served = os.path.join(work, "served")
    os.makedirs(served)
    run(["objcopy", "--only-keep-debug", binary + ".full", os.path.join(served, "proportions.debug")])
    shutil.copy(binary + ".full", binary)
    run(["strip", "--strip-all", binary])
    build_id = next(line.split()[-1] for line in run(["readelf", "-n", binary]).stdout.splitlines() if "Build ID" in line)
    return binary, served, build_id


def record(flare, binary, env, work):
    out = os.path.join(work, "out.pb.gz")
    start = time.monotonic()
    result = run([flare, "record", "-F", "499", "-o", out, "--", binary, "100"], env=env)
    elapsed = time.monotonic() - start
    return elapsed, "work_forty" in result.stdout


def agent_memory(flare, binary, urls, work, seconds):
    config = os.path.join(work, "agent.toml")
    with open(config, "w") as f:
        f.write("[agent]\n")
        f.write(f'debuginfod_urls = "{urls}"\n')
        f.write(f'debuginfod_cache_dir = "{os.path.join(work, "agent-cache-" + str(time.monotonic_ns()))}"\n')
    port = free_port()
    # Shipping to a port nobody listens on: the windows wait in the spool, as on a host whose store is away.
    agent = subprocess.Popen([flare, "agent", "--config", config, "--store", f"http://127.0.0.1:{free_port()}",
                              "--window", "1s", "--spool-dir", os.path.join(work, "spool-" + str(port)),
                              "--metrics-address", f"127.0.0.1:{port}", "--process-regex", "^proportions_"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        workload = subprocess.Popen([binary, str(int(seconds * 100))])
        workload.wait()
        time.sleep(2)
        with open(f"/proc/{agent.pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        with open(f"/proc/{agent.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        fetched = next((float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("flare_agent_debuginfod_fetched_total")), 0)
        return hwm / 1024, cpu, fetched
    finally:
        agent.terminate()
        agent.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flare", default=os.path.join(REPO, ".build/release/flare"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--agent-seconds", type=float, default=8)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="flare-debuginfod-bench.")
    server = None
    try:
        binary, served, build_id = build(work)
        port = free_port()
        server = subprocess.Popen(["debuginfod", "-F", served, "-p", str(port), "-d", os.path.join(work, "db.sqlite"), "-t", "1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if urllib.request.urlopen(f"{url}/buildid/{build_id}/debuginfo", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        base = {"PATH": "/usr/bin:/bin", "DEBUGINFOD_URLS": url}
        warm_cache = os.path.join(work, "warm")
        record(args.flare, binary, dict(base, DEBUGINFOD_CACHE_PATH=warm_cache), work)  # fills the warm cache
        cold, warm, plain, named = [], [], [], []
        agent = {"on": [], "off": []}
        for round_ in range(args.runs):
            t, ok = record(args.flare, binary, dict(base, DEBUGINFOD_CACHE_PATH=os.path.join(work, f"cold{round_}")), work)
            cold.append(t); named.append(ok)
            t, ok = record(args.flare, binary, dict(base, DEBUGINFOD_CACHE_PATH=warm_cache), work)
            warm.append(t); named.append(ok)
            t, _ = record(args.flare, binary, {"PATH": "/usr/bin:/bin"}, work)
            plain.append(t)
            agent["on"].append(agent_memory(args.flare, binary, url, work, args.agent_seconds))
            agent["off"].append(agent_memory(args.flare, binary, "", work, args.agent_seconds))
            print(f"round {round_ + 1}: record cold {cold[-1]:.2f} s, warm {warm[-1]:.2f} s, no debuginfod {plain[-1]:.2f} s; "
                  f"agent RSS on {agent['on'][-1][0]:.1f} MiB, off {agent['off'][-1][0]:.1f} MiB", flush=True)
        if not all(named):
            raise SystemExit("a profile with debuginfod was not named")
        med = statistics.median
        print()
        print(f"{args.runs} interleaved rounds, medians; debug file {os.path.getsize(os.path.join(served, 'proportions.debug'))} bytes")
        print("| measure | value | beside | ratio |")
        print("|---|---|---|---|")
        print(f"| flare record to named profile, cold cache | {med(cold):.2f} s | no debuginfod (unnamed) {med(plain):.2f} s | {med(cold) / med(plain):.2f} |")
        print(f"| flare record to named profile, warm cache | {med(warm):.2f} s | cold {med(cold):.2f} s | {med(warm) / med(cold):.2f} |")
        on_rss, off_rss = med(a[0] for a in agent["on"]), med(a[0] for a in agent["off"])
        on_cpu, off_cpu = med(a[1] for a in agent["on"]), med(a[1] for a in agent["off"])
        print(f"| agent peak RSS, debuginfod on | {on_rss:.1f} MiB | off {off_rss:.1f} MiB | {on_rss / off_rss:.2f} |")
        print(f"| agent CPU over {args.agent_seconds:.0f} s of workload, debuginfod on | {on_cpu:.2f} s | off {off_cpu:.2f} s | {on_cpu / max(off_cpu, 0.01):.2f} |")
        print(f"agent with debuginfod fetched {med(a[2] for a in agent['on']):.0f} debug file per run")
    finally:
        if server:
            server.kill()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
