"""What the browser tests share: a real `flare store` process, a headless
Chromium driven over WebDriver, and small PNG and HTTP helpers."""

import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import urllib.request
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
FLARE = os.environ.get("FLARE_BINARY", os.path.join(REPO, ".build", "debug", "flare"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def missing_requirements():
    """What this machine lacks to run the browser tests (empty when nothing)."""
    missing = []
    if not os.access(FLARE, os.X_OK):
        missing.append(f"{FLARE} (run swift build first)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append("chromium (apt-get install chromium)")
    if not os.access(CHROMEDRIVER, os.X_OK):
        missing.append("chromedriver (apt-get install chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install selenium in .build/venv)")
    return missing


def scratch(name):
    base = os.path.join(REPO, ".build", "viewer-tests")
    os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix=name + "-", dir=base)


class Store:
    """`flare store` on a free loopback port with its own SQLite directory."""

    def __init__(self, *extra):
        self.dir = scratch("store")
        self.log = open(os.path.join(self.dir, "store.log"), "w+")
        self.process = subprocess.Popen([FLARE, "store", "--data-dir", self.dir, "--address", "127.0.0.1:0", *extra],
                                        stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:
            self.log.seek(0)
            match = re.search(r"listening on (http://[0-9.]+:\d+)", self.log.read())
            if match:
                self.url = match.group(1)
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        self.log.seek(0)
        raise RuntimeError("flare store did not start: " + self.log.read())

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def request(self, path, body=None, content_type="application/octet-stream"):
        req = urllib.request.Request(self.url + path, data=body, method="POST" if body is not None else "GET")
        if body is not None:
            req.add_header("Content-Type", content_type)
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.read()

    def json(self, path, body=None, content_type="application/octet-stream"):
        return json.loads(self.request(path, body, content_type))


def browser(offline=False):
    """Headless Chromium. offline: every request that would leave the machine
    goes to a dead proxy, and the DevTools network emulation is offline too."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--force-device-scale-factor=1", "--no-first-run"):
        options.add_argument(argument)
    if offline:
        options.add_argument("--proxy-server=http://127.0.0.1:9")
        options.add_argument("--proxy-bypass-list=<-loopback>")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_script_timeout(30)
    if offline:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions",
                               {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
    return driver


def wait_for(driver, script, timeout=30, message="condition"):
    """Polls a JavaScript expression until it is truthy; returns its value."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = driver.execute_script("try { return (" + script + "); } catch (e) { return null; }")
        if last:
            return last
        time.sleep(0.1)
    logs = ""
    try:
        logs = "\n".join(entry["message"] for entry in driver.get_log("browser"))
    except Exception:  # noqa: BLE001 - logs are a diagnostic only
        pass
    raise AssertionError(f"timed out waiting for {message}: {script} (last: {last!r})\nbrowser log:\n{logs}")


def click(driver, script, timeout=30, message="element"):
    """Clicks the element a JavaScript expression finds, finding it again if the
    page re-rendered it in between (lists refresh when their data arrives)."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(5):
        element = wait_for(driver, script, timeout, message)
        try:
            text = element.text
            element.click()
            return text
        except StaleElementReferenceException:
            time.sleep(0.2)
    raise AssertionError(f"{message} kept being replaced")


def model_tree(driver, model_expression="window.flare.model"):
    """The page's own call tree: {root-first tuple of names below the root: total}."""
    pairs = driver.execute_script(f"""
        const m = {model_expression};
        const out = [];
        for (let i = 0; i < m.count; i++) {{
          const path = [];
          for (let u = i; u > 0; u = m.parent[u]) path.push(m.nameOf(u));
          out.push([path.reverse(), m.total[i]]);
        }}
        return out;""")
    tree = {}
    for path, total in pairs:
        key = tuple(path)
        tree[key] = tree.get(key, 0) + total
    return tree


def png_pixels(png):
    """Decodes an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes): (width, height, rows of bytes, channels)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    i, idat, width = 8, b"", 0
    while i < len(png):
        length, kind = struct.unpack(">I4s", png[i:i + 8])
        data = png[i + 8:i + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data)
            assert depth == 8 and color in (2, 6) and interlace == 0, "unexpected PNG format"
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += data
        i += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous, p = [], bytearray(stride), 0
    for _ in range(height):
        f = raw[p]
        line = bytearray(raw[p + 1:p + 1 + stride])
        p += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = previous[x]
            c = previous[x - channels] if x >= channels else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, rows, channels


def distinct_colors(png, box=None):
    """How many distinct colours the screenshot (or the box x, y, w, h of it) holds."""
    width, height, rows, channels = png_pixels(png)
    x0, y0, w, h = box or (0, 0, width, height)
    colors = set()
    for y in range(max(0, y0), min(height, y0 + h), 2):
        row = rows[y]
        for x in range(max(0, x0), min(width, x0 + w), 2):
            colors.add(row[x * channels:x * channels + 3])
    return len(colors)
