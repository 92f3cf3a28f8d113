"""The Who&When benchmark (ICML 2025), both subsets, told apart by the entries.

A file is an object with ``history`` and labels (``mistake_step``, a string holding a
0-based index into ``history``; ``mistake_agent``; ``is_correct`` or
``is_corrected``; ``question``). :func:`detect` recognises it by the labels only
Who&When has (``is_correct``, ``is_corrected``, ``question_ID``, ``mistake_reason``);
an unlabelled ``history`` of plain messages is read as chat instead.

Algorithm-Generated (CaptainAgent / AG2; every entry has a ``name``)
    The speaker is ``name``; ``role`` (``user`` / ``assistant``) is AG2's point of
    view and is kept only as the raw role. ``Computer_terminal`` is the code
    executor, so its steps are observations; every other speaker is an agent and
    its steps are actions, names kept. There is no human speaker in the 126 files:
    step 0 is always the task and the manager's plan, sent by the first expert,
    and it is an action because it is labelled as that expert's mistake in 20 runs.
Hand-Crafted (Magentic-One; entries have no ``name``)
    The speaker is ``role``, with an optional suffix: ``(thought)``,
    ``(termination condition)`` or ``(-> X)``, which also sets ``Step.to = "X"``.
    ``human`` (step 0, the question) and ``ComputerTerminal`` (the output of the
    code it ran) are observations; ``Orchestrator``, ``WebSurfer``, ``FileSurfer``,
    ``Assistant`` and any other agent are actions, even where their text describes
    a web page: it is their own report. Any other suffix, or a bare chat role such
    as ``user``, is an error rather than a guess.

``run_id`` is ``"algorithm-generated/<stem>"`` or ``"hand-crafted/<stem>"``;
``run.meta`` keeps ``subset`` and the file's other keys (``ground_truth``,
``mistake_reason``, ``system_prompt``, ...).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from attribution.errors import InputError
from attribution.parse.chat import ROLES, build_run, check_one_thread
from attribution.parse.common import pointer, read_each
from attribution.types import ACTION, OBSERVATION, Origin, Run, Step

__all__ = ["NAME", "DESCRIPTION", "ACTIONS", "IDS", "OBSERVERS", "detect", "read", "parse", "parse_one", "split_role"]

NAME = "who-and-when"
DESCRIPTION = "Who&When benchmark runs (ICML 2025): 'history' plus mistake labels, Algorithm-Generated and Hand-Crafted"
ACTIONS = ("every speaker's entries are actions except Computer_terminal / ComputerTerminal (code output) and "
           "human (the question), which are observations")
IDS = "no record ids in the format; JSON pointer /history/N"

#: Speakers whose steps are observations: the code executors and the human.
OBSERVERS = frozenset({"Computer_terminal", "ComputerTerminal", "human"})
_MARKERS = ("is_correct", "is_corrected", "question_ID", "mistake_reason")
_LABELS = {"history", "question", "mistake_step", "mistake_agent", "is_correct", "is_corrected"}
_ROLE = re.compile(r"(?P<agent>[^()]*[^()\s])(?: \((?:thought|termination condition|-> (?P<to>[^()]+))\))?")


def is_run(obj: Any) -> bool:
    """Whether ``obj`` is a Who&When run: an object with ``history`` and Who&When labels."""
    return isinstance(obj, dict) and "history" in obj and any(k in obj for k in _MARKERS)


def detect(value: Any) -> float:
    """1.0 for a Who&When run or a list of them (the labels are the format's own markers), else 0."""
    if is_run(value):
        return 1.0
    if isinstance(value, list) and value and all(is_run(x) for x in value):
        return 1.0
    return 0.0


def read(value: Any, source: str, *, lines: list[int] | None = None) -> list[Run]:
    """One run, or every run of a list (JSON or JSONL) of Who&When objects."""
    if not isinstance(value, list):
        return [parse_one(value, source)]
    return read_each(value, source, lines, lambda item, where, default_id, base, line: parse_one(
        item, where, run_id=default_id, line=line, base=base))


def split_role(role: str) -> tuple[str, str | None] | None:
    """Split a Magentic-One role into ``(agent, to)``; None if it does not parse.

    Examples
    --------
    >>> split_role("Orchestrator (-> WebSurfer)")
    ('Orchestrator', 'WebSurfer')
    >>> split_role("Orchestrator (thought)")
    ('Orchestrator', None)
    >>> split_role("Orchestrator (daydream)") is None
    True
    """
    m = _ROLE.fullmatch(role)
    return (m["agent"], m["to"]) if m else None


def parse(obj: Any, source: str, run_id: str | None = None) -> Run:
    """Alias of :func:`parse_one`."""
    return parse_one(obj, source, run_id=run_id)


def parse_one(obj: Any, source: str, run_id: str | None = None, *, line: int | None = None, base: tuple = ()) -> Run:
    """Parse one Who&When run.

    Parameters
    ----------
    obj : dict
        The loaded JSON object (``history`` plus labels).
    source : str
        Where it came from; named in every error and kept as ``run.source``.
    run_id : str, optional
        The part after the subset prefix; default: the stem of ``source``.

    Returns
    -------
    Run
        ``format="who-and-when"``, ``meta["subset"]`` is ``"algorithm-generated"``
        or ``"hand-crafted"``.

    Raises
    ------
    InputError
        On a wrong shape, a step without a speaker or content, an unknown role
        suffix, bad labels, an empty run or a run without any action step.
    """
    history = obj.get("history") if isinstance(obj, dict) else None
    if isinstance(obj, dict):
        check_one_thread(obj, source)
    if not isinstance(history, list):
        raise InputError(source, "a Who&When object with a 'history' list")
    if not history:
        raise InputError(source, "at least one step in 'history'", got="an empty history")
    for i, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise InputError(source, "a history entry {content, role, name?}", step=i, got=type(entry).__name__)
        if not isinstance(entry.get("content"), str):
            got = "no content" if entry.get("content") is None else type(entry["content"]).__name__
            raise InputError(source, "'content' to be a string", step=i, got=got)

    generated = "name" in history[0]
    subset = "algorithm-generated" if generated else "hand-crafted"
    steps = [(_generated_step if generated else _handcrafted_step)(e, i, source) for i, e in enumerate(history)]
    steps = [dataclasses.replace(s, origin=Origin(pointer=pointer(*base, "history", s.index), line=line)) for s in steps]
    success = obj.get("is_correct", obj.get("is_corrected"))
    return build_run(
        steps,
        source=source,
        run_id=f"{subset}/{run_id or Path(source).stem}",
        format="who-and-when",
        question=obj.get("question"),
        mistake_step=obj.get("mistake_step"),
        mistake_agent=obj.get("mistake_agent"),
        success=success,
        meta={"subset": subset, **{k: v for k, v in obj.items() if k not in _LABELS}},
    )


def _generated_step(entry: dict[str, Any], i: int, source: str) -> Step:
    name = entry.get("name")
    if not (isinstance(name, str) and name):
        raise InputError(source, "a 'name' naming the speaker (Algorithm-Generated entries)", step=i, got=repr(name))
    kind = OBSERVATION if name in OBSERVERS else ACTION
    return Step(index=i, agent=name, role=str(entry.get("role", "")), kind=kind, content=entry["content"])


def _handcrafted_step(entry: dict[str, Any], i: int, source: str) -> Step:
    role = entry.get("role")
    parts = split_role(role) if isinstance(role, str) and role not in ROLES else None
    if parts is None:
        raise InputError(
            source,
            "a Magentic-One role: 'Agent', 'Agent (thought)', 'Agent (-> Other)' or 'Agent (termination condition)'",
            step=i,
            got=repr(role),
        )
    agent, to = parts
    kind = OBSERVATION if agent in OBSERVERS else ACTION
    return Step(index=i, agent=agent, role=role, kind=kind, content=entry["content"], to=to)
