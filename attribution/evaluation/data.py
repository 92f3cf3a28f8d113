"""Labelled datasets for ``attribution eval``, loaded through Hugging Face ``datasets``.

Every source becomes one :class:`datasets.Dataset` with a fixed schema (:func:`features`):
``run_id``, ``subset``, ``source`` (file, line or hub row, named in errors) and ``record``
(the run's JSON text). The record stays JSON text because runs are heterogeneous (tool
calls, per-agent system prompts): an Arrow struct schema would fill missing keys with
nulls and change what the parser sees. :func:`runs_from_dataset` then turns each record
into a :class:`~attribution.types.Run` with :func:`attribution.parse.parse_run`, so labels
and step kinds are exactly those of ``attribution diagnose``.

Sources
-------
``"who-and-when"``
    The Who&When benchmark: from the hub (:data:`WHO_AND_WHEN_HUB`) when it is reachable,
    or from a local folder of its JSON files (``data_dir`` holding ``Algorithm-Generated/``
    and ``Hand-Crafted/``). Without ``data_dir`` on a machine that cannot reach the hub,
    loading fails at once with a message naming ``--data-dir``.
a path
    A file in any format ``attribution diagnose`` reads (``attribution formats``; ``format``
    forces one), e.g. the generic labelled format (``datasets/README.md``): a JSON list or JSONL
    file of runs ``{"id"?, "messages": [...], "mistake_step": int, "mistake_agent": str,
    "success"?: bool, "subset"?: str}``. A folder laid out like Who&When is read as Who&When;
    any other folder is read file by file (``*.json``, ``*.jsonl``). Runs keep the ids their
    reader gives them (the file's own run ids). Such records hold the parsed run
    (:meth:`~attribution.types.Run.to_dict`), marked ``format="run"``.

Labels can also come from a separate file (``labels``): JSON list or JSONL of
``{"run_id", "mistake_step"?: int, "mistake_id"?: str, "mistake_agent"?, "success"?}`` where
``mistake_id`` names the mistaken step by the log's own id (span id, message id, event id).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from attribution.errors import ConfigError, InputError
from attribution.io import json_error, parse_json
from attribution.types import Run

__all__ = [
    "WHO_AND_WHEN",
    "WHO_AND_WHEN_HUB",
    "SUBSETS",
    "COLUMNS",
    "features",
    "load_dataset",
    "runs_from_dataset",
    "load_runs_for_eval",
    "is_labelled",
    "apply_labels",
    "label_problems",
]

WHO_AND_WHEN = "who-and-when"
WHO_AND_WHEN_HUB = "Kevin355/Who_and_When"
#: Subset name -> the benchmark's folder name.
SUBSETS = {"algorithm-generated": "Algorithm-Generated", "hand-crafted": "Hand-Crafted"}
COLUMNS = ("run_id", "subset", "source", "record", "format")


def features():
    """The schema of every dataset :func:`load_dataset` returns: five string columns.

    ``format`` is ``"run"`` when ``record`` holds a parsed run (:meth:`Run.to_dict`), else
    ``""`` (a raw record, parsed by detection)."""
    from datasets import Features, Value

    return Features({c: Value("string") for c in COLUMNS})


def _subsets(subset: str) -> list[str]:
    if subset == "all":
        return list(SUBSETS)
    if subset not in SUBSETS:
        raise ConfigError(f"The 'subset' parameter must be one of {sorted(SUBSETS) + ['all']}. Got {subset!r} instead.")
    return [subset]


def load_dataset(
    dataset: str | Path = WHO_AND_WHEN,
    *,
    subset: str = "all",
    data_dir: str | Path | None = None,
    format: str | None = None,
):
    """Load labelled runs as a :class:`datasets.Dataset` of JSON records.

    Parameters
    ----------
    dataset : "who-and-when" or path
        The benchmark, or a file in the generic labelled format (JSON list or JSONL).
    subset : str, default "all"
        For Who&When, ``"all"``, ``"algorithm-generated"`` or ``"hand-crafted"``; for a file,
        keep only the records whose ``subset`` equals it.
    data_dir : path, optional
        A local copy of Who&When's JSON files; used instead of the hub when given.
    format : str, optional
        The log format of a file or folder of logs (detected per file when None).

    Returns
    -------
    datasets.Dataset
        Columns ``run_id``, ``subset``, ``source``, ``record``; ``info.description`` names the origin.

    Raises
    ------
    ConfigError
        Unknown subset, or Who&When without ``data_dir`` while the hub is unreachable.
    InputError
        A missing or unreadable file or folder.
    """
    if str(dataset) == WHO_AND_WHEN:
        names = _subsets(subset)
        if data_dir is not None:
            return _who_and_when_local(Path(data_dir), names)
        return _who_and_when_hub(names)
    path = Path(dataset).expanduser()
    if path.is_dir():
        if format in (None, "who-and-when") and any((path / SUBSETS[s]).is_dir() for s in SUBSETS):
            return _who_and_when_local(path, _subsets(subset))
        files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl", ".traj") and p.is_file())
        if not files:
            raise InputError(path, "a folder of logs (*.json, *.jsonl, *.traj), or one with Algorithm-Generated/ and Hand-Crafted/",
                             got="no such file in it")
        return _labelled_files(files, subset, format, f"folder of logs: {path}")
    if not path.exists():
        raise InputError(path, f"a labelled runs file (JSON or JSONL) or {WHO_AND_WHEN!r}", got="no such file")
    return _labelled_files([path], subset, format, f"labelled file: {path}")


def _from_rows(rows: list[dict[str, str]], origin: str):
    from datasets import Dataset, DatasetInfo

    return Dataset.from_list(rows, info=DatasetInfo(description=origin, features=features()))


def _who_and_when_local(root: Path, names: list[str]):
    rows = []
    for name in names:
        folder = root / SUBSETS[name]
        if not folder.is_dir():
            raise InputError(root, f"a Who&When folder holding {SUBSETS[name]}/ (the benchmark's JSON files)", got="no such folder")
        files = sorted(folder.glob("*.json"), key=lambda p: (0, int(p.stem), "") if p.stem.isdigit() else (1, 0, p.stem))
        if not files:
            raise InputError(folder, "Who&When JSON files (1.json, 2.json, ...)", got="an empty folder")
        for f in files:
            try:
                text = f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                raise InputError(f, "a readable UTF-8 JSON file", got=type(err).__name__) from err
            rows.append({"run_id": f.stem, "subset": name, "source": str(f), "record": text, "format": ""})
    return _from_rows(rows, f"who-and-when (local: {root})")


def _hub_config(configs: list[str], name: str) -> str:
    key = name.split("-")[0]  # "algorithm" / "hand"
    for c in configs:
        if c.lower().replace("_", "-").startswith(key):
            return c
    raise ConfigError(f"{WHO_AND_WHEN_HUB}: no configuration for subset {name!r} among {configs}")


def _drop_nulls(value: Any) -> Any:
    """Arrow fills keys missing from some rows with null; the parser must not see them."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _who_and_when_hub(names: list[str]):
    from attribution.hub import ensure_offline_if_unreachable

    if not ensure_offline_if_unreachable():
        raise ConfigError(
            f"{WHO_AND_WHEN_HUB}: the Hugging Face hub is unreachable; pass --data-dir with a local copy of "
            "Who&When's JSON files (e.g. ../shared/datasets/who_and_when)"
        )
    import datasets

    try:
        configs = datasets.get_dataset_config_names(WHO_AND_WHEN_HUB)
        rows = []
        for name in names:
            loaded = datasets.load_dataset(WHO_AND_WHEN_HUB, _hub_config(configs, name))
            splits = loaded.values() if isinstance(loaded, datasets.DatasetDict) else [loaded]
            k = 0
            for split in splits:
                for row in split:
                    record = _drop_nulls(dict(row))
                    source = f"{WHO_AND_WHEN_HUB}/{name}, row {k}"
                    rows.append({"run_id": str(k), "subset": name, "source": source, "record": json.dumps(record), "format": ""})
                    k += 1
    except ConfigError:
        raise
    except Exception as err:  # network and hub errors of many kinds
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"{WHO_AND_WHEN_HUB}: cannot load from the hub ({first}); pass --data-dir with a local copy") from err
    return _from_rows(rows, f"who-and-when (hub: {WHO_AND_WHEN_HUB})")


