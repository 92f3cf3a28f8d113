"""Fuzz table: malformed inputs and options, each run through the command line.

Every case must end in exactly one line, ``error: ...``, exit status 2 (1 for an operating-system
error), naming the file (or option) and what was expected; never a traceback, never a silent
success. Counts of the table (cases; tracebacks and silent results before and after the
hardening) are in the hardening report of issue 10.

To extend: add a :class:`Case` to one of the lists below. Bad shapes for a new reader go in
``READER_CASES[<its NAME>]``; the generic bad values of ``GENERIC_VALUES`` run against every
reader registered in :data:`attribution.parse.READERS` (``--format NAME``) and through
auto-detection, so a new reader is fuzzed as soon as it is registered.

Placeholders in ``argv``: ``{tmp}`` (the case's folder, holding ``files``), ``{log}`` (a valid
chat log), ``{policy}`` / ``{reference}`` (the tiny pair), ``{diag}`` (a valid saved diagnosis).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from attribution.cli import main
from attribution.parse import READERS

#: Raw control characters that must never reach the terminal (newline aside).
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Case:
    """One malformed input or option and the error it must give."""

    id: str
    argv: tuple[str, ...]
    expect: str  # a fragment of the one error line (case-sensitive)
    files: dict[str, str | bytes] = field(default_factory=dict)
    names: str | None = None  # what the line must name (default: the first file of ``files``)
    status: int = 2


def _j(value) -> str:
    return json.dumps(value)


GOOD_CHAT = [
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "name": "planner", "content": "Ask the solver to add the numbers."},
    {"role": "assistant", "name": "solver", "content": "The answer is 5."},
]
GOOD_WW = {
    "question": "What is 2 + 2?",
    "history": [
        {"role": "user", "name": "Planner_Expert", "content": "Plan: add the numbers."},
        {"role": "assistant", "name": "Solver_Expert", "content": "The answer is 5."},
    ],
    "mistake_agent": "Solver_Expert",
    "mistake_step": "1",
    "is_correct": False,
}
DEEP = "[" * 5000 + "]" * 5000


def _chat(**labels):
    return _j({"messages": GOOD_CHAT, **labels})


def _ww(**changes):
    return _j({**GOOD_WW, **changes})


def _ww_history(*entries):
    return _j({**GOOD_WW, "history": list(entries), "mistake_step": None})


# -- run logs: generic bad values, for every reader and for auto-detection ---------------------

#: (id, file name, content, expected fragment); content may be bytes.
GENERIC_VALUES: list[tuple[str, str, str | bytes, str]] = [
    ("empty-file", "run.json", "", "empty file"),
    ("whitespace", "run.json", "  \n\t\n", "empty file"),
    ("not-json", "run.json", "{not json", "valid JSON"),
    ("truncated", "run.json", '[{"role": "user", "content": "hi"', "valid JSON"),
    ("null", "run.json", "null", "expected"),
    ("number", "run.json", "42", "expected"),
    ("string", "run.json", '"a run"', "expected"),
    ("true", "run.json", "true", "expected"),
    ("empty-list", "run.json", "[]", "expected"),
    ("empty-object", "run.json", "{}", "expected"),
    ("list-of-null", "run.json", "[null]", "expected"),
    ("list-of-numbers", "run.json", "[1, 2, 3]", "expected"),
    ("list-of-lists", "run.json", "[[], []]", "expected"),
    ("deep-json", "run.json", DEEP, "nested at most"),
    ("deep-jsonl-line", "run.jsonl", _j(GOOD_CHAT[0]) + "\n" + DEEP + "\n", "line 2"),
    ("deep-object", "run.json", '{"a":' * 3000 + "1" + "}" * 3000, "nested at most"),
    ("bad-utf8", "run.json", b'[{"role": "user", "content": "\xff\xfe"}]', "UTF-8"),
    ("nan-literal", "run.json", '{"history": NaN, "is_correct": false}', "expected"),
    ("bad-jsonl-line", "run.jsonl", _j(GOOD_CHAT[0]) + "\n{oops\n", "line 2"),
]


def _generic_cases() -> list[Case]:
    cases = []
    for fmt in [None, *READERS]:
        for cid, name, content, expect in GENERIC_VALUES:
            extra = ("--format", fmt) if fmt else ()
            cases.append(Case(f"log-{fmt or 'auto'}-{cid}", ("diagnose", "{tmp}/" + name, *extra), expect, {name: content}))
    return cases


# -- run logs: bad shapes per reader -----------------------------------------------------------

READER_CASES: dict[str, list[Case]] = {
    "chat": [
        Case("chat-role-number", ("diagnose", "{tmp}/r.json", "--format", "chat"), "role",
             {"r.json": _j([{"role": 42, "content": "x"}, *GOOD_CHAT[1:]])}),
        Case("chat-role-missing", ("diagnose", "{tmp}/r.json", "--format", "chat"), "role",
             {"r.json": _j([{"content": "x"}, *GOOD_CHAT[1:]])}),
        Case("chat-role-unknown", ("diagnose", "{tmp}/r.json", "--format", "chat"), "role",
             {"r.json": _j([{"role": "wizard", "content": "x"}, *GOOD_CHAT[1:]])}),
        Case("chat-content-number", ("diagnose", "{tmp}/r.json"), "step 1",
             {"r.json": _j([GOOD_CHAT[0], {"role": "assistant", "content": 42}])}),
        Case("chat-content-object", ("diagnose", "{tmp}/r.json"), "step 1",
             {"r.json": _j([GOOD_CHAT[0], {"role": "assistant", "content": {"text": "x"}}])}),
        Case("chat-name-number", ("diagnose", "{tmp}/r.json"), "step 1",
             {"r.json": _j([GOOD_CHAT[0], {"role": "assistant", "name": 7, "content": "x"}])}),
        Case("chat-tool-calls-string", ("diagnose", "{tmp}/r.json"), "step 1",
             {"r.json": _j([GOOD_CHAT[0], {"role": "assistant", "content": "x", "tool_calls": "call"}])}),
        Case("chat-messages-string", ("diagnose", "{tmp}/r.json", "--format", "chat"), "expected",
             {"r.json": _j({"messages": "hello"})}),
        Case("chat-messages-empty", ("diagnose", "{tmp}/r.json", "--format", "chat"), "expected",
             {"r.json": _j({"messages": []})}),
        Case("chat-only-observations", ("diagnose", "{tmp}/r.json"), "action",
             {"r.json": _j([{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}])}),
        Case("chat-mixed-runs-and-messages", ("diagnose", "{tmp}/r.json"), "not both",
             {"r.json": _j([{"messages": GOOD_CHAT}, GOOD_CHAT[0]])}),
        Case("chat-mistake-step-arabic-digits", ("diagnose", "{tmp}/r.json"), "mistake_step",
             {"r.json": _chat(mistake_step="\u0661")}),
        Case("chat-mistake-step-fullwidth-digits", ("diagnose", "{tmp}/r.json"), "mistake_step",
             {"r.json": _chat(mistake_step="\uff11")}),
        Case("chat-mistake-step-negative", ("diagnose", "{tmp}/r.json"), "mistake_step",
             {"r.json": _chat(mistake_step=-1)}),
        Case("chat-mistake-step-float", ("diagnose", "{tmp}/r.json"), "mistake_step",
             {"r.json": _chat(mistake_step=1.5)}),
        Case("chat-mistake-step-bool", ("diagnose", "{tmp}/r.json"), "mistake_step",
             {"r.json": _chat(mistake_step=True)}),
        Case("chat-mistake-step-out-of-range", ("diagnose", "{tmp}/r.json"), "mistake_step",
             {"r.json": _chat(mistake_step=99)}),
        Case("chat-mistake-step-words", ("diagnose", "{tmp}/r.json"), "mistake_step",
             {"r.json": _chat(mistake_step="two")}),
        Case("chat-mistake-agent-number", ("diagnose", "{tmp}/r.json"), "mistake_agent",
             {"r.json": _chat(mistake_step=1, mistake_agent=3)}),
        Case("chat-success-string", ("diagnose", "{tmp}/r.json"), "success",
             {"r.json": _chat(success="no")}),
        Case("chat-tool-arguments-deep", ("diagnose", "{tmp}/r.json", "--run", "nosuch"), "a run with id 'nosuch'",
             {"r.json": _j([GOOD_CHAT[0], {"role": "assistant", "content": "x", "tool_calls": [
                 {"id": "c1", "type": "function", "function": {"name": "f", "arguments": DEEP}}]}, GOOD_CHAT[2]])}),
        Case("chat-duplicate-run-ids", ("diagnose", "{tmp}/r.jsonl"), "distinct ids",
             {"r.jsonl": _j({"id": "a", "messages": GOOD_CHAT}) + "\n" + _j({"id": "a", "messages": GOOD_CHAT}) + "\n"}),
        Case("chat-several-runs", ("diagnose", "{tmp}/r.jsonl"), "one run",
             {"r.jsonl": _j({"id": "a", "messages": GOOD_CHAT}) + "\n" + _j({"id": "b", "messages": GOOD_CHAT}) + "\n"}),
    ],
    "who-and-when": [
        Case("ww-history-string", ("diagnose", "{tmp}/w.json", "--format", "who-and-when"), "history",
             {"w.json": _ww(history="nope")}),
        Case("ww-history-empty", ("diagnose", "{tmp}/w.json", "--format", "who-and-when"), "history",
             {"w.json": _ww(history=[])}),
        Case("ww-entry-number", ("diagnose", "{tmp}/w.json"), "step 0",
             {"w.json": _ww_history(5)}),
        Case("ww-content-missing", ("diagnose", "{tmp}/w.json"), "step 1",
             {"w.json": _ww_history(GOOD_WW["history"][0], {"name": "Solver_Expert", "role": "assistant"})}),
        Case("ww-content-list", ("diagnose", "{tmp}/w.json"), "step 1",
             {"w.json": _ww_history(GOOD_WW["history"][0], {"name": "Solver_Expert", "content": ["x"]})}),
        Case("ww-name-empty", ("diagnose", "{tmp}/w.json"), "step 1",
             {"w.json": _ww_history(GOOD_WW["history"][0], {"name": "", "content": "x"})}),
        Case("ww-handcrafted-bad-role", ("diagnose", "{tmp}/w.json"), "step 0",
             {"w.json": _ww_history({"role": "Orchestrator (maybe)", "content": "x"})}),
        Case("ww-handcrafted-role-number", ("diagnose", "{tmp}/w.json"), "step 0",
             {"w.json": _ww_history({"role": 3, "content": "x"})}),
        Case("ww-mistake-step-arabic-digits", ("diagnose", "{tmp}/w.json"), "mistake_step",
             {"w.json": _ww(mistake_step="\u0661")}),
        Case("ww-mistake-step-words", ("diagnose", "{tmp}/w.json"), "mistake_step",
             {"w.json": _ww(mistake_step="one")}),
        Case("ww-mistake-step-out-of-range", ("diagnose", "{tmp}/w.json"), "mistake_step",
             {"w.json": _ww(mistake_step="7")}),
        Case("ww-mistake-step-negative", ("diagnose", "{tmp}/w.json"), "mistake_step",
             {"w.json": _ww(mistake_step="-1")}),
        Case("ww-mistake-agent-list", ("diagnose", "{tmp}/w.json"), "mistake_agent",
             {"w.json": _ww(mistake_agent=["Solver_Expert"])}),
        Case("ww-is-correct-string", ("diagnose", "{tmp}/w.json"), "success",
             {"w.json": _ww(is_correct="false")}),
        Case("ww-question-number", ("diagnose", "{tmp}/w.json"), "question",
             {"w.json": _ww(question=12)}),
        Case("ww-only-terminal", ("diagnose", "{tmp}/w.json"), "action",
             {"w.json": _ww_history({"name": "Computer_terminal", "content": "exitcode: 0"})}),
    ],
}


def _otlp(*spans) -> str:
    return _j({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": list(spans)}]}]})


def _otel_llm(sid: str, text: str, start="1700000000000000000", trace="5b8efff798038103d269b633813fc60c") -> dict:
    out = [{"role": "assistant", "parts": [{"type": "text", "content": text}]}]
    return {"traceId": trace, "spanId": sid, "name": "chat", "startTimeUnixNano": start,
            "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                           {"key": "gen_ai.output.messages", "value": {"stringValue": _j(out)}}]}


READER_CASES["otel"] = [
    Case("otel-span-id-shared", ("diagnose", "{tmp}/t.json"), "span ids unique within the trace",
         {"t.json": _otlp(_otel_llm("aaaaaaaaaaaaaaaa", "one"), _otel_llm("aaaaaaaaaaaaaaaa", "two"))}),
    Case("otel-start-time-words", ("diagnose", "{tmp}/t.json", "--format", "otel"), "'startTimeUnixNano' as nanoseconds",
         {"t.json": _otlp(_otel_llm("aaaaaaaaaaaaaaaa", "one", start="yesterday"))}),
    Case("otel-start-time-float", ("diagnose", "{tmp}/t.json"), "'startTimeUnixNano' as nanoseconds",
         {"t.json": _otlp(_otel_llm("aaaaaaaaaaaaaaaa", "one", start=1.7e18))}),
    Case("otel-llm-span-no-output", ("diagnose", "{tmp}/t.json"), "with no output text in llm.output_messages",
         {"t.json": _otlp({**_otel_llm("aaaaaaaaaaaaaaaa", "x"), "attributes": [
             {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}]})}),
    Case("otel-console-dump-broken", ("diagnose", "{tmp}/spans.txt"), "console exporter",
         {"spans.txt": '{\n "name": "a",\n "context": {"span_id": "0x1"}\n}\n{\n "name": oops\n}\n'}),
    Case("otel-trail-timestamp-words", ("diagnose", "{tmp}/t.json"), "'timestamp' as a time",
         {"t.json": _j({"trace_id": "t1", "spans": [{"span_id": "s1", "span_name": "run", "timestamp": "soon",
                                                      "span_attributes": {}, "child_spans": []}]})}),
]


# -- options -----------------------------------------------------------------------------------

LOG = {"log.json": _j(GOOD_CHAT)}

OPTION_CASES: list[Case] = [
    Case("opt-top-k-zero", ("diagnose", "--top-k", "0", "{tmp}/log.json"), "0 is not in the range", LOG, names="--top-k"),
    Case("opt-top-k-negative", ("diagnose", "--top-k", "-3", "{tmp}/log.json"), "not in the range", LOG, names="--top-k"),
    Case("opt-top-k-word", ("diagnose", "--top-k", "five", "{tmp}/log.json"), "not a valid integer", LOG, names="--top-k"),
    Case("opt-aggregate", ("diagnose", "--aggregate", "median", "{tmp}/log.json"), "is not one of", LOG, names="--aggregate"),
    Case("opt-ranker", ("diagnose", "--ranker", "best", "{tmp}/log.json"), "is not one of", LOG, names="--ranker"),
    Case("opt-window-one", ("diagnose", "--window", "1", "{tmp}/log.json"), "not in the range", LOG, names="--window"),
    Case("opt-min-context-zero", ("diagnose", "--min-context", "0", "{tmp}/log.json"), "not in the range", LOG, names="--min-context"),
    Case("opt-dtype", ("diagnose", "--dtype", "float8", "{tmp}/log.json"), "is not one of", LOG, names="--dtype"),
    Case("opt-beta-word", ("diagnose", "--beta", "small", "{tmp}/log.json"), "not a valid float", LOG, names="--beta"),
    Case("opt-format-unknown", ("diagnose", "--format", "yaml", "{tmp}/log.json"), "Unknown format", LOG, names="yaml"),
    Case("opt-format-typo", ("diagnose", "--format", "chatt", "{tmp}/log.json"), "did you mean 'chat'", LOG, names="chatt"),
    Case("opt-format-escape", ("diagnose", "--format", "x\x1b[2J", "{tmp}/log.json"), "Unknown format", LOG, names="\\x1b[2J"),
    Case("opt-unknown-option", ("diagnose", "--bogus", "{tmp}/log.json"), "No such option", LOG, names="--bogus"),
    Case("opt-option-typo", ("diagnose", "--top-ks", "3", "{tmp}/log.json"), "Did you mean '--top-k'", LOG, names="--top-ks"),
    Case("opt-missing-argument", ("diagnose",), "Missing argument 'LOG...'", names="diagnose --help"),
    Case("opt-extra-argument", ("report", "{tmp}/log.json", "{tmp}/log.json", "--html", "{tmp}/r.html"), "unexpected extra argument",
         LOG, names="report --help"),
    Case("opt-missing-value", ("diagnose", "{tmp}/log.json", "--top-k"), "requires an argument", LOG, names="--top-k"),
    Case("opt-no-such-command", ("diagnos", "{tmp}/log.json"), "Did you mean 'diagnose'", LOG, names="diagnos"),
    Case("opt-no-such-world-command", ("world", "generat"), "No such command", names="generat"),
    Case("opt-top-level-option", ("--bogus",), "No such option", names="--bogus"),
    Case("opt-log-missing", ("diagnose", "{tmp}/nope.json"), "nope.json", names="nope.json"),
    Case("opt-log-is-folder", ("diagnose", "{tmp}"), "expected a folder holding log files", names="{tmp}"),
    Case("opt-log-escape-name", ("diagnose", "{tmp}/a\x1b]0;pwned\x07.json"), "a\\x1b]0;pwned\\x07.json", names="\\x1b"),
    Case("opt-report-no-html", ("report", "{tmp}/d.json"), "Missing option '--html'", {"d.json": "{}"}, names="--html"),
    Case("opt-report-collapse-zero", ("report", "{tmp}/d.json", "--html", "{tmp}/r.html", "--collapse-tokens", "0"),
         "not in the range", {"d.json": "{}"}, names="--collapse-tokens"),
    Case("opt-eval-folds-one", ("eval", "--folds", "1"), "not in the range", names="--folds"),
    Case("opt-eval-bootstrap-negative", ("eval", "--bootstrap", "-1"), "not in the range", names="--bootstrap"),
    Case("opt-eval-group-size-zero", ("eval", "--group-size", "0"), "not in the range", names="--group-size"),
    Case("opt-eval-seed-word", ("eval", "--seed", "abc"), "not a valid integer", names="--seed"),
    Case("opt-eval-aggregate", ("eval", "--aggregate", "max"), "is not one of", names="--aggregate"),
    Case("opt-eval-dataset-missing", ("eval", "--dataset", "{tmp}/none.jsonl", "--no-cache"), "no such file", names="none.jsonl"),
    Case("opt-eval-dataset-unlabelled", ("eval", "--dataset", "{tmp}/runs.jsonl", "--no-cache"), "label",
         {"runs.jsonl": _j({"messages": GOOD_CHAT}) + "\n"}),
    Case("opt-eval-dataset-deep", ("eval", "--dataset", "{tmp}/runs.jsonl", "--no-cache"), "nested at most",
         {"runs.jsonl": DEEP + "\n"}),
    Case("opt-eval-data-dir-missing", ("eval", "--data-dir", "{tmp}/ww", "--no-cache"), "Who&When", names="ww"),
    Case("opt-world-results-no-data", ("world", "results", "--data", "{tmp}", "--out", "{tmp}/r.md",
                                       "--png", "{tmp}/r.png", "--example", "{tmp}/e.json"), "failures.jsonl", names="failures.jsonl"),
    Case("opt-world-results-bad-jsonl", ("world", "results", "--data", "{tmp}", "--out", "{tmp}/r.md",
                                         "--png", "{tmp}/r.png", "--example", "{tmp}/e.json"), "line 1",
         {"failures.jsonl": "{nope\n", "mixed.jsonl": "{}\n", "failures_heldout.jsonl": "{}\n"}),
    Case("opt-world-results-deep-jsonl", ("world", "results", "--data", "{tmp}", "--out", "{tmp}/r.md",
                                          "--png", "{tmp}/r.png", "--example", "{tmp}/e.json"), "nested at most",
         {"failures.jsonl": DEEP + "\n", "mixed.jsonl": "{}\n", "failures_heldout.jsonl": "{}\n"}),
]


# -- pair configs ------------------------------------------------------------------------------


def _pairs(**spec) -> str:
    pair = {"policy": "{policy}", "reference": "{reference}", **spec}
    return _j({"pairs": {"p": pair}, "default": "p"})


PAIR_CASES: list[Case] = [
    Case(f"pairs-{cid}", ("diagnose", "{tmp}/log.json", "--pairs", "{tmp}/pairs.json"), expect, {**LOG, "pairs.json": text},
         names="pairs.json")
    for cid, text, expect in [
        ("not-json", "{pairs", "not JSON"),
        ("empty", "", "not JSON"),
        ("deep", DEEP, "nested at most"),
        ("list", "[]", "'pairs' mapping"),
        ("no-pairs", "{}", "'pairs' mapping"),
        ("pairs-empty", _j({"pairs": {}}), "'pairs' mapping"),
        ("pairs-list", _j({"pairs": [1]}), "'pairs' mapping"),
        ("pair-string", _j({"pairs": {"p": "x"}}), "'policy' and 'reference'"),
        ("pair-no-reference", _j({"pairs": {"p": {"policy": "x"}}}), "'policy' and 'reference'"),
        ("policy-number", _j({"pairs": {"p": {"policy": 3, "reference": "x"}}}), "policy must be"),
        ("policy-empty", _j({"pairs": {"p": {"policy": "", "reference": "x"}}}), "policy must be"),
        ("beta-string", _pairs(beta="high"), "The 'beta' parameter of pair 'p' must be a finite positive number"),
        ("beta-bool", _pairs(beta=True), "The 'beta' parameter of pair 'p' must be a finite positive number"),
        ("beta-list", _pairs(beta=[0.1]), "The 'beta' parameter of pair 'p' must be a finite positive number"),
        ("dtype-number", _pairs(dtype=16), "dtype must be a string"),
        ("name-escape", _j({"pairs": {"p\x1b[2J": {"policy": "{policy}", "reference": "{reference}"}}, "default": "p\x1b[2J"}),
         "printable"),
        ("agents-list", _j({"pairs": {"p": {"policy": "{policy}", "reference": "{reference}"}}, "agents": ["p"]}), "'agents' must map"),
        ("agents-value-list", _j({"pairs": {"p": {"policy": "{policy}", "reference": "{reference}"}}, "agents": {"*": ["p"]}}), "'agents' must map"),
        ("agents-unknown-pair", _j({"pairs": {"p": {"policy": "{policy}", "reference": "{reference}"}}, "agents": {"*": "q"}}), "not among"),
        ("default-list", _j({"pairs": {"p": {"policy": "{policy}", "reference": "{reference}"}}, "default": ["p"]}), "'default' must be"),
        ("default-unknown", _j({"pairs": {"p": {"policy": "{policy}", "reference": "{reference}"}}, "default": "q"}), "not among"),
        ("bad-utf8", b'{"pairs": {"\xff": 1}}', "UTF-8"),
    ]
] + [
    Case("pairs-missing-file", ("diagnose", "{tmp}/log.json", "--pairs", "{tmp}/pairs.json"), "not found", LOG, names="pairs.json"),
    Case("pairs-folder", ("diagnose", "{tmp}/log.json", "--pairs", "{tmp}"), "is a directory", LOG, names="{tmp}"),
]


# -- report inputs -----------------------------------------------------------------------------


def _diagnosis(**changes) -> dict:
    steps = [
        {"index": 0, "agent": "user", "kind": "observation", "tokens": [], "logps": [], "ref_logps": [], "beta": 1.0, "score": None},
        {"index": 1, "agent": "planner", "kind": "action", "tokens": ["Ask", " it"], "logps": [-1.0, -2.0],
         "ref_logps": [-1.5, -1.0], "beta": 0.5, "score": -0.25},
        {"index": 2, "agent": "solver", "kind": "action", "tokens": ["5"], "logps": [-3.0], "ref_logps": [-1.0],
         "beta": 0.5, "score": -1.0},
    ]
    d = {
        "run_id": "r1", "source": "run.json", "culprit_step": 2, "culprit_agent": "solver", "top": [2, 1],
        "agent_totals": {"planner": -0.25, "solver": -1.0}, "steps": steps,
        "settings": {"aggregate": "sum"}, "checkpoints": {"p": {"policy": "a", "reference": "b", "beta": 0.5}},
        "run_steps": [{"index": i, "agent": s["agent"], "role": s["agent"], "kind": s["kind"], "content": "text", "to": None}
                      for i, s in enumerate(steps)],
        "labels": {"mistake_step": 2, "mistake_agent": "solver"}, "schema": "attribution.diagnosis/1",
    }
    for key, value in changes.items():
        target, *path = key.split("__")
        if not path:
            d[target] = value
            continue
        obj = d[target]
        for p in path[:-1]:
            obj = obj[int(p)] if isinstance(obj, list) else obj[p]
        last = path[-1]
        obj[int(last) if isinstance(obj, list) else last] = value
    return d


def _report(cid: str, text: str | bytes, expect: str) -> Case:
    return Case(f"report-{cid}", ("report", "{tmp}/d.json", "--html", "{tmp}/r.html"), expect, {"d.json": text}, names="d.json")


REPORT_CASES: list[Case] = [
    _report("not-json", "{oops", "invalid JSON"),
    _report("deep", DEEP, "nested at most"),
    _report("list", "[]", "JSON object"),
    _report("no-schema", _j({k: v for k, v in _diagnosis().items() if k != "schema"}), "schema"),
    _report("missing-run-id", _j({k: v for k, v in _diagnosis().items() if k != "run_id"}), "'run_id'"),
    _report("missing-culprit", _j({k: v for k, v in _diagnosis().items() if k != "culprit_step"}), "'culprit_step'"),
    _report("culprit-markup", _j(_diagnosis(culprit_step='2"><script>alert(1)</script>')), "culprit_step"),
    _report("culprit-string-digits", _j(_diagnosis(culprit_step="2")), "culprit_step"),
    _report("culprit-bool", _j(_diagnosis(culprit_step=True)), "culprit_step"),
    _report("culprit-negative", _j(_diagnosis(culprit_step=-2)), "culprit_step"),
    _report("culprit-not-a-step", _j(_diagnosis(culprit_step=9)), "culprit_step"),
    _report("culprit-observation", _j(_diagnosis(culprit_step=0, top=[0])), "culprit_step"),
    _report("culprit-agent-number", _j(_diagnosis(culprit_agent=5)), "culprit_agent"),
    _report("culprit-agent-mismatch", _j(_diagnosis(culprit_agent="planner")), "culprit_agent"),
    _report("run-id-object", _j(_diagnosis(run_id={"x": 1})), "run_id"),
    _report("source-number", _j(_diagnosis(source=1)), "source"),
    _report("top-empty", _j(_diagnosis(top=[])), "top"),
    _report("top-strings", _j(_diagnosis(top=["2", "1"])), "top"),
    _report("top-unknown-step", _j(_diagnosis(top=[2, 7])), "top"),
    _report("top-not-culprit-first", _j(_diagnosis(top=[1, 2])), "top"),
    _report("ranking-strings", _j(_diagnosis(ranking=["2", "1"])), "ranking"),
    _report("ranking-not-culprit-first", _j(_diagnosis(ranking=[1, 2])), "ranking"),
    _report("format-number", _j(_diagnosis(format=3)), "format"),
    _report("agent-totals-string", _j(_diagnosis(agent_totals={"solver": "-1"})), "agent_totals"),
    _report("agent-totals-list", _j(_diagnosis(agent_totals=[1])), "agent_totals"),
    _report("steps-not-list", _j(_diagnosis(steps={"0": {}})), "steps"),
    _report("step-index-string", _j(_diagnosis(steps__1__index="1")), "index"),
    _report("step-index-duplicate", _j(_diagnosis(steps__1__index=2)), "unique"),
    _report("step-agent-markup-number", _j(_diagnosis(steps__1__agent=1)), "agent"),
    _report("step-kind-unknown", _j(_diagnosis(steps__1__kind="<b>act</b>")), "kind"),
    _report("step-tokens-numbers", _j(_diagnosis(steps__1__tokens=[1, 2])), "tokens"),
    _report("step-lengths-differ", _j(_diagnosis(steps__1__logps=[-1.0])), "equal length"),
    _report("step-logp-nan", _j(_diagnosis()).replace("-3.0", "NaN"), "finite"),
    _report("step-logp-string", _j(_diagnosis(steps__2__logps=["-3"])), "finite"),
    _report("step-score-infinity", _j(_diagnosis()).replace('"score": -1.0', '"score": -Infinity'), "finite"),
    _report("step-beta-string", _j(_diagnosis(steps__1__beta="0.5")), "beta"),
    _report("run-steps-index-missing", _j(_diagnosis(run_steps__1={"agent": "x"})), "run_steps"),
    _report("run-steps-content-number", _j(_diagnosis(run_steps__1__content=3)), "content"),
    _report("run-steps-to-list", _j(_diagnosis(run_steps__1__to=["x"])), "to"),
    _report("labels-mistake-step-string", _j(_diagnosis(labels={"mistake_step": "2"})), "mistake_step"),
    _report("labels-mistake-step-bool", _j(_diagnosis(labels={"mistake_step": True})), "mistake_step"),
    _report("labels-success-string", _j(_diagnosis(labels={"success": "no"})), "success"),
    _report("labels-question-list", _j(_diagnosis(labels={"question": ["q"]})), "question"),
    _report("checkpoint-not-object", _j(_diagnosis(checkpoints={"p": "x"})), "checkpoints"),
    _report("bad-utf8", b"\xff{}", "UTF-8"),
    Case("report-missing-file", ("report", "{tmp}/none.json", "--html", "{tmp}/r.html"), "no such file", names="none.json"),
]


# -- outputs that cannot be written ------------------------------------------------------------

_PAIR = ("--policy", "{policy}", "--reference", "{reference}")
_UNDER_FILE = {**LOG, "file": "x"}
_EVAL_DATA = {"runs.jsonl": _j({"messages": GOOD_CHAT, "mistake_step": 2, "mistake_agent": "solver"}) + "\n"}
_EVAL = ("eval", "--dataset", "{tmp}/runs.jsonl", "--no-cache", "--bootstrap", "0", "-q", "--aggregate", "sum",
         "--ranker", "most-negative", *_PAIR)

OUTPUT_CASES: list[Case] = [
    Case("out-json-is-folder", ("diagnose", "{tmp}/log.json", *_PAIR, "--json", "{tmp}"), "is a directory", LOG, names="--json"),
    Case("out-json-under-file", ("diagnose", "{tmp}/log.json", *_PAIR, "--json", "{tmp}/file/d.json"), "not a folder",
         _UNDER_FILE, names="--json"),
    Case("out-json-under-dev-null", ("diagnose", "{tmp}/log.json", *_PAIR, "--json", "/dev/null/d.json"), "not a folder",
         LOG, names="/dev/null/d.json"),
    Case("out-json-under-proc", ("diagnose", "{tmp}/log.json", *_PAIR, "--json", "/proc/attribution-x/d.json"), "cannot write the --json output",
         LOG, names="--json"),
    Case("out-json-name-too-long", ("diagnose", "{tmp}/log.json", *_PAIR, "--json", "{tmp}/" + "a" * 300 + ".json"), "too long",
         LOG, names="--json"),
    Case("out-json-is-the-log", ("diagnose", "{tmp}/log.json", *_PAIR, "--json", "{tmp}/log.json"), "input", LOG, names="--json"),
    Case("out-json-and-html-same", ("diagnose", "{tmp}/log.json", *_PAIR, "--json", "{tmp}/o", "--html", "{tmp}/o"),
         "same file", LOG, names="--html"),
    Case("out-graph-under-file", ("diagnose", "{tmp}/log.json", *_PAIR, "--graph", "{tmp}/file/g.json"), "not a folder",
         _UNDER_FILE, names="--graph"),
    Case("out-html-is-folder", ("diagnose", "{tmp}/log.json", *_PAIR, "--html", "{tmp}/"), "is a directory", LOG, names="--html"),
    Case("out-html-empty", ("diagnose", "{tmp}/log.json", *_PAIR, "--html", ""), "empty", LOG, names="--html"),
    Case("out-report-html-folder", ("report", "{diag}", "--html", "{tmp}"), "is a directory", names="--html"),
    Case("out-report-html-under-file", ("report", "{diag}", "--html", "{tmp}/file/r.html"), "not a folder",
         {"file": "x"}, names="--html"),
    Case("out-report-overwrites-input", ("report", "{diag}", "--html", "{diag}"), "input", names="--html"),
    Case("out-eval-json-under-file", (*_EVAL, "--json", "{tmp}/file/e.json"), "not a folder",
         {**_EVAL_DATA, "file": "x"}, names="--json"),
    Case("out-eval-markdown-folder", (*_EVAL, "--markdown", "{tmp}"), "is a directory", _EVAL_DATA, names="--markdown"),
    Case("out-eval-json-is-dataset", (*_EVAL, "--json", "{tmp}/runs.jsonl"), "input", _EVAL_DATA, names="--json"),
    Case("out-eval-cache-dir-file", ("eval", "--dataset", "{tmp}/runs.jsonl", "--cache-dir", "{tmp}/file", "--bootstrap", "0",
                                     "-q", *_PAIR), "is a file", {**_EVAL_DATA, "file": "x"}, names="--cache-dir"),
    Case("out-world-generate-file", ("world", "generate", "--out", "{tmp}/file"), "is a file", {"file": "x"}, names="--out"),
    Case("out-emit-otel-ids-not-hex", ("diagnose", "{tmp}/t.json", *_PAIR, "--emit", "otel:{tmp}/o.json"), "hex digits",
         {"t.json": _j([{"name": "chat", "context": {"trace_id": "5b8efff798038103d269b633813fc60c", "span_id": k},
                         "start_time": f"2025-01-01T00:00:0{n}Z",
                         "attributes": {"openinference.span.kind": "LLM", "output.value": f"answer {n}"}}
                        for n, k in enumerate(("span-1", "span-2"))])}),
    Case("out-world-results-out-folder", ("world", "results", "--data", "{tmp}", "--out", "{tmp}", "--png", "{tmp}/r.png",
                                          "--example", "{tmp}/e.json"), "is a directory", names="--out"),
]

# -- export shapes and reader doubts of issues 18 (part B) and 20 -------------------------------

_SPAN = {"object": "trace.span", "trace_id": "trace_1", "started_at": "2025-01-01T00:00:00Z", "error": None}
_AGENT_SPAN = {**_SPAN, "id": "span_a", "parent_id": None, "span_data": {"type": "agent", "name": "Planner"}}
_GEN_SPAN = {**_SPAN, "id": "span_g", "parent_id": "span_a",
             "span_data": {"type": "generation", "input": [{"role": "user", "content": "2+2?"}],
                           "output": [{"role": "assistant", "content": "5"}]}}
_SWE_TRAJ = {"trajectory": [{"action": "ls", "observation": "a.py", "response": "ls", "thought": ""}],
             "info": {"exit_status": "submitted"}}
_SMOL_MSG = [{"role": "user", "content": [{"type": "text", "text": "2+2?"}]},
             {"role": "assistant", "content": [{"type": "text", "text": "5"}]}]

SHAPE_CASES: list[Case] = [
    Case("oa-parent-loop", ("diagnose", "{tmp}/t.json", "--format", "openai-agents"), "a loop through parent_id",
         {"t.json": _j([_AGENT_SPAN, _GEN_SPAN, {**_GEN_SPAN, "id": "span_x", "parent_id": "span_y"},
                        {**_AGENT_SPAN, "id": "span_y", "parent_id": "span_x"}])}),
    Case("oa-parent-id-list", ("diagnose", "{tmp}/t.json"), "'parent_id' to be a span id",
         {"t.json": _j([_AGENT_SPAN, {**_GEN_SPAN, "parent_id": ["span_a"]}])}),
    Case("oa-nested-span-without-data", ("diagnose", "{tmp}/t.json", "--format", "openai-agents"), "item /traces/0/spans/1",
         {"t.json": _j({"count": 1, "traces": [{"id": "trace_1", "spans": [_AGENT_SPAN, {"id": "span_x"}]}]})}),
    Case("smol-model-output-number", ("diagnose", "{tmp}/s.json", "--format", "smolagents"), "'model_output' to be",
         {"s.json": _j([{"task": "2+2?"}, {"step_number": 1, "model_output": 5}])}),
    Case("smol-model-output-object", ("diagnose", "{tmp}/s.json"), "'model_output' to be",
         {"s.json": _j({"steps": [{"task": "2+2?"}, {"step_number": 1, "model_output": {"text": "5"}}]})}),
    Case("smol-bench-empty-steps", ("diagnose", "{tmp}/s.jsonl"), "line 1",
         {"s.jsonl": _j({"question": "2+2?", "true_answer": "4", "intermediate_steps": []}) + "\n"}),
    Case("smol-bench-bad-role", ("diagnose", "{tmp}/s.json", "--format", "smolagents"), "intermediate_steps[1]",
         {"s.json": _j({"question": "q", "intermediate_steps": [_SMOL_MSG[0], {"role": "wizard", "content": "x"}]})}),
    Case("swe-history-string", ("diagnose", "{tmp}/t.traj", "--format", "swe-agent"), "'history' to be a list",
         {"t.traj": _j({**_SWE_TRAJ, "history": "oops"})}),
    Case("swe-history-entry-number", ("diagnose", "{tmp}/t.traj", "--format", "swe-agent"), "step 0",
         {"t.traj": _j({**_SWE_TRAJ, "history": [3]})}),
    Case("ww-history-and-messages", ("diagnose", "{tmp}/w.json"), "not both",
         {"w.json": _j({**GOOD_WW, "messages": GOOD_CHAT})}),
    Case("chat-history-and-messages", ("diagnose", "{tmp}/c.json", "--format", "chat"), "not both",
         {"c.json": _j({"messages": GOOD_CHAT, "history": GOOD_CHAT})}),
    Case("folder-shared-run-id", ("diagnose", "{tmp}"), "run id 'same' also in",
         {"a.json": _j({"id": "same", "messages": GOOD_CHAT}), "b.json": _j({"id": "same", "messages": GOOD_CHAT})},
         names="b.json"),
    Case("oh-jsonl-bad-event-line", ("diagnose", "{tmp}/e.jsonl", "--format", "openhands"), "at line 2",
         {"e.jsonl": _j({"id": 1, "source": "agent", "action": "run", "args": {"command": "ls"}}) + "\n"
                     + _j({"id": 2, "source": "agent", "args": {}}) + "\n"}),
    Case("oh-v1-action-without-call", ("diagnose", "{tmp}/e.json"), "tool_call",
         {"e.json": _j([{"kind": "MessageEvent", "id": "m1", "source": "user",
                         "llm_message": {"role": "user", "content": [{"type": "text", "text": "fix it"}]}},
                        {"kind": "ActionEvent", "id": "a1", "source": "agent", "thought": [], "tool_name": "terminal"}])}),
    Case("tau-single-empty-traj", ("diagnose", "{tmp}/r.json"), "non-empty 'traj'",
         {"r.json": _j({"task_id": 3, "trial": 0, "reward": 0.0, "info": {}, "traj": []})}),
]


# -- issue 20: data loss, silent results and unclear errors found by the wider probe ------------

_CAL = {"schema": "attribution.calibration/1", "threshold": 0.0, "target_fpr": 0.1, "fpr": 0.1, "recall": 0.5,
        "lead_steps_median": 1.0, "lead_share_median": 0.5, "n_success": 10, "n_failure": 10, "n_alerts_failure": 5}
_TWO_LOGS = {**LOG, "b.json": _j(GOOD_CHAT)}
_EVAL_LABELS = {**_EVAL_DATA, "labels.jsonl": _j({"run_id": "runs/0", "mistake_step": 2, "mistake_agent": "solver"}) + "\n"
                + _j({"run_id": "runs/0", "success": True}) + "\n"}

ISSUE20_CASES: list[Case] = [
    Case("i20-select-json-is-a-candidate", ("select", "{tmp}/log.json", "{tmp}/b.json", *_PAIR, "--json", "{tmp}/b.json"), "input",
         _TWO_LOGS, names="--json"),
    Case("i20-select-json-unwritable", ("select", "{tmp}/log.json", "{tmp}/b.json", *_PAIR, "--json", "/proc/attribution-x/s.json"),
         "cannot write the --json output", _TWO_LOGS, names="/proc/attribution-x/s.json"),
    Case("i20-monitor-json-is-the-log", ("monitor", "{tmp}/log.json", *_PAIR, "--json", "{tmp}/log.json"), "input", LOG, names="--json"),
    Case("i20-monitor-json-is-the-calibration", ("monitor", "{tmp}/log.json", *_PAIR, "--calibration", "{tmp}/cal.json", "--json",
                                                "{tmp}/cal.json"), "input", {**LOG, "cal.json": _j(_CAL)}, names="--json"),
    Case("i20-monitor-json-unwritable", ("monitor", "{tmp}/log.json", *_PAIR, "--json", "/proc/attribution-x/m.json"),
         "cannot write the --json output", LOG, names="/proc/attribution-x/m.json"),
    Case("i20-world-evidence-out-unwritable", ("world", "evidence", "--data", "{tmp}", "--out", "/proc/attribution-x/e.md"),
         "cannot write the --out output", names="/proc/attribution-x/e.md"),
    Case("i20-world-results-out-is-its-data", ("world", "results", "--data", "{tmp}", "--out", "{tmp}/mixed.jsonl", "--png",
                                               "{tmp}/r.png", "--example", "{tmp}/e.json"), "input", {"mixed.jsonl": "{}"}, names="--out"),
    Case("i20-world-evidence-out-is-its-data", ("world", "evidence", "--data", "{tmp}", "--out", "{tmp}/failures.jsonl"), "input",
         {"failures.jsonl": "{}"}, names="--out"),
    Case("i20-eval-shard-markdown", (*_EVAL[:3], "--shard", "1/2", "--markdown", "{tmp}/e.md", *_PAIR), "--shard", _EVAL_DATA,
         names="--markdown"),
    Case("i20-eval-shard-calibrate", (*_EVAL[:3], "--shard", "1/2", "--calibrate", "0.1", "--calibration-out", "{tmp}/c.json", *_PAIR),
         "--shard", _EVAL_DATA, names="--calibrate"),
    Case("i20-eval-no-cache-and-cache-dir", (*_EVAL, "--cache-dir", "{tmp}/c"), "not both", _EVAL_DATA, names="--cache-dir"),
    Case("i20-eval-default-cache-under-a-file", ("eval", "--dataset", "{tmp}/runs.jsonl", "--bootstrap", "0", "-q", *_PAIR),
         "is a file", {**_EVAL_DATA, "xdg-cache": "x"}, names="XDG_CACHE_HOME"),
    Case("i20-eval-labels-twice-different", (*_EVAL, "--labels", "{tmp}/labels.jsonl"), "labelled differently", _EVAL_LABELS,
         names="labels.jsonl, line 2"),
    Case("i20-diagnose-device-and-device-map", ("diagnose", "{tmp}/log.json", *_PAIR, "--device", "cpu", "--device-map", "cpu,cpu"),
         "not both", LOG, names="--device-map"),
    Case("i20-eval-device-and-device-map", (*_EVAL, "--device", "cpu", "--device-map", "cpu,cpu"), "not both", _EVAL_DATA,
         names="--device-map"),
    Case("i20-monitor-threshold-nan", ("monitor", "{tmp}/log.json", *_PAIR, "--threshold", "nan"), "finite", LOG, names="--threshold"),
    Case("i20-monitor-threshold-inf", ("monitor", "{tmp}/log.json", *_PAIR, "--threshold", "-inf"), "finite", LOG, names="--threshold"),
    Case("i20-monitor-calibration-nan", ("monitor", "{tmp}/log.json", *_PAIR, "--calibration", "{tmp}/cal.json"), "finite",
         {**LOG, "cal.json": _j({**_CAL, "threshold": float("nan")})}, names="cal.json"),
    Case("i20-world-train-sft-steps-negative", ("world", "train", "--out", "{tmp}/w", "--sft-steps", "-1"), "not in the range",
         names="--sft-steps"),
    Case("i20-world-train-rl-steps-negative", ("world", "train", "--out", "{tmp}/w", "--rl-steps", "-1"), "not in the range",
         names="--rl-steps"),
    Case("i20-world-train-threads-zero", ("world", "train", "--out", "{tmp}/w", "--threads", "0"), "not in the range", names="--threads"),
    Case("i20-unterminated-string", ("diagnose", "{tmp}/run.json", *_PAIR), "Unterminated string starting at line 1",
         {"run.json": '[{"role": "user", "content": "hi}]'}),
]

CASES: list[Case] = [
    *_generic_cases(),
    *(c for cases in READER_CASES.values() for c in cases),
    *OPTION_CASES,
    *PAIR_CASES,
    *REPORT_CASES,
    *OUTPUT_CASES,
    *SHAPE_CASES,
    *ISSUE20_CASES,
]


@pytest.fixture(scope="module")
def valid_diagnosis(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("diag") / "d.json"
    path.write_text(_j(_diagnosis()))
    return path


def classify(case: Case, result, placeholders: dict[str, str]) -> str:
    """``"ok"``, or what went wrong: ``traceback``, ``silent`` (exit 0), ``not one line``, ``wrong status``,
    ``raw control character``, ``does not name ...`` or ``unexpected message``."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "traceback"
    if result.exit_code == 0:
        return "silent"
    out = result.output
    if _CONTROL.search(out):
        return "raw control character"
    lines = out.splitlines()
    if len(lines) != 1 or not lines[0].startswith("error: "):
        return "not one line"
    if result.exit_code != case.status:
        return "wrong status"
    names = (case.names or next(iter(case.files), "")).format(**placeholders)
    if names and names not in lines[0]:
        return f"does not name {names!r}"
    if case.expect.format(**placeholders) not in lines[0]:
        return "unexpected message"
    return "ok"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fuzz_case(case: Case, tmp_path, tiny_pair, valid_diagnosis, monkeypatch):
    policy, reference = tiny_pair
    placeholders = {"tmp": str(tmp_path), "policy": str(policy), "reference": str(reference), "diag": str(valid_diagnosis),
                    "log": str(tmp_path / "log.json")}
    for name, content in case.files.items():
        if isinstance(content, str):
            content = content.replace("{policy}", str(policy)).replace("{reference}", str(reference))
            (tmp_path / name).write_text(content, encoding="utf-8")
        else:
            (tmp_path / name).write_bytes(content)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    argv = [a.format(**placeholders) for a in case.argv]
    res = CliRunner().invoke(main, argv, catch_exceptions=True)
    outcome = classify(case, res, placeholders)
    if os.environ.get("FUZZ_OUTCOMES"):  # tally for the report: FUZZ_OUTCOMES=FILE pytest tests/test_fuzz.py
        with open(os.environ["FUZZ_OUTCOMES"], "a", encoding="utf-8") as fh:
            fh.write(f"{case.id}\t{outcome}\t{res.output.strip()[-300:]!r}\n")
    detail = repr(res.exception) if outcome == "traceback" else repr(res.output[-400:])
    assert outcome == "ok", f"{outcome}: {detail}"


