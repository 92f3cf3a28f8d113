"""``evaluate``: labelled runs in, attribution accuracy (with baselines and intervals) out.

Pipeline: load (:mod:`.data`) -> score each run once, through the on-disk cache
(:mod:`.cache`) -> predict with every aggregation x ranker and every baseline from the cached
scores (no forward pass) -> choose the setting honestly (:mod:`.selection`) -> metrics per
subset (:mod:`.metrics`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from attribution.errors import ConfigError, ScoringError
from attribution.evaluation import baselines as bl
from attribution.evaluation.cache import ScoreCache, default_cache_dir, scoring_key
from attribution.evaluation.data import label_problems
from attribution.evaluation.metrics import Metric, Prediction, paired_difference, prediction_values, summarize
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
    differences : dict, subset -> baseline -> metric -> :class:`Metric` of the paired difference
        ``attribution - baseline`` over runs (the structural floors: longest action step, null pair)
    timing : dict, wall seconds, how many runs were scored or read from the cache, and how many
        cache entries were found invalid and scored again (``bad_cache_entries``)
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
    #: subset -> baseline -> metric -> paired bootstrap difference (attribution minus baseline)
    differences: dict[str, dict[str, dict[str, Metric]]] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None

    @property
    def attribution_method(self) -> str:
        """The name of the reported (non-flagged) attribution method."""
        first = next(iter(self.subsets.values()))
        return next(n for n, m in first.items() if m.kind == "attribution" and not m.in_sample)

    def no_signal(self) -> dict[str, dict[str, Any]]:
        """Subsets where the attribution does not beat a structural floor (longest step, null pair).

        A floor is not beaten when the paired 95% interval of the step-accuracy difference
        (attribution minus floor) includes or is below 0 (without bootstrap: the difference is
        at most 0). Returns subset -> ``{"baselines": [...], "line": one sentence}``.
        """
        out = {}
        for subset, by_base in self.differences.items():
            bad = []
            for base, metrics in by_base.items():
                m = metrics.get("step_accuracy_score")
                if m is None or m.value is None:
                    continue
                if (m.low if m.low is not None else m.value) <= 0:
                    bad.append(base)
            if bad:
                out[subset] = {
                    "baselines": bad,
                    "line": (f"no signal: on {subset}, {self.attribution_method} does not beat the {' or the '.join(bad)} on step "
                             "accuracy (paired 95% interval includes or is below 0); its culprits are no better than the "
                             "runs' structure gives"),
                }
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "settings": self.settings,
            "checkpoints": self.checkpoints,
            "selection": self.selection,
            "subsets": {s: {n: m.to_dict() for n, m in ms.items()} for s, ms in self.subsets.items()},
            "grid": {s: {n: m.to_dict() for n, m in ms.items()} for s, ms in self.grid.items()},
            "differences": {
                s: {b: {k: m.to_dict() for k, m in ms.items()} for b, ms in bs.items()} for s, bs in self.differences.items()
            },
            "no_signal": self.no_signal(),
            "runs": self.runs,
            "timing": self.timing,
            **({"calibration": self.calibration} if self.calibration is not None else {}),
        }

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kw)


def subset_of(run: Run) -> str:
    return str(run.meta.get("subset") or "")


def score_runs(
    scorer: Any,
    runs: Sequence[Run],
    cache: ScoreCache,
    *,
    group_size: int = 8,
    progress: bool = False,
    engine: Any = None,
    shard: tuple[int, int] | None = None,
    desc: str = "scoring",
) -> dict[str, Any]:
    """Score every run not yet in ``cache``, ``group_size`` runs per :meth:`Scorer.score_many`.

    Runs are ordered by length (so a group's windows pad little) and cut into groups of that
    order; each group's entries are written as soon as it comes back from the ``engine``
    (default: this process), so a kill loses at most the groups in flight. ``shard=(I, N)``
    scores only the I-th of N shards (:func:`attribution.engine.select_shard`).

    The groups are cut from all the runs, cached or not, so a run is always scored in the same
    batch: a float32 forward pass rounds differently in another batch shape (wider padding,
    other rows), so scores would move by ~1e-7 relative if a resumed evaluation regrouped the
    runs left. A group with every run cached costs no forward pass; a group a kill left half
    written is scored again whole, and only its missing entries are written (the cached ones
    stay untouched). An evaluation resumed after a kill thus equals a fresh one bitwise, on
    the same machine, engine and settings.
    """
    from tqdm.auto import tqdm

    from attribution.engine import make_engine, select_shard

    if group_size < 1:
        raise ConfigError(f"The 'group_size' parameter must be at least 1. Got {group_size} instead.")
    engine = make_engine("local") if engine is None else engine
    unique: dict[str, Run] = {}
    for run in runs:
        unique.setdefault(run.content_hash(), run)
    mine = select_shard(list(unique.values()), shard)
    order = sorted(mine, key=lambda r: (sum(len(s.content) for s in r.steps), r.content_hash()))
    missing = {r.content_hash() for r in order if r not in cache}
    groups = [order[g : g + group_size] for g in range(0, len(order), group_size)]
    groups = [g for g in groups if any(r.content_hash() in missing for r in g)]
    regrouped = sum(1 for g in groups for r in g if r.content_hash() not in missing)
    t0 = time.perf_counter()
    with tqdm(total=len(order), initial=len(order) - len(missing), unit="run", desc=desc, disable=not progress) as bar:
        for scored_group in engine.score(scorer, groups, progress=False):
            new = [s for s in scored_group if s.run.content_hash() in missing]
            for scored in new:
                cache.put(scored)
            bar.update(len(new))
    return {
        "runs": len(order), "from_cache": len(order) - len(missing), "scored": len(missing),
        "rescored_with_group": regrouped, "scoring_s": round(time.perf_counter() - t0, 3), "engine": engine.name, **engine.stats(),
    }


def _load_scores(scorer: Any, cache: ScoreCache, run: Run):
    betas = {i: pair.beta for i, pair in scorer.assign(run).items()}
    got = cache.get(run, betas)
    if got is None:  # an entry that vanished or cannot be read: score it again
        cache.put(scorer.score_many([run])[0])
        got = cache.get(run, betas)
    if got is None:
        raise ScoringError(f"{run.source or run.run_id}: its scores could not be written to or read from the cache {cache.folder}")
    return got


def _check_cache_dir(cache_dir: str | Path | None) -> None:
    """The score cache folder can be written, before any work; the default one's error names XDG_CACHE_HOME."""
    from attribution.errors import OutputError
    from attribution.io import check_writable

    if cache_dir is not None:
        check_writable(cache_dir, option="--cache-dir", folder=True)
        return
    try:
        check_writable(default_cache_dir(), option="score cache", folder=True)
    except OutputError as err:
        xdg = os.environ.get("XDG_CACHE_HOME")
        origin = f"XDG_CACHE_HOME={xdg}" if xdg else "no XDG_CACHE_HOME, so ~/.cache"
        raise OutputError(f"{err} (the default cache folder, from {origin}; set XDG_CACHE_HOME to a writable folder, "
                          "or give --cache-dir or --no-cache)") from None


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
    dtype: str = "auto",
    device: str = "auto",
    device_map: str | None = None,
    max_batch_tokens: int | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    group_size: int = 8,
    progress: bool = False,
    null_pair: bool = True,
    engine: Any = "local",
    engine_options: dict[str, Any] | None = None,
    shard: str | tuple[int, int] | None = None,
    calibrate: float | None = None,
    require_labels: bool = False,
    pair: str | None = None,
    allow_toy_pair: bool = False,
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
    window, min_context, chat_template : scoring settings
    dtype, device, device_map, max_batch_tokens : placement and memory
        (:func:`attribution.diagnoser.make_scorer`; ``"auto"``: the best this machine has)
    cache_dir : the score cache folder (default :func:`~attribution.evaluation.cache.default_cache_dir`)
    use_cache : False keeps scores in memory only
    group_size : runs per batched scoring call (each group is cached as it finishes)
    progress : show a progress bar over runs while scoring
    null_pair : also score every run with the null pair (see
        :mod:`~attribution.evaluation.baselines`; its own cache entries) and report it. The
        null pair is scored in this process (its random models exist only here), shard by shard
        like the pair.
    engine : "local", "ray" or an :class:`attribution.engine.Engine`
    engine_options : options of a named engine (Ray: address, workers, gpus_per_worker, cpus_per_worker)
    shard : "I/N" or (I, N): score only the I-th of N shards of the runs into the cache and
        return no metrics (``subsets`` is empty); a later evaluation without ``shard`` on the
        same cache reads every run and scores none. Needs the on-disk cache.
    require_labels : a file or folder's unlabelled runs are an error (True), or left out and
        counted in ``settings["skipped_unlabelled"]`` (False, the default; a list of runs given
        is always taken as it is)
    calibrate : float in (0, 1), optional: also choose the monitor's alert threshold for this
        false-alarm rate among the successful runs (:func:`~attribution.evaluation.calibration.calibrate`)
    pair : a named public pair (``attribution pairs``), instead of policy/reference or pairs
    allow_toy_pair : let the embedded toy pair score runs outside its world (refused otherwise);
        ``settings["warnings"]`` then says so, as it says when a pair's unknown token covers much of a run

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
    from attribution.engine import make_engine, parse_shard

    shard = parse_shard(shard)
    if shard is not None and not use_cache:
        raise ConfigError("a shard is scored into the on-disk score cache for a later evaluation to read; it needs the cache (drop --no-cache)")
    if use_cache:
        _check_cache_dir(cache_dir)
    engine = make_engine(engine, **(engine_options or {}))
    engine.check()

    if scorer is None:  # cheap: models load on first use
        from attribution.diagnoser import make_scorer

        scorer = make_scorer(
            policy=policy, reference=reference, beta=beta, pairs=pairs, window=window, min_context=min_context,
            chat_template=chat_template, dtype=dtype, device=engine.worker_device(device), device_map=device_map,
            max_batch_tokens=max_batch_tokens, check_device=not engine.remote, pair=pair,
        )
    scorer.entropy = True

    if isinstance(dataset, (str, Path)):
        from attribution.evaluation.data import load_runs_for_eval

        unlabelled: list[Run] = []
        runs, origin = load_runs_for_eval(
            dataset, subset=subset, data_dir=data_dir, format=format, labels=labels,
            actors=tuple(actors), observers=tuple(observers), require_labels=require_labels, skipped=unlabelled,
        )
        name = str(dataset)
        if not runs and unlabelled:
            raise ConfigError(
                f"nothing to evaluate: none of the {len(unlabelled)} runs of {name} carries a label "
                "('mistake_step'/'mistake_agent' or 'success'; or give a --labels file)"
            )
    else:
        runs, origin, name, unlabelled = list(dataset), "runs given", "runs", []
    if not runs:
        raise ConfigError("nothing to evaluate: the dataset holds no runs")
    for run in runs:  # an agent no pair takes is reported before any model loads
        scorer.assign(run)
    warnings = _domain_warnings(runs, scorer, allow_toy_pair)  # tokenizers only; the toy pair refuses other worlds' runs
    if calibrate is not None and not any(run.success for run in runs):
        raise ConfigError(f"--calibrate needs labelled successful runs (success: true); {name} has none")
    key = scoring_key(scorer)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    cache = ScoreCache(root if use_cache else None, key)
    with engine:  # joins or starts a Ray cluster (loads no model); closes what it started
        stats = score_runs(
            scorer, runs, cache, group_size=group_size, progress=progress, engine=engine, shard=shard, desc="scoring runs (pair)"
        )
    null = ncache = None
    if null_pair:
        null = bl.null_scorer(scorer)
        ncache = ScoreCache(root if use_cache else None, scoring_key(null))
        stats["null_pair"] = score_runs(
            null, runs, ncache, group_size=group_size, progress=progress, shard=shard, desc="scoring runs (null pair baseline)"
        )
    if shard is not None:
        settings = {
            "dataset": name, "origin": origin, "subset": subset, "n_runs": len(runs), "shard": f"{shard[0]}/{shard[1]}",
            "cache": {"dir": str(cache.folder), "setup": cache.digest},
        }
        timing = {**stats, "total_s": round(time.perf_counter() - t0, 3)}
        return EvalResult(settings, scorer.checkpoints(), {}, {}, None, [], timing)

    # Every setting and every baseline from the cached scores: no forward pass from here on.
    grid = settings_grid(aggregate, ranker)
    table: dict[Setting, list[Prediction]] = {s: [] for s in grid}
    null_table: dict[Setting, list[Prediction]] = {s: [] for s in grid}
    base: dict[str, list[Prediction]] = {bl.FIRST: [], bl.LAST: [], bl.LONGEST: [], **{b: [] for b in bl.SCORE_BASELINES}}
    summed = []  # per run, step scores summed over tokens (what the monitor computes), for calibration
    for run in runs:
        got = _load_scores(scorer, cache, run)
        if calibrate is not None:
            summed.append(aggregate_steps(got.steps, "sum"))
        _predict_grid(run, got.steps, grid, table)
        if null is not None:
            _predict_grid(run, _load_scores(null, ncache, run).steps, grid, null_table)
        base[bl.FIRST].append(bl.first_action(run))
        base[bl.LAST].append(bl.last_action(run))
        base[bl.LONGEST].append(bl.longest_action(run, got.steps))
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
    attribution_name = next(iter(methods))
    if null is not None:  # the same selection, on the null pair's scores
        base[bl.NULL_PAIR] = (
            null_table[grid[0]] if len(grid) == 1 else cross_validate(runs, null_table, folds=folds, seed=seed, strata=strata).predictions
        )

    groups = _groups(strata)
    subsets: dict[str, dict[str, MethodResult]] = {}
    grid_results: dict[str, dict[str, MethodResult]] = {}
    differences: dict[str, dict[str, dict[str, Metric]]] = {}
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
            note = _BASE_NOTES.get(b, f"{baseline_aggregate} over tokens" if b in bl.SCORE_BASELINES else "")
            res[b] = MethodResult(b, "baseline", summ([preds[i] for i in idx]), note=note)
        differences[gname] = {
            b: _differences(sub, [methods[attribution_name][0][i] for i in idx], [base[b][i] for i in idx], n_boot, seed)
            for b in (bl.LONGEST, bl.NULL_PAIR) if b in base
        }
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
        "null_pair": (
            {"seeds": list(bl.NULL_SEEDS), "selection": "same as the attribution", "cache_setup": ncache.digest}
            if ncache is not None else None
        ),
        "group_size": group_size,
        "label_problems": label_problems(runs),
        "skipped_unlabelled": {"n": len(unlabelled), "runs": [r.run_id for r in unlabelled]},
        "warnings": warnings,
    }
    # Cache entries found invalid (truncated, failed checksum, NaN, ...): never used, scored again.
    bad = len(cache.bad) + (len(ncache.bad) if ncache is not None else 0)
    timing = {**stats, "bad_cache_entries": bad, "total_s": round(time.perf_counter() - t0, 3)}
    calibration = None
    if calibrate is not None:
        from attribution.evaluation.calibration import calibrate as choose_threshold

        calibration = choose_threshold(runs, summed, calibrate, checkpoints=scorer.checkpoints(), dataset=name).to_dict()
    return EvalResult(settings, scorer.checkpoints(), subsets, grid_results, selection, per_run, timing,
                      differences=differences, calibration=calibration)


