"""Issue 16: the out-of-domain guard, the named-pair registry (``--pair``, ``attribution pairs``), and the
eval's "no signal" line. Nothing is downloaded: registry entries point at local tiny folders or at a
hand-built Hugging Face cache."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from attribution.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "world_failed_run.json"
WORLD_FAILURES = ROOT / "datasets" / "world" / "failures.jsonl"
PHOENIX = ROOT / "tests" / "fixtures" / "otel" / "phoenix_spans.json"
LANGFUSE = ROOT / "tests" / "fixtures" / "otel" / "langfuse_trace.json"
EMBEDDED = ROOT / "attribution" / "world" / "checkpoint"

#: A short run of another world: the embedded pair's 56 words cover almost none of it.
OTHER_WORLD = [
    {"role": "user", "content": "Find the cheapest flight from Boston to Lisbon in May."},
    {"role": "assistant", "name": "planner", "content": "I will ask the web surfer to search the airline sites."},
    {"role": "assistant", "name": "web_surfer", "content": "The cheapest fare I found is 412 dollars on TAP, May 14."},
    {"role": "assistant", "name": "planner", "content": "FINAL ANSWER: 412 dollars."},
]


def _other_world(tmp_path) -> Path:
    path = tmp_path / "other.json"
    path.write_text(json.dumps(OTHER_WORLD))
    return path


def _invoke(*argv):
    return CliRunner().invoke(main, [str(a) for a in argv])


# -- the out-of-domain guard -------------------------------------------------------------------------
def test_embedded_pair_refuses_a_run_outside_its_world_in_one_line(tmp_path):
    res = _invoke("diagnose", _other_world(tmp_path))
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "other.json" in lines[0]
    assert "<unk>" in lines[0] and "% of its" in lines[0]
    for way in ("--pair NAME", "--policy/--reference", "--allow-toy-pair"):
        assert way in lines[0]


def test_readme_first_command_runs_the_world_example_without_a_warning(tmp_path):
    out = tmp_path / "d.json"
    res = _invoke("diagnose", EXAMPLE, "--json", out)
    assert res.exit_code == 0, res.output
    assert "culprit: step 6 by verifier" in res.output and "warning" not in res.output
    saved = json.loads(out.read_text())
    assert saved["warnings"] == []
    (counts,) = saved["settings"]["unknown_tokens"]
    assert counts["unknown_tokens"] == 0 and counts["scored_tokens"] > 0 and counts["byte_level"] is False


def test_allow_toy_pair_puts_the_warning_in_every_output(tmp_path):
    log = _other_world(tmp_path)
    out = {k: tmp_path / f"o.{k}" for k in ("json", "html", "jsonl")}
    res = _invoke("diagnose", log, "--allow-toy-pair", "--json", out["json"], "--html", out["html"],
                  "--emit", f"jsonl:{out['jsonl']}")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    verdict = next(k for k, line in enumerate(lines) if line.startswith("culprit: "))
    assert lines[verdict + 1].startswith("warning: toy pair: ") and "not a finding" in lines[verdict + 1]
    warnings = json.loads(out["json"].read_text())["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith("toy pair: ")
    page = out["html"].read_text()
    head = page[page.index('<header class="top">'): page.index("</header>")]
    assert 'class="warning"' in head and "toy pair: " in head
    for rec in map(json.loads, out["jsonl"].read_text().splitlines()):
        assert rec["warnings"] == warnings
    # -q keeps the warning under the one verdict line
    res = _invoke("diagnose", log, "--allow-toy-pair", "-q")
    assert res.output.splitlines()[0].startswith("culprit: ") and res.output.splitlines()[1].startswith("warning: toy pair")
    # the report of a saved diagnosis keeps it
    res = _invoke("report", out["json"], "--html", tmp_path / "again.html")
    assert res.exit_code == 0 and 'class="warning"' in (tmp_path / "again.html").read_text()


@pytest.mark.parametrize("kind,log", [("phoenix", PHOENIX), ("otel", PHOENIX), ("langfuse", LANGFUSE)])
def test_every_emit_kind_carries_the_toy_warning(tmp_path, kind, log):
    out = tmp_path / f"{kind}.json"
    res = _invoke("diagnose", log, "--allow-toy-pair", "-q", "--emit", f"{kind}:{out}")
    assert res.exit_code == 0, res.output
    payload = json.loads(out.read_text())
    if kind == "phoenix":
        texts = [a["result"]["explanation"] for a in payload["data"]]
    elif kind == "otel":
        texts = [r["body"]["stringValue"] for r in payload["resourceLogs"][0]["scopeLogs"][0]["logRecords"]]
    else:
        texts = [s["comment"] for s in payload if s.get("comment")]
    assert texts and all("WARNING: toy pair: " in t for t in texts)


def test_any_pair_with_many_unknown_tokens_gets_a_warning(tmp_path):
    """A copy of the world pair is not the embedded toy (not refused) but its <unk> share is reported."""
    copy = tmp_path / "copy"
    shutil.copytree(EMBEDDED / "policy", copy / "policy")
    shutil.copytree(EMBEDDED / "reference", copy / "reference")
    out = tmp_path / "d.json"
    res = _invoke("diagnose", _other_world(tmp_path), "--policy", copy / "policy", "--reference", copy / "reference",
                  "--json", out)
    assert res.exit_code == 0, res.output
    (warning,) = json.loads(out.read_text())["warnings"]
    assert warning.startswith("pair 'default': ") and "unknown token" in warning and "toy" not in warning
    assert f"warning: {warning}" in res.output


def test_byte_level_tokenizer_skips_the_check_and_says_so(tmp_path, tiny_pair):
    out = tmp_path / "d.json"
    res = _invoke("diagnose", _other_world(tmp_path), "--policy", tiny_pair[0], "--reference", tiny_pair[1], "--json", out)
    assert res.exit_code == 0, res.output
    saved = json.loads(out.read_text())
    assert saved["warnings"] == []
    (counts,) = saved["settings"]["unknown_tokens"]
    assert counts["byte_level"] is True and counts["unknown_tokens"] is None and counts["unknown_share"] is None


def test_is_byte_level_tells_word_level_from_byte_level(tiny_pair):
    from transformers import AutoTokenizer

    from attribution.score.domain import is_byte_level

    assert is_byte_level(AutoTokenizer.from_pretrained(tiny_pair[0]))
    assert not is_byte_level(AutoTokenizer.from_pretrained(EMBEDDED / "policy"))


def test_library_diagnose_refuses_and_opts_in(tmp_path):
    from attribution import diagnose
    from attribution.errors import ConfigError
    from attribution.parse import load_run

    path = _other_world(tmp_path)
    with pytest.raises(ConfigError, match="not a run of the embedded toy pair's world"):
        diagnose(path)
    d = diagnose(load_run(path), allow_toy_pair=True)
    assert d.warnings and d.warnings[0].startswith("toy pair: ")


def test_select_and_eval_refuse_the_toy_pair_outside_its_world(tmp_path):
    a, b = _other_world(tmp_path), tmp_path / "b.json"
    b.write_text(json.dumps(OTHER_WORLD[:3]))
    res = _invoke("select", a, b)
    assert res.exit_code == 2 and "--allow-toy-pair" in res.output
    res = _invoke("select", a, b, "--allow-toy-pair")
    assert res.exit_code == 0 and "warning: " in res.output and "toy pair" in res.output
    res = _invoke("monitor", a)
    assert res.exit_code == 2 and "--allow-toy-pair" in res.output
    res = _invoke("monitor", a, "--allow-toy-pair", "-q", "--json", tmp_path / "m.json")
    assert res.exit_code == 0 and "warning: toy pair" in res.output
    assert json.loads((tmp_path / "m.json").read_text())["warnings"][0].startswith("toy pair: ")
    from tests.test_evaluation import labelled_runs, write_jsonl

    data = write_jsonl(tmp_path / "runs.jsonl", labelled_runs())
    args = ["eval", "--dataset", data, "--no-cache", "--bootstrap", "0", "--folds", "2", "-q"]
    res = _invoke(*args)
    assert res.exit_code == 2 and "--allow-toy-pair" in res.output
    res = _invoke(*args, "--allow-toy-pair", "--json", tmp_path / "e.json")
    assert res.exit_code == 0 and "warning: toy pair: 6 of 6 runs" in res.output, res.output
    assert json.loads((tmp_path / "e.json").read_text())["settings"]["warnings"][0].startswith("toy pair: 6 of 6 runs")


# -- the registry -------------------------------------------------------------------------------------
@pytest.fixture
def tiny_registry(tmp_path, tiny_pair, monkeypatch):
    """A registry with a local tiny pair and a hub pair that is in no cache; HF offline, cache empty."""
    from attribution.score import registry

    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps({"pairs": {
        "tiny": {"policy": str(tiny_pair[0]), "reference": str(tiny_pair[1]), "reference_kind": "exact", "size": "tiny",
                 "license": "MIT", "beta": 0.5, "checked": "built locally", "note": "a random test pair"},
        "remote": {"policy": "example-org/never-downloaded-rl", "reference": "example-org/never-downloaded-sft",
                   "reference_kind": "exact", "size": "1B", "license": "apache-2.0", "beta": None,
                   "checked": "not a real repo", "note": "offline test"},
    }}))
    monkeypatch.setattr(registry, "REGISTRY_PATH", reg)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    return reg


def test_the_shipped_registry_lists_the_issue_pairs():
    from attribution.score.registry import load_registry

    reg = load_registry()
    want = {
        "olmo-3-7b-instruct": ("allenai/Olmo-3-7B-Instruct", "allenai/Olmo-3-7B-Instruct-DPO"),
        "qwen3.5-9b": ("Qwen/Qwen3.5-9B", "Qwen/Qwen3.5-9B-Base"),
        "gemma-4-e4b": ("google/gemma-4-E4B-it", "google/gemma-4-E4B"),
        "qwen3-14b": ("Qwen/Qwen3-14B", "Qwen/Qwen3-14B-Base"),
        "deepscaler-1.5b": ("agentica-org/DeepScaleR-1.5B-Preview", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"),
        "olmo-2-1b-instruct": ("allenai/OLMo-2-0425-1B-Instruct", "allenai/OLMo-2-0425-1B-DPO"),
    }
    for name, (policy, reference) in want.items():
        assert (reg[name]["policy"], reg[name]["reference"]) == (policy, reference)
        assert reg[name]["reference_kind"] in ("exact", "base") and reg[name]["license"] and reg[name]["checked"]
    # the world entry is the embedded pair
    assert (Path(reg["world"]["_base"]) / reg["world"]["policy"]).resolve() == (EMBEDDED / "policy").resolve()


def test_pairs_command_lists_the_registry(tiny_registry, tmp_path):
    res = _invoke("pairs", "--json", tmp_path / "p.json")
    assert res.exit_code == 0, res.output
    assert "tiny" in res.output and "example-org/never-downloaded-rl <- example-org/never-downloaded-sft" in res.output
    rows = json.loads((tmp_path / "p.json").read_text())
    assert [r["name"] for r in rows] == ["tiny", "remote"] and rows[0]["beta"] == 0.5


def test_pair_name_resolves_to_the_registry_folders(tiny_registry, tiny_pair, tmp_path):
    out = tmp_path / "d.json"
    res = _invoke("diagnose", _other_world(tmp_path), "--pair", "tiny", "--json", out)
    assert res.exit_code == 0, res.output
    ck = json.loads(out.read_text())["checkpoints"]["tiny"]
    assert ck["registry"] == "tiny" and ck["beta"] == 0.5
    assert Path(ck["policy"]["name"]).resolve() == Path(tiny_pair[0]).resolve()
    # --beta overrides the registry's; a conflicting choice of pair is one line
    res = _invoke("diagnose", _other_world(tmp_path), "--pair", "tiny", "--beta", "2", "--json", out)
    assert res.exit_code == 0 and json.loads(out.read_text())["checkpoints"]["tiny"]["beta"] == 2.0
    res = _invoke("diagnose", _other_world(tmp_path), "--pair", "tiny", "--policy", tiny_pair[0], "--reference", tiny_pair[1])
    assert res.exit_code == 2 and "give one of --policy/--reference, --pair or --pairs" in res.output
    res = _invoke("diagnose", _other_world(tmp_path), "--pair", "nope")
    assert res.exit_code == 2 and "--pair" in res.output and "tiny, remote" in res.output


def test_pair_name_in_the_pairs_config_and_on_every_command(tiny_registry, tmp_path):
    cfg = tmp_path / "pairs.json"
    cfg.write_text(json.dumps({"pairs": {"judge": {"pair": "tiny"}}, "default": "judge"}))
    out = tmp_path / "d.json"
    res = _invoke("diagnose", _other_world(tmp_path), "--pairs", cfg, "--json", out)
    assert res.exit_code == 0, res.output
    ck = json.loads(out.read_text())["checkpoints"]["judge"]
    assert ck["registry"] == "tiny" and ck["beta"] == 0.5
    b = tmp_path / "b.json"
    b.write_text(json.dumps(OTHER_WORLD[:3]))
    res = _invoke("select", _other_world(tmp_path), b, "--pair", "tiny", "-q")
    assert res.exit_code == 0 and res.output.startswith("best: "), res.output
    res = _invoke("monitor", _other_world(tmp_path), "--pair", "tiny", "-q")
    assert res.exit_code == 0, res.output
    from tests.test_evaluation import labelled_runs, write_jsonl

    data = write_jsonl(tmp_path / "runs.jsonl", labelled_runs())
    res = _invoke("eval", "--dataset", data, "--pair", "tiny", "--no-cache", "--bootstrap", "0", "--folds", "2", "-q",
                  "--json", tmp_path / "e.json")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "e.json").read_text())["checkpoints"]["tiny"]["registry"] == "tiny"


def test_offline_named_pair_fails_at_once_in_one_line(tiny_registry, tmp_path):
    t0 = time.perf_counter()
    res = _invoke("diagnose", EXAMPLE, "--pair", "remote")
    took = time.perf_counter() - t0
    assert res.exit_code == 2, res.output
    (line,) = res.output.strip().splitlines()
    assert took < 10, took
    assert "pair 'remote'" in line and "example-org/never-downloaded-rl" in line and "unreachable" in line
    assert "attribution pairs --download remote" in line and "hf download example-org/never-downloaded-sft" in line
    assert "--policy DIR --reference DIR" in line


def test_hub_pair_from_the_cache_records_the_resolved_commit(tiny_registry, tiny_pair, tmp_path):
    """A hub id found in the Hugging Face cache (laid out as the hub library writes it) loads offline, and the
    diagnosis names ``repo@commit``."""
    reg = json.loads(tiny_registry.read_text())
    commits = {"example-org/never-downloaded-rl": "a" * 40, "example-org/never-downloaded-sft": "b" * 40}
    for (repo, commit), folder in zip(commits.items(), tiny_pair):
        root = tmp_path / "hf" / "hub" / ("models--" + repo.replace("/", "--"))
        (root / "refs").mkdir(parents=True)
        (root / "refs" / "main").write_text(commit)
        shutil.copytree(folder, root / "snapshots" / commit)
    out = tmp_path / "d.json"
    res = _invoke("diagnose", EXAMPLE, "--pair", "remote", "--json", out)
    assert res.exit_code == 0, res.output
    ck = json.loads(out.read_text())["checkpoints"]["remote"]
    assert ck["policy"]["id"] == f"example-org/never-downloaded-rl@{'a' * 40}"
    assert ck["reference"]["id"] == f"example-org/never-downloaded-sft@{'b' * 40}"
    assert ck["beta"] == 1.0  # beta unknown in the registry: log-ratios
    res = _invoke("pairs", "--download", "remote")
    assert res.exit_code == 0 and "a" * 40 in res.output and "--policy" in res.output


# -- eval: "no signal" ---------------------------------------------------------------------------------
def _result_with(low: float | None, value: float):
    from attribution.evaluation.evaluator import EvalResult, MethodResult
    from attribution.evaluation.metrics import Metric

    metrics = {k: Metric(0.5, 0.4, 0.6, 10) for k in (
        "agent_accuracy_score", "step_accuracy_score", "step_within_1_score", "step_within_3_score", "step_within_5_score",
        "top3_hit_score", "mean_absolute_step_error", "success_auroc_score")}
    subsets = {"all": {"attribution": MethodResult("attribution", "attribution", metrics)}}
    diff = {"longest action step": {"step_accuracy_score": Metric(0.3, 0.1, 0.5, 10), "agent_accuracy_score": Metric(0.0)},
            "null pair": {"step_accuracy_score": Metric(value, low, None if low is None else value + 0.1, 10),
                          "agent_accuracy_score": Metric(0.0)}}
    settings = {"dataset": "d", "origin": "o", "subset": "all", "n_runs": 10, "n_boot": 0, "seed": 0}
    return EvalResult(settings, {}, subsets, {}, None, [], {}, differences={"all": diff})


@pytest.mark.parametrize("low,value,flagged", [(-0.05, 0.1, True), (0.0, 0.1, True), (-0.3, -0.2, True), (0.01, 0.1, False),
                                               (None, 0.0, True), (None, 0.05, False)])
def test_no_signal_line_when_the_interval_includes_or_is_below_zero(low, value, flagged):
    from attribution.evaluation.report import format_table, render_markdown

    result = _result_with(low, value)
    got = result.no_signal()
    assert (got != {}) is flagged
    table, md, js = format_table(result), render_markdown(result), json.loads(result.to_json())
    if flagged:
        assert got["all"]["baselines"] == ["null pair"]
        assert "no signal: on all, attribution does not beat the null pair" in table
        assert "No signal: on all, attribution does not beat the null pair" in md
        assert js["no_signal"]["all"]["line"] == got["all"]["line"]
    else:
        assert "no signal" not in table and "No signal" not in md and js["no_signal"] == {}


def test_eval_with_a_random_pair_prints_no_signal(tiny_pair, tmp_path):
    from tests.test_evaluation import labelled_runs, write_jsonl

    data = write_jsonl(tmp_path / "runs.jsonl", labelled_runs(8, 0, seed=3))
    res = _invoke("eval", "--dataset", data, "--policy", tiny_pair[0], "--reference", tiny_pair[1], "--no-cache",
                  "--bootstrap", "200", "--folds", "2", "--aggregate", "sum", "--ranker", "most-negative")
    assert res.exit_code == 0, res.output
    assert "no signal: " in res.output


@pytest.mark.slow
def test_eval_in_the_world_with_the_trained_pair_has_signal(tmp_path):
    lines = WORLD_FAILURES.read_text().splitlines()[:60]
    data = tmp_path / "world.jsonl"
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "e.json"
    res = _invoke("eval", "--dataset", data, "--no-cache", "--bootstrap", "500", "--aggregate", "sum", "--ranker",
                  "most-negative", "-q", "--json", out)
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert d["no_signal"] == {} and d["settings"]["warnings"] == []
    assert d["differences"]["all"]["null pair"]["step_accuracy_score"]["low"] > 0
