"""Evidence in the controlled world for best-of-N selection and for monitoring a run as it goes.

**Selection.** For each of ``groups`` task instances (a task drawn uniformly), 8 candidate runs
of that task are sampled from the world's reference agents (the tabular pi_ref that wrote the
labelled sets; exact success probability 0.42). For N = 2, 4, 8 the first N candidates are
ranked by each judge and the top one is "picked"; we report the share of groups whose pick
succeeded, with percentile bootstrap 95% intervals over groups. Judges:

* ``progress advantage`` (trained pair): :func:`attribution.select.select_runs`'s default, the
  sum over the run's action steps of ``beta * log pi/pi_ref`` (plus the ``mean``/``min`` variants);
* ``exact A* sum``: the same sum with the tabular optimal advantage (the theory's ceiling for a
  judge that reads only the run);
* single-model judges: the policy's (or the reference's) summed log-prob of the run's actions;
* ``first run`` (what one sample would give), ``random pick`` (its exact expectation, the mean
  success of the N) and ``oracle best-of-N`` (1 when any candidate succeeded).

Scoring goes through the package's :class:`~attribution.score.Scorer` as ``attribution select``
does.

**Monitoring.** The mixed set (400 runs of the reference agents, successes and failures) is
fed step by step to :class:`attribution.monitor.Monitor` (incremental KV-cache scoring, exactly
as ``attribution monitor`` does). After ``ceil(f * n_steps)`` steps of a run, for f = 25, 50,
75, 100%, each judge's running run score predicts success; we report its AUROC with a
bootstrap 95% interval. The alert is then calibrated on the mixed set
(:func:`attribution.evaluation.calibration.calibrate`) and applied to the selection's candidate
runs, which it has not seen: false-alarm rate, recall and lead.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from attribution.evaluation.metrics import bootstrap_auroc_ci, bootstrap_indices, bootstrap_mean_ci, success_auroc_score

__all__ = ["NS", "FRACTIONS", "sample_candidates", "selection_table", "prefix_auroc_table", "write_evidence"]

NS = (2, 4, 8)
FRACTIONS = (0.25, 0.5, 0.75, 1.0)
GROUPS = 300
CANDIDATES_SEED = 4004
N_BOOT = 2000
BOOT_SEED = 0

PA = "progress advantage, sum (trained pair)"
SELECT_JUDGES = (
    PA,
    "progress advantage, mean over steps",
    "progress advantage, min step",
    "exact A* sum (tabular)",
    "policy log-prob, sum",
    "reference log-prob, sum",
)
PREFIX_JUDGES = (PA, "exact A* sum (tabular)", "policy log-prob, sum", "reference log-prob, sum")


def sample_candidates(solution: Any, groups: int = GROUPS, n: int = max(NS), seed: int = CANDIDATES_SEED) -> list[list[dict]]:
    """``groups`` lists of ``n`` labelled runs of one task each, from the reference agents."""
    from attribution.world.env import TASKS
    from attribution.world.labels import label
    from attribution.world.runs import sample_run

    rng = np.random.default_rng(seed)
    world = solution.world
    out = []
    for g in range(groups):
        task = TASKS[int(rng.integers(len(TASKS)))]
        cands: list[dict] = []
        while len(cands) < n:  # draws of other tasks are dropped: the candidates answer one task
            traj = sample_run(world, world.ref_probs, rng)
            if traj.task == task:
                cands.append(label(solution, traj, f"world-candidate-{g:03d}-{len(cands)}"))
        out.append(cands)
    return out


def _judge_scores(steps: list, record: dict) -> dict[str, float]:
    """Each judge's run score (higher = healthier) from a run's StepScores (score = token sum)."""
    from attribution.select import run_score

    acts = [s for s in steps if s.score is not None]
    adv = record["advantages"]
    return {
        PA: run_score(steps, "sum"),
        "progress advantage, mean over steps": run_score(steps, "mean"),
        "progress advantage, min step": run_score(steps, "min"),
        "exact A* sum (tabular)": float(sum(adv[s.index] for s in acts)),
        "policy log-prob, sum": float(sum(sum(s.logps) for s in acts)),
        "reference log-prob, sum": float(sum(sum(s.ref_logps) for s in acts)),
    }


def selection_table(groups: list[list[dict]], scores: list[list[dict[str, float]]]) -> dict[str, Any]:
    """Per N and judge: success of the pick per group, its mean and bootstrap interval."""
    succ = np.array([[float(r["success"]) for r in g] for g in groups])  # [groups, 8]
    idx = bootstrap_indices(len(groups), n_boot=N_BOOT, seed=BOOT_SEED)
    table: dict[str, Any] = {}
    for n in NS:
        rows: dict[str, np.ndarray] = {
            "first run": succ[:, 0],
            "random pick (expectation)": succ[:, :n].mean(axis=1),
        }
        for judge in SELECT_JUDGES:
            # best first; ties keep the candidates' order, as select_runs does
            picks = [min(range(n), key=lambda k: (-sc[k][judge], k)) for sc in scores]
            rows[judge] = np.array([succ[g, k] for g, k in enumerate(picks)])
        rows["oracle best-of-N"] = succ[:, :n].max(axis=1)
        out = {}
        for name, v in rows.items():
            out[name] = {"mean": float(v.mean()), "ci": bootstrap_mean_ci(v, n_boot=N_BOOT, seed=BOOT_SEED)}
        diffs = {}
        for other in ("first run", "random pick (expectation)", "policy log-prob, sum", "reference log-prob, sum",
                      "progress advantage, mean over steps", "exact A* sum (tabular)"):
            d = rows[PA] - rows[other]
            diffs[other] = {"mean": float(d.mean()), "ci": _percentile_ci(d[idx].mean(axis=1))}
        table[n] = {"rows": out, "diffs": diffs}
    return table


def _percentile_ci(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def monitor_prefixes(records: list[dict], scorer: Any) -> tuple[list[dict[str, list[float]]], int]:
    """Feed each run to a :class:`~attribution.monitor.Monitor` step by step; per run and judge,
    the running run score after each step; and the tokens the monitor fed (its cost)."""
    from attribution.monitor import Monitor
    from attribution.parse import parse_run

    out, fed = [], 0
    for rec in records:
        run = parse_run(rec, source=rec["id"], format="chat")
        mon = Monitor(scorer, run_id=run.run_id)
        running: dict[str, list[float]] = {j: [] for j in PREFIX_JUDGES}
        for step in run.steps:
            mon.feed(step)
            sc = _judge_scores(mon.steps, rec)
            for j in PREFIX_JUDGES:
                running[j].append(sc[j])
        fed += mon.fed_tokens
        out.append(running)
    return out, fed


def prefix_auroc_table(records: list[dict], running: list[dict[str, list[float]]]) -> dict[float, dict[str, tuple]]:
    """AUROC (with interval) of each judge's running score after ``ceil(f * n_steps)`` steps."""
    y = np.array([int(r["success"]) for r in records])
    out = {}
    for f in FRACTIONS:
        row = {}
        for j in PREFIX_JUDGES:
            s = []
            for rec, run in zip(records, running):
                k = max(1, math.ceil(f * len(rec["messages"])))
                v = run[j][k - 1]
                s.append(v if v == v else 0.0)  # no action yet: every judge says 0 (no evidence)
            s = np.array(s)
            lo, hi = bootstrap_auroc_ci(y, s, n_boot=N_BOOT, seed=BOOT_SEED)
            row[j] = (success_auroc_score(y, s), lo, hi)
        out[f] = row
    return out