def test_the_table_is_large_and_covers_every_reader():
    assert len(CASES) >= 80
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
    covered = {c.argv[c.argv.index("--format") + 1] for c in CASES if "--format" in c.argv}
    assert set(READERS) <= covered


# -- beyond the table: what must work, and the helpers on their own ----------------------------

SURROGATE_CHAT = (
    '[{"role": "user", "content": "What is 2 + 2? \\ud800 (cut) \\ud83d\\ude00 (whole)"},'
    ' {"role": "assistant", "name": "plan\\udc01ner", "content": "Ask the solver.\\ud800"},'
    ' {"role": "assistant", "name": "solver", "content": "The answer is 5."}]'
)


def test_lone_surrogates_are_replaced_with_a_warning_and_every_output_is_written(tmp_path, tiny_pair):
    policy, reference = tiny_pair
    log = tmp_path / "run.json"
    log.write_text(SURROGATE_CHAT, encoding="utf-8")
    out = tmp_path / "new" / "folder"  # missing parent folders are created
    argv = ["diagnose", str(log), "--policy", str(policy), "--reference", str(reference), "-q",
            "--json", str(out / "d.json"), "--html", str(out / "r.html"), "--graph", str(out / "g.json")]
    res = CliRunner().invoke(main, argv)
    assert res.exit_code == 0, res.output
    warning = [line for line in res.output.splitlines() if line.startswith("warning: ")]
    assert warning == [f"warning: {log}: replaced 3 lone UTF-16 surrogate(s) with U+FFFD (first at /0/content)"]
    saved = json.loads((out / "d.json").read_text(encoding="utf-8"))
    assert saved["run_steps"][1]["agent"] == "plan\ufffdner" and saved["run_steps"][1]["content"].endswith("\ufffd")
    assert "\U0001f600" in saved["run_steps"][0]["content"]  # a whole pair is a character, not a surrogate
    page = (out / "r.html").read_text(encoding="utf-8")
    assert "plan\ufffdner" in page
    assert (out / "g.json").read_bytes().decode("utf-8")
    res = CliRunner().invoke(main, ["report", str(out / "d.json"), "--html", str(tmp_path / "again.html")])
    assert res.exit_code == 0 and "warning" not in res.output, res.output


