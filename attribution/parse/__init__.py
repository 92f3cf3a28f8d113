"""Read multi-agent run logs into :class:`attribution.types.Run` objects.

One module per format, registered by name in :data:`READERS`. Each reader module exposes

``NAME``
    the format's name (``--format NAME``);
``DESCRIPTION``
    one line: what the format is and where it comes from;
``ACTIONS``
    one line: what is an action (scored) and what is an observation (context), for this format;
``IDS``
    one line: which of the format's ids each step keeps (``Step.origin``);
``detect(value) -> float``
    how confident the reader is that ``value`` (the loaded file: a JSON value, or for JSONL the
    list of the lines' values) is its format, in [0, 1]. By convention 1.0 means a marker only
    this format has (``resourceSpans``, ``openinference.span.kind``, Who&When's labels), about
    0.8 a distinctive shape, about 0.5 a generic one (plain chat messages), 0 not this format;
``read(value, source, *, lines=None) -> list[Run]``
    every run in ``value``. ``lines`` holds, for JSONL, the 1-based line of each item of
    ``value``. Errors are :class:`~attribution.errors.InputError` naming the file, the record
    (line, span id, event id) and what was expected; doubts are one-line
    :class:`~attribution.errors.ParseWarning`\\ s, never silence.

With ``format=None`` the most confident reader is used; when none recognises the value, the
error names the formats tried and the top-level keys found. ``attribution formats`` prints the
table (:func:`format_table`).

After reading, :func:`apply_roles` can override kinds by agent glob (``--actor`` /
``--observer``), and :func:`check_run` warns about what is read but suspicious (an
executor-like speaker being scored, a label on an observation, a ``mistake_agent`` that is not
the speaker at ``mistake_step``).
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable, Sequence

from attribution.errors import ConfigError, InputError
from attribution.io import MAX_DEPTH, json_error, parse_json  # noqa: F401 (MAX_DEPTH: kept importable from here)
from attribution.parse import (
    autogen,
    chat,
    common,
    langchain,
    magentic_one,
    openai_agents,
    openhands,
    otel,
    smolagents,
    swe_agent,
    tau_bench,
    who_and_when,
)
from attribution.types import ACTION, OBSERVATION, Run

__all__ = [
    "READERS",
    "FORMATS",
    "detect_format",
    "read_runs",
    "parse_run",
    "parse_runs",
    "load_run",
    "load_runs",
    "prepare_runs",
    "read_json",
    "apply_roles",
    "check_run",
    "format_table",
    "check_distinct_ids",
]

#: Reader modules by format name, in the order detection asks them (ties go to the first).
READERS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (who_and_when, otel, autogen, langchain, smolagents, openai_agents, openhands, swe_agent, tau_bench,
              magentic_one, chat)
}
#: Backwards-compatible alias of :data:`READERS`.
FORMATS = READERS


def _reader(format: str) -> ModuleType:
    try:
        return READERS[format]
    except KeyError:
        near = difflib.get_close_matches(str(format), READERS, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(f"Unknown format {format!r}; known formats: {', '.join(sorted(READERS))}{hint}") from None


def detect_format(value: Any, source: str = "<memory>") -> str:
    """The name of the most confident reader of ``value``.

    Raises
    ------
    InputError
        When no reader recognises the value: names the formats tried and the keys found.
    """
    if value == [] or value == {}:
        raise InputError(source, "at least one step", got="an empty run")
    best, best_conf = None, 0.0
    for name, mod in READERS.items():
        conf = float(mod.detect(value))
        if conf > best_conf:
            best, best_conf = name, conf
    if best is None:
        raise InputError(
            source,
            f"a run log in one of the known formats ({', '.join(READERS)})",
            got=_top_level(value),
        )
    return best


def _top_level(value: Any) -> str:
    if isinstance(value, dict):
        return f"an object with top-level keys {sorted(map(str, value))[:12]}"
    if isinstance(value, list):
        first = next((x for x in value if x is not None), None)
        inner = f"; first item {_top_level(first)}" if isinstance(first, (dict, list)) else ""
        return f"a list of {len(value)} item(s){inner}"
    return common.describe(value)


def read_runs(value: Any, source: str = "<memory>", format: str | None = None, *, lines: list[int] | None = None) -> list[Run]:
    """Every run in an already-loaded value (``format`` detected when None)."""
    mod = _reader(format) if format is not None else READERS[detect_format(value, source)]
    runs = mod.read(value, source, lines=lines)
    if not runs:
        raise InputError(source, f"at least one run ({mod.NAME} format)", got="no runs")
    return runs


def parse_runs(obj: Any, source: str = "<memory>", format: str | None = None, *, lines: list[int] | None = None) -> list[Run]:
    """Alias of :func:`read_runs` (kept for existing callers)."""
    return read_runs(obj, source, format, lines=lines)


def parse_run(obj: Any, source: str = "<memory>", format: str | None = None, *, run_id: str | None = None) -> Run:
    """Parse one run from an already-loaded JSON value.

    Parameters
    ----------
    obj : list or dict
        A list of chat messages, or an object with ``messages`` / ``history``, or any value a
        registered reader recognises that holds exactly one run.
    source : str, default "<memory>"
        Named in errors and kept as ``run.source``.
    format : str, optional
        A key of :data:`READERS`; detected when None.
    run_id : str, optional
        Used when the run names no id; default: the reader's own (often the stem of ``source``).

    Raises
    ------
    ConfigError
        If ``format`` is not a known format.
    InputError
        If ``obj`` is not a valid run of that format, or holds several runs.

    Examples
    --------
    >>> run = parse_run([{"role": "user", "content": "2+2?"},
    ...                  {"role": "assistant", "name": "solver", "content": "5"}])
    >>> [(s.agent, s.kind) for s in run.steps]
    [('user', 'observation'), ('solver', 'action')]
    """
    mod = _reader(format) if format is not None else READERS[detect_format(obj, source)]
    if mod is chat or mod is who_and_when:
        if isinstance(obj, list) and (chat._is_many(obj, source) or mod is who_and_when):
            raise InputError(source, "one run (use parse_runs for a list of runs)", got=f"{len(obj)} runs")
        return mod.parse_one(obj, source, run_id=run_id)
    runs = read_runs(obj, source, mod.NAME)
    if len(runs) != 1:
        raise InputError(source, "one run (use parse_runs for a value holding several)", got=f"{len(runs)} runs")
    return runs[0]


def load_runs(
    path: str | Path,
    format: str | None = None,
    *,
    actors: Sequence[str] = (),
    observers: Sequence[str] = (),
) -> list[Run]:
    """Read every run of a JSON or JSONL file (a one-run file gives a list of one).

    ``actors`` / ``observers`` are agent-name globs whose steps become actions / observations
    (see :func:`apply_roles`); every run is then checked (:func:`check_run`).
    """
    if format is not None:
        _reader(format)  # a bad name is reported before the file is read
    obj, lines = read_json(path)
    return prepare_runs(read_runs(obj, str(path), format, lines=lines), str(path), actors=actors, observers=observers)


def prepare_runs(runs: Sequence[Run], source: str, *, actors: Sequence[str] = (), observers: Sequence[str] = ()) -> list[Run]:
    """What :func:`load_runs` does after reading, for runs read from elsewhere (a trace store's
    answer): ``--actor``/``--observer`` roles applied, ids checked unique, each run checked."""
    runs = [apply_roles(r, actors, observers) for r in runs]
    _check_unique_ids(runs, source)
    for r in runs:
        check_run(r)
    return runs


def load_run(
    path: str | Path,
    format: str | None = None,
    *,
    run_id: str | None = None,
    actors: Sequence[str] = (),
    observers: Sequence[str] = (),
) -> Run:
    """Read one run from a file: the only one, or the one whose id is ``run_id``.

    Raises
    ------
    ConfigError
        If ``format`` is not a known format.
    InputError
        If the file is missing, not JSON, not a run, holds several runs and no ``run_id`` is
        given (the message lists the ids), or holds no run with that id.
    """
    runs = load_runs(path, format, actors=actors, observers=observers)
    if run_id is not None:
        hit = [r for r in runs if r.run_id == run_id]
        if not hit:
            raise InputError(path, f"a run with id {run_id!r}", got=f"ids {_ids(runs)}")
        return hit[0]
    if len(runs) != 1:
        raise InputError(path, "one run (pass --run ID to pick one, or --all)", got=f"{len(runs)} runs: {_ids(runs)}")
    return runs[0]


def _ids(runs: Sequence[Run], most: int = 5) -> str:
    ids = [r.run_id for r in runs]
    return ", ".join(ids[:most]) + (f", ... ({len(ids) - most} more)" if len(ids) > most else "")


def _check_unique_ids(runs: Sequence[Run], source: str) -> None:
    seen: set[str] = set()
    for r in runs:
        if r.run_id in seen:
            raise InputError(source, "runs with distinct ids", got=f"run id {r.run_id!r} twice")
        seen.add(r.run_id)


def check_distinct_ids(runs: Sequence[Run]) -> None:
    """Refuse runs of several files that share a run id (rows, cache entries and emitted ids would
    collide): the error names the second file and the first."""
    seen: dict[str, str] = {}
    for r in runs:
        if r.run_id in seen:
            raise InputError(r.source or r.run_id, "runs with distinct ids",
                             got=f"run id {r.run_id!r} also in {seen[r.run_id]}")
        seen[r.run_id] = r.source or r.run_id


def read_json(path: str | Path) -> tuple[Any, list[int] | None]:
    """Load a JSON or JSONL file; a file (not ``.jsonl``) of JSON objects one after another, each over
    several lines (the OpenTelemetry SDK's console exporter), is read as JSONL is.

    Returns
    -------
    value : Any
        The JSON value; for JSONL, the list of the lines' values.
    lines : list of int or None
        For JSONL (and a stream of objects), the 1-based (first) line of each value; None for JSON.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, "a readable UTF-8 JSON or JSONL file", got=type(err).__name__) from err
    if not text.strip():
        raise InputError(path, "a JSON or JSONL run", got="an empty file")
    if path.suffix != ".jsonl":
        try:
            return parse_json(text, path), None
        except json.JSONDecodeError as err:
            if err.msg != "Extra data":  # several values: read as JSONL below
                raise InputError(path, "valid JSON", got=json_error(err)) from err
    values, lines = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                values.append(parse_json(line, f"{path}, line {n}"))
            except json.JSONDecodeError as err:
                got = json_error(err, n)
                if path.suffix == ".jsonl":
                    raise InputError(path, "one JSON value per line (JSONL)", got=got) from err
                stream = _json_stream(text, path)
                if stream is not None:  # pretty-printed values one after another (an OTel console dump)
                    return stream
                raise InputError(path, "one JSON value per line (JSONL), or JSON objects one after another "
                                       "(as the OpenTelemetry SDK's console exporter prints spans)", got=got) from err
            lines.append(n)
    return values, lines


