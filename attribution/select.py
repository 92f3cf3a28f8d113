"""Best-of-N: rank candidate runs of one task by their run-level progress advantage.

The run score aggregates step scores, each step score being the sum over the step's tokens of
``beta * log pi/pi_ref`` (the action's whole log-ratio). Run-level aggregations (``by``):

* ``sum`` (default): the sum of the action steps' scores. For a KL-regularised policy the step
  score estimates the optimal advantage ``A(s_t, a_t) = Q(s_t, a_t) - V(s_t)``, and in a
  deterministic environment these telescope: ``sum_t A(s_t, a_t) = R - V(s_0)`` (the return,
  minus the start state's value). ``V(s_0)`` is the same for every candidate of one task, so
  the sum ranks candidates by their return *whatever their number of steps*: a long run is not
  penalised for having more steps, nor a short one favoured. (With chance in the environment,
  the sum also carries the environment's surprises, which average out.) This is why the sum is
  the default, and why runs of different lengths are comparable under it.
* ``mean``: the sum divided by the number of scored steps. It favours runs whose steps are
  *on average* good; it is not a value difference, so a short run with one good step can beat a
  long successful one. Offered as a variant.
* ``min``: the worst step's score (the run is as good as its worst decision); length-free too,
  but blind to how many bad steps a run has.

A higher score means a healthier run; :func:`select_runs` returns the candidates best first.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from attribution.errors import ConfigError, InputError
from attribution.rank import aggregate as aggregate_steps
from attribution.types import Run, StepScore

__all__ = ["RUN_SCORES", "run_score", "task_text", "Candidate", "Selection", "select_runs"]

RUN_SCORES: dict[str, Callable[[list[float]], float]] = {
    "sum": sum,
    "mean": lambda xs: sum(xs) / len(xs),
    "min": min,
}


def run_score(steps: Sequence[StepScore], by: str = "sum") -> float:
    """The run-level progress advantage of scored steps (``score`` set, e.g. by
    :func:`attribution.rank.aggregate` with ``"sum"``); ``nan`` when no step is scored.

    Examples
    --------
    >>> s = [StepScore(0, "a", "action", score=-1.0), StepScore(1, "b", "observation"),
    ...      StepScore(2, "a", "action", score=0.5)]
    >>> run_score(s), run_score(s, "mean"), run_score(s, "min")
    (-0.5, -0.25, -1.0)
    """
    if by not in RUN_SCORES:
        raise ConfigError(f"The 'by' parameter must be one of {sorted(RUN_SCORES)}. Got {by!r} instead.")
    xs = [s.score for s in steps if s.score is not None]
    return RUN_SCORES[by](xs) if xs else float("nan")


@dataclass
class Candidate:
    """One ranked run: where it came from, its run score and its scored steps."""

    run: Run
    score: float
    steps: list[StepScore] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.run.source or self.run.run_id


@dataclass
class Selection:
    """The candidates best first, and the settings that ranked them."""

    ranking: list[Candidate]
    settings: dict[str, Any]
    checkpoints: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> Candidate:
        return self.ranking[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ranking": [{"run": c.name, "run_id": c.run.run_id, "score": c.score, "n_steps": len(c.run.steps)} for c in self.ranking],
            "settings": self.settings,
            "checkpoints": self.checkpoints,
        }


def task_text(run: Run) -> str | None:
    """The task a run works on: its ``question``, else its first user message (whitespace folded)."""
    text = run.question or next((s.content for s in run.steps if s.role == "user" and str(s.content).strip()), None)
    return " ".join(str(text).split()) if text is not None else None


def _warn_on_different_tasks(runs: Sequence[Run]) -> None:
    """One warning when the candidates are not runs of one task: their run scores differ by
    ``V(s_0)``, which is not the same across tasks, so the ranking compares nothing."""
    import warnings

    from attribution.errors import ParseWarning

    tasks: dict[str, Run] = {}
    for r in runs:
        text = task_text(r)
        if text is not None:
            tasks.setdefault(text, r)
    if len(tasks) > 1:
        (a, ra), (b, rb) = list(tasks.items())[:2]
        short = lambda t: repr(t if len(t) <= 60 else t[:59] + "…")  # noqa: E731
        warnings.warn(ParseWarning(
            f"the candidates are runs of {len(tasks)} different tasks (by the task text or first user message: "
            f"{ra.source or ra.run_id} has {short(a)}, {rb.source or rb.run_id} has {short(b)}); run scores of different "
            "tasks are not comparable, so the ranking may mean nothing"), stacklevel=2)


def select_runs(
    runs: Sequence[Run | str | os.PathLike],
    *,
    by: str = "sum",
    scorer: Any = None,
    policy: str | None = None,
    reference: str | None = None,
    beta: float | None = None,
    pairs: Any = None,
    format: str | None = None,
    allow_single: bool = False,
    allow_toy_pair: bool = False,
    **scoring: Any,
) -> Selection:
    """Rank candidate runs of one task by run-level progress advantage, best first.

    Parameters
    ----------
    runs : Runs or paths of logs (read with :func:`attribution.parse.load_run`)
    by : {"sum", "mean", "min"}, the run-level aggregation (module docstring); ties keep the
        candidates' order
    scorer, policy, reference, beta, pairs : the checkpoint pair(s), as for :func:`attribution.diagnose`
    format : force the log format
    allow_single : accept a single candidate (there is nothing to choose between otherwise)
    allow_toy_pair : let the embedded toy pair score runs outside its world (refused otherwise;
        ``settings["warnings"]`` then says so, :func:`attribution.score.domain.check_domain`)
    **scoring : ``window``, ``min_context``, ``chat_template``, ``dtype``, ``device``, ``progress``,
        ``pair`` (a named public pair, ``attribution pairs``)

    Returns
    -------
    Selection

    Raises
    ------
    ConfigError
        On fewer than two candidates, an unknown ``by``, or an agent no pair covers.
    InputError
        On a log that cannot be read or holds no action step.
    """
    from attribution.parse import load_run

    if by not in RUN_SCORES:
        raise ConfigError(f"The 'by' parameter must be one of {sorted(RUN_SCORES)}. Got {by!r} instead.")
    if not runs or (len(runs) < 2 and not allow_single):
        raise ConfigError(f"select needs at least two candidate runs to choose between. Got {len(runs)} instead.")
    loaded = [r if isinstance(r, Run) else load_run(r, format=format) for r in runs]
    for r in loaded:
        if not r.action_indices:
            raise InputError(r.source or r.run_id, "at least one action step (an agent's own output)")
    _warn_on_different_tasks(loaded)
    if scorer is None:
        from attribution.diagnoser import make_scorer

        scorer = make_scorer(policy=policy, reference=reference, beta=beta, pairs=pairs, **scoring)
    for r in loaded:  # an agent no pair covers is reported before any model loads
        scorer.assign(r)
    from attribution.score.domain import check_domain

    domain = check_domain(loaded, scorer, allow_toy_pair=allow_toy_pair)
    warnings = list(dict.fromkeys(f"{c.source or c.run_id}: {w}" for c, (lines, _) in zip(loaded, domain) for w in lines))
    cands = []
    for r, scored in zip(loaded, scorer.score_many(loaded)):
        steps = aggregate_steps(scored.steps, "sum")
        cands.append(Candidate(r, run_score(steps, by), steps))
    # A run with no scored token (nan) goes last; ties keep the candidates' order.
    order = sorted(range(len(cands)), key=lambda k: (math.isnan(cands[k].score), -cands[k].score if not math.isnan(cands[k].score) else 0.0, k))
    settings = {"by": by, "step_aggregate": "sum", **scorer.settings(), **({"warnings": warnings} if warnings else {})}
    return Selection([cands[k] for k in order], settings, scorer.checkpoints())
