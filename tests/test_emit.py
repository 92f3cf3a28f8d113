"""Verdicts out (``--emit``): every payload's ids round-trip to the source file, and the CLI writes them."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from attribution.cli import main
from attribution.diagnoser import build_diagnosis
from attribution.emit import EMITTERS, check_ids, emit, jsonl_records, langfuse_payload, otel_payload, parse_emit, phoenix_payload
from attribution.errors import ConfigError, InputError
from attribution.parse import load_runs
from attribution.types import Diagnosis, StepScore

FIXTURES = Path(__file__).parent / "fixtures"
LOGS = sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".json", ".jsonl", ".traj") and p.parent != FIXTURES
              and "bad" not in p.name)


def fake_diagnosis(run) -> Diagnosis:
    """Scores from the text alone (no model): emit only reads the diagnosis."""
    steps = []
    for s in run.steps:
        if s.is_action and s.content.strip():
            n = max(1, len(s.content) // 10)
            logps = [-(1 + (len(s.content) + k) % 5) / 10 for k in range(n)]
            steps.append(StepScore(s.index, s.agent, s.kind, ["x"] * n, logps, [-0.2] * n, 0.5))
        else:
            steps.append(StepScore(s.index, s.agent, s.kind))
    return build_diagnosis(run, steps)


def _runs(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the readers' own warnings are tested with each reader
        return load_runs(path)


def test_fixture_logs_exist():
    assert len(LOGS) >= 1


@pytest.mark.parametrize("path", LOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_emitted_id_is_in_the_source_file(path):
    text = path.read_text(encoding="utf-8")
    runs = _runs(path)
    diags = [fake_diagnosis(r) for r in runs]
    # jsonl: every step of every run, ids (when any) found in the file
    recs = jsonl_records(diags)
    assert len(recs) == sum(len(r.steps) for r in runs)
    for r in recs:
        for key in ("source_id", "trace_id"):
            if r[key] is not None:
                assert r[key] in text, f"{key} {r[key]!r} not in {path.name}"
    culprits = [r for r in recs if r["culprit"]]
    assert len(culprits) == len(runs) and all(r["rank"] == 1 for r in culprits)
    for kind, build in (("phoenix", phoenix_payload), ("langfuse", langfuse_payload), ("otel", otel_payload)):
        try:
            check_ids(runs, kind)
        except InputError:
            continue  # this format keeps no ids of that kind: refused up front, tested below
        payload = build(diags)
        if kind == "phoenix":
            ids = [(a["span_id"], None) for a in payload["data"]]
            assert all(a["annotator_kind"] == "CODE" and a["name"] == "progress_advantage" for a in payload["data"])
            assert {a["result"]["label"] for a in payload["data"]} <= {"culprit", "ok"}
        elif kind == "langfuse":
            ids = [(s.get("observationId"), s["traceId"]) for s in payload]
            assert {s["dataType"] for s in payload} == {"NUMERIC", "CATEGORICAL"}
        else:
            records = payload["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
            ids = [(r["spanId"], r["traceId"]) for r in records]
            assert all(r["eventName"] == "gen_ai.evaluation.result" for r in records)
        assert ids, f"{kind} payload of {path.name} is empty"
        for span, trace in ids:
            assert span is None or span in text
            assert trace is None or trace in text


def test_chat_message_ids_round_trip_and_span_kinds_are_refused(tmp_path):
    path = FIXTURES / "chat" / "with_ids.jsonl"
    run, = _runs(path)
    assert [s.origin.id for s in run.steps] == [f"msg_0{k}" for k in range(1, 6)]
    assert [s.origin.line for s in run.steps] == [1, 2, 3, 4, 5]
    assert run.steps[0].origin.timestamp == "2025-03-01T10:00:00Z"
    diag = fake_diagnosis(run)
    rec = {r["step"]: r for r in jsonl_records([diag])}
    assert rec[2]["source_id"] == "msg_03" and rec[2]["line"] == 3 and rec[3]["score"] is None
    with pytest.raises(InputError, match=r"with_ids.jsonl: expected action steps with span ids for --emit phoenix; got none in run with_ids \(chat format\)"):
        check_ids([run], "phoenix")
    out = emit(diag, "jsonl", tmp_path / "deep" / "v.jsonl")
    lines = out.read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[2])["source_id"] == "msg_03"


def test_emit_spec_is_checked():
    assert parse_emit("langfuse:out/scores.json") == ("langfuse", Path("out/scores.json"))
    for bad in ("phoenix", "nope:x.json", "jsonl:"):
        with pytest.raises(ConfigError, match="--emit"):
            parse_emit(bad)
    assert set(EMITTERS) == {"jsonl", "phoenix", "langfuse", "otel"}


def test_cli_emits_every_requested_kind_before_scoring_errors(tiny_pair, tmp_path):
    log = FIXTURES / "chat" / "with_ids.jsonl"
    out = tmp_path / "verdict.jsonl"
    args = ["diagnose", str(log), "--policy", str(tiny_pair[0]), "--reference", str(tiny_pair[1]), "-q"]
    res = CliRunner().invoke(main, [*args, "--emit", f"jsonl:{out}"])
    assert res.exit_code == 0, res.output
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["source_id"] for r in recs] == [f"msg_0{k}" for k in range(1, 6)]
    assert sum(r["culprit"] for r in recs) == 1
    res = CliRunner().invoke(main, [*args, "--emit", f"otel:{tmp_path / 'o.json'}"])
    assert res.exit_code == 2 and "span and trace ids for --emit otel" in res.output
    assert not (tmp_path / "o.json").exists()


# -- ids on the way out (issues 18 and 20) ---------------------------------------------------------


def test_sdk_console_dump_ids_go_out_in_each_targets_form(tmp_path):
    """The SDK prints ids as 0x...: Phoenix, Langfuse and OTLP get lower-case hex, 16 / 32 characters."""
    runs = _runs(FIXTURES / "otel" / "sdk_console_dump.txt")
    diags = [fake_diagnosis(r) for r in runs]
    for kind in ("phoenix", "langfuse", "otel"):
        check_ids(runs, kind)
    span_ids = [a["span_id"] for a in phoenix_payload(diags)["data"]]
    scores = langfuse_payload(diags)
    records = otel_payload(diags)["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    spans = span_ids + [s["observationId"] for s in scores if "observationId" in s] + [r["spanId"] for r in records]
    traces = [s["traceId"] for s in scores] + [r["traceId"] for r in records]
    assert spans and traces
    assert all(len(x) == 16 and x == x.lower() and int(x, 16) and not x.startswith("0x") for x in spans)
    assert set(traces) == {"f5865726842a6626f236647784a6ddcb"}
    text = (FIXTURES / "otel" / "sdk_console_dump.txt").read_text()
    assert all(f'"0x{x}"' in text for x in spans)  # the same ids, in the form the targets store
    # jsonl keeps them verbatim
    assert all(r["source_id"].startswith("0x") for r in jsonl_records(diags))


def test_otlp_log_records_carry_times_and_no_duplicated_event_name():
    runs = _runs(FIXTURES / "otel" / "genai_agents.json")
    records = otel_payload([fake_diagnosis(r) for r in runs])["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    for r in records:
        assert r["timeUnixNano"].isdigit() and r["observedTimeUnixNano"].isdigit() and int(r["timeUnixNano"]) > 1.7e18
        assert r["eventName"] == "gen_ai.evaluation.result"
        assert "event.name" not in {a["key"] for a in r["attributes"]}


def test_langfuse_ids_of_otel_shape_go_to_phoenix_and_otel():
    """The OTel-based Langfuse SDKs' observation ids are OTel span ids: phoenix and otel accept them."""
    runs = _runs(FIXTURES / "otel" / "langfuse_otel_envelopes.json")
    diags = [fake_diagnosis(r) for r in runs]
    for kind in ("phoenix", "otel", "langfuse"):
        check_ids(runs, kind)
    assert {a["span_id"] for a in phoenix_payload(diags)["data"]} == {
        s.origin.id for s in runs[0].steps if s.is_action}
    # Langfuse's own ids (UUIDs, as its non-OTel SDKs write them) stay with langfuse, verbatim
    run = _span_run("9f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", "7d3e1c0a-2b4f-4e6d-9a8b-1c2d3e4f5a6b", id_type="observation")
    with pytest.raises(InputError, match="expected action steps with span and trace ids for --emit otel"):
        check_ids([run], "otel")
    check_ids([run], "langfuse")
    scores = langfuse_payload([fake_diagnosis(run)])
    assert {s.get("observationId") for s in scores} == {"9f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", None}
    assert {s["traceId"] for s in scores} == {"7d3e1c0a-2b4f-4e6d-9a8b-1c2d3e4f5a6b"}


