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
    The generic labelled format (``datasets/README.md``): a JSON list or JSONL file of runs
    ``{"id"?, "messages": [...], "mistake_step": int, "mistake_agent": str, "success"?: bool,
    "subset"?: str}``. A folder laid out like Who&When is read as Who&When.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from attribution.errors import ConfigError, InputError
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
]

WHO_AND_WHEN = "who-and-when"
WHO_AND_WHEN_HUB = "Kevin355/Who_and_When"
#: Subset name -> the benchmark's folder name.
SUBSETS = {"algorithm-generated": "Algorithm-Generated", "hand-crafted": "Hand-Crafted"}
COLUMNS = ("run_id", "subset", "source", "record")


def features():
    """The schema of every dataset :func:`load_dataset` returns: four string columns."""
    from datasets import Features, Value

    return Features({c: Value("string") for c in COLUMNS})


def _subsets(subset: str) -> list[str]:
    if subset == "all":
        return list(SUBSETS)
    if subset not in SUBSETS:
        raise ConfigError(f"The 'subset' parameter must be one of {sorted(SUBSETS) + ['all']}. Got {subset!r} instead.")
    return [subset]


def load_dataset(dataset: str | Path = WHO_AND_WHEN, *, subset: str = "all", data_dir: str | Path | None = None):
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
        if any((path / SUBSETS[s]).is_dir() for s in SUBSETS):
            return _who_and_when_local(path, _subsets(subset))
        raise InputError(path, "a labelled runs file (JSON or JSONL), or a folder with Algorithm-Generated/ and Hand-Crafted/")
    if not path.exists():
        raise InputError(path, f"a labelled runs file (JSON or JSONL) or {WHO_AND_WHEN!r}", got="no such file")
    return _labelled_file(path, subset)


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
            rows.append({"run_id": f.stem, "subset": name, "source": str(f), "record": text})
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
                    rows.append({"run_id": str(k), "subset": name, "source": source, "record": json.dumps(record)})
                    k += 1
    except ConfigError:
        raise
    except Exception as err:  # network and hub errors of many kinds
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"{WHO_AND_WHEN_HUB}: cannot load from the hub ({first}); pass --data-dir with a local copy") from err
    return _from_rows(rows, f"who-and-when (hub: {WHO_AND_WHEN_HUB})")


def _labelled_file(path: Path, subset: str):
    from attribution.parse import read_json

    obj, lines = read_json(path)
    many = isinstance(obj, list) and bool(obj) and all(isinstance(x, dict) and ("messages" in x or "history" in x) for x in obj)
    items = obj if many else [obj]
    rows = []
    for k, item in enumerate(items):
        where = f"{path}, line {lines[k]}" if many and lines else (f"{path}, run {k}" if many else str(path))
        tag = item.get("subset") if isinstance(item, dict) else None
        if tag is not None and not isinstance(tag, str):
            raise InputError(where, "'subset' to be a string", got=repr(tag))
        if subset != "all" and tag != subset:
            continue
        rows.append({"run_id": f"{path.stem}/{k}" if many else path.stem, "subset": tag or "", "source": where,
                     "record": json.dumps(item, ensure_ascii=False)})
    if not rows:
        raise InputError(path, f"runs whose 'subset' is {subset!r}" if subset != "all" else "at least one run")
    return _from_rows(rows, f"labelled file: {path}")


def runs_from_dataset(ds) -> list[Run]:
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
            obj = json.loads(row["record"])
        except json.JSONDecodeError as err:
            raise InputError(source, "valid JSON", got=f"{err.msg} at line {err.lineno}, column {err.colno}") from err
        run = parse_run(obj, source, run_id=row["run_id"])
        subset = row["subset"]
        if is_who_and_when(obj):
            if subset in SUBSETS and run.meta.get("subset") != subset:
                raise InputError(source, f"a {subset} run (it lies in {SUBSETS[subset]}/)", got=f"a {run.meta.get('subset')} run")
        elif subset:
            run.meta["subset"] = subset
        if run.mistake_step is None and run.mistake_agent is None and run.success is None:
            raise InputError(source, "a labelled run: 'mistake_step' and 'mistake_agent', or 'success'", got="no label")
        runs.append(run)
    return runs


def load_runs_for_eval(dataset: str | Path = WHO_AND_WHEN, *, subset: str = "all", data_dir: str | Path | None = None) -> tuple[list[Run], str]:
    """:func:`load_dataset` then :func:`runs_from_dataset`; also returns the origin's description."""
    ds = load_dataset(dataset, subset=subset, data_dir=data_dir)
    return runs_from_dataset(ds), ds.info.description or str(dataset)