def _json_stream(text: str, path: Path) -> tuple[list[Any], list[int]] | None:
    """JSON objects or lists one after another, each over any number of lines (the OpenTelemetry SDK's
    ``ConsoleSpanExporter`` prints ``span.to_json()`` so): the values and each one's first line, or
    None when the text is not such a stream."""
    decoder = json.JSONDecoder()
    values, lines = [], []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            break
        if text[pos] not in "{[":
            return None
        try:
            _, stop = decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError):
            return None
        line = text.count("\n", 0, pos) + 1
        values.append(parse_json(text[pos:stop], f"{path}, line {line}"))
        lines.append(line)
        pos = stop
    return (values, lines) if len(values) > 1 else None


# -- roles: overrides and checks ---------------------------------------------------------------

#: Speaker names that look like a code executor, a terminal or a tool: scoring them is suspicious.
_EXECUTOR = re.compile(r"(terminal|executor|executer|interpreter|console|shell|sandbox|computer_?tool|tool_?output)", re.I)


def apply_roles(run: Run, actors: Iterable[str] = (), observers: Iterable[str] = ()) -> Run:
    """A copy of ``run`` whose steps by agents matching ``observers`` / ``actors`` globs are
    observations / actions (``fnmatch``, case-sensitive; an agent matching both is an error).

    Examples
    --------
    >>> from attribution.types import Step
    >>> run = Run([Step(0, "coder", "assistant", "action", "x"), Step(1, "executor", "user", "action", "1")], "r")
    >>> [s.kind for s in apply_roles(run, observers=["exec*"]).steps]
    ['action', 'observation']
    """
    actors, observers = list(actors), list(observers)
    if not actors and not observers:
        return run
    steps = []
    for s in run.steps:
        a = any(fnmatch.fnmatchcase(s.agent, g) for g in actors)
        o = any(fnmatch.fnmatchcase(s.agent, g) for g in observers)
        if a and o:
            raise ConfigError(f"agent {s.agent!r} matches both an --actor and an --observer pattern")
        kind = ACTION if a else OBSERVATION if o else s.kind
        steps.append(s if kind == s.kind else dataclasses.replace(s, kind=kind))
    if not any(s.is_action and s.content.strip() for s in steps):
        raise InputError(run.source or run.run_id, "at least one action step after --actor/--observer",
                         got="every step is an observation")
    return dataclasses.replace(run, steps=steps)


