"""Where scoring runs: this process (``local``) or a Ray cluster (``ray``), behind one small interface.

An engine takes groups of runs and a :class:`~attribution.score.Scorer` and yields scored
runs; everything else (the score cache, ranking, metrics, reports) is the same whichever engine
ran, so the engines' predictions are equal. Ray is an optional import inside
:mod:`attribution.engine.ray`, loaded only when that engine is asked for.
"""

from attribution.engine.base import ENGINES, Engine, make_engine, parse_shard, select_shard
from attribution.engine.local import LocalEngine

__all__ = ["ENGINES", "Engine", "LocalEngine", "make_engine", "parse_shard", "select_shard"]
