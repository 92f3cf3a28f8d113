"""Generic OpenAI-style chat logs, optionally labelled.

A run is a list of messages ``{role, content, name?, tool_calls?, tool_call_id?}``,
given as a JSON list, as one message per JSONL line, or as the ``messages`` (or
``history``) of an object. The labelled form, used by the evaluation and the
controlled world, is an object::

    {"messages": [...], "mistake_step": 3, "mistake_agent": "coder",
     "success": false, "id": "run-7", "question": "..."}

where every key but ``messages`` is optional (``run_id`` is accepted for ``id``).

Kinds and agents, one rule per role:

=====================  ===========  =================================
role                   kind         agent
=====================  ===========  =================================
``assistant``          action       ``name``, else ``"assistant"``
``user`` with a name   action       ``name`` (AG2 and similar frameworks log the
                                    other agents as named ``user`` messages)
``user`` without a     observation  ``"user"`` (the human or the task)
name, or named
``user`` / ``human``
``system``,            observation  ``name``, else the role
``developer``
``tool``, ``function`` observation  ``name``, else ``"tool"``
=====================  ===========  =================================

Any other role is an error. A message may override its kind with an explicit
``"kind": "action" | "observation"`` (e.g. a named ``user`` that is really a code
executor). ``content`` must be a string (empty allowed) or a list of
``{"type": "text", "text": ...}`` parts; it may be missing or null only on a message
with ``tool_calls``. Each tool call is appended to the text, one JSON line
``{"name": ..., "arguments": ...}`` per call (``arguments`` kept exactly as emitted when it is
a JSON string; see :func:`attribution.parse.common.tool_call_text`), so that it is scored with
the message; the calls are also kept as data in ``Step.tool_calls``, so that a chat template
with a tool-call form can render them in its own form. A ``tool`` message whose
``tool_call_id`` matches an earlier call is recorded in ``run.meta["tool_calls"]`` as
an ``(action index, tool index)`` pair, which :mod:`attribution.graph` turns into a
``calls`` edge.

:func:`build_run` is shared with the other formats: it converts and checks the
labels and refuses runs that could only give a wrong answer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from attribution.errors import InputError
from attribution.parse.common import describe as _describe, iso_time, pointer, read_each, tool_call_text, warn
from attribution.types import ACTION, OBSERVATION, Origin, Run, Step, ToolCall

__all__ = ["NAME", "DESCRIPTION", "ACTIONS", "IDS", "ROLES", "detect", "read", "parse", "parse_one", "build_run", "as_index"]

NAME = "chat"
DESCRIPTION = "OpenAI-style chat messages {role, content, name?, tool_calls?}: a list, JSONL, or runs with 'messages'"
ACTIONS = ("assistant and named user messages are actions of 'name' (or 'assistant'); "
           "unnamed user, system, developer and tool messages are observations; 'kind' overrides")
IDS = "the message's 'id' when present; JSON pointer /messages/N (JSONL: line)"

ROLES = ("assistant", "user", "system", "developer", "tool", "function")
_HUMAN_NAMES = {"user", "human"}
_LABELS = {"messages", "history", "mistake_step", "mistake_agent", "success", "id", "run_id", "question"}


def detect(value: Any) -> float:
    """0.5 for a list of chat messages, a run object with ``messages`` / ``history``, or a list of
    such runs (a generic shape: specific formats outrank it); 0 otherwise."""
    if _is_many(value):
        return 0.5
    if isinstance(value, dict):
        msgs = value.get("messages", value.get("history"))
        return 0.5 if isinstance(msgs, list) else 0.0
    if isinstance(value, list) and value:
        if all(isinstance(m, dict) and m.get("role") in ROLES for m in value):
            return 0.5
        # Mostly chat-shaped: claim it weakly, so that the chat reader names the bad message.
        head = value[0]
        return 0.1 if isinstance(head, dict) and ("role" in head or "messages" in head or "history" in head) else 0.0
    return 0.0


def read(value: Any, source: str, *, lines: list[int] | None = None) -> list[Run]:
    """Every run of a loaded chat file: one run, or a list (JSON or JSONL) of run objects.

    Runs of a many-run value get ``run_id`` from their ``id`` / ``run_id`` or ``"<stem>/<position>"``;
    errors name ``line N`` when ``lines`` is given, else ``run N`` (0-based).
    """
    if not _is_many(value, source):
        return [parse_one(value, source, lines=lines)]
    return read_each(value, source, lines, lambda item, where, default_id, base, line: parse_one(
        item, where, run_id=default_id, line=line, base=base))


def _is_many(obj: Any, source: str | None = None) -> bool:
    """Whether ``obj`` is a list of runs; a list mixing runs and messages is an error (with ``source``)."""
    if not isinstance(obj, list):
        return False
    is_run = [isinstance(x, dict) and ("messages" in x or "history" in x) for x in obj]
    if source is not None and any(is_run) and not all(is_run):
        k = is_run.index(not is_run[0])
        raise InputError(
            source,
            "a list of messages (one run) or a list of runs (objects with 'messages'), not both",
            got=f"item {k} differs from item 0",
        )
    return bool(obj) and all(is_run)


def check_one_thread(obj: dict, source: str) -> None:
    """Refuse a run object holding both ``history`` (Who&When) and ``messages`` (chat): reading one of
    them would silently drop the other, and which one is the run cannot be told from the file."""
    if obj.get("history") is not None and obj.get("messages") is not None:
        raise InputError(source, "a run with one of 'history' (Who&When) or 'messages' (chat), not both",
                         got=f"both ({len(obj['history']) if isinstance(obj['history'], list) else '?'} and "
                             f"{len(obj['messages']) if isinstance(obj['messages'], list) else '?'} entries)")


def parse(obj: Any, source: str, run_id: str | None = None) -> Run:
    """Alias of :func:`parse_one`."""
    return parse_one(obj, source, run_id=run_id)


def parse_one(
    obj: Any,
    source: str,
    run_id: str | None = None,
    *,
    lines: list[int] | None = None,
    line: int | None = None,
    base: tuple = (),
) -> Run:
    """Parse one chat run (a list of messages or an object holding them).

    Parameters
    ----------
    obj : list or dict
        The loaded JSON value.
    source : str
        Where it came from; named in every error and kept as ``run.source``.
    run_id : str, optional
        Used when ``obj`` has no ``id`` / ``run_id``; default: the stem of ``source``.
    lines : list of int, optional
        For a JSONL file of messages, the 1-based line of each message.
    line, base : the JSONL line / JSON pointer prefix of the run object in its file.

    Returns
    -------
    Run

    Raises
    ------
    InputError
        On a wrong shape, an unknown role, a message without content, bad labels,
        an empty run or a run without any action step.
    """
    if isinstance(obj, list):
        messages, top, key = obj, {}, ()
    elif isinstance(obj, dict) and ("messages" in obj or "history" in obj):
        check_one_thread(obj, source)
        top = obj
        key = ("messages",) if "messages" in obj else ("history",)
        messages = obj[key[0]]
    else:
        raise InputError(
            source,
            "a JSON list of chat messages, or an object with 'messages' or 'history'",
            got=_describe(obj),
        )
    if not isinstance(messages, list):
        raise InputError(source, "'messages' to be a list of message objects", got=_describe(messages))

    steps: list[Step] = []
    calls: dict[str, int] = {}
    links: list[tuple[int, int]] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise InputError(source, "a message object {role, content, ...}", step=i, got=_describe(msg))
        role = msg.get("role")
        if role not in ROLES:
            hint = (" (a smolagents ChatMessage role: use format 'smolagents')" if role in ("tool-call", "tool-response")
                    else " (for Magentic-One logs use format 'magentic-one')" if isinstance(role, str) else "")
            raise InputError(source, f"a role among {', '.join(ROLES)}{hint}", step=i, got=repr(role))
        name = msg.get("name")
        if name is not None and not (isinstance(name, str) and name):
            raise InputError(source, "'name' to be a non-empty string", step=i, got=repr(name))
        kind, agent = _classify(role, name)
        if "kind" in msg:
            if msg["kind"] not in (ACTION, OBSERVATION):
                raise InputError(source, "'kind' to be 'action' or 'observation'", step=i, got=repr(msg["kind"]))
            kind = msg["kind"]
        ids = _call_ids(msg, source, i)
        text = _content(msg, source, i)
        if kind == OBSERVATION and msg.get("tool_calls"):
            warn(source, f"{role} message by {agent!r} carries tool calls but is an observation, so its calls are "
                 f"not scored (pass --actor {agent!r} if this speaker is an agent, e.g. a user simulator)", step=i)
        calls.update(dict.fromkeys(ids, i))
        if isinstance(msg.get("tool_call_id"), str) and msg["tool_call_id"] in calls:
            links.append((calls[msg["tool_call_id"]], i))
        origin = Origin(
            id=str(msg["id"]) if isinstance(msg.get("id"), (str, int)) and not isinstance(msg.get("id"), bool) else None,
            id_type="message" if msg.get("id") is not None else None,
            pointer=pointer(*base, *key, i),
            line=lines[i] if lines and not key else line,
            timestamp=iso_time(msg.get("timestamp", msg.get("created_at"))),
        )
        steps.append(Step(index=i, agent=agent, role=role, kind=kind, content=text, origin=origin,
                          tool_calls=_tool_calls(msg)))

    ident = top.get("id", top.get("run_id"))
    return build_run(
        steps,
        source=source,
        run_id=str(ident) if ident is not None else run_id or Path(source).stem,
        format="chat",
        question=top.get("question"),
        mistake_step=top.get("mistake_step"),
        mistake_agent=top.get("mistake_agent"),
        success=top.get("success"),
        meta={"tool_calls": links, **{k: v for k, v in top.items() if k not in _LABELS}},
    )


def build_run(
    steps: list[Step],
    *,
    source: str,
    run_id: str,
    format: str,
    question: Any = None,
    mistake_step: Any = None,
    mistake_agent: Any = None,
    success: Any = None,
    meta: dict[str, Any] | None = None,
) -> Run:
    """Check the steps and the raw labels and assemble a :class:`Run`.

    ``mistake_step`` may be an int or a string of digits (Who&When stores strings);
    it is converted once, here, and must index a step.
    """
    if not steps:
        raise InputError(source, "at least one step", got="an empty run")
    if not any(s.is_action and s.content.strip() for s in steps):
        raise InputError(
            source,
            "at least one action step (an agent's own output) with text",
            got=f"{len(steps)} step(s), none of them an action with text",
        )
    index = as_index(mistake_step, source) if mistake_step is not None else None
    if index is not None and index >= len(steps):
        expected = f"mistake_step to index one of the {len(steps)} steps (0-based)"
        raise InputError(source, expected, got=repr(mistake_step))
    if mistake_agent is not None and not isinstance(mistake_agent, str):
        raise InputError(source, "mistake_agent to be a string", got=repr(mistake_agent))
    if success is not None and not isinstance(success, bool):
        raise InputError(source, "the success label to be true or false", got=repr(success))
    if question is not None and not isinstance(question, str):
        raise InputError(source, "question to be a string", got=repr(question))
    return Run(
        steps=steps,
        run_id=run_id,
        source=source,
        format=format,
        question=question,
        mistake_step=index,
        mistake_agent=mistake_agent,
        success=success,
        meta=meta or {},
    )


def as_index(value: Any, source: str) -> int:
    """A non-negative int from an int or a string of ASCII digits; anything else is an InputError.

    Only ``0-9`` count as digits: ``int()`` would also read "١٢" (Arabic-Indic) or "１２"
    (full-width) as 12, a label no annotator of these logs wrote on purpose.

    Examples
    --------
    >>> as_index("12", "run.json"), as_index(3, "run.json")
    (12, 3)
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value):
        return int(value)
    raise InputError(source, "mistake_step to be a 0-based step index (an integer)", got=repr(value))


