"""Take docs/phoenix/culprit-annotation.png: Phoenix's own UI showing the culprit annotation.

Starts a real Phoenix on a loopback port (SQLite in a temporary folder), sends the multi-agent
OpenInference trace of tests/fixtures/otel/openinference_multi_agent.json through its OTLP
endpoint with the OpenTelemetry SDK exporter, runs ``attribution diagnose phoenix://... --post``
(a tiny random checkpoint pair built locally: the picture shows the mechanics, not a verdict worth
reading), opens the culprit span in Phoenix's trace view with headless Chromium and saves the
screenshot. Needs ``pip install -e '.[phoenix]'`` and /usr/bin/chromium (.ci/install-chromium.sh).

    python docs/phoenix/screenshot.py [OUT.png]
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from phoenix_support import PhoenixServer, send_trace  # noqa: E402

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
            subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                            f"--user-data-dir={tmp / 'chromium'}", "--window-size=1600,1000",
                            "--virtual-time-budget=20000", f"--screenshot={out}", page],
                           check=True, capture_output=True, timeout=180)
            print(f"wrote {out} ({page})")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "culprit-annotation.png")
