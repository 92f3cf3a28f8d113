"""``evaluate``: labelled runs in, attribution accuracy (with baselines and intervals) out.

Pipeline: load (:mod:`.data`) -> score each run once, through the on-disk cache
(:mod:`.cache`) -> predict with every aggregation x ranker and every baseline from the cached
scores (no forward pass) -> choose the setting honestly (:mod:`.selection`) -> metrics per
subset (:mod:`.metrics`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from attribution.errors import ConfigError, ScoringError
from attribution.evaluation import baselines as bl
from attribution.evaluation.cache import ScoreCache, default_cache_dir, scoring_key
from attribution.evaluation.data import label_problems
from attribution.evaluation.metrics import Metric, Prediction, summarize
from attribution.evaluation.selection import SELECT, Setting, cross_validate, settings_grid
from attribution.rank import aggregate as aggregate_steps, rank
from attribution.types import Run

__all__ = ["SCHEMA", "ALL", "MethodResult", "EvalResult", "evaluate", "score_runs", "subset_of"]

SCHEMA = "attribution.eval/1"
ALL = "all"


@dataclass
class MethodResult:
    """One method's metrics on one subset.

    ``in_sample`` marks a number for a setting chosen on the same runs it is measured on
    (optimistic); ``kind`` is ``"attribution"``, ``"baseline"`` or ``"grid"``.
    """

    name: str
    kind: str
    metrics: dict[str, Metric]
    in_sample: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "in_sample": self.in_sample,
            "note": self.note,
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
        }


@dataclass
class EvalResult:
    """What :func:`evaluate` returns; :meth:`to_json` is the ``--json`` report.

    Attributes
    ----------
    settings : dict, every setting that shaped the numbers (dataset, scoring, selection, seed)
    checkpoints : dict, pair name -> checkpoint ids (from ``CheckpointPair.describe``)
    subsets : dict, subset -> method name -> :class:`MethodResult`, attribution first
    grid : dict, subset -> ``"aggregate/ranker"`` -> :class:`MethodResult` (each a fixed setting)
    selection : dict or None, how the setting was chosen (None when it was fixed)
    runs : list of dict, per run: labels, fold and each method's prediction
    timing : dict, wall seconds and how many runs were scored or read from the cache
    calibration : dict or None, the monitor's alert threshold chosen by ``evaluate(calibrate=FPR)``
        (:class:`~attribution.evaluation.calibration.Calibration`)
    """

    settings: dict[str, Any]
    checkpoints: dict[str, Any]
    subsets: dict[str, dict[str, MethodResult]]
    grid: dict[str, dict[str, MethodResult]]
    selection: dict[str, Any] | None
    runs: list[dict[str, Any]] = field(default_factory=list)
    timing: dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA
    calibration: dict[str, Any] | None = None

    @property
    def attribution_method(self) -> str:
        """The name of the reported (non-flagged) attribution method."""
        first = next(iter(self.subsets.values()))
        return next(n for n, m in first.items() if m.kind == "attribution" and not m.in_sample)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "settings": self.settings,
            "checkpoints": self.checkpoints,
            "selection": self.selection,
            "subsets": {s: {n: m.to_dict() for n, m in ms.items()} for s, ms in self.subsets.items()},
            "grid": {s: {n: m.to_dict() for n, m in ms.items()} for s, ms in self.grid.items()},
            "runs": self.runs,
            "timing": self.timing,
            **({"calibration": self.calibration} if self.calibration is not None else {}),
        }

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kw)


def subset_of(run: Run) -> str:
    return str(run.meta.get("subset") or "")


def score_runs(scorer: Any, runs: Sequence[Run], cache: ScoreCache, *, group_size: int = 8, progress: bool = False) -> dict[str, Any]:
    """Score every run not yet in ``cache``, ``group_size`` runs per :meth:`Scorer.score_many`.

    Runs are ordered by length (so a group's windows pad little) and cut into fixed groups of
    that order; each group's entries are written as soon as it finishes, so a kill loses at
    most the group in flight. A run already cached costs no forward pass.
    """
    from tqdm.auto import tqdm

    if group_size < 1:
        raise ConfigError(f"The 'group_size' parameter must be at least 1. Got {group_size} instead.")
    unique: dict[str, Run] = {}
    for run in runs:
        unique.setdefault(run.content_hash(), run)
    order = sorted(unique.values(), key=lambda r: (sum(len(s.content) for s in r.steps), r.content_hash()))
    cached = sum(run in cache for run in order)
    t0 = time.perf_counter()
    with tqdm(total=len(order), initial=cached, unit="run", desc="scoring", disable=not progress) as bar:
        for g in range(0, len(order), group_size):
            todo = [r for r in order[g : g + group_size] if r not in cache]
            if not todo:
                continue
            for scored in scorer.score_many(todo):
                cache.put(scored)
            bar.update(len(todo))
    return {"runs": len(order), "from_cache": cached, "scored": len(order) - cached, "scoring_s": round(time.perf_counter() - t0, 3)}


def _load_scores(scorer: Any, cache: ScoreCache, run: Run):
    betas = {i: pair.beta for i, pair in scorer.assign(run).items()}
    got = cache.get(run, betas)
    if got is None:  # an entry that vanished or cannot be read: score it again
        cache.put(scorer.score_many([run])[0])
        got = cache.get(run, betas)
    if got is None:
        raise ScoringError(f"{run.source or run.run_id}: its scores could not be written to or read from the cache {cache.folder}")
    return got


def evaluate(
    dataset: str | Path | Sequence[Run] = "who-and-when",
    *,
    subset: str = "all",
    data_dir: str | Path | None = None,
    format: str | None = None,
    labels: str | Path | None = None,
    actors: Sequence[str] = (),
    observers: Sequence[str] = (),
    policy: str | None = None,
    reference: str | None = None,
    beta: float | None = None,
    pairs: Any = None,
    scorer: Any = None,
    aggregate: str = SELECT,
    ranker: str = SELECT,
    folds: int = 5,
    seed: int = 0,
    n_boot: int = 1000,
    baseline_aggregate: str = "mean",
    window: int | None = None,
    min_context: int | None = None,
    chat_template: bool | str = "auto",
    dtype: str = "float32",
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    group_size: int = 8,
    progress: bool = False,
    calibrate: float | None = None,
) -> EvalResult:
    """Measure how often attribution finds the labelled culprit, against baselines.

    Parameters
    ----------
    dataset : "who-and-when", path, or a list of labelled :class:`Run`
        See :func:`attribution.evaluation.data.load_dataset`.
    subset : {"all", "algorithm-generated", "hand-crafted"}
    data_dir : path, optional, a local copy of Who&When (else the hub)
    format : str, optional, the log format of a file or folder of logs (detected when None)
    labels : path, optional, a labels file keyed by run id (see :mod:`attribution.evaluation.data`)
    actors, observers : agent-name globs whose steps become actions / observations
    policy, reference, beta, pairs, scorer : the checkpoint pair(s), as for :func:`attribution.diagnose`
        (default: the embedded pair). A given ``scorer`` is switched to ``entropy=True``.
    aggregate, ranker : a name, or ``"select"`` to choose among all by cross-validation
    folds, seed : the cross-validation's folds and its shuffling seed
    n_boot : bootstrap resamples of the 95% intervals (drawn from ``seed``)
    baseline_aggregate : token -> step aggregation of the log-prob and entropy baselines
    window, min_context, chat_template, dtype, device : scoring settings
    cache_dir : the score cache folder (default :func:`~attribution.evaluation.cache.default_cache_dir`)
    use_cache : False keeps scores in memory only
    group_size : runs per batched scoring call (each group is cached as it finishes)
    progress : show a progress bar over runs while scoring
    calibrate : float in (0, 1), optional: also choose the monitor's alert threshold for this
        false-alarm rate among the successful runs (:func:`~attribution.evaluation.calibration.calibrate`)

    Returns
    -------
    EvalResult
    """
    t0 = time.perf_counter()
    # Cheap settings are checked before anything loads (unknown names list the known ones).
    if aggregate != SELECT:
        aggregate_steps([], aggregate)
    if ranker != SELECT:
        rank([], ranker)
        ranker = ranker.replace("_", "-")
    aggregate_steps([], baseline_aggregate)
    if calibrate is not None and not (isinstance(calibrate, (int, float)) and 0.0 < calibrate < 1.0):
        raise ConfigError(f"The 'calibrate' parameter must be a false-alarm rate in (0, 1). Got {calibrate!r} instead.")
    if n_boot < 0:
        raise ConfigError(f"The 'n_boot' parameter must be at least 0. Got {n_boot} instead.")

    if scorer is None:  # cheap: models load on first use
        from attribution.diagnoser import make_scorer

        scorer = make_scorer(
            policy=policy, reference=reference, beta=beta, pairs=pairs, window=window, min_context=min_context,
            chat_template=chat_template, dtype=dtype, device=device,
        )
    scorer.entropy = True

    if isinstance(dataset, (str, Path)):
        from attribution.evaluation.data import load_runs_for_eval

        runs, origin = load_runs_for_eval(
            dataset, subset=subset, data_dir=data_dir, format=format, labels=labels,
            actors=tuple(actors), observers=tuple(observers),
        )
        name = str(dataset)
    else:
        runs, origin, name = list(dataset), "runs given", "runs"
    if not runs:
        raise ConfigError("nothing to evaluate: the dataset holds no runs")
    for run in runs:  # an agent no pair takes is reported before any model loads
        scorer.assign(run)
    if calibrate is not None and not any(run.success for run in runs):
        raise ConfigError(f"--calibrate needs labelled successful runs (success: true); {name} has none")
    key = scoring_key(scorer)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    cache = ScoreCache(root if use_cache else None, key)
    stats = score_runs(scorer, runs, cache, group_size=group_size, progress=progress)

    # Every setting and every baseline from the cached scores: no forward pass from here on.
    grid = settings_grid(aggregate, ranker)
    table: dict[Setting, list[Prediction]] = {s: [] for s in grid}
    base: dict[str, list[Prediction]] = {bl.FIRST: [], bl.LAST: [], **{b: [] for b in bl.SCORE_BASELINES}}
    summed = []  # per run, step scores summed over tokens (what the monitor computes), for calibration
    for run in runs:
        got = _load_scores(scorer, cache, run)
        if calibrate is not None:
            summed.append(aggregate_steps(got.steps, "sum"))
        for agg in dict.fromkeys(a for a, _ in grid):
            scored = aggregate_steps(got.steps, agg)
            for a, r in grid:
                if a == agg:
                    table[(a, r)].append(bl.ranked_prediction(run, scored, r))
        base[bl.FIRST].append(bl.first_action(run))
        base[bl.LAST].append(bl.last_action(run))
        for b in bl.SCORE_BASELINES:
            base[b].append(bl.score_baseline(run, got.steps, got.entropies, b, aggregate=baseline_aggregate))

    strata = [subset_of(r) for r in runs]
    methods: dict[str, tuple[list[Prediction], bool, str]] = {}
    selection = None
    fold_of: list[int | None] = [None] * len(runs)
    if len(grid) == 1:
        (a, r), = grid
        methods[f"attribution ({a}, {r})"] = (table[(a, r)], False, "fixed setting")
    else:
        sel = cross_validate(runs, table, folds=folds, seed=seed, strata=strata)
        selection = sel.to_dict()
        fold_of = list(sel.fold_of)
        methods[f"attribution ({sel.folds}-fold CV)"] = (
            sel.predictions, False, "each run predicted with the setting chosen on the other folds",
        )
        a, r = sel.in_sample
        methods[f"attribution, best in-sample ({a}, {r})"] = (
            table[(a, r)], True, "setting chosen on these same runs: optimistic",
        )

    groups = _groups(strata)
    subsets: dict[str, dict[str, MethodResult]] = {}
    grid_results: dict[str, dict[str, MethodResult]] = {}
    for gname, idx in groups.items():
        sub = [runs[i] for i in idx]

        def summ(preds=None, expected=None):
            return summarize(sub, predictions=preds, expected=expected, n_boot=n_boot, seed=seed)

        res: dict[str, MethodResult] = {}
        for mname, (preds, flagged, note) in methods.items():
            res[mname] = MethodResult(mname, "attribution", summ([preds[i] for i in idx]), flagged, note)
        res[bl.RANDOM_ACTION] = MethodResult(bl.RANDOM_ACTION, "baseline", summ(expected=[bl.random_expectation(x, over="action") for x in sub]), note="analytic expectation")
        res[bl.RANDOM_ALL] = MethodResult(bl.RANDOM_ALL, "baseline", summ(expected=[bl.random_expectation(x, over="all") for x in sub]), note="analytic expectation, as the Who&When papers report it")
        for b, preds in base.items():
            note = f"{baseline_aggregate} over tokens" if b in bl.SCORE_BASELINES else ""
            res[b] = MethodResult(b, "baseline", summ([preds[i] for i in idx]), note=note)
        subsets[gname] = res
        grid_results[gname] = {
            f"{a}/{r}": MethodResult(f"{a}/{r}", "grid", summ([table[(a, r)][i] for i in idx]), note="one fixed setting")
            for a, r in grid
        }

    per_run = []
    for i, run in enumerate(runs):
        preds = {m: _pred_dict(p[i]) for m, (p, _, _) in methods.items()}
        preds.update({b: _pred_dict(p[i]) for b, p in base.items()})
        per_run.append({
            "run_id": run.run_id, "subset": strata[i], "n_steps": len(run.steps), "mistake_step": run.mistake_step,
            "mistake_agent": run.mistake_agent, "success": run.success, "fold": fold_of[i], "predictions": preds,
        })

    settings = {
        "dataset": name,
        "origin": origin,
        "subset": subset,
        "n_runs": len(runs),
        "aggregate": aggregate,
        "ranker": ranker,
        "grid": [f"{a}/{r}" for a, r in grid],
        "folds": folds,
        "seed": seed,
        "n_boot": n_boot,
        "ci": "bootstrap 95% percentile interval over runs",
        "baseline_aggregate": baseline_aggregate,
        "step_match": "exact integer",
        "scoring": {**scorer.settings(), "betas": {n: p.beta for n, p in scorer.pairs.pairs.items()}},
        "render": {n: p["render"] for n, p in key["pairs"].items()},
        "cache": {"dir": str(cache.folder) if cache.folder is not None else None, "setup": cache.digest},
        "group_size": group_size,
        "label_problems": label_problems(runs),
    }
    timing = {**stats, "total_s": round(time.perf_counter() - t0, 3)}
    calibration = None
    if calibrate is not None:
        from attribution.evaluation.calibration import calibrate as choose_threshold

        calibration = choose_threshold(runs, summed, calibrate, checkpoints=scorer.checkpoints(), dataset=name).to_dict()
    return EvalResult(settings, scorer.checkpoints(), subsets, grid_results, selection, per_run, timing, calibration=calibration)


def _pred_dict(p: Prediction) -> dict[str, Any]:
    return {"step": p.step, "agent": p.agent, "top": p.ranking[:3], "run_score": p.run_score}


def _groups(strata: Sequence[str]) -> dict[str, list[int]]:
    names = sorted({s for s in strata if s})
    everything = list(range(len(strata)))
    if len(names) <= 1 and all(strata):
        return {names[0] if names else ALL: everything}
    out = {n: [i for i, s in enumerate(strata) if s == n] for n in names}
    out[ALL] = everything
    return out
