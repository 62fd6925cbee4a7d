#!/usr/bin/env python3
"""The diff benchmark: the end-to-end diff of two 1-hour selections, beside
Google's pprof -diff_base on the same data in the same run.

1. Generates two hours of agent-sized profiles for one service
   (Tests/FlareStoreTests/Clients/pprof_gen.py): version 1.4 in the first hour,
   1.5 in the second, 360 windows of 10 s each, about 1 000 samples over 150
   stacks per window; version 1.5 shifts weight towards the stacks of a few
   functions so that there is something to find.
2. Starts `flare store` (SQLite in a temporary directory) and ingests them,
   labelled service.version=1.4 / 1.5.
3. Times, median of --runs, interleaved:
   - flare diff (CLI, end to end): `flare diff --store URL --base
     service=bench,version=1.4 --target version=1.5 --json … --document …`: a
     new process that looks the versions up (once per service), queries the absolute diff for the
     report and the normalized diff document for the flame graph, ranks, writes
     both files and prints the table;
   - GET /api/v1/diff alone (the viewer's request: merge both hours, diff,
     trim to 2 048 nodes, JSON);
   - pprof -diff_base on the same two selections, merged per side as pprof
     files (from the store's /api/v1/pprof): `pprof -top -diff_base=BASE TARGET`;
   - pprof -diff_base on the raw window files (360 + 360), fewer runs.
4. Checks that flare and pprof agree on the function whose self time grew most.

Usage: benches/diff_bench.py [--runs 5] [--flare .build/release/flare]
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Tests/FlareStoreTests/Clients"))
sys.path.insert(0, os.path.join(ROOT, "benches"))
import pprof_gen  # noqa: E402
from store_bench import Store  # noqa: E402

WINDOWS = 360


def shifted(universe, hot, factor):
    """The same code with the stacks whose leaf is in `hot` `factor` times as likely."""
    other = pprof_gen.Universe.__new__(pprof_gen.Universe)
    other.functions = universe.functions
    other.stacks = universe.stacks
    other.weights = [w * factor if universe.stacks[i][-1] in hot else w for i, w in enumerate(universe.weights)]
    return other


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--raw-runs", type=int, default=1, help="runs of pprof on the 720 raw window files")
    parser.add_argument("--flare", default=os.path.join(ROOT, ".build/release/flare"))
    parser.add_argument("--pprof", default=os.path.join(ROOT, ".build/tools/pprof"))
    args = parser.parse_args()
    for tool in (args.flare, args.pprof):
        if not os.access(tool, os.X_OK):
            sys.exit(f"{tool} is missing: run `swift build -c release --product flare` and scripts/build-pprof first")

    scratch = tempfile.mkdtemp(prefix="flare-diff-bench-")
    try:
        universe = pprof_gen.Universe(seed=11, functions=400, stacks=2000)
        # Version 1.5: the leaves of the 3rd-10th hottest stacks get four times as likely.
        hot = {universe.stacks[i][-1] for i in range(2, 10)}
        v15 = shifted(universe, hot, 4.0)
        rng = random.Random(42)
        now = int(time.time())
        start_ns = (now - 2 * WINDOWS * 10 - 60) * 10**9
        sides = {"1.4": [], "1.5": []}
        bodies = []
        for i in range(2 * WINDOWS):
            version = "1.4" if i < WINDOWS else "1.5"
            body, _, _ = pprof_gen.profile(universe if version == "1.4" else v15, rng, start_ns + i * 10**10)
            path = os.path.join(scratch, f"w{i:04d}.pb.gz")
            with open(path, "wb") as f:
                f.write(body)
            sides[version].append(path)
            bodies.append((version, body))

        store = Store(args.flare, ["--data-dir", os.path.join(scratch, "sqlite"), "--retention", "0"])
        try:
            for version in ("1.4", "1.5"):
                labels = urllib.parse.quote('{service.version="%s"}' % version)
                chosen = [b for v, b in bodies if v == version]
                post(store, chosen, version, labels)
            print(f"ingested {2 * WINDOWS} windows ({WINDOWS} per version, 1 hour each) into SQLite")

            url = f"http://127.0.0.1:{store.port}"
            report_path = os.path.join(scratch, "report.json")
            document_path = os.path.join(scratch, "document.json")
            cli = [args.flare, "diff", "--store", url, "--base", "service=bench,version=1.4", "--target", "version=1.5",
                   "--json", report_path, "--document", document_path]
            versions = json.loads(store.get("/api/v1/versions?service=bench"))["versions"]
            a, b = versions
            def selector(version):
                return urllib.parse.quote('{service.version="%s"}' % version)
            q = (f"service=bench&a_labels={selector('1.4')}&a_from={a['first_ns']}&a_until={a['last_ns'] + 1}"
                 f"&b_labels={selector('1.5')}&b_from={b['first_ns']}&b_until={b['last_ns'] + 1}")
            base_pb = os.path.join(scratch, "base.pb.gz")
            target_pb = os.path.join(scratch, "target.pb.gz")
            for side, path in (("a", base_pb), ("b", target_pb)):
                one = "&".join(p.replace(f"{side}_", "", 1) for p in q.split("&") if p.startswith(f"{side}_") or p.startswith("service="))
                with open(path, "wb") as f:
                    f.write(store.get(f"/api/v1/pprof?{one}"))

            times = {"cli": [], "http": [], "pprof": []}
            pprof_top = ""
            for _ in range(args.runs):
                t = time.monotonic()
                subprocess.run(cli, check=True, stdout=subprocess.DEVNULL)
                times["cli"].append(time.monotonic() - t)
                t = time.monotonic()
                store.get(f"/api/v1/diff?{q}&max_nodes=2048")
                times["http"].append(time.monotonic() - t)
                t = time.monotonic()
                pprof_top = subprocess.run([args.pprof, "-top", "-nodecount=20", f"-diff_base={base_pb}", target_pb],
                                           check=True, capture_output=True, text=True).stdout
                times["pprof"].append(time.monotonic() - t)
            raw = []
            for _ in range(args.raw_runs):
                t = time.monotonic()
                subprocess.run([args.pprof, "-top", "-nodecount=20"] + [f"-diff_base={p}" for p in sides["1.4"]] + sides["1.5"],
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                raw.append(time.monotonic() - t)

            report = json.load(open(report_path))
            grown = max(report["functions"], key=lambda f: f["self_points"])
            # pprof -top rows: flat flat% sum% cum cum% name; the largest positive flat is the most grown self.
            rows = [line.split() for line in pprof_top.splitlines()]
            rows = [r for r in rows if len(r) >= 6 and r[1].endswith("%")]
            pprof_grown = max(rows, key=lambda r: float(r[1].rstrip("%")))[5] if rows else "?"
            ms = lambda xs: statistics.median(xs) * 1000
            print(f"base {report['base']['samples']} samples, target {report['target']['samples']} samples, {len(report['functions'])} functions")
            print()
            print("| what | median ms |")
            print("|---|---:|")
            print(f"| flare diff (CLI: version look-up, absolute diff for the report, normalized diff document; report, document, table) | {ms(times['cli']):.1f} |")
            print(f"| GET /api/v1/diff alone (viewer's request, 2 048 nodes) | {ms(times['http']):.1f} |")
            print(f"| pprof -top -diff_base, one merged pprof per side | {ms(times['pprof']):.1f} |")
            print(f"| pprof -top -diff_base, 360 + 360 window files | {ms(raw):.0f} |")
            print()
            print(f"most grown self share: flare {grown['name']} ({grown['self_points']:+.2f} points); pprof {pprof_grown}; agree: {grown['name'] == pprof_grown}")
        finally:
            store.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def post(store, bodies, version, labels):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", store.port, timeout=120)
    for i, body in enumerate(bodies):
        conn.request("POST", f"/api/v1/profiles?service=bench&window_id=v{version}-{i}&labels={labels}", body=body)
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise SystemExit(f"ingest: HTTP {r.status} {data[:200]!r}")


if __name__ == "__main__":
    main()
