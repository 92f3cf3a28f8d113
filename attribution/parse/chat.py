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
``{"name": ..., "arguments": ...}`` per call (``arguments`` verbatim as the agent emitted
it when it is a JSON string: never re-serialised), so that it is scored with the message. A ``tool`` message whose
``tool_call_id`` matches an earlier call is recorded in ``run.meta["tool_calls"]`` as
an ``(action index, tool index)`` pair, which :mod:`attribution.graph` turns into a
``calls`` edge.

:func:`build_run` is shared with the other formats: it converts and checks the
labels and refuses runs that could only give a wrong answer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from attribution.errors import InputError
from attribution.types import ACTION, OBSERVATION, Run, Step

__all__ = ["ROLES", "parse", "build_run", "as_index"]

ROLES = ("assistant", "user", "system", "developer", "tool", "function")
_HUMAN_NAMES = {"user", "human"}
_LABELS = {"messages", "history", "mistake_step", "mistake_agent", "success", "id", "run_id", "question"}


def parse(obj: Any, source: str, run_id: str | None = None) -> Run:
    """Parse one chat run (a list of messages or an object holding them).

    Parameters
    ----------
    obj : list or dict
        The loaded JSON value.
    source : str
        Where it came from; named in every error and kept as ``run.source``.
    run_id : str, optional
        Used when ``obj`` has no ``id`` / ``run_id``; default: the stem of ``source``.

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
        messages, top = obj, {}
    elif isinstance(obj, dict) and ("messages" in obj or "history" in obj):
        top = obj
        messages = obj["messages"] if "messages" in obj else obj["history"]
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
            hint = " (for Magentic-One logs use format 'who-and-when')" if isinstance(role, str) else ""
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
        calls.update(dict.fromkeys(ids, i))
        if isinstance(msg.get("tool_call_id"), str) and msg["tool_call_id"] in calls:
            links.append((calls[msg["tool_call_id"]], i))
        steps.append(Step(index=i, agent=agent, role=role, kind=kind, content=text))

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
    """A non-negative int from an int or a string of digits; anything else is an InputError.

    Examples
    --------
    >>> as_index("12", "run.json"), as_index(3, "run.json")
    (12, 3)
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"\d+", value):
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
    args = fn.get("arguments")
    # The arguments are scored as the agent emitted them: a JSON string goes in verbatim (its
    # spacing, key order and escapes are the model's tokens), never decoded and re-serialised.
    if isinstance(args, str):
        try:
            json.loads(args)
            text = args
        except json.JSONDecodeError:
            text = json.dumps(args, ensure_ascii=False)  # not JSON: kept as a JSON string of the model's text
    else:
        text = json.dumps(args, ensure_ascii=False)  # given as an object by the log: no emitted text to keep
    return '{"name": ' + json.dumps(fn["name"], ensure_ascii=False) + ', "arguments": ' + text + "}"


def _call_ids(msg: dict[str, Any], source: str, i: int) -> list[str]:
    calls = msg.get("tool_calls") or []
    if not isinstance(calls, list):
        raise InputError(source, "'tool_calls' to be a list", step=i, got=_describe(calls))
    return [c["id"] for c in calls if isinstance(c, dict) and isinstance(c.get("id"), str)]


def _describe(value: Any) -> str:
    """A short description of a JSON value for error messages."""
    names = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number", type(None): "null"}
    if isinstance(value, dict):
        return f"an object with keys {sorted(value)[:6]}"
    return names.get(type(value), f"a {type(value).__name__}")
