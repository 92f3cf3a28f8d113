"""Magentic-One logs as a bare list of ``{"role", "content"}``: Who&When's Hand-Crafted roles, no wrapper.

The roles are Magentic-One's speakers as Who&When's Hand-Crafted subset writes them:
``Orchestrator (thought)``, ``Orchestrator (-> WebSurfer)``, ``Orchestrator (termination
condition)``, ``WebSurfer``, ``FileSurfer``, ``Coder``, ``Assistant``, ``ComputerTerminal``,
``human``. The rules are Who&When's, imported from :mod:`attribution.parse.who_and_when`
(:func:`~attribution.parse.who_and_when.split_role`, :data:`~attribution.parse.who_and_when.OBSERVERS`):

==========================================  ===========  =================================
role                                        kind         agent, ``to``
==========================================  ===========  =================================
``human``, ``ComputerTerminal``,            observation  the role (the question; the output
``Computer_terminal``                                    of the code the terminal ran)
``Agent``, ``Agent (thought)``,             action       ``Agent``
``Agent (termination condition)``
``Agent (-> Other)``                        action       ``Agent``, ``Step.to = "Other"``
==========================================  ===========  =================================

A bare chat role (``user``, ``assistant``...) or any other suffix is an error, not a guess.
Given as a JSON list, or one message per JSONL line. :func:`detect` claims a list only when
its roles are Magentic-One-shaped (a role with one of the suffixes above: 1.0; else a known
Magentic-One agent name among the roles: 0.8), so that plain chat is never taken. There are no
labels and no record ids: the run id is the file's stem, steps keep their JSON pointer (or line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attribution.errors import InputError
from attribution.parse.chat import ROLES, build_run
from attribution.parse.common import describe, pointer
from attribution.parse.who_and_when import OBSERVERS, split_role
from attribution.types import ACTION, OBSERVATION, Origin, Run, Step

__all__ = ["NAME", "DESCRIPTION", "ACTIONS", "IDS", "AGENTS", "detect", "read"]

NAME = "magentic-one"
DESCRIPTION = ("Magentic-One logs as a bare list of {role, content} with Who&When Hand-Crafted roles "
               "('Orchestrator (-> WebSurfer)')")
ACTIONS = ("every speaker's messages are actions (Orchestrator, WebSurfer, FileSurfer, Coder, ...) except "
           "human (the question) and ComputerTerminal (code output), which are observations; '(-> X)' hands off to X")
IDS = "no record ids in the format; JSON pointer /N (JSONL: line)"

#: Magentic-One's agent names (autogen's magentic-one team and Who&When's Hand-Crafted logs).
AGENTS = frozenset({"Orchestrator", "MagenticOneOrchestrator", "WebSurfer", "FileSurfer", "Coder", "Assistant",
                    "ComputerTerminal"})


def _roles(value: Any) -> list[str] | None:
    """The roles of a bare list of {role, content} messages, or None if it is not one."""
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m for m in value):
        return None
    return [m["role"] for m in value]


def detect(value: Any) -> float:
    """1.0 when a role carries a Magentic-One suffix (``(thought)``, ``(-> X)``, ``(termination
    condition)``), 0.8 when no role is a chat role and one is a Magentic-One agent name, else 0.

    Examples
    --------
    >>> detect([{"role": "human", "content": "q"}, {"role": "Orchestrator (-> WebSurfer)", "content": "look"}])
    1.0
    >>> detect([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
    0.0
    """
    roles = _roles(value)
    if roles is None:
        return 0.0
    if any("(" in r and split_role(r) for r in roles):
        return 1.0
    if not any(r in ROLES for r in roles) and any(r in AGENTS for r in roles):
        return 0.8
    return 0.0


def read(value: Any, source: str, *, lines: list[int] | None = None) -> list[Run]:
    """The one run of a bare Magentic-One message list."""
    if not isinstance(value, list):
        raise InputError(source, "a JSON list of Magentic-One messages {role, content}", got=describe(value))
    steps = []
    for i, msg in enumerate(value):
        if not isinstance(msg, dict):
            raise InputError(source, "a message {role, content}", step=i, got=describe(msg))
        role, content = msg.get("role"), msg.get("content")
        parts = split_role(role) if isinstance(role, str) and role not in ROLES else None
        if parts is None:
            raise InputError(
                source,
                "a Magentic-One role: 'Agent', 'Agent (thought)', 'Agent (-> Other)' or 'Agent (termination condition)'",
                step=i, got=repr(role))
        if not isinstance(content, str):
            raise InputError(source, "'content' to be a string", step=i, got=describe(content))
        agent, to = parts
        kind = OBSERVATION if agent in OBSERVERS else ACTION
        origin = Origin(pointer="" if lines else pointer(i), line=lines[i] if lines else None)
        steps.append(Step(index=i, agent=agent, role=role, kind=kind, content=content, to=to, origin=origin))
    return [build_run(steps, source=source, run_id=Path(source).stem, format=NAME)]
