"""LangChain / LangGraph messages: ``messages_to_dict``, ``dumpd`` and LangGraph states.

Message shapes (``langchain_core.messages``; each one becomes one step):

``messages_to_dict``
    ``{"type": "human" | "ai" | "system" | "tool" | "function" | "chat" | "AIMessageChunk" | ...,
    "data": {content, name, id, tool_calls, invalid_tool_calls, tool_call_id, status, role,
    additional_kwargs, response_metadata, ...}}``;
``dumpd`` (LangChain serialisation)
    ``{"lc": 1, "type": "constructor", "id": [..., "AIMessage"], "kwargs": {...}}``;
``model_dump`` (what the LangGraph API returns)
    the ``data`` object itself: ``{"type": "ai", "content": ..., ...}``.

A run is a list of messages, or an object holding one: ``{"messages": [...]}`` (a LangGraph
state), ``{"values": {"messages": [...]}}`` (a LangGraph API thread state) or
``{"channel_values": {"messages": [...]}}`` (a checkpoint). A list of such objects is one run
each (a thread *history* repeats the thread once per checkpoint: read its last state only).

Kinds and agents:

==================================  ===========  =======================================
message type                        kind         agent
==================================  ===========  =======================================
``ai`` / ``AIMessageChunk``         action       ``name`` (LangGraph supervisor / swarm set
                                                 it to the agent), else ``"assistant"``
``human`` without a name, or named  observation  ``name``, else ``"user"``
``user`` / ``human``
``human`` with another ``name``     action       ``name`` (an agent speaking as a human
                                                 message, as in the chat rule)
``system``                          observation  ``name``, else ``"system"``
``tool`` / ``function``             observation  the tool ``name``, else ``"tool"``
``chat``                            by its ``role``, as in the :mod:`chat <attribution.parse.chat>` reader
==================================  ===========  =======================================

An AI message's text is its ``content`` (a string, or parts: ``text`` parts kept, other parts
as placeholders, ``tool_use`` parts dropped because they repeat ``tool_calls``), then one line
per tool call (``tool_calls``, then ``invalid_tool_calls``), arguments as the model emitted them
when ``additional_kwargs.tool_calls`` has the raw string for that id, else ``args`` serialised.
A ``tool`` message whose ``tool_call_id`` answers an earlier call is linked to it in
``run.meta["tool_calls"]``. A handoff tool call (``transfer_to_<agent>`` or
``transfer_back_to_<agent>``, as langgraph-supervisor and langgraph-swarm name them) sets
``Step.to`` to that agent (matched to an agent name of the run ignoring case, ``_`` and spaces).
``remove`` messages (LangGraph ``RemoveMessage``) are dropped. A ``tool`` message carrying tool
calls is read as an observation, with a warning. The format has no labels.

``run_id``: the thread id (``config.configurable.thread_id``, ``checkpoint.thread_id`` or
``metadata.thread_id``) when the object has one, else ``"<stem>"`` (``"<stem>/<k>"`` in a
many-run file). ``Step.origin``: the message ``id`` and its JSON pointer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from attribution.errors import InputError
from attribution.parse.chat import build_run
from attribution.parse.common import describe, flatten_content, pointer, read_each, tool_call_text, warn
from attribution.types import ACTION, OBSERVATION, Origin, Run, Step

__all__ = ["NAME", "DESCRIPTION", "ACTIONS", "IDS", "TYPES", "detect", "read", "handoff_target"]

NAME = "langchain"
DESCRIPTION = ("LangChain / LangGraph messages: messages_to_dict {type, data}, dumpd {lc, kwargs} or model_dump, "
               "alone or in a LangGraph state {messages} / {values: {messages}}")
ACTIONS = ("ai messages are actions of 'name' (else 'assistant'), tool calls appended, transfer_to_<agent> sets the "
           "handoff; human (unless named as another agent), system and tool messages are observations")
IDS = "the message 'id'; JSON pointer of the message; run id = the LangGraph thread id when present"

#: ``BaseMessage.type`` values and the chat role each stands for.
TYPES = {
    "human": "user", "HumanMessageChunk": "user",
    "ai": "assistant", "AIMessageChunk": "assistant",
    "system": "system", "SystemMessageChunk": "system",
    "tool": "tool", "ToolMessageChunk": "tool",
    "function": "function", "FunctionMessageChunk": "function",
    "chat": "chat", "ChatMessageChunk": "chat",
    "remove": "remove",
}
#: ``dumpd`` class names (the last element of ``id``) and their ``type``.
_CLASSES = {
    "HumanMessage": "human", "AIMessage": "ai", "SystemMessage": "system", "ToolMessage": "tool",
    "FunctionMessage": "function", "ChatMessage": "chat", "RemoveMessage": "remove",
    **{k: k for k in TYPES if k.endswith("Chunk")},
}
_HUMANS = {"user", "human"}
_HANDOFF = re.compile(r"transfer_(?:back_)?to_(?P<agent>.+)")
_CONTAINERS = ("values", "channel_values")


def _form(m: Any) -> str | None:
    """Which serialised form ``m`` is: ``"dict"``, ``"lc"``, ``"flat"`` or None."""
    if not isinstance(m, dict):
        return None
    if m.get("type") in TYPES and isinstance(m.get("data"), dict):
        return "dict"
    if m.get("lc") == 1 and m.get("type") == "constructor" and isinstance(m.get("id"), list) and m["id"] \
            and m["id"][-1] in _CLASSES:
        return "lc"
    if m.get("type") in TYPES and "content" in m:
        return "flat"
    return None


def _messages_of(obj: Any) -> tuple[list[Any], tuple] | None:
    """The message list of a run value and its pointer inside it, or None."""
    if isinstance(obj, list):
        return obj, ()
    if isinstance(obj, dict):
        if isinstance(obj.get("messages"), list):
            return obj["messages"], ("messages",)
        for key in _CONTAINERS:
            inner = obj.get(key)
            if isinstance(inner, dict) and isinstance(inner.get("messages"), list):
                return inner["messages"], (key, "messages")
    return None


def _confidence(obj: Any) -> float:
    found = _messages_of(obj)
    if found is None or not found[0]:
        return 0.0
    forms = {_form(m) for m in found[0]}
    if None in forms:
        return 0.0
    return 0.8 if forms == {"flat"} else 1.0


def detect(value: Any) -> float:
    """1.0 for ``messages_to_dict`` / ``dumpd`` messages (their ``type`` + ``data`` or ``lc`` markers),
    alone or in a LangGraph state, or a list of such states; 0.8 for ``model_dump`` messages
    (``type`` + ``content``); else 0."""
    conf = _confidence(value)
    if conf:
        return conf
    if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        confs = [_confidence(x) for x in value]
        return min(confs) if all(confs) else 0.0
    return 0.0


def read(value: Any, source: str, *, lines: list[int] | None = None) -> list[Run]:
    """Every run of a loaded LangChain / LangGraph file (see the module docstring)."""
    if isinstance(value, list) and value and all(isinstance(x, dict) and _form(x) is None
                                                 and _messages_of(x) is not None for x in value):
        threads = [_thread_id(x) for x in value]
        dup = next((t for t in threads if t is not None and threads.count(t) > 1), None)
        if dup is not None:
            raise InputError(source, "one state per thread (a thread history repeats the thread once per "
                                     "checkpoint: keep its latest state)",
                             got=f"thread {dup!r} {threads.count(dup)} times")
        return read_each(value, source, lines, lambda item, where, default_id, base, line: _read_one(
            item, where, default_id=default_id, base=base, line=line))
    return [_read_one(value, source, default_id=Path(source).stem, base=(), line=None, lines=lines)]


def _thread_id(obj: dict[str, Any]) -> str | None:
    for holder in (obj.get("config", {}).get("configurable") if isinstance(obj.get("config"), dict) else None,
                   obj.get("checkpoint"), obj.get("metadata")):
        if isinstance(holder, dict) and isinstance(holder.get("thread_id"), str) and holder["thread_id"]:
            return holder["thread_id"]
    return None


def _read_one(obj: Any, source: str, *, default_id: str, base: tuple, line: int | None,
              lines: list[int] | None = None) -> Run:
    found = _messages_of(obj)
    if found is None:
        raise InputError(source, "a list of LangChain messages, or an object with 'messages' "
                                 "(or 'values' / 'channel_values' holding 'messages')", got=describe(obj))
    messages, key = found
    run_id = (_thread_id(obj) if isinstance(obj, dict) else None) or default_id
    records = [_normalise(m, source, i) for i, m in enumerate(messages)]

    names = {r["data"]["name"] for r in records if r["type"] in ("ai", "AIMessageChunk")
             and isinstance(r["data"].get("name"), str)}
    steps: list[Step] = []
    calls: dict[str, int] = {}
    links: list[tuple[int, int]] = []
    for i, rec in enumerate(records):
        kind_name, data = rec["type"], rec["data"]
        if kind_name == "remove":
            continue
        record = f"message {i}" + (f" ({data['id']})" if isinstance(data.get("id"), str) else "")
        role = TYPES[kind_name]
        if role == "chat":
            role = data.get("role")
            if not isinstance(role, str) or not role:
                raise InputError(source, f"{record} (a ChatMessage) to have a 'role'", got=repr(role))
        name = data.get("name") if isinstance(data.get("name"), str) and data["name"] else None
        kind, agent = _classify(role, name)
        text = _content(data, source, record)
        tool_calls = _tool_calls(data, source, record)
        to = None
        for call_name, _, _ in tool_calls:
            m = _HANDOFF.fullmatch(call_name)
            if m and kind == ACTION:
                to = handoff_target(m["agent"], names)
        if tool_calls and kind == OBSERVATION:
            warn(source, f"a {role!r} message carries tool calls but is read as an observation", record=record)
        lines_ = ([text] if text else []) + [tool_call_text(n, a) for n, a, _ in tool_calls]
        origin = Origin(
            id=data["id"] if isinstance(data.get("id"), str) else None,
            id_type="message" if isinstance(data.get("id"), str) else None,
            pointer=pointer(*base, *key, i),
            line=lines[i] if lines and not key else line,
        )
        steps.append(Step(index=len(steps), agent=agent, role=kind_name, kind=kind, content="\n".join(lines_),
                          to=to, origin=origin))
        for _, _, call_id in tool_calls:
            if call_id:
                calls[call_id] = steps[-1].index
        answered = data.get("tool_call_id")
        if role in ("tool", "function") and isinstance(answered, str):
            if answered in calls:
                links.append((calls[answered], steps[-1].index))
            else:
                warn(source, f"tool_call_id {answered!r} answers no earlier tool call", record=record)

    question = next((s.content for s in steps if s.agent in _HUMANS and s.content), None)
    meta = {"tool_calls": links}
    if isinstance(obj, dict):
        meta.update({k: obj[k] for k in ("next", "created_at", "parent_config") if k in obj})
    return build_run(steps, source=source, run_id=run_id, format=NAME, question=question, meta=meta)


def _normalise(m: Any, source: str, i: int) -> dict[str, Any]:
    """``{"type", "data"}`` from any of the three serialised forms."""
    form = _form(m)
    if form == "dict":
        return m
    if form == "lc":
        kwargs = m.get("kwargs")
        if not isinstance(kwargs, dict):
            raise InputError(source, f"message {i} (dumpd) to have 'kwargs'", got=describe(kwargs))
        return {"type": _CLASSES[m["id"][-1]], "data": kwargs}
    if form == "flat":
        return {"type": m["type"], "data": m}
    raise InputError(source, f"message {i} to be a LangChain message ({{type, data}}, {{lc, type, id, kwargs}} "
                             f"or {{type, content}} with type among {', '.join(sorted(TYPES))})", got=describe(m))


def _classify(role: str, name: str | None) -> tuple[str, str]:
    if role == "assistant":
        return ACTION, name or "assistant"
    if role in ("user", "human"):
        if name is None or name.lower() in _HUMANS:
            return OBSERVATION, name or "user"
        return ACTION, name
    if role in ("tool", "function"):
        return OBSERVATION, name or "tool"
    return OBSERVATION, name or role


def _content(data: dict[str, Any], source: str, record: str) -> str:
    content = data.get("content", "")
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict) and p.get("type") in ("tool_use", "tool_call", "function_call"):
                continue  # repeated in tool_calls
            if isinstance(p, dict) and p.get("type") in ("thinking", "reasoning") and "text" not in p \
                    and isinstance(p.get(p["type"]), str):
                # Anthropic {"type": "thinking", "thinking": ...}; LangChain v1 {"type": "reasoning", "reasoning": ...}
                p = {"type": p["type"], "text": p[p["type"]]}
            parts.append(p)
        content = parts
    return flatten_content(content, source=source, record=record)


def _tool_calls(data: dict[str, Any], source: str, record: str) -> list[tuple[str, Any, str | None]]:
    """``(name, arguments, id)`` of each tool call, arguments as emitted where the raw string is kept."""
    raw: dict[str, Any] = {}
    extra = data.get("additional_kwargs")
    if isinstance(extra, dict) and isinstance(extra.get("tool_calls"), list):
        for c in extra["tool_calls"]:
            fn = c.get("function") if isinstance(c, dict) else None
            if isinstance(fn, dict) and isinstance(c.get("id"), str) and isinstance(fn.get("arguments"), str):
                raw[c["id"]] = fn["arguments"]
    out = []
    for field in ("tool_calls", "invalid_tool_calls"):
        calls = data.get(field) or []
        if not isinstance(calls, list):
            raise InputError(source, f"{record} '{field}' to be a list", got=describe(calls))
        for j, c in enumerate(calls):
            if not (isinstance(c, dict) and isinstance(c.get("name"), str)):
                raise InputError(source, f"{record} {field}[{j}] to be {{name, args, id}}", got=describe(c))
            call_id = c.get("id") if isinstance(c.get("id"), str) else None
            out.append((c["name"], raw.get(call_id, c.get("args")) if call_id else c.get("args"), call_id))
    if not out and isinstance(extra, dict) and isinstance(extra.get("function_call"), dict):
        fc = extra["function_call"]  # legacy OpenAI function calling
        if isinstance(fc.get("name"), str):
            out.append((fc["name"], fc.get("arguments"), None))
    return out


def handoff_target(normalised: str, names: set[str]) -> str:
    """The agent a ``transfer_to_<normalised>`` call names: an agent of the run when one matches
    ignoring case, spaces and ``_``/``-``; else ``normalised`` itself.

    Examples
    --------
    >>> handoff_target("research_expert", {"Research Expert", "supervisor"})
    'Research Expert'
    >>> handoff_target("billing", set())
    'billing'
    """
    def key(s: str) -> str:
        return re.sub(r"[\s_-]+", "", s).lower()

    hits = [n for n in sorted(names) if key(n) == key(normalised)]
    return hits[0] if hits else normalised
