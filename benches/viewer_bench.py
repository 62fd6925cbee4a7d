#!/usr/bin/env python3
"""Viewer benchmark: time to first full render of a 10 000-node and a
100 000-node profile in headless Chromium, and the size of the page, for
Flare's exported HTML file and for pprof's own web flame graph
(`pprof -http`, /flamegraph) on the same profile in the same browser.

    .build/venv/bin/python benches/viewer_bench.py [--runs 9]

"First full render" is measured the same way for both: from navigation start
(performance.now() = 0) to the first animation frame after the graph is in
the page (Flare: its first canvas draw finished; pprof: its SVG frames exist).
Needs .build/debug/flare (or $FLARE_BINARY), .build/tools/pprof
(scripts/build-pprof), chromium, chromium-driver and selenium."""

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "Tests", "viewer"))

import pprof_util  # noqa: E402
import support  # noqa: E402

PPROF = os.path.join(REPO, ".build", "tools", "pprof")

# Polls every animation frame from the first script on; records the frame
# after `ready` first holds.
PROBE = """
(function () {
  function ready() { %s }
  function tick() {
    if (ready()) { requestAnimationFrame(function () { window.__rendered = performance.now(); }); return; }
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})();
"""
FLARE_READY = "return !!(window.flare && window.flare.timings && window.flare.timings.firstRender);"
PPROF_READY = "return !!document.querySelector('#chart svg g rect');"


def synthetic_samples(nodes, seed):
    """Stacks drawn from a random call tree until its node count reaches `nodes`
    (names shared across the tree, as real code reuses functions)."""
    rng = random.Random(seed)
    functions = [f"pkg{i % 97}.Type{i % 13}.function_{i}" for i in range(max(200, nodes // 8))]
    prefixes = set()
    samples = []
    frontier = [()]
    while len(prefixes) < nodes:
        base = rng.choice(frontier)
        depth = rng.randint(1, 6)
        stack = list(base)
        for _ in range(depth):
            stack.append(functions[int(rng.random() ** 2 * len(functions))])
        new = 0
        for i in range(1, len(stack) + 1):
            if tuple(stack[:i]) not in prefixes:
                prefixes.add(tuple(stack[:i]))
                new += 1
        if len(stack) < 40:
            frontier.append(tuple(stack))
        samples.append(([(name, f"src/{name.split('.')[0]}.go") for name in stack], 1 + int(rng.random() ** 4 * 1000), {}))
    return samples, len(prefixes) + 1


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def measure(driver, url, ready, runs):
    times = []
    # One load first, not counted: the browser's own first-use costs (process
    # start, caches) are not the page's.
    for run in range(runs + 1):
        driver.get("about:blank")
        script = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE % ready})
        driver.get(url)
        deadline = time.time() + 120
        value = None
        while time.time() < deadline:
            value = driver.execute_script("return window.__rendered || null")
            if value:
                break
            time.sleep(0.02)
        driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})
        if not value:
            raise RuntimeError(f"{url} did not render within 120 s")
        if run:
            times.append(value)
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--sizes", default="10000,100000")
    args = parser.parse_args()
    missing = support.missing_requirements()
    if missing or not os.access(PPROF, os.X_OK):
        sys.exit("missing: " + ", ".join(missing + ([] if os.access(PPROF, os.X_OK) else [PPROF + " (scripts/build-pprof)"])))
    work = support.scratch("bench")
    driver = support.browser()
    rows = []
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            samples, nodes = synthetic_samples(size, seed=size)
            profile = os.path.join(work, f"p{size}.pb.gz")
            with open(profile, "wb") as f:
                f.write(pprof_util.write_profile(samples, time_ns=time.time_ns()))
            html = os.path.join(work, f"p{size}.html")
            subprocess.run([support.FLARE, "export", "--html", profile, "-o", html], check=True)
            flare = measure(driver, "file://" + html, FLARE_READY, args.runs)
            drawn = driver.execute_script("return window.flare.model.count")
            # Interaction on the loaded page: a full redraw (what zoom, hover-free
            # resize and highlight cost) and a regex search, medians of 15.
            redraw, search = driver.execute_script("""
                const v = window.flare.views.flame, m = window.flare.model, draws = [], searches = [];
                for (let i = 0; i < 15; i++) { const t = performance.now(); v.draw(); draws.push(performance.now() - t); }
                for (let i = 0; i < 15; i++) { const t = performance.now(); v.setHighlight(m.search(/function_1\\d/).match); searches.push(performance.now() - t); }
                draws.sort((a, b) => a - b); searches.sort((a, b) => a - b);
                return [draws[7], searches[7]];""")
            port = free_port()
            server = subprocess.Popen([PPROF, "-http", f"127.0.0.1:{port}", "-no_browser", profile],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env=dict(os.environ, HOME=work, PPROF_TMPDIR=work))
            try:
                url = f"http://127.0.0.1:{port}/ui/flamegraph"
                deadline = time.time() + 60
                page = None
                while time.time() < deadline:
                    try:
                        page = urllib.request.urlopen(url, timeout=120).read()
                        break
                    except OSError:
                        time.sleep(0.2)
                if page is None:
                    raise RuntimeError("pprof -http did not start")
                pprof_times = measure(driver, url, PPROF_READY, args.runs)
            finally:
                server.terminate()
                server.wait()
            rows.append((size, nodes, drawn, flare, os.path.getsize(html), pprof_times, len(page), os.path.getsize(profile), redraw, search))
    finally:
        driver.quit()

    print(f"Chromium headless, {args.runs} runs each, medians (min-max); first full render from navigation start")
    print("| profile nodes | Flare render | pprof -http render | ratio (pprof / Flare) | Flare HTML size | pprof page size | pprof.gz | Flare redraw | Flare search + redraw |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size, nodes, drawn, flare, flare_size, pprof_times, pprof_size, pb, redraw, search in rows:
        f, p = statistics.median(flare), statistics.median(pprof_times)
        print(f"| {nodes} (model {drawn}) | {f:.0f} ms ({min(flare):.0f}-{max(flare):.0f}) | {p:.0f} ms ({min(pprof_times):.0f}-{max(pprof_times):.0f}) | "
              f"{p / f:.1f}x | {flare_size / 1e6:.2f} MB | {pprof_size / 1e6:.2f} MB | {pb / 1e6:.2f} MB | {redraw:.1f} ms | {search:.1f} ms |")


if __name__ == "__main__":
    main()
