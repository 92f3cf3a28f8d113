"""Rank: turn per-token log-ratios into step scores, and step scores into a culprit.

Aggregations (token -> step): ``sum`` (default), ``mean``, ``min``, ``last``.
Rankers (steps -> order, most suspicious first):

* ``most-negative`` (default): the step with the most negative score.
* ``lowest-total``: the step at which the running total of step scores (in log order) is lowest.
* ``sharpest-drop``: the step whose score fell most below the same agent's previous step.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import replace

from attribution.errors import ConfigError
from attribution.types import StepScore

__all__ = ["AGGREGATIONS", "RANKERS", "aggregate", "rank", "agent_totals"]

AGGREGATIONS: dict[str, Callable[[list[float]], float]] = {
    "sum": sum,
    "mean": lambda xs: sum(xs) / len(xs),
    "min": min,
    "last": lambda xs: xs[-1],
}


def _pick(name: str, table: dict, what: str):
    key = name.replace("_", "-")
    if key not in table:
        near = difflib.get_close_matches(key, table, n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise ConfigError(f"The {what!r} parameter must be one of {sorted(table)}. Got {name!r} instead.{hint}")
    return table[key]


def aggregate(steps: Sequence[StepScore], how: str = "sum") -> list[StepScore]:
    """Copies of ``steps`` with ``score`` set from their token log-ratios (None without tokens)."""
    fn = _pick(how, AGGREGATIONS, "aggregate")
    return [replace(s, score=fn(s.ratios) if s.logps else None) for s in steps]


def _scored(steps: Sequence[StepScore]) -> list[StepScore]:
    return [s for s in steps if s.score is not None]


def _most_negative(steps: Sequence[StepScore]) -> list[tuple[int, float]]:
    return sorted(((s.index, s.score) for s in _scored(steps)), key=lambda t: (t[1], t[0]))


def _lowest_total(steps: Sequence[StepScore]) -> list[tuple[int, float]]:
    total, out = 0.0, []
    for s in _scored(steps):
        total += s.score
        out.append((s.index, total))
    return sorted(out, key=lambda t: (t[1], t[0]))


def _sharpest_drop(steps: Sequence[StepScore]) -> list[tuple[int, float]]:
    last: dict[str, float] = {}
    drops = []
    for s in _scored(steps):
        if s.agent in last:
            drops.append((s.index, s.score - last[s.agent]))
        last[s.agent] = s.score
    if not drops:  # every agent acted once: no drop to measure
        return _most_negative(steps)
    ranked = sorted(drops, key=lambda t: (t[1], t[0]))
    seen = {i for i, _ in ranked}
    return ranked + [t for t in _most_negative(steps) if t[0] not in seen]


RANKERS: dict[str, Callable[[Sequence[StepScore]], list[tuple[int, float]]]] = {
    "most-negative": _most_negative,
    "lowest-total": _lowest_total,
    "sharpest-drop": _sharpest_drop,
}


def rank(steps: Sequence[StepScore], ranker: str = "most-negative") -> list[tuple[int, float]]:
    """``(step index, ranking key)`` pairs, most suspicious first; empty when nothing is scored.

    A step whose score is NaN is never ranked first: it follows every other scored step (in
    step order), and takes no part in running totals or drops.

    Examples
    --------
    >>> s = [StepScore(0, "a", "action", score=-1.0), StepScore(1, "b", "action", score=-3.0)]
    >>> rank(s)
    [(1, -3.0), (0, -1.0)]
    >>> rank(s, "lowest-total")
    [(1, -4.0), (0, -1.0)]
    """
    fn = _pick(ranker, RANKERS, "ranker")
    nan = [s for s in steps if s.score is not None and math.isnan(s.score)]
    if not nan:
        return fn(steps)
    return fn([s for s in steps if not (s.score is not None and math.isnan(s.score))]) + [(s.index, s.score) for s in nan]


def agent_totals(steps: Sequence[StepScore]) -> dict[str, float]:
    """Each agent's summed step score (agents with scored steps only)."""
    out: dict[str, float] = {}
    for s in _scored(steps):
        out[s.agent] = out.get(s.agent, 0.0) + s.score
    return out
