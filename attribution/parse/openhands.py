"""OpenHands event streams: serialised events, trajectories and SWE-bench evaluation output.

An event is what ``openhands.events.serialization.event_to_dict`` writes (the file store,
``/api/conversations/{id}/trajectory`` exports, ``--save-trajectory-path``)::

    {"id": 4, "timestamp": "2025-03-01T10:00:05.1", "source": "agent",
     "action": "run", "args": {"command": "ls", "thought": "..."}, "message": "...",
     "tool_call_metadata": {"function_name": "execute_bash", "tool_call_id": "toolu_01",
                            "model_response": {...}, "total_calls_in_response": 1}}
    {"id": 5, "source": "agent", "observation": "run", "content": "a.py", "extras": {...},
     "cause": 4, "tool_call_metadata": {...}}

A file holds a list of events, the same list under ``history`` or ``trajectory``, or is an
evaluation ``output.jsonl`` (``evaluation/utils/shared.py::EvalOutput``): one instance per
line, ``{"instance_id", "instruction", "history": [...], "metadata": {"agent_class"}, "test_result"}``,
where an old ``history`` is a list of ``[action, observation]`` pairs (read the same way).

Kinds come from the event's key, never from its ``source`` alone:

==========================================  ===========  =====================================
event                                       kind         agent
==========================================  ===========  =====================================
``action`` from source ``agent``            action       the agent class (``system`` event's
(``run``, ``run_ipython``, ``read``,                     ``agent_class``, else the line's
``edit``, ``write``, ``browse``,                         ``metadata.agent_class``, else
``browse_interactive``, ``call_tool_mcp``,               ``"agent"``); between a ``delegate``
``message``, ``think``, ``delegate``,                    action and its result, the delegated
``finish``, ``reject``, ...)                             agent (``args.agent``)
``action`` ``system`` (the system prompt)   observation  ``"system"``
``action`` from source ``user`` /           observation  ``"user"`` / ``"environment"``
``environment`` (the human's messages)
every ``observation``                       observation  ``tool_call_metadata.function_name``,
                                                         else the observation type (``run``,
                                                         ``read``, ``error``...); a
                                                         ``delegate`` result: the delegated
                                                         agent; ``recall``: ``"memory"``
==========================================  ===========  =====================================

Dropped, as bookkeeping the model never reads as a turn (:data:`DROPPED_ACTIONS`,
:data:`DROPPED_OBSERVATIONS`): ``change_agent_state`` / ``agent_state_changed``, ``null``
actions and observations, ``recall`` actions (the user's message again, as a query),
``pause`` / ``resume`` / ``stop``, ``loop_recovery`` (the user's choice in the stuck-loop menu),
``condensation_request``, a ``condensation`` action without a summary (with one, it is an
observation of ``"condenser"``), and a ``recall`` observation that carries no instructions or
microagent knowledge.

An action's text is its ``thought`` followed by the call: the tool call exactly as the model
emitted it (``tool_call_metadata.model_response``, found by ``tool_call_id``) when the event
keeps it, else ``{"name": <function_name or action>, "arguments": <the action's payload args>}``;
a ``message`` is its ``content``; a ``think`` its ``thought``. An observation's text is its
``content`` (a ``delegate`` result with empty content: its ``outputs``). ``cause`` links an
observation to the action it answers (``run.meta["tool_calls"]``); a ``delegate`` action sets
``Step.to``. ``Step.role`` is the event's key and type (``action:run``, ``observation:run``).

**OpenHands V1** (the agent SDK, ``OpenHands/software-agent-sdk``, ``openhands/sdk/event``): each
event is a pydantic model dumped with its class name as ``kind`` (``{"kind", "id", "timestamp",
"source", ...}``); a file is a JSON list or JSONL of them, or ``{"events" | "items": [...]}`` (a
saved list, the REST search page). ``run_id``: ``conversation_id`` / ``id`` of a wrapper, else the
file stem.

=================================  ===========  =============================================
``kind``                           kind         step
=================================  ===========  =============================================
``ActionEvent``,                   action       ``"agent"``: the ``thought`` text, then the
``NonExecutableActionEvent``                    ``tool_call`` (name and arguments as emitted);
                                                parallel calls of one ``llm_response_id``
                                                are one step each (the thought is in the
                                                first), as they are one event each
``MessageEvent`` source ``agent``  action       ``sender`` else ``"agent"``: its
                                                ``llm_message`` content (and tool calls)
``MessageEvent`` source ``user``   observation  ``sender`` else ``"user"``
``ObservationEvent``               observation  ``tool_name``: the observation's ``content``
                                                (``"Tool Execution Error. "`` first when
                                                ``is_error``), linked to ``action_id``
``AgentErrorEvent``,               observation  ``tool_name`` / ``"user"``: the error or the
``UserRejectObservation``                       rejection, linked to the call
``SystemPromptEvent``              observation  ``"system"``
``CondensationSummaryEvent``,      observation  ``"condenser"`` (when it has a ``summary``)
``Condensation``
``ConversationStateUpdateEvent``,  dropped      bookkeeping; an unknown ``kind`` is skipped
``PauseEvent``, ``TokenEvent``,                 with a warning
``CondensationRequest``
=================================  ===========  =============================================

Labels: SWE-bench output lines give ``success`` from ``test_result.report.resolved`` (written by
``eval_infer.py``), else ``test_result.resolved``; the run id is ``instance_id``. A line without
history (an instance that errored before running) is skipped with a warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attribution.errors import InputError
from attribution.parse.chat import build_run
from attribution.parse.common import describe, iso_time, pointer, text_of, tool_call_text, warn
from attribution.types import ACTION, OBSERVATION, Origin, Run, Step

__all__ = ["NAME", "DESCRIPTION", "ACTIONS", "IDS", "DROPPED_ACTIONS", "DROPPED_OBSERVATIONS", "detect", "read"]

NAME = "openhands"
DESCRIPTION = ("OpenHands event streams (event_to_dict): a list of events, {'history'|'trajectory': [...]}, "
               "or SWE-bench output.jsonl lines {instance_id, history, test_result}; V1 agent-SDK events tagged by "
               "'kind' (ActionEvent, ObservationEvent, MessageEvent...)")
ACTIONS = ("'action' events from source agent are actions of the agent class (or of the delegate inside a "
           "delegation); user/environment actions, the system prompt and all 'observation' events are "
           "observations; state changes, null, recall and condensation bookkeeping are dropped; V1: ActionEvent and "
           "agent MessageEvent are actions, ObservationEvent/AgentErrorEvent/UserRejectObservation, user messages "
           "and the system prompt observations")
IDS = "the event 'id' (id_type 'event'); JSON pointer of the event; JSONL line; event timestamp"

#: Action types that are bookkeeping, not a turn of any agent.
DROPPED_ACTIONS = frozenset({"change_agent_state", "null", "recall", "pause", "resume", "stop", "condensation_request",
                             "loop_recovery"})
#: Observation types that are bookkeeping.
DROPPED_OBSERVATIONS = frozenset({"agent_state_changed", "null"})

#: Action types of OpenHands' ``ActionType`` (core/schema/action.py); others are read with a warning.
KNOWN_ACTIONS = frozenset({
    "message", "system", "start", "read", "write", "edit", "run", "run_ipython", "browse", "browse_interactive",
    "call_tool_mcp", "delegate", "think", "finish", "reject", "null", "pause", "resume", "stop",
    "change_agent_state", "push", "send_pr", "recall", "condensation", "condensation_request",
    "task_tracking", "loop_recovery", "summarize",
})

#: The arguments that make up each action's call when the event keeps no raw tool call.
_PAYLOAD = {
    "run": ("command", "is_input"),
    "run_ipython": ("code",),
    "read": ("path", "view_range", "start", "end"),
    "write": ("path", "content"),
    "edit": ("path", "command", "file_text", "old_str", "new_str", "insert_line", "content"),
    "browse": ("url",),
    "browse_interactive": ("browser_actions",),
    "call_tool_mcp": ("name", "arguments"),
    "delegate": ("agent", "inputs"),
    "finish": ("final_thought", "outputs", "task_completed"),
    "reject": ("outputs",),
    "task_tracking": ("command", "task_list"),
    "push": ("owner", "repo", "branch"),
    "send_pr": ("owner", "repo", "branch", "title", "body"),
}
#: Arguments that are settings of the runtime, not the agent's output.
_SETTINGS = {"thought", "confirmation_state", "is_confirmed", "security_risk", "hidden", "blocking", "is_static",
             "cwd", "impl_source", "wait_for_response", "image_urls", "images_urls", "include_extra",
             "kernel_init_code", "return_axtree", "browsergym_send_msg_to_user", "llm_config", "timeout",
             "action_suffix", "translated_ipython_code", "keep_prompt", "timestamp"}
_SOURCES = ("agent", "user", "environment")
_WRAPPERS = ("history", "trajectory", "events")
_RECALL_TEXT = ("repo_instructions", "additional_agent_instructions", "conversation_instructions")


# -- detection -------------------------------------------------------------------------------------


def _is_event(x: Any) -> bool:
    """One serialised event: exactly one of ``action`` / ``observation``, with its companions."""
    if not isinstance(x, dict) or ("action" in x) == ("observation" in x):
        return False
    return any(k in x for k in ("args", "extras", "cause", "tool_call_metadata")) or ("source" in x and "id" in x)


def _is_pair(x: Any) -> bool:
    """An old ``[action, observation]`` pair (old null observations carry no more than their key)."""
    return (isinstance(x, list) and len(x) == 2 and any(_is_event(e) for e in x)
            and all(isinstance(e, dict) and ("action" in e) != ("observation" in e) for e in x))


def _is_stream(value: Any) -> bool:
    """A list whose items are mostly events (or old [action, observation] pairs)."""
    if not isinstance(value, list) or not value:
        return False
    hits = sum(1 for x in value if _is_event(x) or _is_pair(x))
    return hits * 2 >= len(value)


def _is_instance(x: Any) -> bool:
    """One SWE-bench evaluation output line."""
    if not (isinstance(x, dict) and "instance_id" in x and "history" in x):
        return False
    return x["history"] is None or x["history"] == [] or _is_stream(x["history"])


def detect(value: Any) -> float:
    """1.0 for OpenHands events (exactly one of 'action'/'observation' with 'args'/'extras'/'cause'),
    bare or wrapped, or SWE-bench output lines holding them; 0 otherwise.

    Examples
    --------
    >>> event = {"id": 0, "source": "user", "action": "message", "args": {"content": "Fix a.py"}}
    >>> detect([event]), detect({"trajectory": [event]}), detect([{"role": "user", "content": "hi"}])
    (1.0, 1.0, 0.0)
    """
    if _is_stream(value) or _is_v1_stream(value):
        return 1.0
    if isinstance(value, dict):
        if any(_is_v1_stream(value.get(k)) for k in _V1_WRAPPERS):
            return 1.0
        if _is_instance(value):
            return 1.0
        return 1.0 if any(_is_stream(value.get(k)) for k in _WRAPPERS) else 0.0
    if isinstance(value, list) and value and all(_is_instance(x) for x in value):
        return 1.0
    return 0.0


# -- reading ---------------------------------------------------------------------------------------


def read(value: Any, source: str, *, lines: list[int] | None = None) -> list[Run]:
    """Every run in ``value``: one event stream, or one run per SWE-bench output line."""
    stem = Path(source).stem
    if _is_v1_stream(value):
        return [_read_v1(value, source, base=(), lines=lines, run_id=stem, meta={})]
    if isinstance(value, dict) and any(_is_v1_stream(value.get(k)) for k in _V1_WRAPPERS):
        key = next(k for k in _V1_WRAPPERS if _is_v1_stream(value.get(k)))
        ident = next((value[k] for k in ("conversation_id", "id") if isinstance(value.get(k), str)), None)
        return [_read_v1(value[key], source, base=(key,), lines=None, run_id=ident or stem,
                         meta={k: v for k, v in value.items() if k != key})]
    if isinstance(value, list) and value and all(_is_instance(x) for x in value):
        runs = []
        for k, item in enumerate(value):
            line = lines[k] if lines else None
            where = f"line {line}" if line else f"instance {k}"
            if not item.get("history"):
                warn(source, f"instance {item.get('instance_id')!r} has no history (error: "
                     f"{str(item.get('error'))[:80]!r}); skipped", record=where)
                continue
            runs.append(_read_instance(item, source, line=line, base=() if line else (k,), where=where, position=k))
        return runs
    if isinstance(value, dict) and _is_instance(value):
        if not value.get("history"):
            raise InputError(source, "an instance with a non-empty 'history'", got=f"error {value.get('error')!r}")
        return [_read_instance(value, source, line=None, base=(), where=None, position=None)]
    if isinstance(value, list):
        return [_read_stream(value, source, base=(), lines=lines, run_id=stem, agent_class=None, meta={})]
    if isinstance(value, dict):
        key = next((k for k in _WRAPPERS if isinstance(value.get(k), list)), None)
        if key is None:
            raise InputError(source, "OpenHands events: a list, or an object with 'history' or 'trajectory'",
                             got=describe(value))
        ident = next((value[k] for k in ("conversation_id", "session_id", "sid", "id")
                      if isinstance(value.get(k), (str, int))), None)
        meta = {k: v for k, v in value.items() if k != key}
        return [_read_stream(value[key], source, base=(key,), lines=None, run_id=str(ident) if ident is not None else stem,
                             agent_class=value.get("agent_class"), meta=meta)]
    raise InputError(source, "OpenHands events: a list, or an object with 'history' or 'trajectory'", got=describe(value))


def _read_instance(item: dict, source: str, *, line: int | None, base: tuple, where: str | None,
                   position: int | None) -> Run:
    meta = {k: v for k, v in item.items() if k not in ("history", "instance")}
    metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    if position is not None:
        meta["position"] = position
    run = _read_stream(item["history"], source, base=(*base, "history"), lines=None, line=line,
                       run_id=str(item["instance_id"]), agent_class=metadata.get("agent_class"), meta=meta, record=where)
    result = item.get("test_result") if isinstance(item.get("test_result"), dict) else {}
    report = result.get("report") if isinstance(result.get("report"), dict) else {}
    resolved = report.get("resolved", result.get("resolved"))
    if resolved is not None and not isinstance(resolved, bool):
        raise InputError(_where(source, where), "test_result.report.resolved to be true or false", got=repr(resolved))
    run.success = resolved
    run.question = item["instruction"] if isinstance(item.get("instruction"), str) else None
    return run


def _where(source: str, record: str | None) -> str:
    return f"{source}, {record}" if record else source


def _flatten(stream: list, base: tuple, lines: list[int] | None) -> list[tuple[dict, str, int | None]]:
    """(event, pointer, line) in order; old [action, observation] pairs are opened."""
    out = []
    for k, item in enumerate(stream):
        line = lines[k] if lines else None
        if isinstance(item, list):
            out.extend((e, pointer(*base, k, j), line) for j, e in enumerate(item))
        else:
            out.append((item, pointer(*base, k), line))
    return out


def _read_stream(stream: Any, source: str, *, base: tuple, lines: list[int] | None, run_id: str,
                 agent_class: Any, meta: dict, line: int | None = None, record: str | None = None) -> Run:
    where = _where(source, record)
    if not isinstance(stream, list):
        raise InputError(where, "'history' to be a list of OpenHands events", got=describe(stream))
    events = _flatten(stream, base, lines)
    for ev, ptr, ln in events:  # inside a stream any record with one of the two keys will do
        if not isinstance(ev, dict) or ("action" in ev) == ("observation" in ev):
            place = f"line {ln}" if lines else ptr  # JSONL: the line (its pointer is inside it)
            raise InputError(where, f"an OpenHands event (exactly one of 'action' / 'observation') at {place}",
                             got=_v1_hint(ev))
    main = _agent_class(events) or (agent_class if isinstance(agent_class, str) and agent_class else None) or "agent"
    steps: list[Step] = []
    by_event: dict[Any, int] = {}          # event id -> step index
    call_ids: dict[str, int] = {}          # tool_call_id -> action step index
    links: list[tuple[int, int]] = []
    delegates: list[tuple[Any, str]] = []  # open delegations: (delegate action event id, agent)
    unknown: set[str] = set()
    unsourced = False
    for ev, ptr, ln in events:
        eid = ev.get("id")
        rec = f"event {eid}" if eid is not None else ptr
        at = f"{where}, {rec}"                              # errors: file, line, event
        wrec = f"{record}, {rec}" if record else rec        # warnings: line, event (warn adds the file)
        source_ = ev.get("source", "agent")
        if "source" not in ev and "action" in ev and ev["action"] not in DROPPED_ACTIONS and not unsourced:
            unsourced = True
            warn(source, "an action event without 'source'; read as the agent's (a user message would then be "
                 "scored: check the log)", record=wrec)
        if source_ not in _SOURCES:
            raise InputError(at, f"'source' to be one of {', '.join(_SOURCES)}", got=repr(source_))
        current = delegates[-1][1] if delegates else main
        to = None
        if "action" in ev:
            kind_name = ev["action"]
            if not isinstance(kind_name, str):
                raise InputError(at, "'action' to be a string", got=describe(kind_name))
            args = ev.get("args", {})
            if not isinstance(args, dict):
                raise InputError(at, "'args' to be an object", got=describe(args))
            if kind_name in DROPPED_ACTIONS:
                continue
            if kind_name == "condensation":
                summary = args.get("summary")
                if not (isinstance(summary, str) and summary.strip()):
                    continue
                kind, agent, text = OBSERVATION, "condenser", summary
            elif kind_name == "system":
                kind, agent, text = OBSERVATION, "system", _string(args.get("content", ev.get("message", "")), at)
            elif source_ != "agent":
                kind, agent = OBSERVATION, source_
                text = _action_text(ev, kind_name, args, at)
            else:
                if kind_name not in KNOWN_ACTIONS and kind_name not in unknown:
                    unknown.add(kind_name)
                    warn(source, f"action type {kind_name!r} is not a known OpenHands action; read as an action of "
                         f"{current!r} with its arguments as text", record=wrec)
                kind, agent = ACTION, current
                text = _action_text(ev, kind_name, args, at)
                if kind_name == "delegate":
                    target = args.get("agent")
                    if not (isinstance(target, str) and target):
                        raise InputError(at, "a delegate action with 'args.agent' naming the agent",
                                         got=repr(target))
                    to = target
            role = f"action:{kind_name}"
        else:
            kind_name = ev["observation"]
            if not isinstance(kind_name, str):
                raise InputError(at, "'observation' to be a string", got=describe(kind_name))
            if kind_name in DROPPED_OBSERVATIONS:
                continue
            extras = ev.get("extras") if isinstance(ev.get("extras"), dict) else {}
            kind = OBSERVATION
            if kind_name == "recall":
                text = _recall_text(ev, extras)
                if not text:
                    continue
                agent = "memory"
            else:
                text = _string(ev.get("content", ""), at)
                meta_call = ev.get("tool_call_metadata") if isinstance(ev.get("tool_call_metadata"), dict) else {}
                agent = meta_call.get("function_name") or kind_name
                if kind_name == "delegate":
                    agent = _close_delegation(delegates, ev.get("cause"), source, wrec)
                    if not text.strip() and extras.get("outputs") is not None:
                        text = text_of(extras["outputs"])
            role = f"observation:{kind_name}"
        index = len(steps)
        origin = Origin(
            id=str(eid) if isinstance(eid, (int, str)) and not isinstance(eid, bool) else None,
            id_type="event" if eid is not None else None,
            pointer=ptr,
            line=ln if ln is not None else line,
            timestamp=iso_time(ev.get("timestamp")),
        )
        steps.append(Step(index=index, agent=agent, role=role, kind=kind, content=text, to=to, origin=origin))
        if eid is not None:
            by_event[eid] = index
        meta_call = ev.get("tool_call_metadata") if isinstance(ev.get("tool_call_metadata"), dict) else {}
        if "action" in ev:
            if kind == ACTION and isinstance(meta_call.get("tool_call_id"), str):
                call_ids.setdefault(meta_call["tool_call_id"], index)
            if to is not None:
                delegates.append((eid, to))
        else:
            caller = by_event.get(ev.get("cause")) if ev.get("cause") is not None else None
            if caller is None and isinstance(meta_call.get("tool_call_id"), str):
                caller = call_ids.get(meta_call["tool_call_id"])
            if caller is not None and steps[caller].is_action:
                links.append((caller, index))
    if delegates:
        warn(source, f"delegation to {delegates[-1][1]!r} (event {delegates[-1][0]}) has no result event; its "
             "later events are read as that agent's", record=record)
    return build_run(steps, source=source, run_id=run_id, format=NAME,
                     meta={"tool_calls": links, "agent_class": main, **meta})


def _agent_class(events: list[tuple[dict, str, int | None]]) -> str | None:
    """``agent_class`` of the first ``system`` action (SystemMessageAction), if it names one."""
    for ev, _, _ in events:
        if ev.get("action") == "system":
            name = (ev.get("args") or {}).get("agent_class")
            if isinstance(name, str) and name:
                return name
    return None


def _close_delegation(delegates: list[tuple[Any, str]], cause: Any, source: str, where: str) -> str:
    """Pop the delegation a ``delegate`` observation answers; its agent is the delegate's name."""
    if not delegates:
        warn(source, "a delegate result with no open delegate action; attributed to 'delegate'", record=where)
        return "delegate"
    ids = [d[0] for d in delegates]
    if cause is not None and cause in ids:
        k = ids.index(cause)
    else:
        k = len(delegates) - 1
        if cause is not None:
            warn(source, f"delegate result's cause {cause!r} is not an open delegate action; closing the innermost "
                 f"({delegates[k][1]!r})", record=where)
    name = delegates[k][1]
    del delegates[k:]
    return name


