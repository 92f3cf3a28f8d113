"""smolagents memory steps: ``agent.memory.get_full_steps()`` / ``get_succinct_steps()`` dumped as JSON.

The file is a list of step dicts, or ``{"steps": [...], "agent_name" | "name": ..., "managed_agents": ...}``.
Step dicts carry no type field (they are ``MemoryStep.dict()``, field names from
``smolagents/memory.py``), so a step's class is read from its keys:

==========================================  ================================================
step (keys)                                 steps read
==========================================  ================================================
``SystemPromptStep`` (``system_prompt``)    observation of ``"system"``
``TaskStep`` (``task``)                     observation of ``"user"`` (of the manager, for a
                                            managed agent's task); the first is the question
``PlanningStep`` (``plan``; older:          action of the agent: ``facts`` (older versions)
``facts``)                                  then ``plan``
``ActionStep`` (``step_number``)            action of the agent: ``model_output`` (else the
                                            ``model_output_message`` content), then one line per
                                            tool call that text does not already hold (by the
                                            tool's name, or by a CodeAgent's code); then an
                                            observation: ``observations`` and ``error.message``,
                                            by the tool called (one name; ``python_interpreter``
                                            for a ``code_action`` without calls), else ``"tools"``
                                            (several) or ``"environment"`` (no call: e.g. a parsing
                                            error); the pair is a ``tool_calls`` link
``FinalAnswerStep`` (``output`` /           dropped: it repeats the last action's output
``final_answer``)
==========================================  ================================================

Managed agents (a manager calls a managed agent as a tool named after it, or, from a CodeAgent, as
a function in its code): ``managed_agents``
in the wrapper, a list of names or a mapping / list of ``{"name", "steps", "managed_agents"?}``
(nested to any depth), names them. A tool
call to one sets ``Step.to`` on the manager's action and its result is attributed to that agent.
When a managed agent's own ``steps`` are given, they are inlined after the manager's last
action calling it (a managed agent's memory is reset on each call, so it holds the last call's
steps); a managed agent called more than once gets a warning. Without ``managed_agents`` a call
to a managed agent reads as a plain tool call.

The agent is ``agent_name`` / ``name`` of the wrapper, else ``"agent"``. ``run_id``: the
wrapper's ``id`` / ``run_id``, else ``"<stem>"``. ``Step.origin``: the ActionStep's
``step_number`` (``id_type="step_number"``), ``timing.start_time`` (older: ``start_time``) and
the JSON pointer. The format has no labels.

**Benchmark output and ChatMessage lists.** The library's benchmark scripts
(``examples/smolagents_benchmark/run.py``) write one JSONL record a question, ``{"model_id",
"agent_action_type", "question", "original_question", "answer", "true_answer", "source",
"intermediate_steps": [...], "start_time", "end_time", "token_counts"}``, one run each (run id
``task_id`` when present, else ``"<stem>/<k>"``; the question is ``original_question``). Its
``intermediate_steps`` are ``ChatMessage.dict()`` items (``agent.write_memory_to_messages()``:
``{"role", "content": [parts], "tool_calls", "raw", "token_usage"}``; memory steps are read as
above); a bare list of such messages is one run. Roles (``MessageRole``):

=================  ===========  ======================================================
role               kind         step
=================  ===========  ======================================================
``assistant``      action       the model's text, then its ``tool_calls`` the text
                                does not hold
``tool-call``      action or    ``"Calling tools: [...]"`` restates the calls of the
                   skipped      assistant message just before it (skipped); with no
                                such message (a ToolCallingAgent's native call) its
                                calls are the action, as ``{"name", "arguments"}``
``tool-response``  observation  by the tool called (else ``"tool"``), linked to the
                                call
``system``,        observation  ``"system"`` / ``"user"``
``user``
=================  ===========  ======================================================

A record with an ``agent_error`` or ``iteration_limit_exceeded`` is read with a warning (the run
stops early, or ends without an answer of the agent's own).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from attribution.errors import InputError
from attribution.parse.chat import build_run
from attribution.parse.common import (describe, flatten_content, iso_time, pointer, read_each, text_of, tool_call_text,
                                      warn)
from attribution.types import ACTION, OBSERVATION, Origin, Run, Step

__all__ = ["NAME", "DESCRIPTION", "ACTIONS", "IDS", "detect", "read", "step_class"]

NAME = "smolagents"
DESCRIPTION = ("smolagents memory steps (agent.memory.get_full_steps()): Task/Planning/Action steps, managed agents; "
               "benchmark output records (intermediate_steps of ChatMessage dicts) and ChatMessage lists")
ACTIONS = ("PlanningStep plans and ActionStep model outputs plus tool calls are the agent's actions; task, system "
           "prompt, observations and errors are observations (by the tool called); ChatMessages: assistant (or a "
           "lone tool-call) is the action, tool-response the observation")
IDS = "the ActionStep's step_number and start time; JSON pointer of the step; run id = the wrapper's id"

_OUTPUTS = ("model_output", "model_output_message", "observations", "tool_calls", "code_action", "action_output")
_CLASSES = ("ActionStep", "PlanningStep", "TaskStep", "SystemPromptStep", "FinalAnswerStep")


def step_class(step: Any) -> str | None:
    """The memory step class a dumped step is, from its keys (or an explicit ``type``); None if none.

    Examples
    --------
    >>> step_class({"step_number": 1, "model_output": "x", "observations": "y"})
    'ActionStep'
    >>> step_class({"task": "Find the answer", "task_images": None})
    'TaskStep'
    """
    if not isinstance(step, dict):
        return None
    explicit = step.get("type", step.get("step_type"))
    if explicit in _CLASSES:
        return explicit
    if "step_number" in step:
        return "ActionStep"
    if "plan" in step or "facts" in step:
        return "PlanningStep"
    if "task" in step:
        return "TaskStep"
    if "system_prompt" in step:
        return "SystemPromptStep"
    if set(step) <= {"output", "final_answer"} and step:
        return "FinalAnswerStep"
    return None


def _steps_of(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and isinstance(value.get("steps"), list):
        return value["steps"]
    return None


def detect(value: Any) -> float:
    """1.0 when every item is a memory step and one is an ActionStep (``step_number`` with a model
    output, tool calls or observations) or a PlanningStep; 0.9 for ``{"steps": [...]}`` of
    memory steps without one; 1.0 for benchmark records (``intermediate_steps``) and for a list of
    ``ChatMessage`` dicts with a ``tool-call`` / ``tool-response`` role, 0.8 for one without; else 0."""
    if _is_record(value) or (isinstance(value, list) and value and all(map(_is_record, value))):
        return 1.0
    if _is_messages(value):
        return 1.0 if any(m["role"] in _TOOL_ROLES for m in value) else 0.8
    steps = _steps_of(value)
    if not steps:
        return 0.0
    classes = [step_class(s) for s in steps]
    if None in classes:
        return 0.0
    acted = any(c == "ActionStep" and any(k in s for k in _OUTPUTS) for c, s in zip(classes, steps))
    if acted or "PlanningStep" in classes:
        return 1.0
    return 0.9 if isinstance(value, dict) else 0.0


def read(value: Any, source: str, *, lines: list[int] | None = None) -> list[Run]:
    """The run of a loaded smolagents memory dump (one run per file); every record of a benchmark output."""
    if _is_record(value):
        return [_read_record(value, source, default_id=Path(source).stem, base=(), line=None)]
    if isinstance(value, list) and value and all(map(_is_record, value)):
        return read_each(value, source, lines, lambda item, where, default_id, base, line: _read_record(
            item, where, default_id=default_id, base=base, line=line))
    if _is_messages(value):
        out: list[Step] = []
        links: list[tuple[int, int]] = []
        _read_messages(value, "agent", (), source, lines, None, out, links)
        question = next((s.content for s in out if s.agent == "user"), None)
        return [build_run(out, source=source, run_id=Path(source).stem, format=NAME, question=question,
                          meta={"tool_calls": links, "agent": "agent"})]
    steps_in = _steps_of(value)
    if steps_in is None:
        raise InputError(source, "a list of smolagents memory steps or an object with 'steps'", got=describe(value))
    top = value if isinstance(value, dict) else {}
    agent = _name(top) or "agent"
    managed = _managed(top.get("managed_agents"), source)
    key = ("steps",) if top else ()

    out: list[Step] = []
    links: list[tuple[int, int]] = []
    _read_steps(steps_in, agent, None, managed, key, source, lines, out, links)
    ident = top.get("id", top.get("run_id"))
    question = next((s.content for s in out if s.role == "TaskStep" and s.agent == "user"), None)
    meta = {"tool_calls": links, "agent": agent}
    if managed:
        meta["managed_agents"] = sorted(managed)
    return [build_run(out, source=source, run_id=str(ident) if ident is not None else Path(source).stem,
                      format=NAME, question=question, meta=meta)]


def _name(obj: dict[str, Any]) -> str | None:
    name = obj.get("agent_name", obj.get("name"))
    return name if isinstance(name, str) and name else None


def _managed(spec: Any, source: str, base: tuple = ()) -> dict[str, tuple[list[Any], tuple, dict] | None]:
    """Managed agent name -> (its steps, their pointer, its own managed agents) when given, else None."""
    if spec is None:
        return {}
    out: dict[str, tuple[list[Any], tuple] | None] = {}
    items = spec.items() if isinstance(spec, dict) else enumerate(spec) if isinstance(spec, list) else None
    if items is None:
        raise InputError(source, "'managed_agents' to be a list of names or of {name, steps}, or a mapping",
                         got=describe(spec))
    for k, entry in items:
        if isinstance(entry, str):
            out[entry] = None
            continue
        name = k if isinstance(k, str) else _name(entry) if isinstance(entry, dict) else None
        if not name:
            raise InputError(source, f"managed_agents[{k}] to name its agent ('name')", got=describe(entry))
        steps = _steps_of(entry)
        where = (*base, "managed_agents", k)
        nested = _managed(entry.get("managed_agents"), source, where) if isinstance(entry, dict) else {}
        out[name] = (steps, (*where, "steps"), nested) if steps is not None else None
    return out


def _read_steps(steps: list[Any], agent: str, manager: str | None, managed: dict, key: tuple, source: str,
                lines: list[int] | None, out: list[Step], links: list[tuple[int, int]]) -> None:
    # A managed agent's steps go after the manager's last call to it: find those calls first.
    last_call: dict[str, int] = {}
    counts: dict[str, int] = {}
    for k, s in enumerate(steps):
        for name in _delegated(s, _calls(s, source, k), managed) if step_class(s) == "ActionStep" else []:
            last_call[name] = k
            counts[name] = counts.get(name, 0) + 1

    for k, s in enumerate(steps):
        cls = step_class(s)
        record = f"step {k}"
        if cls is None:
            raise InputError(source, f"{record} to be a smolagents memory step (with 'step_number', 'plan', 'task' "
                                     "or 'system_prompt')", got=describe(s))
        origin = Origin(pointer=pointer(*key, k), line=lines[k] if lines and not key else None)

        def add(who: str, kind: str, text: str, to: str | None = None, org: Origin = origin) -> int:
            out.append(Step(index=len(out), agent=who, role=cls, kind=kind, content=text, to=to, origin=org))
            return len(out) - 1

        if cls == "FinalAnswerStep":
            continue
        if cls == "SystemPromptStep":
            add("system", OBSERVATION, text_of(s["system_prompt"]))
        elif cls == "TaskStep":
            add(manager or "user", OBSERVATION, text_of(s["task"]))
        elif cls == "PlanningStep":
            text = "\n".join(t for t in (_text(s.get("facts"), source, record),
                                         _text(s.get("plan"), source, record)) if t)
            if not text:
                text = _message_text(s.get("model_output_message"), source, record)
            add(agent, ACTION, text, org=Origin(pointer=origin.pointer, line=origin.line,
                                                timestamp=_start(s)))
        else:
            number = s["step_number"]
            if not (isinstance(number, int) and not isinstance(number, bool)):
                raise InputError(source, f"{record} 'step_number' to be an integer", got=repr(number))
            org = Origin(id=str(number), id_type="step_number", pointer=origin.pointer, line=origin.line,
                         timestamp=_start(s))
            calls = _calls(s, source, k)
            if not isinstance(s.get("model_output"), (str, type(None))):
                raise InputError(source, f"{record} 'model_output' to be the model's text (a string) or null",
                                 got=describe(s["model_output"]))
            text = _text(s.get("model_output"), source, record)
            if not text:
                text = _message_text(s.get("model_output_message"), source, record)
            # The model output already holds a call when it holds its arguments verbatim (a CodeAgent's
            # code) or names the tool with every argument value (a ToolCallingAgent's JSON action
            # text); a mere mention of the tool's name in prose does not hold the call: append it.
            extra = [tool_call_text(n, a) for n, a, _ in calls if not _call_in_text(n, a, text)]
            body = "\n".join(([text] if text else []) + extra)
            delegated = _delegated(s, calls, managed)
            act = add(agent, ACTION, body, to=delegated[-1] if delegated else None, org=org) if body else None
            for name in delegated:
                if last_call.get(name) == k and managed[name] is not None:
                    if counts[name] > 1:
                        warn(source, f"managed agent {name!r} is called {counts[name]} times; its steps are "
                                     "inlined after the last call", record=record)
                    sub_steps, sub_key, nested = managed[name]
                    _read_steps(sub_steps, name, agent, nested, sub_key, source, None, out, links)
            observed = _observation(s, source, record)
            if observed:
                names = sorted({n for n, _, _ in calls})
                if not names and s.get("code_action"):
                    names = ["python_interpreter"]  # a CodeAgent dump without tool_calls: its code ran
                who = names[0] if len(names) == 1 else "tools" if names else "environment"
                obs = add(who, OBSERVATION, observed, org=org)
                if act is not None and names:
                    links.append((act, obs))
            elif act is None:
                warn(source, "an ActionStep with no model output, tool call, observation or error", record=record)


def _call_in_text(name: str, arguments: Any, text: str) -> bool:
    """Whether ``text`` already holds the call: its string arguments verbatim, or its name and every argument value.

    Examples
    --------
    >>> _call_in_text("get_weather", {"city": "Paris"}, "I will call get_weather.")
    False
    >>> _call_in_text("get_weather", {"city": "Paris"}, 'Action: {"name": "get_weather", "arguments": {"city": "Paris"}}')
    True
    """
    if isinstance(arguments, str):
        return bool(arguments.strip()) and arguments.strip() in text
    if name not in text:
        return False
    values = arguments.values() if isinstance(arguments, dict) else arguments if isinstance(arguments, list) else []
    return all((v if isinstance(v, str) else json.dumps(v)) in text for v in values)


def _delegated(step: dict[str, Any], calls: list[tuple[str, Any, str | None]], managed: dict) -> list[str]:
    """The managed agents an ActionStep calls: as a tool (ToolCallingAgent) or in its code (CodeAgent)."""
    names = [n for n, _, _ in calls if n in managed]
    code = " ".join(a for _, a, _ in calls if isinstance(a, str)) + " " + text_of(step.get("code_action") or "")
    return names + [m for m in managed if m not in names and re.search(rf"\b{re.escape(m)}\s*\(", code)]


def _calls(step: dict[str, Any], source: str, k: int) -> list[tuple[str, Any, str | None]]:
    calls = step.get("tool_calls") or []
    if not isinstance(calls, list):
        raise InputError(source, f"step {k} 'tool_calls' to be a list", got=describe(calls))
    out = []
    for j, c in enumerate(calls):
        fn = c.get("function") if isinstance(c, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            out.append((fn["name"], fn.get("arguments"), c.get("id")))
        elif isinstance(c, dict) and isinstance(c.get("name"), str):  # ToolCall dataclass via asdict
            out.append((c["name"], c.get("arguments"), c.get("id")))
        else:
            raise InputError(source, f"step {k} tool_calls[{j}] to be {{id, type, function: {{name, arguments}}}}",
                             got=describe(c))
    return out


def _text(value: Any, source: str, record: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return flatten_content(value, source=source, record=record).strip()
    return text_of(value)


def _message_text(msg: Any, source: str, record: str) -> str:
    if isinstance(msg, dict):
        return _text(msg.get("content"), source, record)
    return ""


def _observation(step: dict[str, Any], source: str, record: str) -> str:
    parts = []
    if step.get("observations") is not None:
        parts.append(_text(step["observations"], source, record))
    if step.get("observations_images"):
        parts.append("\n".join("<image>" for _ in step["observations_images"]))
    error = step.get("error")
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else error
        kind = error.get("type") if isinstance(error, dict) else None
        parts.append(f"Error{f' ({kind})' if kind else ''}: {text_of(message)}")
    return "\n".join(p for p in parts if p)


def _start(step: dict[str, Any]) -> str | None:
    timing = step.get("timing")
    start = timing.get("start_time") if isinstance(timing, dict) else step.get("start_time")
    return iso_time(start)


# -- the benchmark's own output: records whose intermediate_steps are ChatMessage dicts ---------------

#: ``MessageRole`` values (``smolagents/models.py``).
_ROLES = ("system", "user", "assistant", "tool-call", "tool-response")
_TOOL_ROLES = ("tool-call", "tool-response")
#: Keys of a ``ChatMessage`` dict beyond role and content (``ChatMessage.dict()``).
_MESSAGE_KEYS = ("tool_calls", "raw", "token_usage")
_CALLED = re.compile(r"""['"]name['"]\s*:\s*['"]([^'"]+)['"]|calling '([^']+)'""")


def _is_message(m: Any) -> bool:
    return isinstance(m, dict) and m.get("role") in _ROLES and "content" in m


def _is_messages(value: Any) -> bool:
    """A list of ``ChatMessage`` dicts: smolagents roles, and a tool role or ChatMessage's own keys."""
    return (isinstance(value, list) and bool(value) and all(map(_is_message, value))
            and any(m["role"] in _TOOL_ROLES or any(k in m for k in ("raw", "token_usage")) for m in value))


def _is_record(x: Any) -> bool:
    """A benchmark record (``examples/smolagents_benchmark/run.py``): ``intermediate_steps`` beside the question."""
    return (isinstance(x, dict) and isinstance(x.get("intermediate_steps"), list)
            and any(k in x for k in ("question", "augmented_question", "answer", "prediction", "true_answer", "model_id")))


def _read_record(rec: dict[str, Any], source: str, *, default_id: str, base: tuple, line: int | None) -> Run:
    items = rec["intermediate_steps"]
    key = (*base, "intermediate_steps")
    agent = _name(rec) or "agent"
    if not items:
        raise InputError(source, "'intermediate_steps' with the run's messages", got="an empty list")
    out: list[Step] = []
    links: list[tuple[int, int]] = []
    if all(map(_is_message, items)):
        _read_messages(items, agent, key, source, None, line, out, links)
    elif all(step_class(s) is not None for s in items):  # memory steps (get_succinct_steps / get_full_steps)
        _read_steps(items, agent, None, {}, key, source, None, out, links)
        if line is not None:
            out[:] = [dataclasses.replace(st, origin=dataclasses.replace(st.origin, line=line)) for st in out]
    else:
        bad = next(k for k, m in enumerate(items) if not _is_message(m))
        raise InputError(source, f"intermediate_steps[{bad}] to be a ChatMessage {{role, content}} with a role among "
                                 f"{', '.join(_ROLES)}, or a memory step", got=describe(items[bad]))
    if rec.get("agent_error"):
        warn(source, f"the agent raised an error ({text_of(rec['agent_error'])[:80]!r}): the run stops there")
    if rec.get("iteration_limit_exceeded"):
        warn(source, "the agent hit its step limit: the run has no final answer of its own")
    question = rec.get("original_question", rec.get("question"))
    ident = rec.get("task_id", rec.get("id"))
    meta = {"tool_calls": links, "agent": agent,
            **{k: rec[k] for k in ("model_id", "agent_action_type", "answer", "prediction", "true_answer", "source",
                                   "token_counts")
               if rec.get(k) is not None}}
    return build_run(out, source=source, run_id=str(ident) if ident is not None else default_id, format=NAME,
                     question=question if isinstance(question, str) else None, meta=meta)


def _read_messages(msgs: list[Any], agent: str, key: tuple, source: str, lines: list[int] | None, line: int | None,
                   out: list[Step], links: list[tuple[int, int]]) -> None:
    """Steps of ``ChatMessage`` dicts (``agent.write_memory_to_messages()``, a benchmark's intermediate_steps).

    ``assistant`` is the agent's action (its ``tool_calls`` appended when the text does not hold them); a
    ``tool-call`` message restates the calls of the assistant message before it (skipped), or is the
    action when no assistant message precedes it; ``tool-response`` is an observation by the tool called;
    ``system`` and ``user`` are observations."""
    act: int | None = None
    called: str | None = None
    for i, m in enumerate(msgs):
        record = f"line {lines[i]}" if lines else f"message {i}"
        if not _is_message(m):
            raise InputError(source, f"{record} to be a ChatMessage {{role, content}} with a role among "
                                     f"{', '.join(_ROLES)}", got=describe(m) if not isinstance(m, dict)
                             else repr(m.get("role")))
        role = m["role"]
        text = _text(m.get("content"), source, record)
        origin = Origin(pointer=pointer(*key) if lines else pointer(*key, i),
                        line=lines[i] if lines else line)

        def add(who: str, kind: str, body: str) -> int:
            out.append(Step(index=len(out), agent=who, role=role, kind=kind, content=body, origin=origin))
            return len(out) - 1

        if role in ("system", "user"):
            add(role, OBSERVATION, text)
            act, called = None, None
        elif role == "assistant":
            calls = _calls(m, source, i)
            extra = [tool_call_text(n, a) for n, a, _ in calls if not _call_in_text(n, a, text)]
            act = add(agent, ACTION, "\n".join(([text] if text else []) + extra))
            called = calls[0][0] if calls else _first_called(text)
        elif role == "tool-call":
            calls = _restated_calls(text)
            if act is None or out[act].role != "assistant" or out[-1].index != act:
                # No assistant text before it (a ToolCallingAgent's native call): the calls are the action,
                # scored as name + arguments, not the framework's "Calling tools:" rendering with call ids.
                act = add(agent, ACTION, "\n".join(tool_call_text(n, a) for n, a in calls) if calls else text)
            called = (calls[0][0] if calls else None) or _first_called(text) or called
        else:  # tool-response
            obs = add(called or "tool", OBSERVATION, text)
            if act is not None and called:
                links.append((act, obs))
            act = None


def _restated_calls(text: str) -> list[tuple[str, Any]]:
    """``(name, arguments)`` of a ``tool-call`` message (``"Calling tools:\\n" + str(list of call dicts)``)."""
    head, _, body = text.partition("Calling tools:")
    if head.strip() or not body.strip():
        return []
    try:
        calls = ast.literal_eval(body.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return []
    out = []
    for c in calls if isinstance(calls, list) else []:
        fn = c.get("function") if isinstance(c, dict) else None
        if not (isinstance(fn, dict) and isinstance(fn.get("name"), str)):
            return []
        out.append((fn["name"], fn.get("arguments")))
    return out


def _first_called(text: str) -> str | None:
    hit = _CALLED.search(text)
    return (hit.group(1) or hit.group(2)) if hit else None
