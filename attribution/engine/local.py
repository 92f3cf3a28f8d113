"""The local engine: scores in this process, one group after another."""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from attribution.engine.base import Engine
from attribution.types import Run

__all__ = ["LocalEngine"]


class LocalEngine(Engine):
    """Scores each group with ``scorer.score_many`` in this process."""

    name = "local"

    def __init__(self) -> None:
        self._scorer: Any = None

    def score(self, scorer: Any, groups: Sequence[Sequence[Run]], *, progress: bool = False) -> Iterator[list[Any]]:
        self._scorer = scorer
        for group in groups:
            yield scorer.score_many(list(group))

    def stats(self) -> dict[str, Any]:
        from attribution.score.device import peak_memory

        if self._scorer is None:
            return {"oom_retries": 0, "peak_memory": {}}
        return {"oom_retries": self._scorer.stats.get("oom_retries", 0), "peak_memory": peak_memory(_devices(self._scorer))}


def _devices(scorer: Any) -> list[str]:
    return [c.device for p in scorer.pairs.pairs.values() for c in (p.policy, p.reference)]
