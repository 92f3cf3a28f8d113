"""Batch evaluation of attribution on labelled failures (``attribution eval``).

``evaluate`` loads a labelled dataset through Hugging Face ``datasets`` (:mod:`.data`),
scores each run once through an on-disk log-prob cache (:mod:`.cache`), predicts with
every aggregation x ranker and the baselines (:mod:`.baselines`) from those scores, picks
the setting by cross-validation (:mod:`.selection`) and reports metrics with bootstrap
intervals (:mod:`.metrics`, :mod:`.report`).
"""

from attribution.evaluation.evaluator import EvalResult, MethodResult, evaluate
from attribution.evaluation.metrics import Metric, Prediction

__all__ = ["evaluate", "EvalResult", "MethodResult", "Metric", "Prediction"]