def _labelled_files(paths: list[Path], subset: str, format: str | None, origin: str):
    """Rows of parsed runs from log files of any registered format (one file may hold many runs)."""
    from attribution.parse import load_runs

    rows = []
    for path in paths:
        for run in load_runs(path, format):
            tag = run.meta.get("subset")
            if tag is not None and not isinstance(tag, str):
                raise InputError(f"{path}, run {run.run_id}", "'subset' to be a string", got=repr(tag))
            if subset != "all" and tag != subset:
                continue
            line = run.steps[0].origin.line
            if "position" in run.meta and line is not None:  # one run per JSONL line
                where = f"{run.source}, line {line}"
            elif "position" in run.meta or len(paths) > 1 or run.run_id != Path(run.source).stem:
                where = f"{run.source}, run {run.run_id}"
            else:
                where = run.source
            rows.append({"run_id": run.run_id, "subset": tag or "", "source": where,
                         "record": json.dumps(run.to_dict(), ensure_ascii=False), "format": "run"})
    if not rows:
        where = paths[0] if len(paths) == 1 else paths[0].parent
        raise InputError(where, f"runs whose 'subset' is {subset!r}" if subset != "all" else "at least one run")
    return _from_rows(rows, origin)


def runs_from_dataset(ds, *, require_labels: bool = True) -> list[Run]:
    """Parse each record of a dataset from :func:`load_dataset` into a labelled :class:`Run`.

    A record without any label (``mistake_step``, ``mistake_agent`` or ``success``) is an
    :class:`~attribution.errors.InputError`: it can be neither scored against nor counted.
    """
    from attribution.parse import parse_run
    from attribution.parse.who_and_when import is_run as is_who_and_when

    runs = []
    for row in ds:
        source = row["source"]
        try:
            obj = parse_json(row["record"], source)
        except json.JSONDecodeError as err:
            raise InputError(source, "valid JSON", got=json_error(err)) from err
        if row.get("format") == "run":
            run = dataclasses.replace(Run.from_dict(obj), source=source)
        else:
            run = parse_run(obj, source, run_id=row["run_id"])
        subset = row["subset"]
        if is_who_and_when(obj):
            if subset in SUBSETS and run.meta.get("subset") != subset:
                raise InputError(source, f"a {subset} run (it lies in {SUBSETS[subset]}/)", got=f"a {run.meta.get('subset')} run")
        elif subset:
            run.meta["subset"] = subset
        runs.append(run)
    if require_labels:
        _require_labels(runs)
    return runs


