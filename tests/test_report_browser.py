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