def test_parse_json_guards():
    import warnings

    from attribution.errors import InputError, ParseWarning
    from attribution.io import MAX_DEPTH, parse_json

    assert parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH, "f.json") is not None
    assert parse_json('["' + "[" * 5000 + '"]', "f.json") == ["[" * 5000]  # brackets inside strings do not count
    with pytest.raises(InputError, match=r"^f.json, line 3: expected JSON nested at most"):
        parse_json("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "f.json, line 3")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert parse_json('{"a\\udfff": ["\\ud83d\\ude00"]}', "f.json") == {"a\ufffd": ["\U0001f600"]}
    assert [str(w.message) for w in caught] == ["f.json: replaced 1 lone UTF-16 surrogate(s) with U+FFFD (first at /a\ufffd)"]
    assert all(w.category is ParseWarning for w in caught)


def test_every_json_reader_refuses_deep_nesting(tmp_path):
    from attribution.errors import AttributionError
    from attribution.graph import read_graph
    from attribution.parse import read_json
    from attribution.report import load_diagnosis
    from attribution.score.pairs import load_pair_config
    from attribution.world.labels import read_jsonl

    deep = tmp_path / "deep.json"
    deep.write_text(DEEP)
    deep_lines = tmp_path / "deep.jsonl"
    deep_lines.write_text("{}\n" + DEEP + "\n")
    for reader, path in [(read_json, deep), (read_json, deep_lines), (load_pair_config, deep), (load_diagnosis, deep),
                         (read_graph, deep), (read_jsonl, deep_lines)]:
        with pytest.raises(AttributionError, match="nested at most"):
            reader(path)


def test_check_writable(tmp_path):
    from attribution.errors import OutputError
    from attribution.io import check_outputs, check_writable

    assert check_writable(tmp_path / "a" / "b" / "c.json") == tmp_path / "a" / "b" / "c.json"
    assert not (tmp_path / "a").exists()  # checked, not created
    assert list(tmp_path.iterdir()) == []  # the probe file is gone
    (tmp_path / "f").write_text("x")
    for bad, why in [(tmp_path / "f" / "x.json", "is a file, not a folder"), (tmp_path, "is a folder, not a file"),
                     ("", "empty"), (str(tmp_path / "x\0.json"), "NUL"), (tmp_path / ("a" * 300), "too long")]:
        with pytest.raises(OutputError, match=why):
            check_writable(bad, option="--json")
    with pytest.raises(OutputError, match="it is a file, not a folder"):
        check_writable(tmp_path / "f", folder=True)
    check_writable(tmp_path / "new-folder", folder=True)
    with pytest.raises(OutputError, match="--json writes the same file"):
        check_outputs({"--json": tmp_path / "o", "--html": tmp_path / "." / "o"})
    with pytest.raises(OutputError, match="input"):
        check_outputs({"--json": tmp_path / "f"}, inputs=[None, tmp_path / "f"])
    check_outputs({"--json": None, "--html": tmp_path / "r.html"})


def test_control_characters_never_reach_the_terminal(tmp_path, tiny_pair):
    policy, reference = tiny_pair
    log = tmp_path / "run.json"
    log.write_text(_j([
        {"role": "user", "content": "Question \x1b[2J\x1b[H"},
        {"role": "assistant", "name": "ev\x1b[31mil\u202e", "content": "\x1b]0;title\x07 answer\x9b1m"},
        {"role": "assistant", "name": "solver\r", "content": "5\x00"},
    ]))
    res = CliRunner().invoke(main, ["diagnose", str(log), "--policy", str(policy), "--reference", str(reference)])
    assert res.exit_code == 0, res.output
    table = res.output[res.output.index("run run:"):].rstrip("\r\n")  # after the progress bar (stderr)
    assert not _CONTROL.search(table.replace("\n", "")), table
    assert "ev\\x1b[31mil\\u202e" in table and "\\x1b]0;title\\x07 answer\\x9b1m" in table and "solver\\r" in table


def test_visible():
    from attribution.cli.terminal import visible

    assert visible("a\x1b[1mb\x07c\x7f\x85\u2028\u2066\ud800") == "a\\x1b[1mb\\x07c\\x7f\\x85\\u2028\\u2066\\ud800"
    assert visible("a\nb\tc") == "a\\nb\\tc" and visible("a\nb\x1b", newlines=True) == "a\nb\\x1b"
    assert visible("naïve 专家 \\ok") == "naïve 专家 \\ok"


def test_every_cli_print_goes_through_terminal_echo():
    package = Path(__file__).resolve().parents[1] / "attribution" / "cli"
    offenders = [f"{f.name}:{n}" for f in sorted(package.glob("*.py")) if f.name != "terminal.py"
                 for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"\b(click\.(echo|secho)|print)\(|sys\.std(out|err)\.write", line)]
    assert offenders == []


