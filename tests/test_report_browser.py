"""Open reports in a real headless Chromium: the script runs, the culprit is marked, tokens are shaded.

CI installs Chromium with ``.ci/install-chromium.sh``; elsewhere the tests skip when it is absent.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from test_report import INJECTION, large_diagnosis, small_diagnosis

from attribution.report import write_html

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (run .ci/install-chromium.sh)"
)


def chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
        page.as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


def dump_dom(tmp_path: Path, page: Path) -> str:
    return chromium(tmp_path, page, "--virtual-time-budget=5000", "--dump-dom").stdout


def test_live_dom_marks_culprit_and_shades_tokens(tmp_path):
    d = small_diagnosis()
    d.run_steps[7]["content"] = INJECTION
    d.steps[d.culprit_step].tokens[0] = INJECTION
    page = write_html(d, tmp_path / "report.html")
    dom = dump_dom(tmp_path, page)
    assert re.search(r'<html[^>]*data-ready-ms="[\d.]+"', dom), "the report's script did not run"
    culprit = re.search(
        rf'<article class="step act culprit" id="step-{d.culprit_step}">(.*?)</article>', dom, re.DOTALL
    )
    assert culprit, "culprit step not marked"
    spans = re.findall(
        r'<span class="tok" style="background-color: rgb\((\d+), (\d+), (\d+)\);[^"]*">', culprit.group(1)
    )
    assert len(spans) == d.steps[d.culprit_step].n_tokens
    assert len(set(spans)) > 5, "tokens should carry different shades"
    assert re.search(rf'<a class="cell culprit[^"]*" href="#step-{d.culprit_step}"', dom)
    assert "alert(1)" in dom and "<script>alert" not in dom


def test_large_report_loads_and_screenshots(tmp_path):
    d = large_diagnosis()
    page = write_html(d, tmp_path / "report.html")
    dom = dump_dom(tmp_path, page)
    ready_ms = float(re.search(r'data-ready-ms="([\d.]+)"', dom).group(1))
    assert ready_ms < 5000
    # Only the culprit, the gold step and steps near the viewport have token spans.
    assert dom.count('class="tok"') < 20_000
    shot = tmp_path / "report.png"
    chromium(tmp_path, page, "--virtual-time-budget=5000", f"--screenshot={shot}", "--window-size=1400,1000")
    assert shot.exists() and shot.stat().st_size > 30_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- issue 17: jump links land on the step; a full-page capture shows every step ---------------------
class DevTools:
    """The Chrome DevTools Protocol over --remote-debugging-pipe (fds 3 and 4): no extra package."""

    def __init__(self, tmp_path: Path, width: int = 1280, height: int = 800):
        import os

        self._to_r, self._to_w = os.pipe()
        self._from_r, self._from_w = os.pipe()
        cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
               f"--window-size={width},{height}", f"--user-data-dir={tmp_path / 'profile'}", "--remote-debugging-pipe",
               "about:blank"]

        def fds():  # the browser reads commands on fd 3 and writes replies on fd 4 (copies first: either may be 3 or 4)
            to_r, from_w = os.dup(self._to_r), os.dup(self._from_w)
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        self.proc = subprocess.Popen(cmd, preexec_fn=fds, pass_fds=(3, 4), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(self._to_r)
        os.close(self._from_w)
        self._out = os.fdopen(self._to_w, "wb")
        self._in = os.fdopen(self._from_r, "rb")
        self._buf = b""
        self._id = 0
        self.session = None

    def _read(self) -> dict:
        import json

        while b"\0" not in self._buf:
            chunk = self._in.read1(1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, session: bool = True, **params) -> dict:
        import json

        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session and self.session:
            msg["sessionId"] = self.session
        self._out.write(json.dumps(msg).encode() + b"\0")
        self._out.flush()
        while True:
            got = self._read()
            if got.get("id") == self._id:
                if "error" in got:
                    raise RuntimeError(f"{method}: {got['error']}")
                return got["result"]

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", session=False, url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", session=False, targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable")
        self.send("Page.navigate", url=url)
        import time

        ready = f"location.href === {url!r} && document.readyState === 'complete' && !!document.documentElement.dataset.readyMs"
        for _ in range(600):  # the report's script marks the page ready (data-ready-ms)
            try:
                if self.eval(ready):
                    return
            except RuntimeError:  # the old document's context went away mid-evaluation
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{url} did not become ready")

    def eval(self, expression: str):
        got = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in got:
            raise RuntimeError(str(got["exceptionDetails"]))
        return got["result"].get("value")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


def fifty_step_report(tmp_path: Path, n_steps: int = 50) -> tuple[Path, int]:
    """A report whose culprit sits deep in the run (step n - 7), below steps of uneven length."""
    from test_report import synthetic_diagnosis

    from attribution.report.html import LAZY_STEPS

    culprit = n_steps - 7
    lengths = [0] + [[40, 700, 0, 300, 120, 2000][i % 6] for i in range(1, n_steps)]
    d = synthetic_diagnosis(lengths, seed=3, culprit=culprit)
    assert d.culprit_step == culprit
    page = write_html(d, tmp_path / "report.html")
    assert ('<body class="lazy">' in page.read_text()) == (n_steps > LAZY_STEPS)
    return page, culprit


STEP_BOX = "(() => { const b = document.getElementById('step-%d').getBoundingClientRect(); return [b.top, b.bottom, innerHeight]; })()"
SETTLE = "new Promise(r => { let last = null, same = 0; const f = () => { const y = scrollY; same = y === last ? same + 1 : 0; last = y; same > 10 ? r(y) : setTimeout(f, 50); }; setTimeout(f, 50); })"


@pytest.mark.parametrize("n_steps", [50, 600])  # 600: a long run, laid out lazily (LAZY_STEPS)
@pytest.mark.parametrize("link", ["#top-steps a[href='#step-{n}']", ".card.verdict a[href='#step-{n}']", "a.cell.culprit[href='#step-{n}']"])
def test_a_click_on_a_step_link_brings_the_steps_top_into_view(tmp_path, link, n_steps):
    page, n = fifty_step_report(tmp_path, n_steps)
    browser = DevTools(tmp_path)
    try:
        browser.open(page.as_uri())
        assert browser.eval(f"!!document.querySelector(\"{link.format(n=n)}\")"), f"no link {link.format(n=n)}"
        browser.eval(f"document.querySelector(\"{link.format(n=n)}\").click()")
        browser.eval(SETTLE)
        top, bottom, height = browser.eval(STEP_BOX % n)
        assert 0 <= top < height, f"step {n}'s top is at {top}px, outside the {height}px viewport"
        assert browser.eval("location.hash") == f"#step-{n}"
    finally:
        browser.close()


def test_full_page_capture_shows_every_step(tmp_path):
    import base64
    import io

    from PIL import Image

    page, _ = fifty_step_report(tmp_path)
    browser = DevTools(tmp_path)
    try:
        browser.open(page.as_uri())
        last = browser.eval("document.querySelectorAll('.step').length") - 1
        box = browser.eval(
            f"(() => {{ const b = document.querySelector('#step-{last} .text').getBoundingClientRect(); "
            "return [b.left + scrollX, b.top + scrollY, b.width, b.height, document.documentElement.scrollHeight]; })()"
        )
        shot = browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    finally:
        browser.close()
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("L")
    left, top, width, height, page_height = box
    assert image.height >= page_height - 2 and top > 5 * 800  # the capture reaches the last step, far below the viewport
    crop = image.crop((int(left), int(top), int(left + width), int(top + min(height, 200))))
    dark = sum(crop.histogram()[:140])  # pixels darker than the step's light background
    assert dark > 200, f"the last step's text is blank in a full-page capture ({dark} dark pixels)"
