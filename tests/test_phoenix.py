"""Against a real Phoenix server (arize-phoenix, SQLite in a temp folder, loopback port): traces sent
through its OTLP endpoint by the OpenTelemetry SDK exporter, ``diagnose phoenix://... --post``,
``watch``, and the faults (wrong project, a 500 on the annotation POST, a timeout, the server
stopped mid-run), each one line and exit 2 with the diagnosis kept.

CI installs arize-phoenix with the ``test`` extra; elsewhere (a venv without it) these tests
skip, except under CI=true, where a missing install fails them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from attribution.cli import main
from attribution.remote.phoenix import Phoenix, parse_since, parse_url

sys.path.insert(0, str(Path(__file__).parent))
from phoenix_support import PhoenixServer, Proxy, phoenix_installed, send_trace  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "otel" / "openinference_multi_agent.json"

if not phoenix_installed():
    if os.environ.get("CI"):
        raise RuntimeError("CI must run the Phoenix tests: pip install -e '.[test]' brings arize-phoenix and the OTel SDK")
    pytest.skip("arize-phoenix / opentelemetry-sdk not installed (pip install -e '.[test]')", allow_module_level=True)


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory):
    with PhoenixServer(tmp_path_factory.mktemp("phoenix")) as server:
        yield server


def _pair_args(tiny_pair) -> list[str]:
    policy, reference = tiny_pair
    return ["--policy", str(policy), "--reference", str(reference)]


def _annotations(base: str, project: str, span_ids) -> list[dict]:
    """Read span annotations back through Phoenix's REST API (not through the code under test)."""
    q = "&".join(f"span_ids={s}" for s in span_ids)
    with urllib.request.urlopen(f"{base}/v1/projects/{project}/span_annotations?{q}&limit=1000", timeout=30) as r:
        return json.loads(r.read())["data"]


def _url(base: str, project: str) -> str:
    return "phoenix://" + base.split("://", 1)[1] + "/" + project


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


def test_url_and_since_parsing():
    assert parse_url("phoenix://127.0.0.1:6006/agents").base == "http://127.0.0.1:6006"
    assert parse_url("phoenix+https://host/prefix/p%2Fq").project == "p/q"
    assert str(parse_url("phoenix://h:1/my%20project")) == "phoenix://h:1/my%20project"
    for bad in ("phoenix://host:6006", "phoenix://user:secret@host/p", "http://host/p", "phoenix://host:xx/p"):
        with pytest.raises(Exception) as err:
            parse_url(bad)
        assert "secret" not in str(err.value)
    assert parse_since("2h").tzinfo is not None
    with pytest.raises(Exception):
        parse_since("yesterday")


def test_diagnose_post_round_trip(phoenix, tiny_pair, tmp_path, monkeypatch):
    sent = send_trace(phoenix.base, FIXTURE, "roundtrip")
    send_trace(phoenix.base, FIXTURE, "roundtrip")  # a second trace: --trace picks one
    monkeypatch.setenv("PHOENIX_API_KEY", "sk-test-never-printed")
    with Proxy(phoenix.base) as proxy:
        url = _url(proxy.base, "roundtrip")
        out = tmp_path / "diag.json"
        args = ["diagnose", url, "--trace", sent["trace_id"], "--post", "--json", str(out), "-q", *_pair_args(tiny_pair)]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        diag = json.loads(out.read_text())
        assert f"posted 4 span annotations to {url}: 4 accepted (the diagnosis is in {out})" in result.output
        # the key went out as Phoenix's client sends it, and is printed and stored nowhere
        assert all(r["headers"].get("Authorization") == "Bearer sk-test-never-printed" for r in proxy.requests)
        assert "sk-test" not in result.output and "sk-test" not in out.read_text()
        # the same run read from the fixture file gives the same steps and the same culprit
        file_out = tmp_path / "file.json"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r2 = CliRunner().invoke(main, ["diagnose", str(FIXTURE), "--json", str(file_out), "-q", *_pair_args(tiny_pair)])
        assert r2.exit_code == 0, r2.output
        from_file = json.loads(file_out.read_text())
        assert diag["culprit_step"] == from_file["culprit_step"]
        assert len(diag["run_steps"]) == len(from_file["run_steps"])
        assert [s["score"] for s in diag["steps"]] == pytest.approx([s["score"] for s in from_file["steps"]], abs=1e-4)

        spans = {e["index"]: e["origin"]["id"] for e in diag["run_steps"]}
        action_spans = {spans[s["index"]] for s in diag["steps"] if s["score"] is not None}
        assert len(action_spans) == 4 and action_spans <= set(sent["span_ids"].values())
        # read back through Phoenix's API: one progress_advantage annotation per scored span
        got = [a for a in _annotations(phoenix.base, "roundtrip", action_spans) if a["name"] == "progress_advantage"]
        assert sorted(a["span_id"] for a in got) == sorted(action_spans)
        culprit_span = spans[diag["culprit_step"]]
        labels = {a["span_id"]: a["result"]["label"] for a in got}
        assert labels[culprit_span] == "culprit"
        assert all(label == "ok" for s, label in labels.items() if s != culprit_span)
        assert all(a["annotator_kind"] == "CODE" and a["identifier"].startswith("attribution:") for a in got)
        # posting again updates (identifier) instead of duplicating
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        again = [a for a in _annotations(phoenix.base, "roundtrip", action_spans) if a["name"] == "progress_advantage"]
        assert sorted(a["id"] for a in again) == sorted(a["id"] for a in got)


