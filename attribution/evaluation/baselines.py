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
``longest action step``   the candidate step with the most scored tokens (earliest on a tie): the
                          structural floor of an aggregation that favours long steps (``sum``)
``null pair``             the attribution itself, run with two independently initialised models of
                          the evaluated pair's architecture and tokenizer (fixed seeds
                          :data:`NULL_SEEDS`, no training) and chosen through the same
                          cross-validated selection: what the method scores from the run's shape
                          and the rendering alone, with no signal from RL
``policy log-prob``       the step whose tokens the policy found least likely (aggregated
                          ``log pi``, lowest first)
``reference log-prob``    the same under the reference (``log pi_ref``)
``policy entropy``        the step where the policy was least certain: highest aggregated
                          predictive entropy ``H(pi(. | ctx))`` at its tokens (the entropy comes
                          from ``Scorer(entropy=True)``, from the same forward pass)
========================  ==========================================================================

The token -> step aggregation of the score baselines is ``"mean"`` by default (a length-free
per-token figure); it is a setting of :func:`attribution.evaluate` and is recorded in the report.
Random baselines are expectations, not draws: no seed, no sampling noise. ``evaluate``
reports, per subset, the paired bootstrap difference of the attribution against the two
structural floors (longest action step, null pair) on the same resamples of runs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal, Sequence

from attribution.evaluation.metrics import TOLERANCES, Prediction
from attribution.rank import AGGREGATIONS, rank
from attribution.types import Run, StepScore

__all__ = [
    "RANDOM_ACTION",
    "RANDOM_ALL",
    "FIRST",
    "LAST",
    "LONGEST",
    "NULL_PAIR",
    "NULL_SEEDS",
    "longest_action",
    "null_scorer",
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
LONGEST = "longest action step"
NULL_PAIR = "null pair"
#: Seeds of the null pair's policy and reference initialisation.
NULL_SEEDS = (1234, 4321)
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


def longest_action(run: Run, steps: Sequence[StepScore]) -> Prediction:
    """The candidate step with the most scored tokens (earliest on a tie); ranking by length."""
    length = {s.index: len(s.logps) for s in steps}
    order = sorted(candidate_steps(run), key=lambda i: (-length.get(i, 0), i))
    return Prediction(order[0], run.steps[order[0]].agent, order[:5])


def _null_checkpoint(side: Any, seed: int) -> Any:
    """A randomly initialised copy of ``side``'s architecture (fixed seed), sharing its tokenizer."""
    import hashlib
    import json

    import torch
    from transformers import AutoModelForCausalLM

    from attribution.score.pairs import Checkpoint

    config = side.model.config
    devices = {p.device for p in side.model.parameters()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, side.dtype))
    model = model.to(next(iter(devices))).eval()
    null = Checkpoint(f"null({side.name}, seed {seed})", dtype=side.dtype, device=side.device)
    null._model, null._tokenizer = model, side.tokenizer
    arch = hashlib.sha256(json.dumps(config.to_diff_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]
    null._id = f"null:{type(model).__name__}@{arch}:seed{seed}"
    return null


def null_scorer(scorer: Any, seeds: tuple[int, int] = NULL_SEEDS) -> Any:
    """A :class:`~attribution.score.Scorer` like ``scorer`` whose every pair is a null pair.

    Each pair becomes (policy, reference) = two models of its policy's architecture,
    initialised from ``seeds`` with no training, with the pair's tokenizer and beta; agents
    map to pairs as before, and window, rendering and batching are the same.
    """
    from attribution.score import CheckpointPair, PairConfig, Scorer

    pairs = {}
    for name, pair in scorer.pairs.pairs.items():
        tok = pair.tokenizer  # checks that the pair shares one tokenizer
        pol, ref = _null_checkpoint(pair.policy, seeds[0]), _null_checkpoint(pair.policy, seeds[1])
        pol._tokenizer = ref._tokenizer = tok
        pairs[name] = CheckpointPair(pol, ref, pair.beta, name)
    config = PairConfig(pairs, list(scorer.pairs.agents), scorer.pairs.default, scorer.pairs.source)
    return Scorer(
        config, window=scorer.window, min_context=scorer.min_context, chat_template=scorer.chat_template,
        max_batch_tokens=scorer.max_batch_tokens, chunk=scorer.chunk, entropy=True,
    )


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
