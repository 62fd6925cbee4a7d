#!/usr/bin/env python3
"""The store's benchmark: ingest throughput and merge-query latency.

1. Generates one day of agent-sized profiles for one service: 8 640 windows of
   10 s, each about 1 000 samples over 150 stacks of a 2 000-stack service, 30 %
   of the samples labelled with span and trace ids (Tests/FlareStoreTests/Clients/pprof_gen.py).
2. For SQLite and for PostgreSQL (a throwaway local cluster unless
   --postgres-url is given): starts `flare store`, ingests every window with
   8 concurrent clients, and reports profiles per second.
3. Merge-query latency for the last hour (360 windows) and the whole day
   (8 640): the merged pprof download and the flame-graph JSON, median of
   several runs, beside Google's pprof merging the same files
   (`pprof -proto f1 f2 …`) in the same run. Checks that the merged totals
   agree.

Usage: benches/store_bench.py [--windows 8640] [--runs 5] [--flare .build/release/flare]
"""
import argparse
import gzip
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Tests/FlareStoreTests/Clients"))
import pprof_gen  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Store:
    def __init__(self, flare, args):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="flare-store-bench-", suffix=".log", delete=False)
        self.process = subprocess.Popen([flare, "store", "--address", f"127.0.0.1:{self.port}", "--downsample-after", "0"] + args,
                                        stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.get("/health")
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"flare store did not start: see {self.log.name}")

    def get(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise SystemExit(f"GET {path}: HTTP {r.status} {body[:300]!r}")
        return body

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)


def ingest(store, profiles, clients=8):
    """Posts every (window id, body) with `clients` keep-alive connections; returns profiles/s."""
    queue = list(enumerate(profiles))
    lock = threading.Lock()
    errors = []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", store.port, timeout=120)
        while True:
            with lock:
                if not queue:
                    return
                i, body = queue.pop()
            conn.request("POST", f"/api/v1/profiles?service=bench&window_id=w{i}&labels=%7Bhost.name%3D%22bench-1%22%7D", body=body)
            r = conn.getresponse()
            data = r.read()
            if r.status != 200:
                errors.append(f"HTTP {r.status} {data[:200]!r}")

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    if errors:
        raise SystemExit(f"ingest errors: {errors[:5]}")
    return len(profiles) / elapsed, elapsed


def timed(fn, runs):
    times = []
    result = None
    for _ in range(runs):
        start = time.monotonic()
        result = fn()
        times.append(time.monotonic() - start)
    return statistics.median(times), result