def _string(value: Any, at: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(at, "the event's text ('content' / 'args.content') to be a string",
                         got=describe(value))
    return value


def _action_text(ev: dict, kind: str, args: dict, at: str) -> str:
    thought = args.get("thought") if isinstance(args.get("thought"), str) else ""
    if kind == "message":
        text = _string(args.get("content", ev.get("message", "")), at)
        images = args.get("image_urls") or args.get("images_urls") or []
        return "\n".join([text] + ["<image>"] * (len(images) if isinstance(images, list) else 0))
    if kind == "think":
        return thought
    call = _raw_call(ev)
    if call is None:
        meta = ev.get("tool_call_metadata") if isinstance(ev.get("tool_call_metadata"), dict) else {}
        name = meta.get("function_name") if isinstance(meta.get("function_name"), str) else kind
        keys = _PAYLOAD.get(kind)
        if keys is None:
            payload = {k: v for k, v in args.items() if k not in _SETTINGS}
        else:
            payload = {k: args[k] for k in keys if k in args and args[k] not in (None, "", [], {})}
        call = tool_call_text(name, payload)
    return "\n".join(p for p in (thought, call) if p)


def _raw_call(ev: dict) -> str | None:
    """The tool call exactly as the model emitted it, from ``tool_call_metadata.model_response``."""
    meta = ev.get("tool_call_metadata")
    if not isinstance(meta, dict):
        return None
    response = meta.get("model_response")
    call_id = meta.get("tool_call_id")
    if not isinstance(response, dict) or not isinstance(call_id, str):
        return None
    for choice in response.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        for call in (message or {}).get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, dict) else None
            if call.get("id") == call_id and isinstance(fn, dict) and isinstance(fn.get("name"), str):
                return tool_call_text(fn["name"], fn.get("arguments"))
    return None


