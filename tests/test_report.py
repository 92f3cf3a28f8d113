"""The HTML report and the evaluation figures, on synthetic diagnoses (no scorer needed)."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import random
import re
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from attribution.cli import main
from attribution.errors import InputError
from attribution.report import load_diagnosis, render_html, write_html
from attribution.report.html import diverging_color, robust_max
from attribution.types import Diagnosis, StepScore

INJECTION = "<script>alert(1)</script>"
_WORDS = [
    "the",
    "flight",
    "to",
    "Paris",
    "search",
    "results",
    "page",
    "price",
    "(",
    ")",
    '{"',
    "name",
    '":',
    "click",
    "book",
    "fare",
    "EUR",
    "1",
    ".",
]
_AGENTS = ["Orchestrator", "WebSurfer", "FileSurfer", "Assistant"]


def _tokens(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        r = rng.random()
        out.append("\n" if r < 0.04 else rng.choice(_WORDS) if r < 0.2 else " " + rng.choice(_WORDS))
    return out


def synthetic_diagnosis(
    lengths: list[int], *, seed: int = 0, culprit: int | None = None, beta: float = 0.1
) -> Diagnosis:
    """A diagnosis whose step ``i`` has ``lengths[i]`` tokens; 0 makes it an observation.

    The culprit's tokens drift negative, so it is the most negative step and ranks first.
    """
    rng = random.Random(seed)
    action_idx = [i for i, n in enumerate(lengths) if n]
    culprit = action_idx[len(action_idx) // 2] if culprit is None else culprit
    steps, run_steps = [], []
    for i, n in enumerate(lengths):
        if n == 0:
            agent = "human" if i == 0 else "ComputerTerminal"
            text = (
                "Find the cheapest flight to Paris.\n"
                if i == 0
                else "exit code 0\n" + "output line\n" * rng.randint(1, 400)
            )
            steps.append(StepScore(index=i, agent=agent, kind="observation"))
            run_steps.append(
                {"index": i, "agent": agent, "role": agent, "kind": "observation", "content": text, "to": None}
            )
            continue
        agent = _AGENTS[i % len(_AGENTS)]
        toks = _tokens(rng, n)
        drift = -1.5 if i == culprit else rng.gauss(0.0, 0.1)
        lp = [-abs(rng.gauss(1.0, 1.0)) for _ in toks]
        rl = [a - rng.gauss(drift, 0.8) for a in lp]
        score = beta * sum(a - b for a, b in zip(lp, rl))
        steps.append(
            StepScore(index=i, agent=agent, kind="action", tokens=toks, logps=lp, ref_logps=rl, beta=beta, score=score)
        )
        to = _AGENTS[(i + 1) % len(_AGENTS)] if agent == "Orchestrator" else None
        role = f"{agent} (-> {to})" if to else agent
        run_steps.append(
            {"index": i, "agent": agent, "role": role, "kind": "action", "content": "".join(toks), "to": to}
        )
    scored = sorted((s for s in steps if s.score is not None), key=lambda s: s.score)
    totals: dict[str, float] = {}
    for s in scored:
        totals[s.agent] = totals.get(s.agent, 0.0) + s.score
    return Diagnosis(
        run_id="synthetic-1",
        source="synthetic.json",
        culprit_step=scored[0].index,
        culprit_agent=scored[0].agent,
        top=[s.index for s in scored[:5]],
        agent_totals=totals,
        steps=steps,
        settings={"aggregate": "sum", "ranker": "most_negative", "top_k": 5},
        checkpoints={
            "default": {
                "policy": {"name": "tiny/policy-rl", "id": "policy@0e81847676ef14e2", "dtype": "float32"},
                "reference": {"name": "tiny/policy-base", "id": "reference@3173a7770184fc80", "dtype": "float32"},
                "beta": beta,
            }
        },
        run_steps=run_steps,
        labels={
            "mistake_step": scored[1].index,
            "mistake_agent": scored[1].agent,
            "mistake_reason": "went the wrong way",
        },
    )


def large_diagnosis() -> Diagnosis:
    """130 steps, ~80k tokens, shaped like the largest Hand-Crafted run: a few huge page dumps."""
    rng = random.Random(1)
    lengths = [0] + [rng.choice([0, 0] + [rng.randint(40, 700)] * 8) for _ in range(129)]
    for i, n in ((17, 12_000), (40, 7_000), (58, 12_000), (96, 12_000)):
        lengths[i] = n
    return synthetic_diagnosis(lengths, seed=1)


def small_diagnosis() -> Diagnosis:
    return synthetic_diagnosis([0, 30, 12, 0, 45, 400, 25, 0, 60, 18])


def _data_blob(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.DOTALL)
    assert m, "no data blob"
    return json.loads(m.group(1))


def _without_blob(page: str) -> str:
    return re.sub(r'<script type="application/json" id="report-data">.*?</script>', "", page, flags=re.DOTALL)


def test_robust_max_and_colours():
    assert robust_max([1.0, -2.0, 3.0, -100.0], quantile=0.75) == 3.0
    assert robust_max([]) == 1.0
    assert robust_max([0.0, 0.0, 5.0], quantile=0.5) == 5.0
    assert diverging_color(0.0, 2.0) == "#f7f7f7"
    assert diverging_color(-2.0, 2.0) == diverging_color(-50.0, 2.0) == "#ca0020"
    assert diverging_color(2.0, 2.0) == "#0571b0"
    # symmetric: equal magnitudes sit equally far from white on each side
    neg, pos = diverging_color(-1.0, 2.0), diverging_color(1.0, 2.0)
    assert (neg, pos) == ("#f4a582", "#92c5de")


def test_page_is_self_contained():
    page = render_html(small_diagnosis())
    assert page.startswith("<!doctype html>")
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "@import" not in page and "url(" not in page
    for attr in re.findall(r'\s(?:src|href|action)="([^"]*)"', _without_blob(page)):
        assert attr.startswith("#"), attr
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)
    assert "default-src 'none'" in csp


def test_csp_hash_allows_exactly_the_inline_script():
    page = render_html(small_diagnosis())
    scripts = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page


def test_injection_is_escaped_everywhere():
    d = small_diagnosis()
    d.run_id = INJECTION
    d.culprit_agent = INJECTION
    d.agent_totals[INJECTION] = -1.0
    d.settings["note"] = INJECTION
    d.checkpoints["default"]["policy"] = INJECTION
    d.checkpoints["default"]["reference"]["id"] = INJECTION
    d.labels["mistake_reason"] = INJECTION
    d.labels["question"] = "</script><img src=x onerror=alert(1)>"
    d.run_steps[3]["content"] = INJECTION * 400  # a long observation: travels in the JSON blob
    d.run_steps[7]["content"] = INJECTION
    d.steps[1].tokens[:3] = ["<script>", "alert(1)", "</script>"]
    d.steps[1].agent = INJECTION
    page = render_html(d)
    assert "<script>alert" not in page
    assert "<img" not in page
    assert page.count("<script") == 2 and page.count("</script>") == 2
    assert html.escape(INJECTION) in page
    blob = _data_blob(page)
    assert blob["steps"]["1"]["t"][:3] == ["<script>", "alert(1)", "</script>"]
    assert blob["steps"]["3"]["x"] == INJECTION * 400


def test_tokens_round_trip_with_whitespace():
    d = small_diagnosis()
    d.steps[1].tokens[:4] = ["  indented", "\n", "\tTab", " word"]
    blob = _data_blob(render_html(d))
    s = blob["steps"]["1"]
    assert s["t"][:4] == ["  indented", "\n", "\tTab", " word"]
    assert len(s["t"]) == len(s["lp"]) == len(s["rl"]) == 30
    assert s["lp"][0] == pytest.approx(d.steps[1].logps[0], abs=1e-3)
    assert s["b"] == d.steps[1].beta
    assert "white-space: pre-wrap" in render_html(d)


def test_culprit_topk_gold_and_agents_marked():
    d = small_diagnosis()
    page = render_html(d)
    c, g = d.culprit_step, d.labels["mistake_step"]
    assert re.search(rf'<article class="step act culprit" id="step-{c}">', page)
    assert re.search(rf'<a class="cell culprit[^"]*" href="#step-{c}"', page)
    assert 'class="mark culprit"' in page and "culprit \u25be" in page
    assert re.search(rf'<article class="step act gold" id="step-{g}">', page)
    for rank, i in enumerate(d.top[1:], start=2):
        assert f'title="rank {rank}">{rank}</span>' in page
        assert f">top {rank}</span>" in page
    assert "Predicted culprit" in page and "Gold mistake" in page and "step off by" in page
    for agent in d.agent_totals:
        assert '<div class="lane-label" style="grid-area:' in page and f'title="{agent}">{agent}</div>' in page
    assert 'class="lane-label ctx"' in page
    assert "tiny/policy-rl" in page and "tiny/policy-base" in page and "most_negative" in page
    assert "policy@0e81847676ef14e2" in page and "reference@3173a7770184fc80" in page


def test_checkpoints_given_as_plain_names():
    d = small_diagnosis()
    d.checkpoints = {"default": {"policy": "org/rl", "reference": "org/base", "beta": 0.5, "revision": "abc"}}
    page = render_html(d)
    assert "<code>org/rl</code>" in page and "<code>org/base</code>" in page
    assert "revision" in page and "abc" in page


def test_long_steps_start_collapsed_except_the_culprit():
    d = synthetic_diagnosis([0, 30, 500, 600, 20], culprit=3)
    page = render_html(d, collapse_tokens=100)
    assert d.culprit_step == 3
    assert re.search(r'id="step-2">.*?<div class="text collapsed long" data-step="2">', page)
    assert re.search(r'id="step-3">.*?<div class="text open long" data-step="3">', page)
    assert re.search(r'id="step-1">.*?<div class="text open" data-step="1">', page)
    assert "Show all 500 tokens" in page
    with pytest.raises(ValueError, match="collapse_tokens"):
        render_html(d, collapse_tokens=0)


def test_large_run_keeps_the_initial_dom_small():
    d = large_diagnosis()
    n_tokens = sum(s.n_tokens for s in d.steps)
    assert len(d.steps) == 130 and 70_000 < n_tokens < 95_000
    t0 = time.perf_counter()
    page = render_html(d)
    elapsed = time.perf_counter() - t0
    assert elapsed < 5
    markup = _without_blob(page)
    assert 'class="tok"' not in markup  # token spans are built by the script, on demand
    assert len(markup) < 400_000
    assert len(page.encode()) < 4_000_000


def test_run_without_run_steps_or_labels():
    d = small_diagnosis()
    d.run_steps = []
    d.labels = {}
    page = render_html(d)
    assert "Gold mistake" not in page
    assert f'id="step-{d.culprit_step}"' in page


def test_write_html_and_load_round_trip(tmp_path):
    d = small_diagnosis()
    src = tmp_path / "d.json"
    src.write_text(d.to_json())
    loaded = load_diagnosis(src)
    assert loaded.culprit_step == d.culprit_step
    out = write_html(loaded, tmp_path / "r.html")
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_cli_report(tmp_path):
    src = tmp_path / "d.json"
    src.write_text(small_diagnosis().to_json())
    out = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["report", str(src), "--html", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and "culprit" in out.read_text(encoding="utf-8")


def test_report_command_imports_on_its_own():
    code = "import attribution.cli.report as m; print(m.report.name)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "report"


@pytest.mark.parametrize(
    "content, expected",
    [
        ("{not json", "invalid JSON at line 1"),
        ("[1, 2]", "expected a JSON object"),
        ('{"schema": "other/9"}', "expected schema 'attribution.diagnosis/2'"),
        ('{"schema": "attribution.diagnosis/1", "run_id": "x"}', "expected the fields of a saved diagnosis"),
        (None, "no such file"),
    ],
)
def test_cli_report_bad_input_is_one_line(tmp_path, content, expected):
    src = tmp_path / "d.json"
    if content is not None:
        src.write_text(content)
    res = CliRunner().invoke(main, ["report", str(src), "--html", str(tmp_path / "r.html")])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], res.output
    assert str(src) in lines[0]


def test_load_rejects_mismatched_lengths_and_nan(tmp_path):
    d = small_diagnosis().to_dict()
    d["steps"][1]["logps"] = d["steps"][1]["logps"][:-1]
    src = tmp_path / "d.json"
    src.write_text(json.dumps(d))
    with pytest.raises(InputError, match="step 1: expected tokens, logps and ref_logps of equal length"):
        load_diagnosis(src)
    d = small_diagnosis().to_dict()
    d["steps"][2]["score"] = float("nan")
    src.write_text(json.dumps(d))
    with pytest.raises(InputError, match="step 2: expected finite"):
        load_diagnosis(src)
    d = small_diagnosis().to_dict()
    d["run_steps"][4] = {"agent": "x"}
    src.write_text(json.dumps(d))
    with pytest.raises(InputError, match="step 4: expected run_steps entries with an integer 'index'"):
        load_diagnosis(src)


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000


def test_plot_tolerance_curve(tmp_path):
    from attribution.report.plots import plot_tolerance_curve

    ks = [0, 1, 2, 3, 5]
    out = plot_tolerance_curve(
        {"advantage": [0.2, 0.35, 0.5, 0.6, 0.7], "random": [0.05, 0.1, 0.2, 0.25, 0.35]}, tmp_path / "tol.png", ks
    )
    assert _is_png(out)
    with pytest.raises(ValueError, match="one accuracy per k"):
        plot_tolerance_curve({"a": [0.1]}, tmp_path / "x.png", ks)


def test_plot_roc(tmp_path):
    from attribution.report.plots import plot_roc

    rng = random.Random(0)
    y = [i % 2 for i in range(40)]
    scores = {"advantage": [v + rng.gauss(0, 0.6) for v in y], "random": [rng.random() for _ in y]}
    assert _is_png(plot_roc(y, scores, tmp_path / "roc.png"))
    with pytest.raises(ValueError, match="both outcomes"):
        plot_roc([1, 1, 1], {"a": [0.1, 0.2, 0.3]}, tmp_path / "x.png")