def write_evidence(
    checkpoint_dir: str | Path,
    data_dir: str | Path,
    out_md: str | Path = "eval/world_select_monitor.md",
    groups: int = GROUPS,
    command: str = "attribution world evidence",
) -> dict[str, Any]:
    """Run both experiments with the committed pair; write the Markdown report and two plots."""
    from attribution.diagnoser import make_scorer
    from attribution.evaluation.calibration import calibrate, first_alert
    from attribution.parse import parse_run
    from attribution.rank import aggregate
    from attribution.types import Run
    from attribution.world import BETA, World, solve
    from attribution.world.labels import read_jsonl

    from attribution.errors import InputError

    t0 = time.time()
    checkpoint_dir, out_md = Path(checkpoint_dir), Path(out_md)
    if not (Path(data_dir) / "mixed.jsonl").is_file():
        raise InputError(Path(data_dir) / "mixed.jsonl", "a labelled set written by `attribution world generate`")
    if not (checkpoint_dir / "pairs.json").is_file():
        raise InputError(checkpoint_dir / "pairs.json", "the pair config written by `attribution world train`")
    scorer = make_scorer(pairs=str(checkpoint_dir / "pairs.json"), chat_template=False)
    solution = solve(World(), BETA)

    cand = sample_candidates(solution, groups)
    flat = [r for g in cand for r in g]
    runs = [parse_run(r, source=r["id"], format="chat") for r in flat]
    steps = [aggregate(s.steps, "sum") for s in scorer.score_many(runs)]
    judged = [_judge_scores(st, r) for st, r in zip(steps, flat)]
    n = max(NS)
    sel = selection_table(cand, [judged[g * n : (g + 1) * n] for g in range(len(cand))])
    t_sel = time.time() - t0

    mixed = read_jsonl(Path(data_dir) / "mixed.jsonl")
    t1 = time.time()
    running, fed = monitor_prefixes(mixed, scorer)
    t_mon = time.time() - t1
    prefix = prefix_auroc_table(mixed, running)

    # the alert, calibrated on the mixed set, on the candidate runs it has not seen
    mixed_runs = [Run([], r["id"], success=r["success"]) for r in mixed]
    for run, rec in zip(mixed_runs, mixed):
        run.steps = parse_run(rec, source=rec["id"], format="chat").steps
    mixed_steps = [_as_steps(run, r) for run, r in zip(mixed_runs, running)]
    alerts = {}
    for fpr in (0.05, 0.1, 0.2):
        cal = calibrate(mixed_runs, mixed_steps, fpr)
        test = []
        for run, st, rec in zip(runs, steps, flat):
            from attribution.evaluation.calibration import prefix_run_scores

            at = first_alert(prefix_run_scores(st), cal.threshold)
            test.append((rec["success"], at, len(run.steps)))
        fa = np.array([at is not None for ok, at, _ in test if ok], dtype=float)
        hit = np.array([at is not None for ok, at, _ in test if not ok], dtype=float)
        leads = [m - 1 - at for ok, at, m in test if not ok and at is not None]
        alerts[fpr] = {
            "threshold": cal.threshold, "fpr_cal": cal.fpr, "recall_cal": cal.recall,
            "fpr_test": float(fa.mean()), "fpr_test_ci": bootstrap_mean_ci(fa, n_boot=N_BOOT, seed=BOOT_SEED),
            "recall_test": float(hit.mean()), "recall_test_ci": bootstrap_mean_ci(hit, n_boot=N_BOOT, seed=BOOT_SEED),
            "lead_median": float(np.median(leads)) if leads else None,
            "lead_mean": float(np.mean(leads)) if leads else None,
            "n_success": int(len(fa)), "n_failure": int(len(hit)),
        }

    out_md.parent.mkdir(parents=True, exist_ok=True)
    png_sel = out_md.with_name("world_selection.png")
    png_pre = out_md.with_name("world_prefix_auroc.png")
    _plot_selection(sel, png_sel)
    _plot_prefix(prefix, png_pre)
    summary = {
        "groups": len(cand), "candidates": len(flat), "candidate_success": float(np.mean([r["success"] for r in flat])),
        "selection": sel, "prefix": prefix, "alerts": alerts, "n_mixed": len(mixed),
        "n_mixed_success": int(sum(r["success"] for r in mixed)),
        "mixed_steps": int(sum(len(r["messages"]) for r in mixed)), "monitor_fed_tokens": fed,
        "seconds": {"selection": t_sel, "monitor": t_mon, "total": time.time() - t0},
        "beta": json.loads((checkpoint_dir / "pairs.json").read_text())["pairs"]["world"]["beta"],
    }
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(_markdown(summary, command, png_sel.name, png_pre.name))
    return summary


