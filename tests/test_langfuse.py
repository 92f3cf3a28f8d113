"""The Langfuse client against recorded request and response shapes from Langfuse's published API
reference (no Langfuse server can run here): a loopback server answers
``GET /api/public/traces/{traceId}`` with a recorded ``TraceWithFullDetails``
(tests/fixtures/otel/langfuse_trace.json), ``GET /api/public/traces`` with a ``Traces`` page
(``{"data": [...], "meta": {page, limit, totalItems, totalPages}}``) and
``POST /api/public/scores`` with a ``CreateScoreResponse`` (``{"id": ...}``), and records what the
client sent: the path, basic auth from LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY, the score bodies."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from attribution.cli import main
from attribution.errors import ConfigError, RemoteError
from attribution.remote.langfuse import Langfuse, parse_url

TRACE = Path(__file__).parent / "fixtures" / "otel" / "langfuse_trace.json"
TRACE_ID = json.loads(TRACE.read_text())["id"]
PUBLIC, SECRET = "pk-lf-test", "sk-lf-never-printed"
#: ScoreBody fields of Langfuse's API reference (POST /api/public/scores).
SCORE_FIELDS = {"id", "traceId", "observationId", "sessionId", "datasetRunId", "name", "value", "dataType", "comment",
                "metadata", "configId", "environment", "queueId"}


class FakeLangfuse:
    """Answers as Langfuse's API reference says, on a loopback port; ``status`` forces an error answer."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status: int | None = None
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, value) -> None:
                data = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                outer.requests.append({"method": self.command, "path": self.path, "auth": self.headers.get("Authorization"),
                                       "body": body})
                if outer.status:
                    return self._answer(outer.status, {"message": "Invalid credentials"} if outer.status == 401 else {"error": "boom"})
                if self.headers.get("Authorization") != "Basic " + base64.b64encode(f"{PUBLIC}:{SECRET}".encode()).decode():
                    return self._answer(401, {"message": "Invalid credentials"})
                path = self.path.split("?")[0]
                if self.command == "GET" and path == f"/api/public/traces/{TRACE_ID}":
                    return self._answer(200, json.loads(TRACE.read_text()))
                if self.command == "GET" and path.startswith("/api/public/traces/"):
                    return self._answer(404, {"message": "Trace not found within authorized project"})
                if self.command == "GET" and path == "/api/public/traces":
                    trace = {k: v for k, v in json.loads(TRACE.read_text()).items() if k != "observations"}
                    return self._answer(200, {"data": [trace], "meta": {"page": 1, "limit": 100, "totalItems": 1, "totalPages": 1}})
                if self.command == "POST" and path == "/api/public/scores":
                    return self._answer(200, {"id": body["id"]})
                return self._answer(404, {"message": "not found"})

            do_GET = do_POST = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"langfuse://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def langfuse(monkeypatch):
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", PUBLIC)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", SECRET)
    with FakeLangfuse() as server:
        yield server


def test_url_forms(monkeypatch):
    assert parse_url("langfuse://127.0.0.1:3000") == "http://127.0.0.1:3000"
    assert parse_url("langfuse+https://lf.example.com") == "https://lf.example.com"
    monkeypatch.setenv("LANGFUSE_HOST", "https://eu.cloud.langfuse.com/")
    assert parse_url("langfuse://") == "https://eu.cloud.langfuse.com"
    monkeypatch.delenv("LANGFUSE_HOST")
    assert parse_url("langfuse://") == "https://cloud.langfuse.com"
    with pytest.raises(ConfigError):
        parse_url("langfuse://pk:sk@host")


def test_reads_a_trace_with_basic_auth(langfuse):
    client = Langfuse(langfuse.url)
    (run,) = client.runs([TRACE_ID])
    assert run.run_id == TRACE_ID and run.format == "otel"
    assert any(s.origin.id_type == "observation" for s in run.steps)
    req = langfuse.requests[-1]
    assert req["path"] == f"/api/public/traces/{TRACE_ID}"
    assert req["auth"] == "Basic " + base64.b64encode(f"{PUBLIC}:{SECRET}".encode()).decode()
    assert client.trace_ids() == [TRACE_ID]
    assert "page=1" in langfuse.requests[-1]["path"] and "limit=100" in langfuse.requests[-1]["path"]


def test_diagnose_post_sends_score_bodies(langfuse, tiny_pair, tmp_path):
    policy, reference = tiny_pair
    out = tmp_path / "d.json"
    result = CliRunner().invoke(main, ["diagnose", langfuse.url, "--trace", TRACE_ID, "--post", "--json", str(out), "-q",
                                       "--policy", str(policy), "--reference", str(reference)])
    assert result.exit_code == 0, result.output
    posts = [r for r in langfuse.requests if r["method"] == "POST"]
    assert posts and all(r["path"] == "/api/public/scores" for r in posts)
    assert f"posted {len(posts)} scores to langfuse http://127.0.0.1:" in result.output and f"{len(posts)} accepted" in result.output
    bodies = [r["body"] for r in posts]
    assert all(set(b) <= SCORE_FIELDS and b["traceId"] == TRACE_ID and b["id"] for b in bodies)
    assert {b["dataType"] for b in bodies} == {"NUMERIC", "CATEGORICAL"}
    diag = json.loads(out.read_text())
    culprit = [b for b in bodies if b["name"] == "culprit" and b["value"] == "culprit"]
    (step,) = [e for e in diag["run_steps"] if e["index"] == diag["culprit_step"]]
    assert [b["observationId"] for b in culprit] == [step["origin"]["id"]]
    assert [b["value"] for b in bodies if b["name"] == "culprit_agent"] == [diag["culprit_agent"]]
    assert SECRET not in result.output and SECRET not in out.read_text()
    # the ids are deterministic: posting again sends the same ids (Langfuse updates the scores)
    CliRunner().invoke(main, ["diagnose", langfuse.url, "--trace", TRACE_ID, "--post", "--json", str(out), "-q",
                              "--policy", str(policy), "--reference", str(reference)])
    again = [r["body"]["id"] for r in langfuse.requests if r["method"] == "POST"][len(posts):]
    assert again == [b["id"] for b in bodies]


def test_faults_are_one_line(langfuse, tiny_pair, monkeypatch):
    policy, reference = tiny_pair
    pair = ["--policy", str(policy), "--reference", str(reference)]
    result = CliRunner().invoke(main, ["diagnose", langfuse.url, "--trace", "missing", *pair])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "404" in result.output and "Trace not found" in result.output
    langfuse.status = 401
    result = CliRunner().invoke(main, ["diagnose", langfuse.url, "--trace", TRACE_ID, *pair])
    assert result.exit_code == 2 and "401" in result.output and SECRET not in result.output
    monkeypatch.delenv("LANGFUSE_SECRET_KEY")
    with pytest.raises(ConfigError, match="LANGFUSE_SECRET_KEY"):
        Langfuse(langfuse.url).trace(TRACE_ID)
    result = CliRunner().invoke(main, ["diagnose", langfuse.url, *pair])
    assert result.exit_code == 2 and "--trace ID, --since T or --all" in result.output


def test_post_answered_500_is_a_remote_error(langfuse):
    langfuse.status = 500
    with pytest.raises(RemoteError, match="500"):
        Langfuse(langfuse.url).post([{"id": "x", "traceId": TRACE_ID, "name": "culprit", "value": "ok", "dataType": "CATEGORICAL"}])
