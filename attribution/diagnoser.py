"""``diagnose``: one failed run in, the culprit step and agent out (parse -> score -> rank)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from attribution.errors import ConfigError, InputError
from attribution.rank import agent_totals, aggregate as aggregate_steps, rank
from attribution.types import Diagnosis, Run, StepScore

__all__ = ["diagnose", "diagnose_many", "expand_logs", "build_diagnosis", "default_pairs_path", "make_scorer", "config_roles"]

#: File suffixes read from a folder given to :func:`diagnose_many`.
LOG_SUFFIXES = (".json", ".jsonl")


def default_pairs_path() -> Path:
    """The pair config of the checkpoint pair embedded in the package (trained in the controlled world)."""
    return Path(__file__).parent / "world" / "checkpoint" / "pairs.json"


def config_roles(pairs: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ``actors`` / ``observers`` agent globs of a pair config file (empty when absent).

    They override the log format's action/observation rule like ``--actor`` / ``--observer``.
    """
    if pairs is None or not isinstance(pairs, (str, os.PathLike)):
        return (), ()
    import json

    from attribution.io import parse_json

    try:
        raw = parse_json(Path(pairs).read_text(encoding="utf-8"), pairs)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, InputError):
        return (), ()  # load_pair_config reports an unreadable (or too deeply nested) config in full
    out = []
    for key in ("actors", "observers"):
        globs = raw.get(key, []) if isinstance(raw, dict) else []
        if not (isinstance(globs, list) and all(isinstance(g, str) and g for g in globs)):
            raise ConfigError(f"{pairs}: '{key}' must be a list of agent-name globs. Got {globs!r} instead.")
        out.append(tuple(globs))
    return out[0], out[1]


def make_scorer(
    *,
    policy: str | None = None,
    reference: str | None = None,
    beta: float | None = None,
    pairs: Any = None,
    window: int | None = None,
    min_context: int | None = None,
    chat_template: bool | str = "auto",
    dtype: str = "auto",
    device: str = "auto",
    device_map: str | None = None,
    progress: bool = False,
    max_batch_tokens: int | None = None,
    check_device: bool = True,
    pair: str | None = None,
):
    """A :class:`~attribution.score.Scorer` from CLI-style arguments.

    Give either ``policy`` and ``reference`` (one pair for every agent), or ``pair`` (a name from
    the registry, :mod:`attribution.score.registry`), or ``pairs`` (a pair config file or
    :class:`~attribution.score.PairConfig`), or none for the embedded default.
    ``device``/``dtype`` ``"auto"`` and ``device_map`` are resolved here, before any model loads
    (:mod:`attribution.score.device`); ``check_device=False`` skips checking that this machine
    has the device (for remote workers). ``max_batch_tokens`` None derives it from free memory.
    """
    from attribution.score import CheckpointPair, PairConfig, Scorer, load_pair_config
    from attribution.score.device import parse_device_map, resolve_dtype

    device, reference_device = parse_device_map(device_map, device, check=check_device)
    dtype = resolve_dtype(dtype, device)
    if max_batch_tokens is not None and max_batch_tokens < 1:
        raise ConfigError(f"The 'max_batch_tokens' parameter must be a positive number of tokens. Got {max_batch_tokens} instead.")

    if (policy is None) != (reference is None):
        raise ConfigError("give both policy and reference, or neither")
    if sum(x is not None for x in (policy, pairs, pair)) > 1:
        raise ConfigError("give one of --policy/--reference, --pair or --pairs")
    if pair is not None:
        config = PairConfig.single(CheckpointPair.from_registry(pair, beta=beta, dtype=dtype, device=device, reference_device=reference_device))
    elif policy is not None:
        config = PairConfig.single(
            CheckpointPair.load(policy, reference, 1.0 if beta is None else beta, dtype=dtype, device=device, reference_device=reference_device)
        )
    elif isinstance(pairs, PairConfig):
        config = pairs
    else:
        path = Path(pairs) if pairs is not None else default_pairs_path()
        if pairs is None and not path.is_file():
            raise ConfigError(f"no checkpoint pair given and the embedded default {path} is missing; pass --policy/--reference or --pairs")
        config = load_pair_config(path, dtype=dtype, device=device, reference_device=reference_device)
        if beta is not None:
            for p in config.pairs.values():
                p.beta = float(beta)
    return Scorer(
        config,
        window=window,
        min_context=min_context,
        chat_template=chat_template,
        progress=progress,
        max_batch_tokens=max_batch_tokens,
    )