def _as_steps(run: Any, running: dict[str, list[float]]) -> list:
    """StepScores whose running sum is the monitor's (for calibrate, which sums step scores)."""
    from attribution.types import StepScore

    out, prev = [], 0.0
    for st, total in zip(run.steps, running[PA]):
        if total != total:
            out.append(StepScore(st.index, st.agent, st.kind))
            continue
        out.append(StepScore(st.index, st.agent, st.kind, score=total - prev) if st.is_action else StepScore(st.index, st.agent, st.kind))
        prev = total
    return out


def _summary(s: dict) -> list[str]:
    """Sentences computed from the tables (nothing here is typed in by hand)."""
    lines = []
    for n in NS:
        rows, diffs = s["selection"][n]["rows"], s["selection"][n]["diffs"]
        beats = [o for o, d in diffs.items() if d["ci"][0] > 0]
        loses = [o for o, d in diffs.items() if d["ci"][1] < 0]
        ties = [o for o in diffs if o not in beats and o not in loses]
        lines.append(
            f"- Best of {n}: progress advantage picks a successful run in {rows[PA]['mean']:.1%} of task instances "
            f"(first run {rows['first run']['mean']:.1%}, oracle {rows['oracle best-of-N']['mean']:.1%}); at the 95% level "
            f"it beats: {'; '.join(beats) or 'none'}" + (f"; ties: {'; '.join(ties)}" if ties else "")
            + (f"; loses to: {'; '.join(loses)}" if loses else "") + "."
        )
    pre = s["prefix"]
    parts = []
    for f in FRACTIONS:
        best_other = max((j for j in PREFIX_JUDGES if j not in (PA, "exact A* sum (tabular)")), key=lambda j: pre[f][j][0])
        parts.append(f"{int(100 * f)}%: {pre[f][PA][0]:.3f} (best single-model judge, {best_other}: {pre[f][best_other][0]:.3f})")
    lines.append("- Success prediction from a prefix, AUROC of progress advantage: " + "; ".join(parts) + ".")
    a = s["alerts"][0.1]
    lines.append(
        f"- Alert calibrated for 10% false alarms on the mixed set: on new runs {a['fpr_test']:.1%} false alarms, "
        f"recall {a['recall_test']:.1%}, firing a median {a['lead_median']:.0f} steps before the log ends."
    )
    return lines