def test_diagnose_several_traces_needs_a_choice(phoenix, tiny_pair, tmp_path):
    send_trace(phoenix.base, FIXTURE, "choice")
    send_trace(phoenix.base, FIXTURE, "choice")
    result = CliRunner().invoke(main, ["diagnose", _url(phoenix.base, "choice"), "-q", *_pair_args(tiny_pair)])
    line = _one_line_error(result)
    assert "one trace (pass --trace ID, --since T or --all)" in line and "2 traces" in line
    out = tmp_path / "all.json"
    result = CliRunner().invoke(main, ["diagnose", _url(phoenix.base, "choice"), "--since", "1h", "-q", "--json", str(out),
                                       *_pair_args(tiny_pair)])
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())) == 2


def test_wrong_project_is_one_line(phoenix, tiny_pair):
    result = CliRunner().invoke(main, ["diagnose", _url(phoenix.base, "no-such-project"), "--post", *_pair_args(tiny_pair)])
    line = _one_line_error(result)
    assert "no project 'no-such-project'" in line


def test_server_down_is_one_line(tiny_pair):
    from phoenix_support import free_port

    result = CliRunner().invoke(main, ["diagnose", f"phoenix://127.0.0.1:{free_port()}/p", "--all", *_pair_args(tiny_pair)])
    assert "connection refused" in _one_line_error(result)


def test_annotation_post_answered_500_keeps_the_diagnosis(phoenix, tiny_pair, tmp_path):
    sent = send_trace(phoenix.base, FIXTURE, "fail500")
    with Proxy(phoenix.base) as proxy:
        proxy.fail_post = 500
        out = tmp_path / "kept.json"
        result = CliRunner().invoke(main, ["diagnose", _url(proxy.base, "fail500"), "--post", "--json", str(out), "-q",
                                           *_pair_args(tiny_pair)])
    line = _one_line_error(result)
    assert "500" in line and "injected failure" in line and f"the diagnosis is kept in {out}" in line
    assert json.loads(out.read_text())["run_id"] == sent["trace_id"]


def test_timeout_is_one_line(phoenix, tiny_pair, tmp_path):
    send_trace(phoenix.base, FIXTURE, "slow")
    with Proxy(phoenix.base) as proxy:
        proxy.delay_s = 3
        result = CliRunner().invoke(main, ["diagnose", _url(proxy.base, "slow"), "--timeout", "0.5", *_pair_args(tiny_pair)])
    assert "timeout" in _one_line_error(result)


