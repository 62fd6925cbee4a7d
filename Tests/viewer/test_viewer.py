"""Browser tests of the viewer: a real `flare store`, real headless Chromium
over WebDriver, real `flare record` of a workload traced with the real
OpenTelemetry Python SDK. Expected values come from the profiles the tests
write (or from pprof files read with pprof_util), never from the viewer."""

import json
import os
import re
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pprof_util  # noqa: E402
import support  # noqa: E402
from support import wait_for  # noqa: E402

MISSING = support.missing_requirements()


def known_samples():
    """A profile whose answers are known by construction: parse_json is the top
    self function; 300 small helper stacks make a tree of a few hundred nodes."""
    samples = [
        ([("main", "src/main.py"), ("serve", "src/server.py"), ("parse_json", "src/json.py")], 400, {}),
        ([("main", "src/main.py"), ("serve", "src/server.py"), ("render_html", "src/render.py"), ("escape_text", "src/render.py")], 250, {}),
        ([("main", "src/main.py"), ("serve", "src/server.py"), ("render_html", "src/render.py")], 50, {}),
        ([("main", "src/main.py"), ("gc_collect", "runtime/gc.c")], 120, {}),
        ([("start_thread", ""), ("worker_loop", "src/worker.py"), ("compress_block", "libz.so.1")], 180, {}),
    ]
    for i in range(300):
        samples.append(([("main", "src/main.py"), ("serve", "src/server.py"), (f"handler_{i % 60}", "src/handlers.py"),
                         (f"helper_{i}", "src/helpers.py")], 1 + i % 3, {"thread_name": f"worker-{i % 4}"}))
    return samples


# Where the known profile's functions start: tooltips and the table show file:line.
KNOWN_START_LINES = {"parse_json": 42, "serve": 7, "escape_text": 118}


def expected_tree(samples, keep=lambda labels: True):
    tree = {}
    for frames, count, labels in samples:
        if not keep(labels):
            continue
        path = ()
        tree[path] = tree.get(path, 0) + count
        for name, _ in frames:
            path = path + (name,)
            tree[path] = tree.get(path, 0) + count
    return tree


def matched_share(samples, pattern):
    """The share of samples whose stack holds a frame matching pattern."""
    re_ = re.compile(pattern)
    total = sum(c for _, c, _ in samples)
    hit = sum(c for frames, c, _ in samples if any(re_.search(n) for n, _ in frames))
    return 100.0 * hit / total


def click_node(driver, view, node):
    """Clicks the middle of a node as the view drew it, through real mouse events."""
    from selenium.webdriver.common.action_chains import ActionChains
    box = driver.execute_script(f"""
        const v = window.flare.views.{view}, d = v.drawn;
        for (let i = 0; i < d.count; i++) if (d.node[i] === arguments[0])
          return {{x: d.x[i] + d.w[i] / 2, y: v.y(d.depth[i]) + 9, cw: v.canvas.clientWidth, ch: v.canvas.clientHeight}};
        return null;""", node)
    assert box, f"node {node} was not drawn"
    canvas = driver.execute_script(f"return window.flare.views.{view}.canvas")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    ActionChains(driver).move_to_element_with_offset(canvas, int(box["x"] - box["cw"] / 2), int(box["y"] - box["ch"] / 2)).click().perform()


def hover_node(driver, node, view="flame"):
    """Moves the mouse over a drawn node and returns the tooltip's text."""
    from selenium.webdriver.common.action_chains import ActionChains
    box = driver.execute_script(f"""
        const v = window.flare.views.{view}, d = v.drawn;
        for (let i = 0; i < d.count; i++) if (d.node[i] === arguments[0]) return [d.x[i] + d.w[i] / 2, v.y(d.depth[i]) + 9, v.canvas.clientWidth, v.canvas.clientHeight];""", node)
    assert box, f"node {node} was not drawn"
    canvas = driver.execute_script(f"return window.flare.views.{view}.canvas")
    ActionChains(driver).move_to_element_with_offset(canvas, int(box[0] - box[2] / 2), int(box[1] - box[3] / 2)).perform()
    return wait_for(driver, "!document.getElementById('tooltip').hidden && document.getElementById('tooltip')", message="tooltip").text