def _classify(role: str, name: str | None) -> tuple[str, str]:
    if role == "assistant":
        return ACTION, name or "assistant"
    if role == "user":
        if name is None or name.lower() in _HUMAN_NAMES:
            return OBSERVATION, name or "user"
        return ACTION, name
    if role in ("tool", "function"):
        return OBSERVATION, name or "tool"
    return OBSERVATION, name or role  # system, developer


def _content(msg: dict[str, Any], source: str, i: int) -> str:
    content = msg.get("content")
    if isinstance(content, list):
        parts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                expected = "content parts of the form {'type': 'text', 'text': ...}"
                raise InputError(source, expected, step=i, got=_describe(part))
            parts.append(part["text"])
        content = "\n".join(parts)
    if content is None and msg.get("tool_calls"):
        content = ""
    if not isinstance(content, str):
        got = "no content" if content is None else _describe(content)
        raise InputError(source, "'content' to be a string", step=i, got=got)
    calls = msg.get("tool_calls") or []
    lines = [_call_text(call, source, i) for call in calls]
    return "\n".join(([content] if content else []) + lines)


def _call_text(call: Any, source: str, i: int) -> str:
    fn = call.get("function") if isinstance(call, dict) else None
    if not (isinstance(fn, dict) and isinstance(fn.get("name"), str)):
        expected = "tool_calls entries of the form {id, function: {name, arguments}}"
        raise InputError(source, expected, step=i, got=_describe(call))
    return tool_call_text(fn["name"], fn.get("arguments"))


def _tool_calls(msg: dict[str, Any]) -> tuple[ToolCall, ...]:
    """The message's calls as data, arguments as the log holds them (checked by :func:`_call_text`)."""
    out = []
    for call in msg.get("tool_calls") or []:
        fn = call["function"]
        ident = call.get("id")
        out.append(ToolCall(name=fn["name"], arguments=fn.get("arguments"), id=ident if isinstance(ident, str) else None))
    return tuple(out)


def _call_ids(msg: dict[str, Any], source: str, i: int) -> list[str]:
    calls = msg.get("tool_calls") or []
    if not isinstance(calls, list):
        raise InputError(source, "'tool_calls' to be a list", step=i, got=_describe(calls))
    return [c["id"] for c in calls if isinstance(c, dict) and isinstance(c.get("id"), str)]