def test_usage_errors_are_one_line_and_help_is_unchanged():
    res = CliRunner().invoke(main, ["diagnose", "--top-k", "0", "x.json"], prog_name="attribution")
    assert (res.exit_code, res.output) == (
        2, "error: Invalid value for '--top-k': 0 is not in the range x>=1. Try 'attribution diagnose --help'.\n")
    res = CliRunner().invoke(main, ["diagnose", "--help"], prog_name="attribution")
    assert res.exit_code == 0 and res.output.startswith("Usage: attribution diagnose [OPTIONS] LOG...\n")
    res = CliRunner().invoke(main, [], prog_name="attribution")  # a bare group still prints its help
    assert res.output.startswith("Usage: attribution [OPTIONS] COMMAND")


def test_as_index_takes_ascii_digits_only():
    from attribution.errors import InputError
    from attribution.parse.chat import as_index

    assert as_index("12", "r.json") == 12 and as_index(0, "r.json") == 0
    for bad in ["\u0661\u0662", "\uff11", "\u0967", "1\u0662", " 1", "1_0", "+1", True, 1.0]:
        with pytest.raises(InputError, match="mistake_step"):
            as_index(bad, "r.json")


def test_report_escapes_every_field():
    """A diagnosis built in Python (not validated by load_diagnosis) still cannot inject markup."""
    from attribution.report import render_html
    from attribution.types import Diagnosis, StepScore

    evil = '"><b>x</b></script><!--\u2028\u2029\ud800'
    steps = [StepScore(0, evil, "observation"),
             StepScore(1, evil, "action", tokens=[evil, "ok"], logps=[-1.0, -2.0], ref_logps=[-1.0, -1.0], beta=0.5, score=-0.5)]
    d = Diagnosis(run_id=evil, source=evil, culprit_step=1, culprit_agent=evil, top=[1], agent_totals={evil: -0.5},
                  steps=steps, settings={evil: evil}, checkpoints={evil: {"policy": evil, "reference": {"name": evil}, evil: evil}},
                  run_steps=[{"index": 0, "agent": evil, "role": evil, "kind": "observation", "content": evil * 400, "to": evil},
                             {"index": 1, "agent": evil, "role": evil, "kind": "action", "content": evil, "to": evil}],
                  labels={"mistake_step": 1, "mistake_agent": evil, "question": evil, "mistake_reason": evil, evil: evil})
    page = render_html(d)
    assert "<b>x" not in page and "<!--" not in page and "\u2028" not in page and "\u2029" not in page
    assert page.count("</script>") == 2  # the data block's and the script's own
    assert not re.search("[\ud800-\udfff]", page)
    page.encode("utf-8")