def _domain_warnings(runs: Sequence[Run], scorer: Any, allow_toy_pair: bool) -> list[str]:
    """The out-of-domain check of every run (:func:`attribution.score.domain.check_domain`), one line per kind of warning."""
    from attribution.score.domain import check_domain

    per_run = check_domain(runs, scorer, allow_toy_pair=allow_toy_pair)
    kinds: dict[str, list[str]] = {}
    for run, (lines, _) in zip(runs, per_run):
        for line in lines:
            kinds.setdefault(line.split(":", 1)[0], []).append(run.run_id)
    out = []
    for kind, ids in kinds.items():
        what = ("the embedded world pair scored them though they are not runs of its world; these numbers are not a finding"
                if kind == "toy pair" else "more than 1% of their scored tokens are the pair's unknown token (<unk>)")
        out.append(f"{kind}: {len(ids)} of {len(runs)} runs (e.g. {ids[0]}): {what}")
    return out


_BASE_NOTES = {
    bl.LONGEST: "most scored tokens",
    bl.NULL_PAIR: "untrained models of the pair's architecture, same selection",
}


def _predict_grid(run: Run, steps: Any, grid: list[Setting], table: dict[Setting, list[Prediction]]) -> None:
    for agg in dict.fromkeys(a for a, _ in grid):
        scored = aggregate_steps(steps, agg)
        for a, r in grid:
            if a == agg:
                table[(a, r)].append(bl.ranked_prediction(run, scored, r))


def _differences(runs: Sequence[Run], ours: Sequence[Prediction], theirs: Sequence[Prediction], n_boot: int, seed: int) -> dict[str, Metric]:
    """Paired bootstrap differences (ours - theirs) of the step and agent accuracies over the labelled runs."""
    out = {}
    for name, label in (("step_accuracy_score", "mistake_step"), ("agent_accuracy_score", "mistake_agent")):
        keep = [i for i, r in enumerate(runs) if getattr(r, label) is not None]
        a = [prediction_values(runs[i].mistake_step, runs[i].mistake_agent, ours[i])[name] for i in keep]
        b = [prediction_values(runs[i].mistake_step, runs[i].mistake_agent, theirs[i])[name] for i in keep]
        out[name] = paired_difference(a, b, n_boot=n_boot, seed=seed)
    return out


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
