"""attribution: find which agent, at which step, made a multi-agent LLM run fail.

Pipeline: parse (``attribution.parse``) -> graph (``attribution.graph``) -> score
(``attribution.score``) -> rank (``attribution.rank``) -> evaluate (``attribution.evaluate``).
"""

from attribution.errors import AttributionError, CheckpointError, ConfigError, InputError, ScoringError
from attribution.types import Diagnosis, Run, Step, StepScore
from attribution.diagnoser import diagnose  # noqa: E402  (after the types it uses)
from attribution.evaluation import evaluate  # noqa: E402
from attribution.select import select_runs  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "diagnose",
    "evaluate",
    "select_runs",
    "AttributionError",
    "CheckpointError",
    "ConfigError",
    "InputError",
    "ScoringError",
    "Diagnosis",
    "Run",
    "Step",
    "StepScore",
]
