"""Take docs/phoenix/culprit-annotation.png: Phoenix's own UI showing the culprit annotation.

Starts a real Phoenix on a loopback port (SQLite in a temporary folder), sends the multi-agent
OpenInference trace of tests/fixtures/otel/openinference_multi_agent.json through its OTLP
endpoint with the OpenTelemetry SDK exporter, runs ``attribution diagnose phoenix://... --post``
(a tiny random checkpoint pair built locally: the picture shows the mechanics, not a verdict worth
reading), opens the culprit span in Phoenix's trace view in headless Chromium (driven over the DevTools
protocol, to open the span's Annotations panel) and saves the screenshot. Needs ``pip install -e '.[phoenix]'`` and /usr/bin/chromium (.ci/install-chromium.sh).

    python docs/phoenix/screenshot.py [OUT.png]
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from phoenix_support import PhoenixServer, free_port, send_trace  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "otel" / "openinference_multi_agent.json"
PROJECT = "agents"


def main(out: Path) -> None:
    from attribution.tiny import build_tiny_pair

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        policy, reference = build_tiny_pair(tmp / "pair", max_positions=1024)
        with PhoenixServer(tmp / "phoenix") as phx:
            sent = send_trace(phx.base, FIXTURE, PROJECT)
            url = f"phoenix://{phx.base.split('://')[1]}/{PROJECT}"
            subprocess.run([sys.executable, "-m", "attribution.cli", "diagnose", url, "--post", "-q", "--json",
                            str(tmp / "diagnosis.json"), "--policy", str(policy), "--reference", str(reference)],
                           check=True, cwd=tmp)
            diag = json.loads((tmp / "diagnosis.json").read_text())
            span = next(e["origin"]["id"] for e in diag["run_steps"] if e["index"] == diag["culprit_step"])
            with urllib.request.urlopen(f"{phx.base}/v1/projects/{PROJECT}/spans?span_id={span}", timeout=30) as r:
                node = json.loads(r.read())["data"][0]["id"]  # the span's global id, as the UI names it
            with urllib.request.urlopen(f"{phx.base}/v1/projects/{PROJECT}", timeout=30) as r:
                project = json.loads(r.read())["data"]["id"]
            page = f"{phx.base}/projects/{project}/traces/{sent['trace_id']}?selectedSpanNodeId={node}"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(screenshot(page, tmp / "chromium"))
            print(f"wrote {out} ({page})")


def screenshot(page: str, profile: Path, timeout_s: float = 90.0) -> bytes:
    """PNG of ``page`` in headless Chromium, driven over the DevTools protocol: wait for the span
    details, open their Annotations panel (collapsed by default) and wait for the culprit label."""
    from websockets.sync.client import connect  # comes with the phoenix extra (Phoenix's server needs it)

    port = free_port()
    proc = subprocess.Popen(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                             f"--remote-debugging-port={port}", f"--user-data-dir={profile}", "--window-size=1600,1000",
                             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    target = next(t for t in json.loads(r.read()) if t["type"] == "page")
                break
            except (OSError, StopIteration):
                if time.monotonic() > deadline:
                    raise RuntimeError("Chromium's DevTools endpoint did not come up")
                time.sleep(0.2)
        with connect(target["webSocketDebuggerUrl"], max_size=None) as ws:
            ids = iter(range(1, 10**6))

            def call(method: str, **params):
                n = next(ids)
                ws.send(json.dumps({"id": n, "method": method, "params": params}))
                while True:
                    msg = json.loads(ws.recv(timeout=timeout_s))
                    if msg.get("id") == n:
                        return msg.get("result", {})

            def wait_for(js: str) -> None:
                while call("Runtime.evaluate", expression=js, returnByValue=True)["result"].get("value") is not True:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the page never satisfied {js}")
                    time.sleep(0.5)

            call("Emulation.setDeviceMetricsOverride", width=1600, height=1000, deviceScaleFactor=1, mobile=False)
            call("Page.navigate", url=page)
            wait_for("document.body.innerText.includes('Annotations')")
            # The span's Annotations panel is collapsed: open it and switch it to its table (label, score,
            # explanation), clicking like a person would.
            for text in ("Annotations", "Table"):
                wait_for(f"document.body.innerText.includes('{text}')")
                where = call("Runtime.evaluate", returnByValue=True, expression=(
                    "(() => { const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);"
                    f" while (w.nextNode()) {{ if (w.currentNode.nodeValue.trim() === '{text}') {{"
                    " const r = w.currentNode.parentElement.getBoundingClientRect();"
                    " return [r.x + r.width / 2, r.y + r.height / 2]; } } return null; })()"))["result"]["value"]
                if where is None:
                    raise RuntimeError(f"no {text!r} on the page")
                for kind in ("mousePressed", "mouseReleased"):
                    call("Input.dispatchMouseEvent", type=kind, x=where[0], y=where[1], button="left", clickCount=1)
            wait_for("document.body.innerText.includes('culprit')")
            time.sleep(1.0)  # let the panel finish opening
            return base64.b64decode(call("Page.captureScreenshot", format="png")["data"])
    finally:
        proc.kill()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "culprit-annotation.png")