def is_labelled(run: Run) -> bool:
    """Whether ``run`` carries a label an evaluation can use: a mistake step or agent, or success."""
    return not (run.mistake_step is None and run.mistake_agent is None and run.success is None)


def _require_labels(runs: list[Run]) -> None:
    for run in runs:
        if not is_labelled(run):
            raise InputError(run.source or run.run_id, "a labelled run: 'mistake_step' and 'mistake_agent', or 'success' "
                             "(or a --labels file naming its run id)", got=f"no label on run {run.run_id}")


def apply_labels(runs: list[Run], path: str | Path) -> list[Run]:
    """Runs with the labels of a labels file (see the module docstring) set, matched by run id.

    Raises
    ------
    InputError
        A label for an unknown run id, a ``mistake_id`` no step of the run carries, or a bad value.
    """
    from attribution.parse import read_json
    from attribution.parse.chat import as_index

    value, lines = read_json(path)
    records = value if isinstance(value, list) else [value]
    by_id = {r.run_id: r for r in runs}
    out = dict(by_id)
    given: dict[str, tuple[tuple, str]] = {}  # run id -> (its labels, where), to refuse a second, different record
    for k, rec in enumerate(records):
        where = f"{path}, line {lines[k]}" if lines else f"{path}, label {k}"
        if not isinstance(rec, dict) or not isinstance(rec.get("run_id"), str):
            raise InputError(where, "a label object with a string 'run_id'", got=repr(rec)[:60])
        run = by_id.get(rec["run_id"])
        if run is None:
            raise InputError(where, "a run_id of a run in the dataset", got=repr(rec["run_id"]))
        step = rec.get("mistake_step")
        if step is not None:
            step = as_index(step, where)
            if step >= len(run.steps):
                raise InputError(where, f"mistake_step to index one of the {len(run.steps)} steps of {run.run_id}", got=repr(step))
        if rec.get("mistake_id") is not None:
            hits = [s.index for s in run.steps if s.origin.id == str(rec["mistake_id"])]
            if not hits:
                raise InputError(where, f"mistake_id naming a step of run {run.run_id} by its own id", got=repr(rec["mistake_id"]))
            step = hits[-1] if step is None else step  # one record can give several steps: the last is the output
        agent, success = rec.get("mistake_agent"), rec.get("success")
        if agent is not None and not isinstance(agent, str):
            raise InputError(where, "mistake_agent to be a string", got=repr(agent))
        if success is not None and not isinstance(success, bool):
            raise InputError(where, "the success label to be true or false", got=repr(success))
        label = (step, agent, success)
        if run.run_id in given and given[run.run_id][0] != label:
            first, at = given[run.run_id]
            raise InputError(where, f"one label per run id; run {run.run_id!r} is labelled differently at {at}",
                             got=f"mistake_step {step!r}, mistake_agent {agent!r}, success {success!r} here against "
                                 f"{first[0]!r}, {first[1]!r}, {first[2]!r} there")
        given.setdefault(run.run_id, (label, where.removeprefix(f"{path}, ")))
        out[run.run_id] = dataclasses.replace(
            run,
            mistake_step=step if step is not None else run.mistake_step,
            mistake_agent=agent if agent is not None else run.mistake_agent,
            success=success if success is not None else run.success,
        )
    return [out[r.run_id] for r in runs]