def _span_run(span_id, trace_id="5b8efff798038103d269b633813fc60c", id_type="span"):
    from attribution.types import Origin, Run, Step

    o = Origin(id=span_id, id_type=id_type, trace_id=trace_id)
    steps = [Step(0, "user", "user", "observation", "task", origin=o), Step(1, "a", "assistant", "action", "answer", origin=o),
             Step(2, "b", "assistant", "action", "other", origin=o)]
    return Run(steps, "r1", source="t.json", format="otel")


@pytest.mark.parametrize("span_id, trace_id, what", [
    ("span-one", "5b8efff798038103d269b633813fc60c", "span"),
    ("0xZZ", "5b8efff798038103d269b633813fc60c", "span"),
    ("a" * 17, "5b8efff798038103d269b633813fc60c", "span"),
    ("0" * 16, "5b8efff798038103d269b633813fc60c", "span"),
    ("d40c68878cde436b", "trace-1", "trace"),
])
def test_ids_that_are_not_hex_are_refused_for_otel(span_id, trace_id, what):
    run = _span_run(span_id, trace_id)
    with pytest.raises(InputError, match=rf"t.json, step 1: expected {what} ids of \d+ hex digits .* for --emit otel; "
                                         r"got .* in run r1; use --emit jsonl"):
        check_ids([run], "otel")
    with pytest.raises(InputError, match="for --emit otel"):
        otel_payload([fake_diagnosis(run)])
    if what == "span":
        with pytest.raises(InputError, match="for --emit phoenix"):
            check_ids([run], "phoenix")