def node_of(driver, path, model="window.flare.model"):
    return driver.execute_script(f"""
        const m = {model}, path = arguments[0];
        let u = 0;
        for (const name of path) {{
          let next = -1;
          for (let k = m.childStart[u]; k < m.childStart[u + 1]; k++) if (m.nameOf(m.children[k]) === name) next = m.children[k];
          if (next < 0) return -1;
          u = next;
        }}
        return u;""", list(path))


@unittest.skipIf(MISSING, "SKIP: the browser tests need " + ", ".join(MISSING))
class ViewerTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = support.scratch("viewer")
        cls.samples = known_samples()
        cls.known_pprof = os.path.join(cls.work, "known.pb.gz")
        with open(cls.known_pprof, "wb") as f:
            f.write(pprof_util.write_profile(cls.samples, time_ns=time.time_ns() - 5_000_000_000, start_lines=KNOWN_START_LINES))
        cls.store = support.Store()
        with open(cls.known_pprof, "rb") as f:
            cls.store.request("/api/v1/profiles?service=known&window_id=k1", f.read())
        cls.driver = support.browser()

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.store.stop()

    def open_live(self, fragment):
        self.driver.get(self.store.url + "/#" + fragment)
        # A fresh document even when only the fragment changed.
        self.driver.refresh()

    def assert_known_graph(self, driver):
        total = sum(c for _, c, _ in self.samples)
        self.assertEqual(support.model_tree(driver), expected_tree(self.samples))
        self.assertEqual(driver.execute_script("return window.flare.model.rootTotal"), total)
        # The drawn rectangles: the root spans the canvas, and each top frame's
        # width is its share of the total.
        drawn = driver.execute_script("""
            const v = window.flare.views.flame, d = v.drawn, out = [];
            for (let i = 0; i < d.count; i++) if (d.node[i] >= 0 && d.depth[i] <= 1) out.push([v.model.nameOf(d.node[i]), d.depth[i], d.x[i], d.w[i]]);
            return {out, width: v.canvas.clientWidth};""")
        width = drawn["width"]
        by_name = {name: (x, w) for name, depth, x, w in drawn["out"] if depth == 1}
        roots = [(x, w) for name, depth, x, w in drawn["out"] if depth == 0]
        self.assertEqual(len(roots), 1)
        self.assertAlmostEqual(roots[0][0], 0, delta=0.01)
        self.assertAlmostEqual(roots[0][1], width, delta=0.5)
        top = {path[0]: v for path, v in expected_tree(self.samples).items() if len(path) == 1}
        self.assertEqual(set(by_name), set(top))
        for name, value in top.items():
            self.assertAlmostEqual(by_name[name][1], width * value / total, delta=0.5, msg=name)

    def test_known_profile_renders_searches_zooms_and_tabulates(self):
        d = self.driver
        self.open_live("service=known&range=1h")
        wait_for(d, "window.flare.model && window.flare.model.count > 1", message="the flame graph")
        self.assert_known_graph(d)

        canvas = d.find_element("id", "flame")
        self.assertGreaterEqual(support.distinct_colors(canvas.screenshot_as_png), 6, "the flame graph screenshot is blank")

        # The tooltip: name, file:line where the function starts, self and total.
        parse_json = node_of(d, ["main", "serve", "parse_json"])
        tip = hover_node(d, parse_json)
        self.assertIn("parse_json", tip)
        self.assertIn("src/json.py:42", tip)
        share = 100 * 400 / sum(c for _, c, _ in self.samples)
        self.assertIn(f"({share:.1f}%)" if share >= 10 else f"({share:.2f}%)", tip)
        gc = hover_node(d, node_of(d, ["main", "gc_collect"]))
        self.assertIn("runtime/gc.c", gc)
        self.assertNotIn("runtime/gc.c:", gc, "a function without a known first line shows its file only")

        # Search: the highlighted frames are exactly those whose names match, and the share is right.
        pattern = "parse_json|escape"
        box = d.find_element("id", "search")
        box.clear()
        box.send_keys(pattern)
        wait_for(d, "window.flare.state.search && window.flare.state.search.pattern === " + json.dumps(pattern))
        search = d.execute_script("return window.flare.state.search")
        self.assertAlmostEqual(search["percent"], matched_share(self.samples, pattern), places=6)
        highlighted = d.execute_script("""
            const v = window.flare.views.flame, m = v.model, out = [];
            for (let i = 0; i < m.count; i++) if (v.highlight[i]) out.push(m.nameOf(i));
            return out;""")
        expected = [p[-1] for p in expected_tree(self.samples) if p and re.search(pattern, p[-1])]
        self.assertEqual(sorted(highlighted), sorted(expected))
        self.assertIn(f"{matched_share(self.samples, pattern):.1f}%", d.find_element("id", "match").text)

        # Click-zoom on "serve": it now spans the canvas, and the breadcrumbs lead to it.
        serve = node_of(d, ["main", "serve"])
        self.assertGreater(serve, 0)
        click_node(d, "flame", serve)
        wait_for(d, f"window.flare.views.flame.zoom === {serve}", message="zoom to serve")
        zoomed = d.execute_script("""
            const v = window.flare.views.flame, d = v.drawn;
            for (let i = 0; i < d.count; i++) if (d.node[i] === v.zoom) return [d.x[i], d.w[i], v.canvas.clientWidth];""")
        self.assertAlmostEqual(zoomed[0], 0, delta=0.01)
        self.assertAlmostEqual(zoomed[1], zoomed[2], delta=0.5)
        crumbs = [b.text for b in d.find_elements("css selector", "#breadcrumbs .crumb")]
        self.assertEqual(crumbs, ["Reset", "main", "serve"])
        # Keyboard: Esc clears the search, then resets the zoom; f flips the orientation.
        body = d.find_element("tag name", "body")
        body.click()
        box.send_keys("\ue00c")  # Escape
        body.send_keys("\ue00c")
        wait_for(d, "window.flare.views.flame.zoom === 0", message="reset by Escape")
        body.send_keys("f")
        self.assertEqual(d.execute_script("return window.flare.views.flame.orientation"), "flame")
        body.send_keys("f")

        # The table's top row is the profile's top self function.
        d.find_element("css selector", "#tabs button[data-tab=table]").click()
        first = d.find_element("css selector", "#tab-table tbody tr td.fn")
        self_totals = {}
        for frames, count, _ in self.samples:
            self_totals[frames[-1][0]] = self_totals.get(frames[-1][0], 0) + count
        top_name = max(self_totals, key=self_totals.get)
        self.assertTrue(first.text.startswith(top_name), first.text)
        self.assertIn("src/json.py:42", first.text)
        # Linked: picking the row highlights that function in the graph.
        first.click()
        wait_for(d, "window.flare.state.search && window.flare.state.search.nodes > 0")
        self.assertAlmostEqual(d.execute_script("return window.flare.state.search.percent"), matched_share(self.samples, "^" + top_name + "$"), places=6)
        # Sandwich: the callers of parse_json are serve then main.
        d.find_element("css selector", "#tabs button[data-tab=sandwich]").click()
        callers = support.model_tree(d, "window.flare.views.callers.model")
        self.assertEqual(callers, {(): self_totals[top_name], ("serve",): self_totals[top_name], ("serve", "main"): self_totals[top_name]})
        # No versions endpoint here (or fewer than two versions): no compare button.
        self.assertFalse(d.find_element("id", "compare").is_displayed())

    def test_export_opens_offline_with_the_same_graph(self):
        out = os.path.join(self.work, "known.html")
        subprocess.run([support.FLARE, "export", "--html", self.known_pprof, "-o", out], check=True)
        driver = support.browser(offline=True)
        try:
            driver.get("file://" + out)
            wait_for(driver, "window.flare && window.flare.model && window.flare.model.count > 1", message="the exported graph")
            self.assertEqual(driver.execute_script("return window.flare.state.mode"), "offline")
            self.assert_known_graph(driver)
            self.assertEqual(driver.execute_script("return performance.getEntriesByType('resource').length"), 0)
            self.assertGreaterEqual(support.distinct_colors(driver.find_element("id", "flame").screenshot_as_png), 6)
            # Features that need no store work offline: search and the table.
            driver.find_element("id", "search").send_keys("gc_")
            wait_for(driver, "window.flare.state.search && window.flare.state.search.pattern === 'gc_'")
            self.assertAlmostEqual(driver.execute_script("return window.flare.state.search.percent"), matched_share(self.samples, "gc_"), places=6)
            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            self.assertEqual(errors, [])
        finally:
            driver.quit()

    def test_exported_diff_opens_in_the_diff_view(self):
        older = [(f, c, l) for f, c, l in self.samples]
        newer = [(f, c * (3 if f[-1][0] == "gc_collect" else 1), l) for f, c, l in self.samples]
        now = time.time_ns()
        for version, samples, key in (("1.0", older, "d1"), ("2.0", newer, "d2")):
            labels = urllib.parse.quote('{service.version="%s"}' % version)
            self.store.request(f"/api/v1/profiles?service=diffsvc&window_id={key}&labels={labels}",
                               pprof_util.write_profile(samples, time_ns=now - 5_000_000_000))
        query = "service=diffsvc&from=now-1h&until=now&mode=absolute&a_labels=" + urllib.parse.quote('{service.version="1.0"}') + \
            "&b_labels=" + urllib.parse.quote('{service.version="2.0"}')
        document = self.store.request("/api/v1/diff?" + query)
        path = os.path.join(self.work, "diff.json")
        with open(path, "wb") as f:
            f.write(document)
        out = os.path.join(self.work, "diff.html")
        subprocess.run([support.FLARE, "export", "--html", path, "-o", out], check=True)
        driver = support.browser(offline=True)
        try:
            driver.get("file://" + out)
            wait_for(driver, "window.flare && window.flare.state.diffModel", message="the diff view")
            self.assertEqual(driver.execute_script("return window.flare.state.tab"), "diff")
            self.assertTrue(driver.find_element("id", "diff").is_displayed())
            tree = support.model_tree(driver, "window.flare.state.diffModel")
            self.assertEqual(tree, expected_tree(newer))  # widths from B
            gc = node_of(driver, ["main", "gc_collect"], "window.flare.state.diffModel")
            color = driver.execute_script(f"return window.flare.views.diff.color({gc})")
            self.assertTrue(color.startswith("hsl(0,"), f"gc_collect grew but is drawn {color}")
            first = driver.find_element("css selector", "#diff-table tbody tr td.fn").text
            self.assertTrue(first.startswith("gc_collect"), first)
        finally:
            driver.quit()

    def test_compare_with_previous_version_opens_the_diff_of_the_two_latest(self):
        older = [(f, c, l) for f, c, l in self.samples]
        newer = [(f, c * (3 if f[-1][0] == "gc_collect" else 1), l) for f, c, l in self.samples]
        now = time.time_ns()
        # Three deploys; the button must compare the last two.
        for version, samples, key, at in (("0.9", newer, "v09", now - 60_000_000_000), ("1.0", older, "v10", now - 30_000_000_000),
                                          ("2.0", newer, "v20", now - 12_000_000_000)):
            labels = urllib.parse.quote('{service.version="%s"}' % version)
            self.store.request(f"/api/v1/profiles?service=deploysvc&window_id={key}&labels={labels}",
                               pprof_util.write_profile(samples, time_ns=at))
        self.open_live("service=deploysvc&range=1h")
        support.click(self.driver, "!document.getElementById('compare').hidden && document.getElementById('compare')",
              message="the compare-with-previous-version button")
        wait_for(self.driver, "window.flare.state.diffModel", message="the diff view")
        self.assertEqual(self.driver.execute_script("return window.flare.state.tab"), "diff")
        self.assertIn('"1.0"', self.driver.execute_script("return document.getElementById('a-labels').value"))
        self.assertIn('"2.0"', self.driver.execute_script("return document.getElementById('b-labels').value"))
        # Normalized (the default): widths are B's, scaled to A's total.
        shown, expected = support.model_tree(self.driver, "window.flare.state.diffModel"), expected_tree(newer)
        scale = sum(c for _, c, _ in older) / sum(c for _, c, _ in newer)
        self.assertEqual(set(shown), set(expected))
        for path, value in expected.items():
            self.assertAlmostEqual(shown[path], value * scale, delta=0.01, msg=str(path))
        wait_for(self.driver, "document.querySelector('#diff-table tbody tr td.fn')", message="the ranked changes")
        first = self.driver.find_element("css selector", "#diff-table tbody tr td.fn").text
        self.assertTrue(first.startswith("gc_collect"), first)

    def test_trace_jump_shows_exactly_the_span_samples(self):
        python = os.path.join(support.REPO, ".build", "venv", "bin", "python")
        if not os.access(python, os.X_OK):
            self.skipTest("SKIP: .build/venv with the OpenTelemetry SDK is missing (source scripts/store-test-env)")
        recorded = os.path.join(self.work, "spans.pb.gz")
        run = subprocess.run([support.FLARE, "record", "-F", "499", "-q", "-o", recorded, "--", python,
                              os.path.join(support.HERE, "span_workload.py"), self.store.url],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(run.returncode, 0, run.stderr)
        ids = json.loads(run.stdout.strip().splitlines()[-1])
        types, samples = pprof_util.read_profile(open(recorded, "rb").read())
        index = pprof_util.value_index(types, "samples")
        slow, query, quick = ids["slow-step"], ids["db-query"], ids["quick-step"]
        # flare record labelled the samples with the SDK's own span ids.
        labelled = {s["labels"].get("span_id") for s in samples}
        for span in (slow, query, quick):
            self.assertIn(span, labelled, f"no sample carries span_id {span}: the Python OTel path under flare record is broken")
        self.assertTrue(all(s["labels"].get("trace_id") == ids["trace_id"] for s in samples if s["labels"].get("span_id") == slow))
        with open(recorded, "rb") as f:
            self.store.request("/api/v1/profiles?service=shop&window_id=rec1", f.read())

        d = self.driver
        self.open_live("service=shop&range=1h")
        wait_for(d, "window.flare.model && window.flare.model.count > 1", message="the service's flame graph")
        d.find_element("css selector", "#tabs button[data-tab=traces]").click()
        row_text = support.click(d, f"document.querySelector('tr.trace-row[data-trace-id=\"{ids['trace_id']}\"]')", message="the trace in the list")
        self.assertIn("checkout", row_text)
        wait_for(d, f"document.querySelector('.span-row[data-span-id=\"{slow}\"]')", message="the slow span in the waterfall")
        self.assertEqual(len(d.find_elements("css selector", ".span-row")), 4)
        support.click(d, f"document.querySelector('.span-row[data-span-id=\"{slow}\"]')", message="the slow span")
        wait_for(d, f"window.flare.state.source && window.flare.state.source.kind === 'span' && window.flare.state.source.span.span_id === '{slow}' && window.flare.state.tab === 'flame'",
                 message="the slow span's flame graph")
        wait_for(d, "!document.getElementById('span-banner').hidden")
        shown = support.model_tree(d)
        only_slow = pprof_util.tree_of(samples, index, lambda s: s["labels"].get("span_id") == slow)
        self.assertEqual(shown, only_slow)
        store_view = json.loads(self.store.request(f"/api/v1/flamegraph?span_id={slow}&max_nodes=200000"))
        self.assertEqual(d.execute_script("return window.flare.model.rootTotal"), store_view["total"])
        # The slow step hashed: most of its samples run in libcrypto, none in zlib's deflate.
        crypto = sum(v for path, v in shown.items() if path and re.search(r"(?i)sha256|libcrypto", path[-1]) and
                     not any(re.search(r"(?i)sha256|libcrypto", p) for p in path[:-1]))
        self.assertGreater(crypto, 0.5 * only_slow[()])

        # With descendants: the slow step and its db-query child.
        d.find_element("id", "with-descendants").click()
        wait_for(d, "window.flare.state.source.withDescendants === true && window.flare.model.rootTotal > " + str(only_slow[()]),
                 message="the span with its descendants")
        both = pprof_util.tree_of(samples, index, lambda s: s["labels"].get("span_id") in (slow, query))
        self.assertEqual(support.model_tree(d), both)

        # From a frame back to the spans: the function slow-step spent most in leads to slow-step.
        self_in_slow = {}
        for s in samples:
            if s["labels"].get("span_id") == slow and s["frames"]:
                self_in_slow[s["frames"][0][0]] = self_in_slow.get(s["frames"][0][0], 0) + s["values"][index]
        hottest = max(self_in_slow, key=self_in_slow.get)
        per_span = {}  # ranked as the store ranks: the function anywhere on the stack
        for s in samples:
            if any(name == hottest for name, _ in s["frames"]):
                span = s["labels"].get("span_id", "")
                per_span[span] = per_span.get(span, 0) + s["values"][index]
        d.find_element("xpath", "//button[text()='Back to the selection']").click()
        wait_for(d, "window.flare.state.source.kind === 'selection' && window.flare.model.rootTotal > 0")
        d.find_element("css selector", "#tabs button[data-tab=table]").click()
        table_filter = d.find_element("css selector", "#tab-table input.filter")
        table_filter.send_keys("^" + re.escape(hottest) + "$")
        wait_for(d, "document.querySelectorAll('#tab-table tbody tr').length === 1")
        d.find_element("css selector", "#tab-table tbody tr").click()
        d.find_element("css selector", "#tabs button[data-tab=flame]").click()
        d.find_element("id", "spans-of-function").click()
        best = max((k for k in per_span if k), key=lambda k: per_span[k])
        names = {ids[k]: k for k in ("checkout", "quick-step", "slow-step", "db-query")}
        first_span = support.click(d, "document.querySelector('#function-spans table.function-spans tr:nth-child(2) button')", message="spans of the function")
        self.assertEqual(first_span, names[best])
        wait_for(d, f"window.flare.state.source.kind === 'span' && window.flare.state.source.span.span_id === '{best}'", message="back to the span")

    def test_hostile_names_render_as_text_and_run_nothing(self):
        evil_name = '<script>window.__pwned = 1</script>'
        evil_img = '"><img src=x onerror="window.__pwned = 2">'
        evil_url = 'javascript:window.__pwned = 3'
        samples = [
            ([("main", "src/main.c"), (evil_name, evil_url)], 60, {"thread_name": evil_img}),
            ([("main", "src/main.c"), (evil_img, '"><svg onload="window.__pwned=4">')], 30, {"thread_name": evil_name}),
            ([(evil_url, "<b>file</b>")], 10, {"span_id": "00000000000000e1", "trace_id": "000000000000000000000000000000e1"}),
        ]
        profile = pprof_util.write_profile(samples, time_ns=time.time_ns() - 5_000_000_000)
        evil_label = '"><img src=x onerror=window.__pwned=5>'
        labels = urllib.parse.quote('{service.version="\\"><img src=x onerror=window.__pwned=5>"}')
        self.store.request(f"/api/v1/profiles?service=evil&window_id=e1&labels={labels}", profile)
        now = time.time_ns()
        spans = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "evil"}}]},
                 "scopeSpans": [{"spans": [{"traceId": "000000000000000000000000000000e1", "spanId": "00000000000000e1",
                                            "name": evil_img, "kind": 2, "startTimeUnixNano": str(now - 3_000_000_000),
                                            "endTimeUnixNano": str(now - 1_000_000_000),
                                            "attributes": [{"key": "http.url", "value": {"stringValue": evil_url}}]}]}]}]}
        self.store.request("/v1/traces", json.dumps(spans).encode(), "application/json")
        path = os.path.join(self.work, "evil.pb.gz")
        with open(path, "wb") as f:
            f.write(profile)
        out = os.path.join(self.work, "evil.html")
        subprocess.run([support.FLARE, "export", "--html", path, "-o", out, "--title", evil_name], check=True)

        def assert_inert(driver, scripts):
            self.assertIsNone(driver.execute_script("return window.__pwned"))
            self.assertEqual(driver.execute_script("return document.querySelectorAll('img, svg, iframe, object, embed').length"), 0)
            self.assertEqual(driver.execute_script("return document.scripts.length"), scripts)
            self.assertEqual(driver.execute_script(
                "return [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => /^on/i.test(a.name))).length"), 0)
            self.assertEqual(driver.execute_script("return document.querySelectorAll('a[href^=\"javascript:\" i]').length"), 0)

        def visit_everything(driver):
            text = ""
            for tab in ("table", "about", "flame"):
                driver.find_element("css selector", f"#tabs button[data-tab={tab}]").click()
                text += driver.find_element("id", "tab-" + tab).text
            # Hover each top frame so the tooltip shows its name.
            for name in (evil_name, evil_img):
                node = node_of(driver, ["main", name])
                self.assertGreater(node, 0)
                tip = hover_node(driver, node)
                text += tip
                self.assertIn(name, tip)
            return text

        # Exported file: the names and the labels appear as text.
        driver = support.browser(offline=True)
        try:
            driver.get("file://" + out)
            wait_for(driver, "window.flare && window.flare.model && window.flare.model.count > 1", message="the exported hostile graph")
            self.assertEqual(driver.title, evil_name)
            text = visit_everything(driver)
            for needle in (evil_name, evil_img, evil_url, "<b>file</b>"):
                self.assertIn(needle, text)
            self.assertIn("thread_name", text)
            assert_inert(driver, 2)
        finally:
            driver.quit()

        # The live viewer, with a hostile trace link template configured.
        d = self.driver
        d.get(self.store.url + "/")
        d.execute_script("localStorage.setItem('flare.traceTemplate', 'javascript:window.__pwned=6//{trace_id}')")
        self.open_live("service=evil&range=1h")
        wait_for(d, "window.flare.model && window.flare.model.count > 1", message="the hostile graph")
        text = visit_everything(d)
        d.find_element("css selector", "#tabs button[data-tab=traces]").click()
        self.assertIn(evil_img, support.click(d, "document.querySelector('tr.trace-row')", message="the hostile trace"))
        self.assertIn(evil_img, support.click(d, "document.querySelector('.span-row')", message="the hostile waterfall"))
        banner = wait_for(d, "!document.getElementById('span-banner').hidden && document.getElementById('banner-span-name')")
        self.assertEqual(banner.text, evil_img)
        self.assertEqual(d.execute_script("return window.flare.model.nameOf(window.flare.model.children[0])"), evil_url)
        self.assertIn(evil_name, text)
        hints = wait_for(d, "[...document.querySelectorAll('#label-hints option')].map(o => o.value)", message="label hints")
        self.assertTrue(any(evil_label in h for h in hints), hints)
        assert_inert(d, 1)
        d.execute_script("localStorage.removeItem('flare.traceTemplate')")

    def test_viewer_sources_never_parse_data_as_markup(self):
        viewer = os.path.join(support.REPO, "viewer")
        for name in sorted(os.listdir(viewer)):
            if name.endswith(".js"):
                source = open(os.path.join(viewer, name)).read()
                for sink in (r"innerHTML", r"outerHTML", r"insertAdjacentHTML", r"document\.write", r"\beval\s*\(",
                             r"\bnew Function\s*\(", r"setTimeout\s*\(\s*['\"`]", r"createContextualFragment", r"DOMParser"):
                    self.assertIsNone(re.search(sink, source), f"{name} uses {sink}")
            self.assertNotRegex(open(os.path.join(viewer, name)).read(), r"(src|href)=\"(https?:)?//", f"{name} refers to the network")


if __name__ == "__main__":
    unittest.main()