def check_run(run: Run) -> list[str]:
    """Warn (one :class:`~attribution.errors.ParseWarning` each) about what is read but doubtful;
    returns the messages.

    - an executor-, terminal- or tool-like speaker whose steps are scored as actions;
    - a gold ``mistake_step`` that is an observation (no method that scores actions can hit it);
    - a ``mistake_agent`` that is not the speaker at ``mistake_step`` (noting a case-only difference);
    - a run with a single action step (nothing to rank).
    """
    source = run.source or run.run_id
    record = f"run {run.run_id}" if "position" in run.meta else None
    out: list[str] = []

    def say(msg: str, step: int | None = None) -> None:
        out.append(msg)
        common.warn(source, msg, step=step, record=record)

    flagged: set[str] = set()
    for s in run.steps:
        if s.is_action and s.agent not in flagged and _EXECUTOR.search(s.agent):
            flagged.add(s.agent)
            say(f"agent {s.agent!r} looks like an executor or tool but its steps are scored as actions "
                f"(pass --observer {s.agent!r} if it only relays output)", step=s.index)
    if run.mistake_step is not None and run.mistake_step < len(run.steps):
        gold = run.steps[run.mistake_step]
        if not gold.is_action:
            say(f"the labelled mistake_step is an observation by {gold.agent!r}; no attribution over actions can hit it",
                step=gold.index)
        if run.mistake_agent is not None and run.mistake_agent != gold.agent:
            case = " (they differ only in case)" if run.mistake_agent.lower() == gold.agent.lower() else ""
            say(f"mistake_agent {run.mistake_agent!r} is not the speaker {gold.agent!r} of mistake_step{case}",
                step=gold.index)
    if len(run.action_indices) == 1:
        say("the run has a single action step: there is nothing to rank it against")
    return out


def format_table() -> list[dict[str, str]]:
    """One row per registered format: name, description, actions rule, ids kept."""
    return [
        {"name": name, "description": mod.DESCRIPTION, "actions": mod.ACTIONS, "ids": mod.IDS}
        for name, mod in READERS.items()
    ]