def build_diagnosis(
    run: Run,
    steps: Sequence[StepScore],
    *,
    aggregate: str = "sum",
    ranker: str = "most-negative",
    top_k: int = 5,
    settings: dict[str, Any] | None = None,
    checkpoints: dict[str, dict[str, Any]] | None = None,
    warnings: Sequence[str] = (),
) -> Diagnosis:
    """Rank already-scored steps of ``run`` into a :class:`Diagnosis` (no forward pass)."""
    if top_k < 1:
        raise ConfigError(f"The 'top_k' parameter must be at least 1. Got {top_k} instead.")
    scored = aggregate_steps(steps, aggregate)
    order = rank(scored, ranker)
    if not order:
        raise InputError(run.source or run.run_id, "at least one action step with text to score")
    culprit = order[0][0]
    by_index = {s.index: s for s in run.steps}
    labels = {
        k: v
        for k, v in (("mistake_step", run.mistake_step), ("mistake_agent", run.mistake_agent), ("success", run.success))
        if v is not None
    }
    return Diagnosis(
        run_id=run.run_id,
        source=run.source,
        culprit_step=culprit,
        culprit_agent=by_index[culprit].agent,
        top=[i for i, _ in order[:top_k]],
        ranking=[i for i, _ in order],
        agent_totals=agent_totals(scored),
        steps=scored,
        settings={"aggregate": aggregate, "ranker": ranker, "top_k": top_k, **(settings or {})},
        checkpoints=checkpoints or {},
        run_steps=[
            {"index": s.index, "agent": s.agent, "role": s.role, "kind": s.kind, "content": s.content, "to": s.to,
             "origin": s.origin.to_dict()}
            for s in run.steps
        ],
        labels=labels,
        format=run.format,
        warnings=list(warnings),
    )


def diagnose(
    run: Run | str | os.PathLike,
    *,
    policy: str | None = None,
    reference: str | None = None,
    beta: float | None = None,
    pairs: Any = None,
    aggregate: str = "sum",
    ranker: str = "most-negative",
    top_k: int = 5,
    window: int | None = None,
    min_context: int | None = None,
    chat_template: bool | str = "auto",
    format: str | None = None,
    dtype: str = "auto",
    device: str = "auto",
    device_map: str | None = None,
    max_batch_tokens: int | None = None,
    progress: bool = False,
    scorer: Any = None,
    pair: str | None = None,
    allow_toy_pair: bool = False,
) -> Diagnosis:
    """Find the step and agent that most likely made ``run`` fail.

    Parameters
    ----------
    run : Run or path to a log file (format auto-detected, or forced with ``format``)
    policy, reference : checkpoint folder or hub id, for one pair scoring every agent
    beta : float, the pair's KL coefficient (overrides the config's when given)
    pairs : pair config file or PairConfig, mapping agents to pairs
    aggregate : {"sum", "mean", "min", "last"}, token -> step
    ranker : {"most-negative", "lowest-total", "sharpest-drop"}
    top_k : int, how many steps to list
    window, min_context, chat_template : scoring settings, see :class:`~attribution.score.Scorer`
    dtype, device, device_map, max_batch_tokens : placement and memory, see :func:`make_scorer`
    scorer : an existing Scorer to reuse (its checkpoints stay loaded)
    pair : a named public pair (``attribution pairs``), instead of policy/reference or pairs
    allow_toy_pair : let the embedded toy pair score a run that is not a run of its world
        (refused otherwise, :func:`attribution.score.domain.check_domain`); the diagnosis then
        carries the toy warning

    Returns
    -------
    Diagnosis
    """
    from attribution.parse import load_run

    if not isinstance(run, Run):
        run = load_run(run, format=format)
    if not run.action_indices:
        raise InputError(run.source or run.run_id, "at least one action step (an agent's own output)")
    # Validate cheap settings before any model loads.
    aggregate_steps([], aggregate)
    rank([], ranker)
    if scorer is None:
        scorer = make_scorer(
            policy=policy,
            reference=reference,
            beta=beta,
            pairs=pairs,
            window=window,
            min_context=min_context,
            chat_template=chat_template,
            dtype=dtype,
            device=device,
            device_map=device_map,
            max_batch_tokens=max_batch_tokens,
            progress=progress,
            pair=pair,
        )
    from attribution.score.domain import check_domain

    domain = check_domain([run], scorer, allow_toy_pair=allow_toy_pair)[0]
    return _diagnosis(run, scorer.score_many([run])[0], scorer, aggregate=aggregate, ranker=ranker, top_k=top_k, domain=domain)


