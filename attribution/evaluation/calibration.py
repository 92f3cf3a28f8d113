"""Calibrate the monitor's alert: a threshold for a target false-alarm rate among successful runs.

The monitor (:mod:`attribution.monitor`) alerts at the first step where the running run score
(:func:`attribution.select.run_score` of the prefix, ``sum`` by default) drops below a
threshold. A successful run raises a false alarm iff the lowest running score it reaches is
below the threshold; so for a target rate ``fpr`` among the successful runs of a labelled set,
the threshold is the ``k``-th smallest of their lowest running scores, ``k = floor(fpr * n)``
(0-based): at most ``k`` successful runs lie strictly below it. On the same set we report the
alert's recall (the share of failed runs it fires on) and its lead: how many steps before the
end of the log it fires (``n_steps - 1 - alert step``), also as a share of the run's steps.

A calibration file records the checkpoint ids and betas it was made with; a monitor refuses a
file made with another pair (:func:`load_calibration`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from attribution.errors import ConfigError, InputError
from attribution.select import RUN_SCORES, run_score
from attribution.types import Run, StepScore

__all__ = [
    "CALIBRATION_SCHEMA",
    "Calibration",
    "prefix_run_scores",
    "first_alert",
    "calibrate",
    "write_calibration",
    "load_calibration",
]

CALIBRATION_SCHEMA = "attribution.calibration/1"


def prefix_run_scores(steps: Sequence[StepScore], by: str = "sum") -> list[float]:
    """The running run score after each step (``nan`` until the first scored step).

    Examples
    --------
    >>> s = [StepScore(0, "u", "observation"), StepScore(1, "a", "action", score=-1.0),
    ...      StepScore(2, "b", "action", score=0.5)]
    >>> prefix_run_scores(s)
    [nan, -1.0, -0.5]
    """
    return [run_score(steps[: k + 1], by) for k in range(len(steps))]


def first_alert(running: Sequence[float], threshold: float) -> int | None:
    """The first position whose running score is below ``threshold`` (None: no alert)."""
    for k, v in enumerate(running):
        if v < threshold:  # nan compares False: no alert before the first scored step
            return k
    return None


@dataclass
class Calibration:
    """A calibrated alert threshold and how the alert does on the set it was chosen on."""

    threshold: float
    target_fpr: float
    fpr: float
    recall: float | None
    lead_steps_median: float | None
    lead_share_median: float | None
    n_success: int
    n_failure: int
    n_alerts_failure: int
    by: str = "sum"
    lead_steps: list[int] = field(default_factory=list)
    checkpoints: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""
    schema: str = CALIBRATION_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibrate(
    runs: Sequence[Run], steps: Sequence[Sequence[StepScore]], fpr: float, *, by: str = "sum",
    checkpoints: dict[str, Any] | None = None, dataset: str = "",
) -> Calibration:
    """Choose the alert threshold for a target false-alarm rate among the successful ``runs``.

    Parameters
    ----------
    runs : labelled runs (``success`` set; runs without it are skipped)
    steps : per run, its StepScores with ``score`` set (token sum, as the monitor computes it)
    fpr : float in (0, 1), the target share of successful runs that raise an alert
    by : {"sum", "mean", "min"}, the running run score's aggregation
    checkpoints, dataset : recorded in the file

    Returns
    -------
    Calibration
    """
    if not (isinstance(fpr, (int, float)) and 0.0 < fpr < 1.0):
        raise ConfigError(f"The 'fpr' parameter of calibrate must be a number in (0, 1). Got {fpr!r} instead.")
    if by not in RUN_SCORES:
        raise ConfigError(f"The 'by' parameter must be one of {sorted(RUN_SCORES)}. Got {by!r} instead.")
    succ_min, fails = [], []
    for run, st in zip(runs, steps):
        if run.success is None:
            continue
        running = prefix_run_scores(st, by)
        if run.success:
            finite = [v for v in running if not math.isnan(v)]
            if finite:
                succ_min.append(min(finite))
        else:
            fails.append((run, running))
    if not succ_min:
        raise ConfigError("calibration needs labelled successful runs (success: true) with scored steps; the set has none")
    ordered = sorted(succ_min)
    k = math.floor(fpr * len(ordered))
    threshold = ordered[k] if k < len(ordered) else math.inf
    achieved = float(np.mean([m < threshold for m in succ_min]))
    leads, shares = [], []
    for run, running in fails:
        at = first_alert(running, threshold)
        if at is not None:
            leads.append(len(run.steps) - 1 - at)
            shares.append((len(run.steps) - 1 - at) / len(run.steps))
    return Calibration(
        threshold=float(threshold),
        target_fpr=float(fpr),
        fpr=achieved,
        recall=len(leads) / len(fails) if fails else None,
        lead_steps_median=float(np.median(leads)) if leads else None,
        lead_share_median=float(np.median(shares)) if shares else None,
        n_success=len(succ_min),
        n_failure=len(fails),
        n_alerts_failure=len(leads),
        by=by,
        lead_steps=leads,
        checkpoints=checkpoints or {},
        dataset=dataset,
    )


def write_calibration(cal: Calibration, path: str | os.PathLike) -> None:
    """Write ``cal`` as JSON, atomically."""
    from attribution.io import atomic_write_text

    atomic_write_text(path, json.dumps(cal.to_dict(), indent=1) + "\n")


def _pair_ids(checkpoints: dict[str, Any]) -> dict[str, tuple[str, str, float]]:
    return {n: (c["policy"]["id"], c["reference"]["id"], float(c["beta"])) for n, c in checkpoints.items()}


def load_calibration(path: str | os.PathLike, checkpoints: dict[str, Any] | None = None) -> Calibration:
    """Read a calibration file; with ``checkpoints`` (``Scorer.checkpoints()``), refuse one made
    with other checkpoints or betas (its threshold would mean nothing for them).

    Raises
    ------
    InputError
        If the file is missing or not a calibration file.
    ConfigError
        If it was made with another pair.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(path, f"a calibration file ({CALIBRATION_SCHEMA}) written by `attribution eval --calibrate`",
                         got=type(err).__name__) from None
    if not isinstance(raw, dict) or raw.get("schema") != CALIBRATION_SCHEMA:
        got = raw.get("schema") if isinstance(raw, dict) else type(raw).__name__
        raise InputError(path, f"a calibration file with schema {CALIBRATION_SCHEMA!r}", got=repr(got))
    try:
        cal = Calibration(**{k: v for k, v in raw.items() if k in Calibration.__dataclass_fields__})
        threshold = float(cal.threshold)
    except (TypeError, ValueError) as err:
        raise InputError(path, "a complete calibration file", got=str(err)) from None
    if isinstance(cal.threshold, bool) or not math.isfinite(threshold):
        raise InputError(path, "a finite number as 'threshold' (an alert below it must be able to fire)", got=repr(cal.threshold))
    if checkpoints is not None:
        try:
            mine, theirs = _pair_ids(checkpoints), _pair_ids(cal.checkpoints)
        except (KeyError, TypeError, AttributeError):
            raise InputError(path, "a calibration file naming its checkpoints", got="no checkpoint ids") from None
        if mine != theirs:
            diff = sorted(set(mine) ^ set(theirs)) or [n for n in mine if mine[n] != theirs.get(n)]
            name = diff[0]
            if name not in mine or name not in theirs:
                what = f"pair {name!r} is {'absent here' if name not in mine else 'absent from the file'}"
            else:
                fields = [f"{field} {a} in the file, {b} here" for field, a, b in zip(
                    ("policy", "reference", "beta"), theirs[name], mine[name]) if a != b]
                what = f"pair {name!r}: " + "; ".join(fields)
            raise ConfigError(
                f"{path}: this calibration was made with another setup ({what}); "
                "calibrate again with `attribution eval --calibrate` for this pair"
            )
    return cal