def test_otel_id_normalises():
    from attribution.emit import otel_id

    assert otel_id("0xD40C68878CDE436B") == "d40c68878cde436b"
    assert otel_id(" 5B8EFFF798038103D269B633813FC60C ", "trace") == "5b8efff798038103d269b633813fc60c"
    assert otel_id("a1b2c3d4e5f60718", "trace") == "0000000000000000a1b2c3d4e5f60718"  # Jaeger's 64-bit trace ids
    assert otel_id("g1") is None and otel_id(None) is None and otel_id(7) is None


def test_cli_diagnoses_sdk_console_dump_and_trail_with_every_emit(tiny_pair, tmp_path):
    """Done-when of issues 18/20: an SDK console dump and a TRAIL export diagnose, and every --emit payload
    carries ids Phoenix, Langfuse and OTLP accept (lower-case hex, 16 / 32 characters), found in the file."""
    for log in (FIXTURES / "otel" / "sdk_console_dump.txt", FIXTURES / "otel" / "trail_gaia.json"):
        text = log.read_text().lower()
        outs = {k: tmp_path / f"{log.stem}.{k}.json" for k in ("phoenix", "langfuse", "otel", "jsonl")}
        args = ["diagnose", str(log), "--policy", str(tiny_pair[0]), "--reference", str(tiny_pair[1]), "-q",
                *[a for k, p in outs.items() for a in ("--emit", f"{k}:{p}")]]
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
        spans = [a["span_id"] for a in json.loads(outs["phoenix"].read_text())["data"]]
        scores = json.loads(outs["langfuse"].read_text())
        records = json.loads(outs["otel"].read_text())["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        spans += [s["observationId"] for s in scores if "observationId" in s] + [r["spanId"] for r in records]
        traces = {s["traceId"] for s in scores} | {r["traceId"] for r in records}
        assert spans and all(len(x) == 16 and int(x, 16) and x in text for x in spans)
        assert len(traces) == 1 and all(len(x) == 32 and x in text for x in traces)
        for r in map(json.loads, outs["jsonl"].read_text().splitlines()):
            assert r["source_id"] in log.read_text()  # verbatim, as the source wrote it
