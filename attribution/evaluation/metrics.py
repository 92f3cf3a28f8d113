"""Attribution metrics, with bootstrap 95% intervals.

Names follow scikit-learn: ``*_score`` is higher-better, ``*_error`` lower-better; signatures
are ``metric(y_true, y_pred, *, ...)``. Point estimates use scikit-learn where it has the
metric (accuracy, mean absolute error, ROC AUC). The step match is an exact integer match:
gold 1 never matches a prediction of 10 (the Who&When reference evaluator matched substrings).

Intervals resample runs with replacement (``n_boot`` resamples from a fixed ``seed``; the same
resamples for every method of a subset, so methods are compared on the same draws) and take
the 2.5th and 97.5th percentiles. Every metric but the AUROC is a mean of per-run values, so
its resamples are computed from those values; the AUROC's from its rank form (Mann-Whitney),
which equals scikit-learn's ``roc_auc_score`` for binary labels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from numbers import Integral
from typing import Any, Sequence

import numpy as np

__all__ = [
    "TOLERANCES",
    "METRICS",
    "Metric",
    "Prediction",
    "agent_accuracy_score",
    "step_accuracy_score",
    "step_within_k_score",
    "top_k_hit_score",
    "mean_absolute_step_error",
    "success_auroc_score",
    "bootstrap_indices",
    "bootstrap_mean_ci",
    "bootstrap_auroc_ci",
    "paired_difference",
    "prediction_values",
    "summarize",
]

#: Tolerances k of the step-within-k accuracies.
TOLERANCES = (1, 2, 3, 4, 5)
#: Reported metrics, in table order.
METRICS = (
    "agent_accuracy_score",
    "step_accuracy_score",
    *(f"step_within_{k}_score" for k in TOLERANCES),
    "top3_hit_score",
    "mean_absolute_step_error",
    "success_auroc_score",
)


@dataclass
class Metric:
    """A point estimate with its bootstrap 95% interval over ``n`` runs (None where undefined)."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Prediction:
    """What one method says about one run: the flagged step, its agent, the ranking, a run score.

    ``run_score`` is higher for a run that looks healthier (used for the success AUROC);
    None for methods without one.
    """

    step: int
    agent: str
    ranking: list[int] = field(default_factory=list)
    run_score: float | None = None


def _check_steps(values: Sequence[Any], name: str) -> list[int]:
    for v in values:
        if not isinstance(v, Integral) or isinstance(v, bool):
            raise ValueError(f"The {name!r} parameter must hold integer step indices. Got {v!r} instead.")
    return [int(v) for v in values]


def agent_accuracy_score(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Share of runs whose predicted agent equals the gold agent (exact string match)."""
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(list(y_true), list(y_pred)))


def step_accuracy_score(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Share of runs whose predicted step equals the gold step, by exact integer match.

    Examples
    --------
    >>> step_accuracy_score([1, 4], [10, 4])
    0.5
    """
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(_check_steps(y_true, "y_true"), _check_steps(y_pred, "y_pred")))


def step_within_k_score(y_true: Sequence[int], y_pred: Sequence[int], *, k: int) -> float:
    """Share of runs whose predicted step lies within ``k`` steps of the gold step."""
    d = np.abs(np.asarray(_check_steps(y_true, "y_true")) - np.asarray(_check_steps(y_pred, "y_pred")))
    return float(np.mean(d <= k))


def top_k_hit_score(y_true: Sequence[int], rankings: Sequence[Sequence[int]], *, k: int = 3) -> float:
    """Share of runs whose gold step is among the first ``k`` steps of the ranking."""
    gold = _check_steps(y_true, "y_true")
    return float(np.mean([g in list(r)[:k] for g, r in zip(gold, rankings)]))