def label_problems(runs: list[Run]) -> dict[str, Any]:
    """What in the labels no method can get right, or that deserves a look.

    Returns counts and run ids: ``gold_observation`` (the labelled step is an observation: no
    attribution over actions can hit it), ``agent_mismatch`` (``mistake_agent`` is not the speaker
    at ``mistake_step``; ``agent_mismatch_case_only`` when they differ only in case) and
    ``duplicate_content`` (runs whose steps are identical to an earlier run's).
    """
    gold_obs, mismatch, case_only, dups = [], [], [], []
    seen: dict[str, str] = {}
    for run in runs:
        if run.mistake_step is not None:
            gold = run.steps[run.mistake_step]
            if not gold.is_action:
                gold_obs.append(run.run_id)
            if run.mistake_agent is not None and run.mistake_agent != gold.agent:
                (case_only if run.mistake_agent.lower() == gold.agent.lower() else mismatch).append(run.run_id)
        h = run.content_hash()
        if h in seen:
            dups.append(f"{run.run_id} = {seen[h]}")
        else:
            seen[h] = run.run_id
    return {
        "gold_observation": {"n": len(gold_obs), "runs": gold_obs},
        "agent_mismatch": {"n": len(mismatch), "runs": mismatch},
        "agent_mismatch_case_only": {"n": len(case_only), "runs": case_only},
        "duplicate_content": {"n": len(dups), "runs": dups},
    }


def load_runs_for_eval(
    dataset: str | Path = WHO_AND_WHEN,
    *,
    subset: str = "all",
    data_dir: str | Path | None = None,
    format: str | None = None,
    labels: str | Path | None = None,
    actors: tuple[str, ...] = (),
    observers: tuple[str, ...] = (),
    require_labels: bool = True,
    skipped: list[Run] | None = None,
) -> tuple[list[Run], str]:
    """:func:`load_dataset`, :func:`runs_from_dataset`, :func:`~attribution.parse.apply_roles` (agent
    globs made actions / observations), then :func:`apply_labels`; also returns the origin's
    description. Run ids must be distinct. With ``require_labels`` every run must carry a label;
    without, unlabelled runs are left out (and appended to ``skipped`` when it is given)."""
    from attribution.parse import apply_roles, check_distinct_ids

    ds = load_dataset(dataset, subset=subset, data_dir=data_dir, format=format)
    runs = [apply_roles(r, actors, observers) for r in runs_from_dataset(ds, require_labels=False)]
    check_distinct_ids(runs)
    if labels is not None:
        runs = apply_labels(runs, labels)
    if require_labels:
        _require_labels(runs)
    else:
        if skipped is not None:
            skipped.extend(r for r in runs if not is_labelled(r))
        runs = [r for r in runs if is_labelled(r)]
    return runs, ds.info.description or str(dataset)