def start_postgres(directory):
    pg_bin = sorted(d for d in (os.path.join("/usr/lib/postgresql", v, "bin") for v in os.listdir("/usr/lib/postgresql")) if os.path.isdir(d))[-1]
    port = free_port()
    shutil.chown(directory, "postgres")
    run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(run_as + [f"{pg_bin}/initdb", "-D", f"{directory}/data", "-U", "postgres", "--auth=trust"], check=True, stdout=subprocess.DEVNULL)
    # Durable settings (fsync on), as a production database would run.
    subprocess.run(run_as + [f"{pg_bin}/pg_ctl", "-D", f"{directory}/data", "-l", f"{directory}/log", "-w", "-o",
                             f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={directory}", "start"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(run_as + [f"{pg_bin}/psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-q", "-c", "CREATE DATABASE flare_bench"], check=True)
    stop = lambda: subprocess.run(run_as + [f"{pg_bin}/pg_ctl", "-D", f"{directory}/data", "-m", "fast", "stop"], stdout=subprocess.DEVNULL)
    return f"postgres://postgres@127.0.0.1:{port}/flare_bench?sslmode=disable", stop


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=8640)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--flare", default=os.path.join(ROOT, ".build/release/flare"))
    parser.add_argument("--pprof", default=os.path.join(ROOT, ".build/tools/pprof"))
    parser.add_argument("--postgres-url", help="use this database instead of starting a throwaway cluster")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--pprof-timeout", type=float, default=1800, help="stop a pprof merge after this many seconds and report a lower bound")
    args = parser.parse_args()
    for tool in (args.flare, args.pprof):
        if not os.access(tool, os.X_OK):
            sys.exit(f"{tool} is missing: run `swift build -c release` and scripts/build-pprof first")

    scratch = tempfile.mkdtemp(prefix="flare-store-bench-")
    os.chmod(scratch, 0o755)  # the postgres user creates its cluster inside
    try:
        universe = pprof_gen.Universe(seed=11, functions=400, stacks=2000)
        rng = random.Random(42)
        now = int(time.time())
        start_ns = (now - args.windows * 10 - 60) * 10**9
        files, bodies = [], []
        total_samples = 0
        print(f"generating {args.windows} profiles …", file=sys.stderr)
        for i in range(args.windows):
            body, _, samples = pprof_gen.profile(universe, rng, start_ns + i * 10**10)
            total_samples += samples
            path = os.path.join(scratch, f"w{i:05d}.pb.gz")
            with open(path, "wb") as f:
                f.write(body)
            files.append(path)
            bodies.append(body)
        sizes = sorted(len(b) for b in bodies)
        print(f"profiles: {args.windows}, median {sizes[len(sizes) // 2]} bytes gzip, {total_samples // args.windows} samples each")

        hour_from = (start_ns + (args.windows - 360) * 10**10) // 10**9
        day_from = start_ns // 10**9
        until = now + 60
        backends = [("SQLite", ["--data-dir", os.path.join(scratch, "sqlite")], None)]
        stop_pg = None
        if not args.skip_postgres:
            url = args.postgres_url
            if not url:
                pg_dir = os.path.join(scratch, "pg")
                os.makedirs(pg_dir)
                url, stop_pg = start_postgres(pg_dir)
            backends.append(("PostgreSQL", ["--database", url], None))

        rows = []
        for name, store_args, _ in backends:
            store = Store(args.flare, store_args)
            try:
                rate, elapsed = ingest(store, bodies)
                print(f"{name}: ingested {len(bodies)} profiles in {elapsed:.1f} s: {rate:.0f} profiles/s (8 clients)")
                for label, frm in (("1 hour (360 windows)", hour_from), ("1 day (%d windows)" % args.windows, day_from)):
                    q = f"service=bench&from={frm}&until={until}"
                    t_pprof, body = timed(lambda: store.get(f"/api/v1/pprof?{q}"), args.runs)
                    t_flame, flame = timed(lambda: store.get(f"/api/v1/flamegraph?{q}&max_nodes=2048"), args.runs)
                    t_top, _ = timed(lambda: store.get(f"/api/v1/top?{q}&limit=50"), args.runs)
                    total = json.loads(flame)["total"]
                    rows.append((name, label, t_pprof, t_flame, t_top, total, len(body)))
                    print(f"  {label}: pprof download {t_pprof * 1000:.1f} ms, flame graph {t_flame * 1000:.1f} ms, top {t_top * 1000:.1f} ms, total samples {total}")
            finally:
                store.stop()
        if stop_pg:
            stop_pg()

        # Google's pprof merging the same files, same run.
        merged_path = os.path.join(scratch, "merged.pb.gz")
        pprof_times = {}
        for label, chosen, runs in (("1 hour (360 windows)", files[-360:], args.runs), ("1 day (%d windows)" % args.windows, files, 1)):
            def merge():
                with open(merged_path, "wb") as out:
                    subprocess.run([args.pprof, "-proto"] + chosen, stdout=out, stderr=subprocess.DEVNULL, check=True,
                                   timeout=args.pprof_timeout)
            try:
                pprof_times[label], _ = timed(merge, runs)
                print(f"pprof -proto, {label}: {pprof_times[label] * 1000:.0f} ms")
            except subprocess.TimeoutExpired:
                pprof_times[label] = None
                print(f"pprof -proto, {label}: did not finish within {args.pprof_timeout:.0f} s (stopped)")

        print()
        print("| backend | range | flare pprof download | flare flame graph | flare top | pprof -proto | speed-up (download vs pprof) |")
        print("|---|---|---|---|---|---|---|")
        for name, label, t_pprof, t_flame, t_top, total, size in rows:
            p = pprof_times[label]
            if p is None:
                print(f"| {name} | {label} | {t_pprof * 1000:.1f} ms | {t_flame * 1000:.1f} ms | {t_top * 1000:.1f} ms | > {args.pprof_timeout:.0f} s | > {args.pprof_timeout / t_pprof:.0f}x |")
            else:
                print(f"| {name} | {label} | {t_pprof * 1000:.1f} ms | {t_flame * 1000:.1f} ms | {t_top * 1000:.1f} ms | {p * 1000:.0f} ms | {p / t_pprof:.1f}x |")
        print(f"\nsamples per window: {total_samples // args.windows}; every merged total above must equal windows × that: "
              f"{all(r[5] == (360 if r[1].startswith('1 hour') else args.windows) * (total_samples // args.windows) for r in rows)}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