def _recall_text(ev: dict, extras: dict) -> str:
    """What a recall observation adds to the prompt: instructions and microagent knowledge."""
    parts = [extras[k] for k in _RECALL_TEXT if isinstance(extras.get(k), str) and extras[k].strip()]
    for item in extras.get("microagent_knowledge") or []:
        if isinstance(item, dict) and isinstance(item.get("content"), str) and item["content"].strip():
            parts.append(item["content"])
    content = ev.get("content")
    if parts and isinstance(content, str) and content.strip():
        parts.insert(0, content)
    return "\n".join(parts)


# -- OpenHands V1 (software-agent-sdk): events tagged by ``kind`` ------------------------------------

#: The V1 SDK's event classes (``openhands/sdk/event``), serialised with their class name as ``kind``.
V1_KINDS = frozenset({
    "SystemPromptEvent", "SystemPromptUpdateEvent", "MessageEvent", "ActionEvent", "NonExecutableActionEvent",
    "ObservationEvent", "UserRejectObservation", "AgentErrorEvent", "CondensationSummaryEvent", "Condensation",
    "CondensationRequest", "ConversationStateUpdateEvent", "PauseEvent", "TokenEvent", "ConversationErrorEvent",
})
#: V1 events that are bookkeeping, not a turn (never sent to the LLM as one).
V1_DROPPED = frozenset({"CondensationRequest", "ConversationStateUpdateEvent", "PauseEvent", "TokenEvent",
                        "SystemPromptUpdateEvent"})
