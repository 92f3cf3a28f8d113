"""Reports of an :class:`~attribution.evaluation.evaluator.EvalResult`: a terminal table,
a JSON file and a Markdown file with PNG figures beside it.

Accuracies print as percentages with two decimals (``12.00``), the mean absolute step error
in steps, the AUROC as a fraction. A method marked ``†`` was chosen on the same runs it is
measured on: its number is optimistic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from attribution.evaluation.evaluator import EvalResult, MethodResult
from attribution.evaluation.metrics import TOLERANCES, Metric
from attribution.io import atomic_write_text

__all__ = ["format_table", "render_markdown", "write_json", "write_markdown", "pct"]

FLAG = "†"
_COLUMNS: list[tuple[str, str]] = [
    ("agent_accuracy_score", "agent acc"),
    ("step_accuracy_score", "step acc"),
    ("step_within_1_score", "±1"),
    ("step_within_3_score", "±3"),
    ("step_within_5_score", "±5"),
    ("top3_hit_score", "top-3"),
    ("mean_absolute_step_error", "|err|"),
    ("success_auroc_score", "AUROC"),
]


def pct(x: float | None) -> str:
    """A fraction as a percentage with two decimals; ``—`` for None.

    Examples
    --------
    >>> pct(0.11996), pct(None)
    ('12.00', '—')
    """
    return "—" if x is None else f"{100 * x:.2f}"


def _fmt(name: str) -> Callable[[float | None], str]:
    if name == "mean_absolute_step_error":
        return lambda x: "—" if x is None else f"{x:.2f}"
    if name == "success_auroc_score":
        return lambda x: "—" if x is None else f"{x:.3f}"
    return pct


def _cell(name: str, m: Metric, ci: bool) -> str:
    f = _fmt(name)
    if not ci or m.value is None or m.low is None:
        return f(m.value)
    return f"{f(m.value)} [{f(m.low)}, {f(m.high)}]"


def _label(m: MethodResult) -> str:
    return m.name + (f" {FLAG}" if m.in_sample else "")


def _n(methods: dict[str, MethodResult]) -> str:
    first = next(iter(methods.values())).metrics
    return f"{first['step_accuracy_score'].n} runs with a step label, {first['agent_accuracy_score'].n} with an agent label"


def _signed(m: Metric) -> str:
    """A paired difference in percentage points, signed, with its interval."""
    if m.value is None:
        return "—"
    f = lambda x: f"{100 * x:+.2f}"  # noqa: E731
    return f(m.value) + (f" [{f(m.low)}, {f(m.high)}]" if m.low is not None else "")


def _difference_rows(result: EvalResult, subset: str) -> list[tuple[str, str, str]]:
    """(baseline, step acc difference, agent acc difference) rows of one subset."""
    return [(b, _signed(d["step_accuracy_score"]), _signed(d["agent_accuracy_score"]))
            for b, d in result.differences.get(subset, {}).items()]


def format_table(result: EvalResult, *, ci: bool = True) -> str:
    """The terminal table: one block per subset, one row per method (intervals on the two accuracies),
    and the "no signal" line where the attribution does not beat a structural floor."""
    lines = []
    no_signal = result.no_signal()
    for subset, methods in result.subsets.items():
        lines.append(f"{subset} ({_n(methods)})")
        width = max(len(_label(m)) for m in methods.values()) + 2
        rows = [[_label(m)] + [_cell(k, m.metrics[k], ci and k in ("agent_accuracy_score", "step_accuracy_score")) for k, _ in _COLUMNS]
                for m in methods.values()]
        head = ["method"] + [h for _, h in _COLUMNS]
        widths = [width] + [max(len(h), *(len(r[j + 1]) for r in rows)) for j, h in enumerate(head[1:])]
        lines.append("  ".join(h.ljust(widths[0]) if j == 0 else h.rjust(widths[j]) for j, h in enumerate(head)))
        for r in rows:
            lines.append("  ".join(c.ljust(widths[0]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(r)))
        for b, step, agent in _difference_rows(result, subset):
            lines.append(f"  {result.attribution_method} − {b}: step acc {step}, agent acc {agent} (paired, points)")
        if subset in no_signal:
            lines.append(f"  {no_signal[subset]['line']}")
        lines.append("")
    if result.selection:
        counts = ", ".join(f"{k} ×{v}" for k, v in result.selection["chosen_counts"].items())
        lines.append(f"selection: {result.selection['method']} (seed {result.selection['seed']}); chosen: {counts}")
    if any(m.in_sample for ms in result.subsets.values() for m in ms.values()):
        lines.append(f"{FLAG} setting chosen on these same runs: optimistic, not a held-out estimate")
    bad = result.timing.get("bad_cache_entries", 0)
    if bad:
        lines.append(f"{bad} invalid score-cache entries were found, not used, and scored again")
    lines.append("accuracies in %, [bootstrap 95% interval]; |err| = mean absolute step error; step match is exact")
    return "\n".join(lines)


def write_json(result: EvalResult, path: str | Path) -> None:
    atomic_write_text(path, result.to_json(indent=1))


def _md_header(h: str) -> str:
    return "mean abs err" if h == "|err|" else h  # a bare pipe would split the Markdown cell


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def render_markdown(result: EvalResult, figures: dict[str, dict[str, str]] | None = None) -> str:
    """The Markdown report; ``figures`` maps subset -> {"tolerance"|"roc": relative PNG path}."""
    s = result.settings
    no_signal = result.no_signal()
    md = ["# Attribution evaluation", ""]
    md += [f"Dataset **{s['dataset']}** ({s['origin']}), subset `{s['subset']}`, {s['n_runs']} runs.", ""]
    md += ["## Settings", ""]
    rows = [[k, f"`{v}`"] for k, v in s.items() if k not in ("dataset", "origin")]
    md += _md_table(["setting", "value"], rows) + [""]
    md += ["## Checkpoints", ""]
    crow = []
    for pname, d in result.checkpoints.items():
        crow.append([pname, f"`{d['policy']['id']}`", f"`{d['reference']['id']}`", str(d.get("beta"))])
    md += _md_table(["pair", "policy", "reference", "beta"], crow) + [""]
    if result.selection:
        sel = result.selection
        md += ["## Setting selection", ""]
        md += [f"Aggregation × ranker chosen by {sel['method']} (seed {sel['seed']}), criterion: {sel['criterion']}. "
               "Each run is predicted with the setting chosen on the other folds, so the "
               f"`{result.attribution_method}` rows are held-out estimates.", ""]
        md += ["Chosen per fold: " + ", ".join(f"{c['fold']}: `{c['aggregate']}/{c['ranker']}`" for c in sel["chosen_per_fold"]) + ".", ""]
        ib = sel["in_sample_best"]
        md += [f"{FLAG} The best setting on all runs (`{ib['aggregate']}/{ib['ranker']}`) is also shown; it was chosen on the "
               "same runs it is measured on, so its numbers are optimistic.", ""]
    md += ["## Results", "", "Accuracies in %, with bootstrap 95% intervals over runs "
           f"({s['n_boot']} resamples, seed {s['seed']}); mean abs err is the mean absolute step error, in steps; "
           "the step match is an exact integer match.", ""]
    for subset, methods in result.subsets.items():
        md += [f"### {subset}", "", f"{_n(methods)}.", ""]
        rows = [[_label(m)] + [_cell(k, m.metrics[k], True) for k, _ in _COLUMNS] + [m.note] for m in methods.values()]
        md += _md_table(["method"] + [_md_header(h) for _, h in _COLUMNS] + ["note"], rows) + [""]
        diffs = _difference_rows(result, subset)
        if diffs:
            md += [f"Paired bootstrap differences, `{result.attribution_method}` minus each structural floor, in "
                   "percentage points [95% interval]:", ""]
            md += _md_table(["baseline", "step acc difference", "agent acc difference"], [list(r) for r in diffs]) + [""]
        if subset in no_signal:
            md += [f"**{no_signal[subset]['line'][0].upper()}{no_signal[subset]['line'][1:]}.**", ""]
        for kind, rel in (figures or {}).get(subset, {}).items():
            md += [f"![{kind} ({subset})]({rel})", ""]
    md += ["## Every setting", "", f"Each row is one fixed aggregation/ranker over all runs of the subset. Picking the best row "
           f"here is selection on the test data ({FLAG}).", ""]
    for subset, rows_ in result.grid.items():
        best = max(rows_.values(), key=lambda m: (m.metrics["step_accuracy_score"].value or 0, m.metrics["agent_accuracy_score"].value or 0))
        md += [f"### {subset}", ""]
        keys = ["agent_accuracy_score", "step_accuracy_score", "step_within_1_score", "top3_hit_score", "mean_absolute_step_error"]
        rows = [[m.name + (f" {FLAG}" if m is best else "")] + [_fmt(k)(m.metrics[k].value) for k in keys] for m in rows_.values()]
        md += _md_table(["aggregate/ranker", "agent acc", "step acc", "±1", "top-3", _md_header("|err|")], rows) + [""]
    t = result.timing
    md += ["## Timing", "", f"{t.get('runs')} distinct runs: {t.get('scored')} scored, {t.get('from_cache')} read from the cache "
           f"({t.get('bad_cache_entries', 0)} invalid cache entries scored again); "
           f"scoring {t.get('scoring_s')} s, total {t.get('total_s')} s.", ""]
    if "engine" in t:
        md += [resources_line(t), ""]
    return "\n".join(md)


def resources_line(timing: dict) -> str:
    """Engine, out-of-memory retries and peak memory per device, in one line."""
    peaks = ", ".join(f"{d} {b / 2**30:.2f} GiB" for d, b in sorted((timing.get("peak_memory") or {}).items())) or "not measured"
    return f"Engine {timing.get('engine')}; {timing.get('oom_retries', 0)} out-of-memory retries (batch halved); peak memory: {peaks}."


def _figures(result: EvalResult, out: Path) -> dict[str, dict[str, str]]:
    from attribution.report.plots import plot_roc, plot_tolerance_curve

    figs: dict[str, dict[str, str]] = {}
    ks = [0, *TOLERANCES]
    for subset, methods in result.subsets.items():
        shown = {n: m for n, m in methods.items() if m.metrics["step_accuracy_score"].value is not None}
        if not shown:
            continue
        slug = subset.replace("/", "-").replace(" ", "-")
        curves = {n: [m.metrics["step_accuracy_score"].value] + [m.metrics[f"step_within_{k}_score"].value for k in TOLERANCES]
                  for n, m in shown.items()}
        tol = out.parent / f"{out.stem}-{slug}-tolerance.png"
        plot_tolerance_curve(curves, tol, ks)
        figs.setdefault(subset, {})["tolerance"] = tol.name
        roc = _roc_inputs(result, subset)
        if roc is not None:
            path = out.parent / f"{out.stem}-{slug}-roc.png"
            plot_roc(roc[0], roc[1], path)
            figs[subset]["roc"] = path.name
    return figs


def _roc_inputs(result: EvalResult, subset: str) -> tuple[list[int], dict[str, list[float]]] | None:
    runs = [r for r in result.runs if r["success"] is not None and (subset == "all" or r["subset"] == subset or len(result.subsets) == 1)]
    y = [int(r["success"]) for r in runs]
    if len(set(y)) < 2:
        return None
    scores: dict[str, Any] = {}
    for name in runs[0]["predictions"]:
        vals = [r["predictions"][name]["run_score"] for r in runs]
        if all(v is not None for v in vals):
            scores[name] = vals
    return (y, scores) if scores else None


def write_markdown(result: EvalResult, path: str | Path, *, figures: bool = True) -> list[Path]:
    """Write the Markdown report and, beside it, its PNG figures; return every path written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figs = _figures(result, path) if figures else {}
    atomic_write_text(path, render_markdown(result, figs))
    return [path] + [path.parent / rel for f in figs.values() for rel in f.values()]
