"""Results in the controlled world: how well each judge finds the decisive step.

Judges, each ranking the action steps of a failed run and naming the lowest (most-negative
ranker of :mod:`attribution.rank`, earliest step on a tie):

* ``progress advantage``: beta * sum_tokens log pi/pi_ref from the trained pair, scored by
  the package's :class:`attribution.score.Scorer` (what ``attribution diagnose`` does);
* ``oracle``: the exact A*(s, a) of the tabular solution (the label's own definition, so its
  step accuracy is 1 by construction: a check of the pipeline, and the ceiling);
* ``policy log-prob`` / ``reference log-prob``: the summed (and, as a variant, the mean
  per token) log-probability of the step under one model alone (a confidence judge);
* ``random``: a uniformly random action step (its exact expected accuracy per run);
* ``longest action step``: the action step with the most tokens (earliest on a tie), the
  structural floor of a sum over tokens;
* ``null pair``: progress advantage with the same rule from two untrained models of the
  pair's architecture and tokenizer (fixed seeds, :func:`attribution.evaluation.baselines.null_scorer`):
  what the rendering and the runs' shape alone give.

Accuracies are over the non-lucky labelled failures, with percentile bootstrap 95%
intervals over runs (2000 resamples, fixed seed); "beats" compares paired bootstrap
differences. AUROC: the run-level score (the sum over the run's action steps) predicting
success on the mixed set.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from attribution.evaluation.metrics import bootstrap_auroc_ci, bootstrap_mean_ci, success_auroc_score
from attribution.world.env import AGENTS, World

__all__ = ["Scored", "score_sets", "write_results", "bootstrap_ci", "pick_example"]

N_BOOT = 2000
BOOT_SEED = 0


@dataclass
class Scored:
    """One labelled run with its per-step numbers (keyed by message index)."""

    record: dict
    actions: list[int]
    logp: dict[int, float]
    ref_logp: dict[int, float]
    n_tokens: dict[int, int]
    beta: float
    null_logp: dict[int, float] | None = None  # the null pair's summed log-probs, when scored
    null_ref_logp: dict[int, float] | None = None

    def pa(self, k: int) -> float:
        return self.beta * (self.logp[k] - self.ref_logp[k])

    def true(self, k: int) -> float:
        return self.record["advantages"][k]


def score_sets(records: list[dict], pairs_path: str | Path) -> list[Scored]:
    """Score labelled runs with the package's scorer and the pair config at ``pairs_path``."""
    from attribution.diagnoser import make_scorer
    from attribution.parse import parse_run

    from attribution.evaluation.baselines import null_scorer

    scorer = make_scorer(pairs=str(pairs_path), chat_template=False)
    runs = [parse_run(r, source=r["id"], format="chat") for r in records]
    nulls = null_scorer(scorer).score_many(runs)
    out = []
    for rec, scored, null in zip(records, scorer.score_many(runs), nulls):
        steps = [s for s in scored.steps if s.kind == "action"]
        nsteps = [s for s in null.steps if s.kind == "action"]
        out.append(
            Scored(
                record=rec,
                actions=[s.index for s in steps],
                logp={s.index: float(sum(s.logps)) for s in steps},
                ref_logp={s.index: float(sum(s.ref_logps)) for s in steps},
                n_tokens={s.index: len(s.logps) for s in steps},
                beta=steps[0].beta,
                null_logp={s.index: float(sum(s.logps)) for s in nsteps},
                null_ref_logp={s.index: float(sum(s.ref_logps)) for s in nsteps},
            )
        )
    return out


def _culprit(s: Scored, fn: Callable[[Scored, int], float]) -> int:
    return min(s.actions, key=lambda k: (fn(s, k), k))


JUDGES: dict[str, Callable[[Scored, int], float]] = {
    "progress advantage (trained pair)": Scored.pa,
    "oracle: exact A* (tabular)": Scored.true,
    "policy log-prob, sum": lambda s, k: s.logp[k],
    "reference log-prob, sum": lambda s, k: s.ref_logp[k],
    "policy log-prob, mean per token": lambda s, k: s.logp[k] / s.n_tokens[k],
    "reference log-prob, mean per token": lambda s, k: s.ref_logp[k] / s.n_tokens[k],
    "longest action step": lambda s, k: -s.n_tokens[k],
    "null pair (untrained models, same rule)": lambda s, k: s.beta * (s.null_logp[k] - s.null_ref_logp[k]),
}


