"""Baselines, computed from the same forward passes as the attribution (or from the run alone).

========================  ==========================================================================
name                      prediction
========================  ==========================================================================
``random (action steps)`` analytic expectation of a step drawn uniformly from the steps the ranker
                          may choose: action steps with text (:func:`candidate_steps`)
``random (all steps)``    analytic expectation of a step drawn uniformly from every history step, as
                          the Who&When papers report their random baseline (an observation step's
                          "agent" is its speaker, e.g. ``Computer_terminal``)
``first action step``     the first candidate step
``last action step``      the last candidate step
``policy log-prob``       the step whose tokens the policy found least likely (aggregated
                          ``log pi``, lowest first)
``reference log-prob``    the same under the reference (``log pi_ref``)
``policy entropy``        the step where the policy was least certain: highest aggregated
                          predictive entropy ``H(pi(. | ctx))`` at its tokens (the entropy comes
                          from ``Scorer(entropy=True)``, from the same forward pass)
========================  ==========================================================================

The token -> step aggregation of the score baselines is ``"mean"`` by default (a length-free
per-token figure); it is a setting of :func:`attribution.evaluate` and is recorded in the report.
Random baselines are expectations, not draws: no seed, no sampling noise.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, Sequence

from attribution.evaluation.metrics import TOLERANCES, Prediction
from attribution.rank import AGGREGATIONS, rank
from attribution.types import Run, StepScore

__all__ = [
    "RANDOM_ACTION",
    "RANDOM_ALL",
    "FIRST",
    "LAST",
    "POLICY_LOGP",
    "REFERENCE_LOGP",
    "POLICY_ENTROPY",
    "SCORE_BASELINES",
    "candidate_steps",
    "random_expectation",
    "first_action",
    "last_action",
    "ranked_prediction",
    "score_baseline",
]

RANDOM_ACTION = "random (action steps)"
RANDOM_ALL = "random (all steps)"
FIRST = "first action step"
LAST = "last action step"
POLICY_LOGP = "policy log-prob"
REFERENCE_LOGP = "reference log-prob"
POLICY_ENTROPY = "policy entropy"
#: Baselines that need the scores, in report order.
SCORE_BASELINES = (POLICY_LOGP, REFERENCE_LOGP, POLICY_ENTROPY)


def candidate_steps(run: Run) -> list[int]:
    """The steps a ranker may flag: action steps with text (they are the ones with scored tokens)."""
    return [s.index for s in run.steps if s.is_action and s.content]


def random_expectation(run: Run, *, over: Literal["action", "all"] = "action") -> dict[str, float]:
    """Expected per-run metric values of a uniformly random pick among the candidate steps.

    Examples
    --------
    >>> from attribution.types import Step
    >>> run = Run([Step(i, "a", "a", "action", "x") for i in range(4)], "r", mistake_step=1, mistake_agent="a")
    >>> random_expectation(run, over="all")["step_accuracy_score"]
    0.25
    """
    if over == "action":
        cands = candidate_steps(run)
    elif over == "all":
        cands = [s.index for s in run.steps]
    else:
        raise ValueError(f"The 'over' parameter of random_expectation must be 'action' or 'all'. Got {over!r} instead.")
    n = len(cands)
    out: dict[str, float] = {}
    if run.mistake_agent is not None:
        out["agent_accuracy_score"] = sum(run.steps[c].agent == run.mistake_agent for c in cands) / n
    g = run.mistake_step
    if g is not None:
        out["step_accuracy_score"] = float(g in cands) / n
        for k in TOLERANCES:
            out[f"step_within_{k}_score"] = sum(abs(c - g) <= k for c in cands) / n
        out["top3_hit_score"] = min(3, n) / n if g in cands else 0.0
        out["mean_absolute_step_error"] = sum(abs(c - g) for c in cands) / n
    return out


def first_action(run: Run) -> Prediction:
    cands = candidate_steps(run)
    return Prediction(cands[0], run.steps[cands[0]].agent, cands[:5])


def last_action(run: Run) -> Prediction:
    cands = candidate_steps(run)[::-1]
    return Prediction(cands[0], run.steps[cands[0]].agent, cands[:5])


def ranked_prediction(run: Run, scored: Sequence[StepScore], ranker: str = "most-negative", top: int = 5) -> Prediction:
    """The ranker's pick among steps with ``score`` set; ``run_score`` is the pick's ranking key."""
    order = rank(scored, ranker)
    step, key = order[0]
    return Prediction(step, run.steps[step].agent, [i for i, _ in order[:top]], float(key))


def score_baseline(
    run: Run, steps: Sequence[StepScore], entropies: dict[int, list[float]], name: str, *, aggregate: str = "mean"
) -> Prediction:
    """The prediction of one of :data:`SCORE_BASELINES` from a run's cached scores."""
    agg = AGGREGATIONS[aggregate]
    if name == POLICY_LOGP:
        key = lambda s: agg(s.logps)  # noqa: E731
    elif name == REFERENCE_LOGP:
        key = lambda s: agg(s.ref_logps)  # noqa: E731
    elif name == POLICY_ENTROPY:
        key = lambda s: -agg(entropies[s.index])  # noqa: E731  (most uncertain = most negative)
    else:
        raise ValueError(f"Unknown score baseline {name!r}; known: {', '.join(SCORE_BASELINES)}")
    scored = [replace(s, score=key(s) if s.logps else None) for s in steps]
    return ranked_prediction(run, scored)
