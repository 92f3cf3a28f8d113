"""Score: render a run, run each agent's checkpoint pair over it, return per-token log-probs."""

from attribution.score.pairs import Checkpoint, CheckpointPair, PairConfig, load_pair_config
from attribution.score.render import Rendered, render_run
from attribution.score.scorer import ScoredRun, Scorer, Window, plan_windows

__all__ = [
    "Checkpoint",
    "CheckpointPair",
    "PairConfig",
    "load_pair_config",
    "Rendered",
    "render_run",
    "ScoredRun",
    "Scorer",
    "Window",
    "plan_windows",
]
