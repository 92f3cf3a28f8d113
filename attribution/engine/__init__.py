"""Where scoring runs: this process (``local``) or a Ray cluster (``ray``), behind one small interface.

An engine takes groups of runs and a :class:`~attribution.score.Scorer` and yields scored
runs; everything else (the score cache, ranking, metrics, reports) is the same whichever engine
ran, so the engines' predictions are equal. Ray is an optional import inside
:mod:`attribution.engine.ray`, loaded only when that engine is asked for.
"""

from __future__ import annotations

from typing import Any

from attribution.engine.base import ENGINES, Engine, parse_shard, select_shard
from attribution.engine.local import LocalEngine
from attribution.errors import ConfigError

__all__ = ["ENGINES", "Engine", "LocalEngine", "make_engine", "parse_shard", "select_shard"]


def make_engine(name: str | Engine = "local", **options: Any) -> Engine:
    """An engine by name: ``"local"`` (no options) or ``"ray"`` (see :class:`attribution.engine.ray.RayEngine`).

    Examples
    --------
    >>> make_engine("local").name
    'local'
    """
    if isinstance(name, Engine):
        return name
    if name == "local":
        unused = {k: v for k, v in options.items() if v is not None}
        if unused:
            raise ConfigError(f"the local engine takes no options; {', '.join(sorted(unused))} apply to --engine ray")
        return LocalEngine()
    if name == "ray":
        from attribution.engine.ray import RayEngine

        return RayEngine(**{k: v for k, v in options.items() if v is not None})
    raise ConfigError(f"The 'engine' parameter must be one of {', '.join(ENGINES)}. Got {name!r} instead.")