def _fmt(m: float, ci: tuple) -> str:
    return f"{m:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def _plot_selection(sel: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    names = ["oracle best-of-N", PA, "exact A* sum (tabular)", "policy log-prob, sum", "reference log-prob, sum",
             "random pick (expectation)", "first run"]
    for k, name in enumerate(names):
        m = [sel[n]["rows"][name]["mean"] for n in NS]
        lo = [sel[n]["rows"][name]["mean"] - sel[n]["rows"][name]["ci"][0] for n in NS]
        hi = [sel[n]["rows"][name]["ci"][1] - sel[n]["rows"][name]["mean"] for n in NS]
        x = np.array(NS) * (1 + 0.02 * (k - len(names) / 2))
        ax.errorbar(x, m, yerr=[lo, hi], marker="o", capsize=3, label=name, ls="--" if "first" in name or "random" in name else "-")
    ax.set_xscale("log", base=2)
    ax.set_xticks(NS, [str(n) for n in NS])
    ax.set_xlabel("candidates per task (N)")
    ax.set_ylabel("success rate of the picked run")
    ax.set_ylim(0, 1.02)
    ax.set_title("Best-of-N in the controlled world (95% bootstrap intervals)")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_prefix(prefix: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    xs = [100 * f for f in FRACTIONS]
    for k, j in enumerate(PREFIX_JUDGES):
        m = [prefix[f][j][0] for f in FRACTIONS]
        err = [[prefix[f][j][0] - prefix[f][j][1] for f in FRACTIONS], [prefix[f][j][2] - prefix[f][j][0] for f in FRACTIONS]]
        ax.errorbar([x + 0.8 * (k - 1.5) for x in xs], m, yerr=err, marker="o", capsize=3, label=j)
    ax.axhline(0.5, color="k", lw=0.8, ls=":")
    ax.set_xticks(xs)
    ax.set_xlabel("share of the run's steps seen (%)")
    ax.set_ylabel("AUROC for success")
    ax.set_ylim(0.4, 1.0)
    ax.set_title("Predicting success from a prefix (mixed set, 95% bootstrap intervals)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _markdown(s: dict, command: str, png_sel: str, png_pre: str) -> str:
    lines = [
        "# Controlled world: best-of-N selection and monitoring",
        "",
        f"Regenerate with `{command}` (after `attribution world generate`; uses the committed pair).",
        f"Everything is seeded (candidates: seed {CANDIDATES_SEED}; bootstrap: {N_BOOT} resamples, seed {BOOT_SEED}).",
        f"It took {s['seconds']['total']:.0f} s on a shared 2-core CPU (selection scoring {s['seconds']['selection']:.0f} s,",
        f"step-by-step monitoring of the mixed set {s['seconds']['monitor']:.0f} s).",
        "The attribution results are in [world_results.md](world_results.md).",
        "",
        "## Summary",
        "",
        *_summary(s),
        "",
        "## Best-of-N selection",
        "",
        f"{s['groups']} task instances x 8 candidate runs of the world's reference agents ({s['candidates']} runs,",
        f"{s['candidate_success']:.1%} successful). For each N the first N candidates of an instance are ranked and the",
        "top one is picked (`attribution select`'s rule: the highest run score, first candidate on a tie).",
        "Success rate of the pick, bootstrap 95% interval over task instances:",
        "",
        "| judge | " + " | ".join(f"N = {n}" for n in NS) + " |",
        "|---|" + "---|" * len(NS),
    ]
    names = list(s["selection"][NS[0]]["rows"])
    for name in names:
        lines.append(f"| {name} | " + " | ".join(_fmt(s['selection'][n]['rows'][name]['mean'], s['selection'][n]['rows'][name]['ci']) for n in NS) + " |")
    lines += [
        "",
        "Progress advantage (sum) minus each judge, paired bootstrap 95% interval (above 0: better at the 95% level):",
        "",
        "| versus | " + " | ".join(f"N = {n}" for n in NS) + " |",
        "|---|" + "---|" * len(NS),
    ]
    for other in s["selection"][NS[0]]["diffs"]:
        lines.append(f"| {other} | " + " | ".join(_fmt(s['selection'][n]['diffs'][other]['mean'], s['selection'][n]['diffs'][other]['ci']) for n in NS) + " |")
    lines += [
        "",
        f"![best-of-N]({png_sel})",
        "",
        "The oracle best-of-N is the ceiling (some candidate succeeded); the random pick is its exact",
        "expectation. The sum over steps is the default run score because summed advantages telescope to",
        "R - V*(s0) whatever the run's length (see `attribution/select.py`); the mean and min variants are shown",
        "for comparison. Even the exact A* sum stays below the oracle: it measures how good the decisions were",
        "(sum_t Q*(s_t, a_t) - V*(s_t) reads no realised reward), so a run of good decisions that the flaky tool",
        "or a silently wrong value made fail still scores high, and one that succeeded by luck scores low.",
        "",
        f"## Predicting success from a prefix ({s['n_mixed']} runs of the mixed set, {s['n_mixed_success']} successes)",
        "",
        "Each run is fed step by step to `attribution.monitor.Monitor` (incremental KV-cache scoring, as",
        "`attribution monitor` does); after ceil(f x n_steps) of its steps each judge's running run score",
        "(higher = healthier) predicts success. AUROC with a bootstrap 95% interval; a judge with no action",
        "step yet scores 0.",
        "",
        "| judge | " + " | ".join(f"{int(100 * f)}% of steps" for f in FRACTIONS) + " |",
        "|---|" + "---|" * len(FRACTIONS),
    ]
    for j in PREFIX_JUDGES:
        lines.append(f"| {j} | " + " | ".join(_fmt(s['prefix'][f][j][0], s['prefix'][f][j][1:]) for f in FRACTIONS) + " |")
    lines += [
        "",
        f"![prefix AUROC]({png_pre})",
        "",
        f"The monitor ran {s['monitor_fed_tokens']:,} tokens through each model for the {s['mixed_steps']:,} steps of these runs.",
        "",
        "## The alert, calibrated on the mixed set, on the candidate runs",
        "",
        "`attribution eval --calibrate FPR` chooses the threshold of the running run score (sum) for a target",
        "false-alarm rate among successful runs. Calibrated on the mixed set, then applied to the",
        f"{s['candidates']} candidate runs above (unseen): false alarms among their successes, recall among their",
        "failures (bootstrap 95% intervals over runs), and the lead: steps of the log after the alert step.",
        "",
        "| target false-alarm rate | threshold | false alarms (calibration set) | false alarms (new runs) | recall (new runs) | median lead (steps) |",
        "|---|---|---|---|---|---|",
    ]
    for fpr, a in s["alerts"].items():
        lead = f"{a['lead_median']:.0f} (mean {a['lead_mean']:.2f})" if a["lead_median"] is not None else "-"
        lines.append(
            f"| {fpr:.2f} | {a['threshold']:.3f} | {a['fpr_cal']:.3f} | {_fmt(a['fpr_test'], a['fpr_test_ci'])} | "
            f"{_fmt(a['recall_test'], a['recall_test_ci'])} | {lead} |"
        )
    lines.append("")
    return "\n".join(lines)