def mean_absolute_step_error(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Mean of ``|predicted step - gold step|``, in steps."""
    from sklearn.metrics import mean_absolute_error

    return float(mean_absolute_error(_check_steps(y_true, "y_true"), _check_steps(y_pred, "y_pred")))


def success_auroc_score(y_true: Sequence[bool], run_scores: Sequence[float]) -> float:
    """ROC AUC of the run score for success (1 = the run succeeded); needs both outcomes."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score([int(v) for v in y_true], list(run_scores)))


# -- bootstrap ------------------------------------------------------------------------------
def bootstrap_indices(n: int, *, n_boot: int, seed: int) -> np.ndarray:
    """``[n_boot, n]`` resampled run positions; the same for the same ``(n, n_boot, seed)``."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _percentiles(values: np.ndarray, level: float) -> tuple[float | None, float | None]:
    if values.size == 0:
        return None, None
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_mean_ci(values: Sequence[float], *, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile interval of the mean of ``values`` over run resamples."""
    v = np.asarray(values, dtype=float)
    if v.size == 0 or n_boot < 1:
        return None, None
    return _percentiles(v[bootstrap_indices(v.size, n_boot=n_boot, seed=seed)].mean(axis=1), level)


def paired_difference(a: Sequence[float], b: Sequence[float], *, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> Metric:
    """Mean of ``a - b`` over runs (two methods' per-run values, paired), with its bootstrap interval.

    The resamples are :func:`bootstrap_indices` of the runs, the same draws as every interval of
    the subset, so the difference's interval accounts for the two methods' correlation.

    Examples
    --------
    >>> paired_difference([1, 1, 0, 1], [0, 1, 0, 0], n_boot=0).value
    0.5
    """
    x = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if x.size == 0:
        return Metric(None)
    low, high = bootstrap_mean_ci(x, n_boot=n_boot, seed=seed, level=level)
    return Metric(float(x.mean()), low, high, int(x.size))


def bootstrap_auroc_ci(
    y_true: Sequence[bool], run_scores: Sequence[float], *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float | None, float | None]:
    """Percentile interval of the ROC AUC over run resamples (resamples with one outcome skipped)."""
    from scipy.stats import rankdata

    y = np.asarray([int(v) for v in y_true])
    s = np.asarray(run_scores, dtype=float)
    if y.size == 0 or n_boot < 1:
        return None, None
    idx = bootstrap_indices(y.size, n_boot=n_boot, seed=seed)
    ys, ranks = y[idx], rankdata(s[idx], axis=1)  # average ranks for ties, as roc_auc_score
    n1 = ys.sum(axis=1)
    n0 = y.size - n1
    ok = (n1 > 0) & (n0 > 0)
    auc = ((ranks * ys).sum(axis=1)[ok] - n1[ok] * (n1[ok] + 1) / 2) / (n1[ok] * n0[ok])
    return _percentiles(auc, level)


# -- per-run values and summaries -------------------------------------------------------------
def prediction_values(gold_step: int | None, gold_agent: str | None, pred: Prediction) -> dict[str, float]:
    """The per-run value of each mean-type metric for one prediction (absent where no label)."""
    out: dict[str, float] = {}
    if gold_agent is not None:
        out["agent_accuracy_score"] = float(pred.agent == gold_agent)
    if gold_step is not None:
        d = abs(pred.step - gold_step)
        out["step_accuracy_score"] = float(pred.step == gold_step)
        for k in TOLERANCES:
            out[f"step_within_{k}_score"] = float(d <= k)
        out["top3_hit_score"] = float(gold_step in pred.ranking[:3])
        out["mean_absolute_step_error"] = float(d)
    return out


def summarize(
    runs: Sequence[Any],
    *,
    predictions: Sequence[Prediction] | None = None,
    expected: Sequence[dict[str, float]] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Metric]:
    """Every metric of :data:`METRICS` for one method over ``runs``.

    Give ``predictions`` (one per run) for a method that names a step, or ``expected`` (one
    dict of per-run expected metric values per run, see
    :func:`attribution.evaluation.baselines.random_expectation`) for an analytic baseline.
    """
    if (predictions is None) == (expected is None):
        raise ValueError("give exactly one of predictions and expected")
    per_run = (
        [prediction_values(r.mistake_step, r.mistake_agent, p) for r, p in zip(runs, predictions)]
        if predictions is not None
        else list(expected)
    )
    out: dict[str, Metric] = {}
    for name in METRICS:
        if name == "success_auroc_score":
            continue
        vals = [v[name] for v in per_run if name in v]
        low, high = bootstrap_mean_ci(vals, n_boot=n_boot, seed=seed)
        out[name] = Metric(float(np.mean(vals)) if vals else None, low, high, len(vals))
    if predictions is not None:
        with_step = [(r, p) for r, p in zip(runs, predictions) if r.mistake_step is not None]
        with_agent = [(r, p) for r, p in zip(runs, predictions) if r.mistake_agent is not None]
        if with_agent:  # the point estimates from scikit-learn; the means above are the same numbers
            out["agent_accuracy_score"].value = agent_accuracy_score([r.mistake_agent for r, _ in with_agent], [p.agent for _, p in with_agent])
        if with_step:
            gold, pred = [r.mistake_step for r, _ in with_step], [p.step for _, p in with_step]
            out["step_accuracy_score"].value = step_accuracy_score(gold, pred)
            out["mean_absolute_step_error"].value = mean_absolute_step_error(gold, pred)
    out["success_auroc_score"] = _auroc(runs, predictions, n_boot=n_boot, seed=seed)
    return out


def _auroc(runs: Sequence[Any], predictions: Sequence[Prediction] | None, *, n_boot: int, seed: int) -> Metric:
    if predictions is None:
        return Metric(None)
    pairs = [(r.success, p.run_score) for r, p in zip(runs, predictions) if r.success is not None and p.run_score is not None]
    y = [bool(a) for a, _ in pairs]
    if len(set(y)) < 2:  # one outcome only (Who&When holds failures only): undefined
        return Metric(None, n=len(pairs))
    s = [b for _, b in pairs]
    low, high = bootstrap_auroc_ci(y, s, n_boot=n_boot, seed=seed)
    return Metric(success_auroc_score(y, s), low, high, len(pairs))