#: Wrappers of a V1 event list: a saved list under ``events``, the REST search page's ``items``.
_V1_WRAPPERS = ("events", "items")


def _is_v1_event(x: Any) -> bool:
    """A V1 event: the class name as ``kind``, an ``id`` and a ``source`` (V0 events have no ``kind``)."""
    return isinstance(x, dict) and isinstance(x.get("kind"), str) and "id" in x and "source" in x


def _is_v1_stream(value: Any) -> bool:
    """A list of V1 events, one at least of a known class."""
    return (isinstance(value, list) and bool(value) and all(map(_is_v1_event, value))
            and any(x["kind"] in V1_KINDS for x in value))


def _v1_hint(ev: Any) -> str:
    if isinstance(ev, dict) and isinstance(ev.get("kind"), str):
        return f"an event with 'kind' {ev['kind']!r} (an OpenHands V1 SDK event) among V0 'action'/'observation' events"
    return describe(ev)


def _texts(value: Any, at: str) -> str:
    """Text of V1 content: a TextContent / ImageContent list, one TextContent, or a string."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InputError(at, "content to be a list of TextContent / ImageContent", got=describe(value))
    out = []
    for part in value:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            out.append(part["text"])
        elif isinstance(part, dict) and "image_urls" in part:
            out.extend("<image>" for _ in part.get("image_urls") or [None])
        elif isinstance(part, str):
            out.append(part)
        else:
            raise InputError(at, "content parts with a 'text' (TextContent) or 'image_urls' (ImageContent)",
                             got=describe(part))
    return "\n".join(out)


def _v1_observation_text(obs: Any, at: str) -> str:
    if not isinstance(obs, dict):
        raise InputError(at, "'observation' to be an object (the tool's Observation)", got=describe(obs))
    for key in ("content", "output", "text"):
        if obs.get(key) is not None:
            text = _texts(obs[key], at)
            break
    else:
        text = text_of({k: v for k, v in obs.items() if k != "kind"})
    # what the LLM reads (Observation.to_llm_content): an error is prefixed
    return f"Tool Execution Error. {text}" if obs.get("is_error") is True else text


def _read_v1(stream: list, source: str, *, base: tuple, lines: list[int] | None, run_id: str, meta: dict) -> Run:
    """A V1 event stream (see the module docstring's V1 table)."""
    agent = "agent"
    steps: list[Step] = []
    by_event: dict[str, int] = {}    # action event id -> step index
    by_call: dict[str, int] = {}     # tool_call_id -> step index
    links: list[tuple[int, int]] = []
    unknown: set[str] = set()
    for k, ev in enumerate(stream):
        kind_name, eid = ev["kind"], ev.get("id")
        ln = lines[k] if lines else None
        ptr = pointer(*base) if lines else pointer(*base, k)
        at = f"{source}, {f'line {ln}' if ln else ptr}, event {eid}"
        origin = Origin(id=str(eid) if isinstance(eid, (str, int)) and not isinstance(eid, bool) else None,
                        id_type="event", pointer=ptr, line=ln, timestamp=iso_time(ev.get("timestamp")))
        role = f"event:{kind_name}"

        def add(who: str, kind: str, text: str) -> int:
            steps.append(Step(index=len(steps), agent=who, role=role, kind=kind, content=text, origin=origin))
            return len(steps) - 1

        if kind_name in V1_DROPPED:
            continue
        if kind_name == "SystemPromptEvent":
            add("system", OBSERVATION, _texts(ev.get("system_prompt"), at))
        elif kind_name == "MessageEvent":
            msg = ev.get("llm_message")
            if not isinstance(msg, dict):
                raise InputError(at, "a MessageEvent with an 'llm_message' {role, content}", got=describe(msg))
            text = _texts(msg.get("content"), at)
            calls = [tool_call_text(c.get("name") or (c.get("function") or {}).get("name"),
                                    c.get("arguments", (c.get("function") or {}).get("arguments")))
                     for c in msg.get("tool_calls") or [] if isinstance(c, dict)]
            sender = ev.get("sender") if isinstance(ev.get("sender"), str) and ev["sender"] else None
            if ev["source"] == "agent":
                add(sender or agent, ACTION, "\n".join([t for t in [text] if t] + calls))
            else:
                add(sender or ev["source"], OBSERVATION, text)
        elif kind_name in ("ActionEvent", "NonExecutableActionEvent"):
            call = ev.get("tool_call")
            name = ev.get("tool_name") or (call.get("name") if isinstance(call, dict) else None)
            if not (isinstance(call, dict) and isinstance(name, str) and name):
                raise InputError(at, "an ActionEvent with a 'tool_call' {id, name, arguments} and a 'tool_name'",
                                 got=describe(call))
            text = tool_call_text(name, call.get("arguments") if "arguments" in call else ev.get("action"))
            thought = _texts(ev.get("thought"), at)
            # Parallel calls of one LLM response are one event each (the thought in the first): one step
            # each, as the events are, so that a log followed line by line never rewrites a step.
            i = add(agent, ACTION, "\n".join(t for t in (thought, text) if t))
            if isinstance(eid, str):
                by_event[eid] = i
            if isinstance(ev.get("tool_call_id"), str):
                by_call[ev["tool_call_id"]] = i
        elif kind_name in ("ObservationEvent", "UserRejectObservation", "AgentErrorEvent"):
            if kind_name == "ObservationEvent":
                text = _v1_observation_text(ev.get("observation"), at)
                extended = _texts(ev.get("extended_content"), at)
                text = "\n".join(t for t in (text, extended) if t)
                who = ev.get("tool_name") or "tool"
            elif kind_name == "UserRejectObservation":
                text, who = f"Action rejected: {ev.get('rejection_reason', 'User rejected the action')}", "user"
            else:
                text, who = text_of(ev.get("error", "")), ev.get("tool_name") or "runtime"
            j = add(str(who), OBSERVATION, text)
            caller = by_event.get(ev.get("action_id")) if ev.get("action_id") is not None else None
            if caller is None and isinstance(ev.get("tool_call_id"), str):
                caller = by_call.get(ev["tool_call_id"])
            if caller is not None:
                links.append((caller, j))
        elif kind_name in ("CondensationSummaryEvent", "Condensation"):
            summary = ev.get("summary")
            if isinstance(summary, str) and summary.strip():
                add("condenser", OBSERVATION, summary)
        elif kind_name == "ConversationErrorEvent":
            add("runtime", OBSERVATION, f"Error: {text_of(ev.get('code', ''))} {text_of(ev.get('detail', ''))}".strip())
        elif kind_name not in unknown:
            unknown.add(kind_name)
            warn(source, f"event kind {kind_name!r} is not a known OpenHands V1 event; skipped",
                 record=f"{f'line {ln}' if ln else ptr}, event {eid}")
    question = next((st.content for st in steps if st.role == "event:MessageEvent" and st.agent == "user"), None)
    return build_run(steps, source=source, run_id=run_id, format=NAME, question=question,
                     meta={"tool_calls": links, "agent_class": agent, "sdk": "v1", **meta})