def test_server_stopped_mid_run_keeps_the_diagnosis(tmp_path, tiny_pair, monkeypatch):
    import attribution.diagnoser as diagnoser

    with PhoenixServer(tmp_path / "phoenix") as server:
        sent = send_trace(server.base, FIXTURE, "stopped")
        real = diagnoser.diagnose_many

        def score_then_stop(*args, **kwargs):  # the spans are read; the server goes away while scoring
            out = real(*args, **kwargs)
            server.stop()
            return out

        monkeypatch.setattr(diagnoser, "diagnose_many", score_then_stop)
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(main, ["diagnose", _url(server.base, "stopped"), "--post", "-q", *_pair_args(tiny_pair)])
    line = _one_line_error(result)
    assert "connection refused" in line and "the diagnosis is kept in attribution-diagnosis.json" in line
    assert json.loads((tmp_path / "attribution-diagnosis.json").read_text())["run_id"] == sent["trace_id"]


def test_watch_annotates_each_trace_once_across_polls_and_restarts(phoenix, tiny_pair, tmp_path):
    first = send_trace(phoenix.base, FIXTURE, "watched")
    state = tmp_path / "state.json"
    with Proxy(phoenix.base) as proxy:
        url = _url(proxy.base, "watched")
        cmd = [sys.executable, "-m", "attribution.cli", "watch", url, "--state", str(state), "--polls", "2",
               "--interval", "1", *_pair_args(tiny_pair)]
        proxy.roots_gate = threading.Event()  # poll 2 waits until the second trace is in
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
        try:
            lines = []
            deadline = time.monotonic() + 300
            for line in proc.stdout:  # bounded: the watch stops after two polls
                lines.append(line)
                if line.startswith("poll 1:"):
                    second = send_trace(phoenix.base, FIXTURE, "watched")  # arrives between the polls
                    proxy.roots_gate.set()
                assert time.monotonic() < deadline
            assert proc.wait(timeout=120) == 0, "".join(lines)
        finally:
            if proc.poll() is None:
                proc.kill()
        out = "".join(lines)
        assert f"trace {first['trace_id']}: culprit step" in out and f"trace {second['trace_id']}: culprit step" in out
        assert "poll 1: 1 finished trace(s) in the last 24h, 1 new, 1 diagnosed" in out
        assert "poll 2: 2 finished trace(s) in the last 24h, 1 new, 1 diagnosed" in out
        # a restart: nothing new, nothing posted again
        proxy.roots_gate = None
        result = CliRunner().invoke(main, ["watch", url, "--state", str(state), "--polls", "1", *_pair_args(tiny_pair)])
        assert result.exit_code == 0, result.output
        assert "0 new, 0 diagnosed" in result.output
        posted = [a["span_id"] for p in proxy.posts() for a in p["body"]["data"]]
    assert len(posted) == len(set(posted)) == 8  # 4 scored spans per trace, each posted once
    assert set(posted) <= set(first["span_ids"].values()) | set(second["span_ids"].values())
    saved = json.loads(state.read_text())
    assert set(saved["done"]) == {first["trace_id"], second["trace_id"]}
    for t in (first, second):
        got = _annotations(phoenix.base, "watched", t["span_ids"].values())
        assert len(got) == 4 and sum(a["result"]["label"] == "culprit" for a in got) == 1
        assert Path(saved["done"][t["trace_id"]]["diagnosis"]).name == f"{t['trace_id']}.json"


def test_watch_state_of_another_project_is_refused(phoenix, tiny_pair, tmp_path):
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"schema": "attribution.watch/1", "source": "phoenix://elsewhere:1/p", "done": {}}))
    result = CliRunner().invoke(main, ["watch", _url(phoenix.base, "watched"), "--state", str(state), "--polls", "1",
                                       *_pair_args(tiny_pair)])
    assert "is the watch state of phoenix://elsewhere:1/p" in _one_line_error(result)


def test_client_reads_through_phoenix_rest(phoenix):
    sent = send_trace(phoenix.base, FIXTURE, "client")
    client = Phoenix(_url(phoenix.base, "client"))
    spans = client.spans(trace_ids=[sent["trace_id"]])
    assert len(spans) == len(sent["span_ids"])
    roots = client.roots()
    assert [r["context"]["span_id"] for r in roots] == [sent["root"]]
    (run,) = client.runs(spans)
    assert run.run_id == sent["trace_id"] and run.source == _url(phoenix.base, "client")
    assert {s.origin.id for s in run.steps} <= set(sent["span_ids"].values())
