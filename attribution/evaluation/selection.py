"""Honest selection of the aggregation x ranker setting.

Once a run's scores are cached every setting is cheap, so it is tempting to report the best
one; that number is chosen on the test data and is optimistic. Here the setting is chosen by
k-fold cross-validation: runs are split into ``k`` folds (stratified by subset and by whether
the run has a step label, shuffled with a fixed seed); each fold's runs are predicted with the
setting that scores best on the *other* folds. Every run thus gets a held-out prediction, and
the metrics over those are an honest estimate of "choose the setting on data like this, then
use it". The best setting on all the data is still reported, flagged as in-sample.

Run scores (the success AUROC's input) of different settings are on different scales (a sum
of log-ratios against a mean, a running total against a drop), so the held-out predictions'
run scores are **rank-normalised within each fold** (to ``(rank - 0.5) / n``, ties averaged)
before they are pooled over folds: the pooled AUROC then compares runs by their place within
their own fold, never a ``sum`` score of one fold against a ``mean`` score of another.

The criterion, on the training folds: step accuracy, then agent accuracy, then the lower mean
absolute step error; remaining ties go to the earlier setting of the grid (``sum`` /
``most-negative`` first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from attribution.errors import ConfigError
from attribution.evaluation.metrics import Prediction
from attribution.rank import AGGREGATIONS, RANKERS

__all__ = ["SELECT", "Setting", "settings_grid", "assign_folds", "criterion", "best_setting", "Selection", "cross_validate"]

SELECT = "select"
Setting = tuple[str, str]  # (aggregate, ranker)


def settings_grid(aggregate: str = SELECT, ranker: str = SELECT) -> list[Setting]:
    """The settings to choose among: every aggregation x ranker, or only the fixed one(s)."""
    aggs = list(AGGREGATIONS) if aggregate == SELECT else [aggregate]
    rankers = list(RANKERS) if ranker == SELECT else [ranker]
    return [(a, r) for a in aggs for r in rankers]


def assign_folds(strata: Sequence[Any], k: int, seed: int) -> list[int]:
    """A fold id in ``range(k)`` per item, balanced within each stratum, shuffled with ``seed``."""
    if k < 2:
        raise ValueError(f"The 'k' parameter of assign_folds must be at least 2. Got {k} instead.")
    rng = np.random.default_rng(seed)
    folds = [0] * len(strata)
    by: dict[Any, list[int]] = {}
    for i, s in enumerate(strata):
        by.setdefault(s, []).append(i)
    offset = 0
    for s in sorted(by, key=repr):
        for j, i in enumerate(rng.permutation(by[s]).tolist()):
            folds[i] = (offset + j) % k
        offset += len(by[s])
    return folds


def criterion(runs: Sequence[Any], preds: Sequence[Prediction]) -> tuple[float, float, float]:
    """(step accuracy, agent accuracy, -mean absolute step error) over the labelled runs; higher is better."""
    step = [(r.mistake_step, p.step) for r, p in zip(runs, preds) if r.mistake_step is not None]
    agent = [(r.mistake_agent, p.agent) for r, p in zip(runs, preds) if r.mistake_agent is not None]
    acc = float(np.mean([g == q for g, q in step])) if step else 0.0
    agent_acc = float(np.mean([g == q for g, q in agent])) if agent else 0.0
    mae = float(np.mean([abs(g - q) for g, q in step])) if step else 0.0
    return acc, agent_acc, -mae


def best_setting(runs: Sequence[Any], table: dict[Setting, list[Prediction]], idx: Sequence[int]) -> Setting:
    """The setting of ``table`` (setting -> one prediction per run) that does best on runs ``idx``."""
    order = list(table)
    sub = [runs[i] for i in idx]

    def key(s: Setting):
        return (*criterion(sub, [table[s][i] for i in idx]), -order.index(s))

    return max(order, key=key)


@dataclass
class Selection:
    """Held-out predictions from cross-validated selection, and what was chosen where."""

    folds: int
    seed: int
    fold_of: list[int]
    chosen: list[Setting]  # per fold
    predictions: list[Prediction]  # per run, from the setting chosen without its fold
    in_sample: Setting  # best on all runs: optimistic when reported
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": f"{self.folds}-fold cross-validation",
            "folds": self.folds,
            "seed": self.seed,
            "criterion": "step accuracy, then agent accuracy, then lower mean absolute step error",
            "chosen_per_fold": [{"fold": f, "aggregate": a, "ranker": r} for f, (a, r) in enumerate(self.chosen)],
            "chosen_counts": self.counts,
            "in_sample_best": {"aggregate": self.in_sample[0], "ranker": self.in_sample[1]},
        }


def _rank_normalise_within_folds(preds: list[Any], fold_of: Sequence[int], k: int) -> None:
    """Replace each held-out run score by its ``(rank - 0.5) / n`` within its fold (in place, on copies)."""
    from dataclasses import replace

    from scipy.stats import rankdata

    for f in range(k):
        idx = [i for i, g in enumerate(fold_of) if g == f and preds[i].run_score is not None]
        if not idx:
            continue
        ranks = rankdata([preds[i].run_score for i in idx])  # average ranks for ties
        for i, r in zip(idx, ranks):
            preds[i] = replace(preds[i], run_score=float((r - 0.5) / len(idx)))


def cross_validate(
    runs: Sequence[Any], table: dict[Setting, list[Prediction]], *, folds: int = 5, seed: int = 0, strata: Sequence[Any] | None = None
) -> Selection:
    """Choose a setting per fold on the other folds; return each run's held-out prediction.

    Raises
    ------
    ConfigError
        With fewer than two step-labelled runs (nothing to hold out).
    """
    labelled = sum(r.mistake_step is not None for r in runs)
    if labelled < 2:
        raise ConfigError(
            f"choosing the aggregation and ranker needs at least 2 runs with a mistake_step; got {labelled}. "
            "Fix them with --aggregate and --ranker."
        )
    k = min(folds, labelled)
    if k < 2:
        raise ConfigError(f"The 'folds' parameter must be at least 2. Got {folds} instead.")
    strata = list(strata) if strata is not None else [""] * len(runs)
    fold_of = assign_folds([(s, r.mistake_step is not None) for s, r in zip(strata, runs)], k, seed)
    chosen, preds = [], [None] * len(runs)
    for f in range(k):
        train = [i for i, g in enumerate(fold_of) if g != f]
        setting = best_setting(runs, table, train)
        chosen.append(setting)
        for i, g in enumerate(fold_of):
            if g == f:
                preds[i] = table[setting][i]
    _rank_normalise_within_folds(preds, fold_of, k)
    counts: dict[str, int] = {}
    for a, r in chosen:
        counts[f"{a}/{r}"] = counts.get(f"{a}/{r}", 0) + 1
    return Selection(k, seed, fold_of, chosen, preds, best_setting(runs, table, range(len(runs))), counts)