def _diagnosis(run: Run, scored: Any, scorer: Any, *, aggregate: str, ranker: str, top_k: int,
               domain: tuple[list[str], list[dict[str, Any]]] = ([], [])) -> Diagnosis:
    """The diagnosis of ``run`` from its scores (a :class:`~attribution.score.ScoredRun`), with the scorer's settings
    and the out-of-domain check's warnings and unknown-token counts (``domain``)."""
    dtypes = sorted({p.policy.dtype for p in scorer.pairs.pairs.values()})
    settings = {**scorer.settings(), "dtype": dtypes[0] if len(dtypes) == 1 else dtypes, "rendered_tokens": scored.n_tokens}
    if domain[1]:
        settings["unknown_tokens"] = domain[1]
    return build_diagnosis(run, scored.steps, aggregate=aggregate, ranker=ranker, top_k=top_k, settings=settings,
                           checkpoints=scorer.checkpoints(), warnings=domain[0])


def expand_logs(logs: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Log files from paths and folders: a folder gives its ``*.json``/``*.jsonl`` files, recursively, sorted."""
    items = [logs] if isinstance(logs, (str, os.PathLike)) else list(logs)
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in LOG_SUFFIXES)
            if not found:
                raise InputError(path, f"a folder holding log files ({', '.join(LOG_SUFFIXES)})", got="none")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise InputError(path, "a log file or a folder of log files", got="nothing at that path")
    if not out:
        raise InputError("<logs>", "at least one log file or folder")
    return out


def diagnose_many(
    logs: str | os.PathLike | Sequence[str | os.PathLike | Run],
    *,
    policy: str | None = None,
    reference: str | None = None,
    beta: float | None = None,
    pairs: Any = None,
    aggregate: str = "sum",
    ranker: str = "most-negative",
    top_k: int = 5,
    window: int | None = None,
    min_context: int | None = None,
    chat_template: bool | str = "auto",
    format: str | None = None,
    dtype: str = "auto",
    device: str = "auto",
    device_map: str | None = None,
    max_batch_tokens: int | None = None,
    engine: Any = "local",
    engine_options: dict[str, Any] | None = None,
    group_size: int = 8,
    progress: bool = False,
    pair: str | None = None,
    allow_toy_pair: bool = False,
) -> list[Diagnosis]:
    """Diagnose many runs (files, folders, or :class:`Run` objects), one :class:`Diagnosis` each, in input order.

    Every run of every file is read and checked before any model loads; scoring runs on
    ``engine`` (``"local"``, ``"ray"`` with ``engine_options`` such as ``address``, ``workers``,
    ``gpus_per_worker``, or an :class:`attribution.engine.Engine`), ``group_size`` runs per call.
    Other parameters are those of :func:`diagnose`.
    """
    from attribution.engine import make_engine
    from attribution.parse import check_distinct_ids, load_runs

    if group_size < 1:
        raise ConfigError(f"The 'group_size' parameter must be at least 1. Got {group_size} instead.")
    items = [logs] if isinstance(logs, (str, os.PathLike, Run)) else list(logs)
    runs: list[Run] = [x for x in items if isinstance(x, Run)]
    paths = [x for x in items if not isinstance(x, Run)]
    for path in expand_logs(paths) if paths else []:
        runs.extend(load_runs(path, format=format))
    if paths:  # runs of several files sharing an id would share rows and emitted ids (eval refuses them too)
        check_distinct_ids(runs)
    for run in runs:
        if not run.action_indices:
            raise InputError(run.source or run.run_id, "at least one action step (an agent's own output)")
    aggregate_steps([], aggregate)
    rank([], ranker)
    engine = make_engine(engine, **(engine_options or {}))
    engine.check()
    scorer = make_scorer(
        policy=policy, reference=reference, beta=beta, pairs=pairs, window=window, min_context=min_context,
        chat_template=chat_template, dtype=dtype, device=engine.worker_device(device), device_map=device_map,
        max_batch_tokens=max_batch_tokens, check_device=not engine.remote, pair=pair, progress=progress and not engine.remote,
    )
    for run in runs:  # an agent no pair takes is reported before any model loads
        scorer.assign(run)
    from attribution.score.domain import check_domain

    domains = check_domain(runs, scorer, allow_toy_pair=allow_toy_pair)  # tokenizers only, before any model loads
    unique: dict[str, Run] = {}
    for run in runs:
        unique.setdefault(run.content_hash(), run)
    order = sorted(unique.values(), key=lambda r: (sum(len(s.content) for s in r.steps), r.content_hash()))
    groups = [order[g : g + group_size] for g in range(0, len(order), group_size)]
    scored: dict[str, Any] = {}
    with engine:
        for group in engine.score(scorer, groups, progress=progress):
            scored.update((s.run.content_hash(), s) for s in group)
    # The same text under another file name: its scores, ranked against this run's own labels and source.
    return [_diagnosis(run, scored[run.content_hash()], scorer, aggregate=aggregate, ranker=ranker, top_k=top_k, domain=dom)
            for run, dom in zip(runs, domains)]
