"""The engine interface, the engine names and the shard spec (``--shard I/N``)."""

from __future__ import annotations

import re
from typing import Any, Iterator, Sequence

from attribution.errors import ConfigError
from attribution.types import Run

__all__ = ["ENGINES", "Engine", "parse_shard", "select_shard"]

#: Engine names, for the CLI's choices and error messages.
ENGINES = ("local", "ray")


class Engine:
    """Runs a scorer over groups of runs. Subclasses implement :meth:`score`.

    The lifecycle is ``start()`` (cheap checks and connections, before any model loads),
    ``score()`` any number of times, ``close()``; an engine is also a context manager.

    Attributes
    ----------
    name : str
    remote : bool
        True when the models load in other processes (their devices are not this machine's).
    """

    name = "engine"
    remote = False

    def check(self) -> None:
        """Cheap checks (the engine is installed, its address answers), before anything loads."""

    def start(self) -> "Engine":
        return self

    def close(self) -> None:
        pass

    def __enter__(self) -> "Engine":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def worker_device(self, device: str) -> str:
        """The ``device`` setting the scorer is built with (the Ray engine's workers have their own)."""
        return device

    def score(self, scorer: Any, groups: Sequence[Sequence[Run]], *, progress: bool = False) -> Iterator[list[Any]]:
        """Yield, for each group (in any order), its :class:`~attribution.score.ScoredRun` list."""
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        """What scoring cost: ``oom_retries`` and ``peak_memory`` (bytes per device or worker)."""
        return {"oom_retries": 0, "peak_memory": {}}


_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(spec: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"I/N"`` -> ``(I, N)`` with ``1 <= I <= N`` (1-based, as SLURM's ``--array=1-N``).

    Examples
    --------
    >>> parse_shard("2/4")
    (2, 4)
    >>> parse_shard(None) is None
    True
    """
    if spec is None:
        return None
    if isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(x, int) for x in spec):
        i, n = spec
    else:
        m = _SHARD_RE.match(str(spec))
        if m is None:
            raise ConfigError(f"The 'shard' parameter must be I/N with whole numbers 1 <= I <= N, e.g. 2/4. Got {spec!r} instead.")
        i, n = int(m.group(1)), int(m.group(2))
    if not 1 <= i <= n:
        raise ConfigError(f"The 'shard' parameter must be I/N with 1 <= I <= N, e.g. 2/4. Got '{i}/{n}' instead.")
    return i, n


def select_shard(runs: Sequence[Run], shard: tuple[int, int] | None) -> list[Run]:
    """The runs of shard ``(I, N)``: every N-th run in content-hash order, starting at the I-th.

    Deterministic on any machine and in any input order, and balanced to one run; the N shards
    together hold every run exactly once.
    """
    if shard is None:
        return list(runs)
    i, n = shard
    order = sorted(runs, key=lambda r: r.content_hash())
    return order[i - 1 :: n]