def hits(scored: list[Scored]) -> dict[str, dict[str, np.ndarray]]:
    """Per judge, per run: step hit and agent hit (fractional for random: its expectation)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, fn in JUDGES.items():
        culprits = [_culprit(s, fn) for s in scored]
        out[name] = {
            "step": np.array([c == s.record["mistake_step"] for c, s in zip(culprits, scored)], dtype=float),
            "agent": np.array(
                [s.record["messages"][c]["name"] == s.record["mistake_agent"] for c, s in zip(culprits, scored)], dtype=float
            ),
        }
    out["random step"] = {
        "step": np.array([1.0 / len(s.actions) for s in scored]),
        "agent": np.array(
            [np.mean([s.record["messages"][k]["name"] == s.record["mistake_agent"] for k in s.actions]) for s in scored]
        ),
    }
    return out


def bootstrap_ci(values: np.ndarray, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> tuple[float, float]:
    """Percentile 95% interval of the mean over runs (the evaluation's bootstrap)."""
    return bootstrap_mean_ci(values, n_boot=n_boot, seed=seed)


def _auroc_ci(y: np.ndarray, score: np.ndarray, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> tuple[float, float, float]:
    return (success_auroc_score(y, score), *bootstrap_auroc_ci(y, score, n_boot=n_boot, seed=seed))


def pick_example(scored: list[Scored]) -> dict | None:
    """The README's example run, by a fixed rule: the first labelled failure of the set, in file
    order, that is not a lucky failure, **whatever the verdict** of any judge on it (an example
    chosen because the pair gets it right would be a demonstration of luck, not of the method)."""
    for s in scored:
        rec = s.record
        if not rec["success"] and not rec["lucky_failure"]:
            return rec
    return None


def _fmt(mean: float, ci: tuple[float, float]) -> str:
    return f"{mean:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def write_results(
    checkpoint_dir: str | Path,
    data_dir: str | Path,
    out_md: str | Path,
    out_png: str | Path,
    example_out: str | Path | None = None,
    command: str = "attribution world results",
) -> dict:
    """Score both data sets with the committed pair and write the table, the curve and the example.

    Raises
    ------
    InputError
        If a labelled set (``attribution world generate``) or the training log
        (``attribution world train``) is missing.
    """
    from attribution.errors import InputError
    from attribution.io import read_json_file
    from attribution.world.labels import read_jsonl

    t0 = time.time()
    checkpoint_dir, data_dir = Path(checkpoint_dir), Path(data_dir)
    for name in ("failures.jsonl", "mixed.jsonl", "failures_heldout.jsonl"):
        if not (data_dir / name).is_file():
            raise InputError(data_dir / name, "a labelled set written by `attribution world generate`")
    if not (checkpoint_dir / "training.json").is_file():
        raise InputError(checkpoint_dir / "training.json", "the training log written by `attribution world train`")
    training = read_json_file(checkpoint_dir / "training.json", "the training log written by `attribution world train`")
    failures = read_jsonl(data_dir / "failures.jsonl")
    mixed = read_jsonl(data_dir / "mixed.jsonl")
    pairs = checkpoint_dir / "pairs.json"
    try:
        beta = read_json_file(pairs, "the pair config written by `attribution world train`")["pairs"]["world"]["beta"]
    except (KeyError, TypeError) as err:
        raise InputError(pairs, "the pair config written by `attribution world train` (pairs.world.beta)",
                         got=f"no {err}" if isinstance(err, KeyError) else "another shape") from None

    scored_f = score_sets(failures, pairs)
    judged = [s for s in scored_f if not s.record["lucky_failure"]]
    h = hits(judged)
    rows = {}
    for name, d in h.items():
        rows[name] = {k: (float(v.mean()), bootstrap_ci(v)) for k, v in d.items()}
    pa_name = "progress advantage (trained pair)"
    diffs = {}
    for name in h:
        if name == pa_name or name.startswith("oracle"):
            continue
        diffs[name] = {k: (float((h[pa_name][k] - h[name][k]).mean()), bootstrap_ci(h[pa_name][k] - h[name][k])) for k in ("step", "agent")}

    # per label agent, step accuracy
    by_agent = {}
    for agent in AGENTS:
        sel = np.array([s.record["mistake_agent"] == agent for s in judged])
        by_agent[agent] = {"n": int(sel.sum()), **{name: float(d["step"][sel].mean()) if sel.any() else float("nan") for name, d in h.items()}}

    # how far the trained pair falls from the theory, per agent
    pa_all = np.array([s.pa(k) for s in scored_f for k in s.actions])
    true_all = np.array([s.true(k) for s in scored_f for k in s.actions])
    agents_all = np.array([s.record["messages"][k]["name"] for s in scored_f for k in s.actions])
    gap = {"all": _gap(pa_all, true_all)}
    for agent in AGENTS:
        gap[agent] = _gap(pa_all[agents_all == agent], true_all[agents_all == agent])

    # the same judges on failures from another seed, scored only once the pair was committed
    heldout = read_jsonl(data_dir / "failures_heldout.jsonl")
    scored_h = [x for x in score_sets(heldout, pairs) if not x.record["lucky_failure"]]
    h_held = hits(scored_h)
    rows_heldout = {name: {k: (float(v.mean()), bootstrap_ci(v)) for k, v in d.items()} for name, d in h_held.items()}
    diffs_heldout = {
        name: {k: (float((h_held[pa_name][k] - h_held[name][k]).mean()), bootstrap_ci(h_held[pa_name][k] - h_held[name][k])) for k in ("step", "agent")}
        for name in h_held
        if name != pa_name and not name.startswith("oracle")
    }

    # success prediction on the mixed set
    scored_m = score_sets(mixed, pairs)
    y = np.array([s.record["success"] for s in scored_m], dtype=int)
    run_scores = {
        "progress advantage, sum over the run (trained pair)": np.array([sum(s.pa(k) for k in s.actions) for s in scored_m]),
        "oracle: sum of exact A*": np.array([sum(s.true(k) for k in s.actions) for s in scored_m]),
        "policy log-prob, sum over the run": np.array([sum(s.logp.values()) for s in scored_m]),
        "reference log-prob, sum over the run": np.array([sum(s.ref_logp.values()) for s in scored_m]),
    }
    auroc = {name: _auroc_ci(y, sc) for name, sc in run_scores.items()}

    example = pick_example(scored_f)
    if example_out is not None and example is not None:
        Path(example_out).parent.mkdir(parents=True, exist_ok=True)
        Path(example_out).write_text(json.dumps(example, indent=1, ensure_ascii=False) + "\n")

    _plot_curve(training, rows, out_png)
    summary = {
        "rows": rows,
        "diffs": diffs,
        "by_agent": by_agent,
        "gap": gap,
        "auroc": auroc,
        "n_failures": len(failures),
        "n_lucky": len(failures) - len(judged),
        "n_judged": len(judged),
        "n_mixed": len(mixed),
        "rows_heldout": rows_heldout,
        "diffs_heldout": diffs_heldout,
        "n_heldout": len(heldout),
        "n_heldout_judged": len(scored_h),
        "n_mixed_success": int(y.sum()),
        "example": example["id"] if example else None,
        "example_verdict": next(
            ({"named": _culprit(x, Scored.pa), "label": x.record["mistake_step"]} for x in scored_f if example and x.record is example), None
        ),
        "seconds": time.time() - t0,
    }
    Path(out_md).parent.mkdir(parents=True, exist_ok=True)
    Path(out_md).write_text(_markdown(summary, training, beta, command, Path(out_png).name))
    return summary


def _summary(s: dict) -> list[str]:
    pa = s["rows"]["progress advantage (trained pair)"]
    beats = [n for n, d in s["diffs"].items() if d["step"][1][0] > 0]
    ties = [n for n, d in s["diffs"].items() if d["step"][1][0] <= 0]
    lines = [
        f"- Progress advantage from the trained pair names the decisive step in {pa['step'][0]:.1%} of the "
        f"{s['n_judged']} failures and its agent in {pa['agent'][0]:.1%} (exact tabular A*: 100% by construction).",
        "- At the 95% level (paired bootstrap, step accuracy) it beats: " + ("; ".join(beats) if beats else "none") + ".",
    ]
    if ties:
        lines.append(
            "- It does **not** beat: "
            + "; ".join(f"{n} (difference {s['diffs'][n]['step'][0]:+.3f}, interval [{s['diffs'][n]['step'][1][0]:.3f}, "
                        f"{s['diffs'][n]['step'][1][1]:.3f}])" for n in ties)
            + "."
        )
    held_pa = s["rows_heldout"]["progress advantage (trained pair)"]
    held_beats = [n for n, d in s["diffs_heldout"].items() if d["step"][1][0] > 0]
    held_ties = [n for n, d in s["diffs_heldout"].items() if d["step"][1][0] <= 0]
    lines.append(
        f"- On the held-out failures (another seed, scored once after the pair was committed): step accuracy "
        f"{held_pa['step'][0]:.1%}, agent {held_pa['agent'][0]:.1%}; it beats: " + ("; ".join(held_beats) or "none")
        + (("; it does **not** beat: " + "; ".join(held_ties)) if held_ties else "") + "."
    )
    g = s["gap"]["all"]
    lines.append(
        f"- Against the theory: per step, the trained beta*log pi/pi_ref correlates with the exact A* at r = {g['pearson']:.3f} "
        f"(mean absolute error {g['mae']:.3f}; the exact A* of these steps lies in [{g['true_min']:.2f}, {g['true_max']:.2f}])."
    )
    return lines


def _gap(pa: np.ndarray, true: np.ndarray) -> dict[str, float]:
    slope = float(np.polyfit(true, pa, 1)[0]) if true.std() > 0 else float("nan")
    return {
        "n": int(len(pa)),
        "pearson": float(np.corrcoef(pa, true)[0, 1]) if pa.std() > 0 and true.std() > 0 else float("nan"),
        "mae": float(np.mean(np.abs(pa - true))),
        "slope": slope,
        "true_min": float(true.min()),
        "true_max": float(true.max()),
    }


def _plot_curve(training: dict, rows: dict, out_png: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = training["curve"]
    steps = [c["rl_step"] for c in curve]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    ax.plot(steps, [c["step_accuracy"] for c in curve], "o-", label="progress advantage, step")
    ax.plot(steps, [c["agent_accuracy"] for c in curve], "s--", label="progress advantage, agent")
    ax.axhline(1.0, color="k", lw=0.8, ls=":", label="oracle A* (step)")
    for name, style in (
        ("policy log-prob, mean per token", "C2"),
        ("policy log-prob, sum", "C4"),
        ("reference log-prob, sum", "C3"),
        ("random step", "C7"),
    ):
        ax.axhline(rows[name]["step"][0], color=style, lw=1, ls="-.", label=f"{name} (step, final pair)")
    ax.set_xlabel("RL steps (64 runs each)")
    ax.set_ylabel("accuracy on labelled failures")
    ax.set_ylim(0, 1.05)
    ax.set_title("Attribution accuracy vs RL training (controlled world)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png)
    plt.close(fig)


def _markdown(s: dict, training: dict, beta: float, command: str, png: str) -> str:
    cfg = training["config"]
    lines = [
        "# Controlled world: attribution results",
        "",
        f"Regenerate with `{command}` (after `attribution world generate` and `attribution world train`,",
        "which rebuild `datasets/world/` and the committed pair). Everything is seeded; scoring uses the",
        "package's `Scorer` and the most-negative ranker, as `attribution diagnose` does.",
        "",
        f"World: planner -> worker (tool call) -> api (flaky tool) -> verifier; beta = {beta}.",
        f"Pair: GPT-2 of {training['parameters']:,} parameters; SFT {cfg['sft_steps']} steps x {cfg['sft_batch']} runs of the",
        f"reference agents, then REINFORCE with a KL penalty to the reference (beta = {cfg['beta']}) for {cfg['rl_steps']}",
        f"steps x {cfg['rl_batch']} runs (exploring starts {cfg['explore_fraction']}). Training took {training['wall_seconds']['total']:.0f} s",
        "wall time (SFT " + f"{training['wall_seconds']['sft']:.0f} s) on 1 torch thread of a 2-core CPU that other jobs were",
        "using at the same time (so an idle machine is faster).",
        "",
        f"Exact success probability: reference agents {training['success_reference_tabular']:.3f}, soft-optimal agents",
        f"{training['success_optimal_tabular']:.3f}.",
        "",
        "## Summary",
        "",
        *_summary(s),
        "",
        f"## Which step, which agent ({s['n_judged']} failed runs; {s['n_lucky']} lucky failures of {s['n_failures']} left out)",
        "",
        "Accuracy with bootstrap 95% intervals over runs (2000 resamples, seed 0).",
        "",
        "| judge | step accuracy | agent accuracy |",
        "|---|---|---|",
    ]
    for name, r in s["rows"].items():
        lines.append(f"| {name} | {_fmt(*r['step'])} | {_fmt(*r['agent'])} |")
    lines += [
        "",
        "The oracle is the label's own definition (the step with the most negative exact A*), so its step",
        "accuracy is 1 by construction; it checks the pipeline and marks the ceiling.",
        "",
        "Progress advantage minus each judge (paired bootstrap 95% interval; an interval above 0 means it",
        "beats that judge at the 95% level):",
        "",
        "| versus | step accuracy difference | agent accuracy difference |",
        "|---|---|---|",
    ]
    for name, d in s["diffs"].items():
        lines.append(f"| {name} | {_fmt(*d['step'])} | {_fmt(*d['agent'])} |")
    lines += ["", "Step accuracy by the agent at fault:", "", "| judge | " + " | ".join(f"{a} (n={s['by_agent'][a]['n']})" for a in AGENTS) + " |", "|---|" + "---|" * len(AGENTS)]
    for name in s["rows"]:
        lines.append(f"| {name} | " + " | ".join(f"{s['by_agent'][a][name]:.3f}" for a in AGENTS) + " |")
    lines += [
        "",
        f"### Held-out check ({s['n_heldout_judged']} failed runs of `failures_heldout.jsonl`, another seed)",
        "",
        "The training recipe (exploring starts, the on-trie term, the SFT length, the wording of the tasks) was",
        "developed while watching progress advantage's accuracy on `failures.jsonl`, so that set is not held out.",
        "These failures were generated and scored only after the pair was committed.",
        "",
        "| judge | step accuracy | agent accuracy | PA minus judge, step (paired 95% interval) |",
        "|---|---|---|---|",
    ]
    for name, r in s["rows_heldout"].items():
        d = s["diffs_heldout"].get(name)
        lines.append(f"| {name} | {_fmt(*r['step'])} | {_fmt(*r['agent'])} | {_fmt(*d['step']) if d else '-'} |")
    if s.get("example_verdict"):
        v = s["example_verdict"]
        lines += [
            "",
            f"The README's example run (`examples/world_failed_run.json`, `{s['example']}`) is drawn by a fixed rule: the",
            "first failure of `failures.jsonl`, in file order, that is not a lucky failure, whatever the verdict. On it",
            f"progress advantage names step {v['named']}; the label is step {v['label']}"
            + (" (right)." if v["named"] == v["label"] else " (wrong)."),
        ]
    lines += [
        "",
        "## How far the trained pair is from the theory",
        "",
        "Per action step of all labelled failures: beta*log pi/pi_ref from the trained pair against the exact A*.",
        "",
        "| steps | n | Pearson r | mean abs. error | slope (PA on A*) |",
        "|---|---|---|---|---|",
    ]
    for name, g in s["gap"].items():
        lines.append(f"| {name} | {g['n']} | {g['pearson']:.3f} | {g['mae']:.3f} | {g['slope']:.3f} |")
    lines += [
        "",
        "## Accuracy against RL training steps",
        "",
        f"![accuracy vs RL steps]({png})",
        "",
        "| RL step | step accuracy | agent accuracy | Pearson r (PA, A*) | mean abs. error |",
        "|---|---|---|---|---|",
    ]
    for c in training["curve"]:
        lines.append(f"| {c['rl_step']} | {c['step_accuracy']:.3f} | {c['agent_accuracy']:.3f} | {c['pearson_pa_true']:.3f} | {c['mae_pa_true']:.3f} |")
    lines += [
        "",
        "At RL step 0 the policy is the reference, every score is 0 and the ranker's tie-break names the",
        "first action step.",
        "",
        f"## Predicting success ({s['n_mixed']} runs, {s['n_mixed_success']} successes)",
        "",
        "AUROC (scikit-learn `roc_auc_score`) of the run-level score, bootstrap 95% interval.",
        "",
        "| run-level score | AUROC |",
        "|---|---|",
    ]
    for name, (a, lo, hi) in s["auroc"].items():
        lines.append(f"| {name} | {_fmt(a, (lo, hi))} |")
    lines += [
        "",
        "In a stochastic world the summed log-ratio is R - V*(s0) plus the environment's surprises",
        "(sum_t E[r_t + V*(s')] - r_t - V*(s_t+1)), so even the oracle sum does not separate successes perfectly.",
        "",
        f"Scoring and this report took {s['seconds']:.0f} s.",
        "",
    ]
    return "\n".join(lines)
