"""SWE-agent trajectories (``.traj``): the agent's ``history`` of model messages, or its ``trajectory``.

A ``.traj`` file is what ``DefaultAgent.get_trajectory_data`` writes (``sweagent/agent/agents.py``)::

    {"trajectory": [{"action", "observation", "response", "thought", "state", "query",
                     "execution_time", "extra_info"}, ...],
     "history": [{"role", "content", "agent", "message_type", "tool_calls"?, "tool_call_ids"?,
                  "is_demo"?, "thought"?, "action"?, "thinking_blocks"?}, ...],
     "info": {"exit_status", "submission", "model_stats", ...},
     "replay_config": "<RunSingleConfig JSON>", "environment": "..."}

``history`` holds the exact messages the model was given and produced, so it is read when present;
``trajectory`` (one ``response`` and one ``observation`` per step) is the fallback, also used when
the history holds no assistant turn of the run's own (only the prompt and demonstrations). A ``RetryAgent``
file also has ``attempts`` (one such object per attempt, the chosen one copied to the top level):
each attempt is read as its own run (``<id>/attempt-<k>``) and the top-level copy is not read again.

=====================================  ===========  ======================================
history entry                          kind         agent
=====================================  ===========  ======================================
``assistant`` (``message_type``        action       its ``agent`` field (SWE-agent names its
``action`` / ``thought``)                           agents: ``main``, ``reviewer``,
                                                    ``primary``, a subroutine...), else
                                                    ``"main"``
``system`` (``system_prompt``)         observation  ``"system"``
``user`` / ``tool`` (``observation``:  observation  ``"environment"``
problem statement, command output)
demonstrations (``is_demo`` or         observation  ``"demonstration"``: worked examples
``message_type: demonstration``),                   shown to the model, never its own
even ``assistant`` ones                             output, so never scored
=====================================  ===========  ======================================

An action's text is its ``content`` (the model's raw output) followed by one line per entry of
``tool_calls`` (``arguments`` kept as emitted); ``thinking_blocks`` are not part of the text. A
``tool`` entry whose ``tool_call_ids`` match an earlier call is linked to it
(``run.meta["tool_calls"]``). In the ``trajectory`` fallback each step gives an action of
``"main"`` and an observation of ``"environment"``, linked; the action's text is ``response``
(else ``thought``), plus ``action`` when the text does not already hold it.

The format has no record ids: steps keep JSON pointers (``/history/N``). The run id is the
problem statement's id from ``replay_config`` when present, else the file's stem (SWE-agent
names the file ``<instance_id>.traj``). There is no success label in a ``.traj``
(``info.exit_status`` says how the run ended, not whether the patch is right); ``info`` is kept
in ``run.meta``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from attribution.errors import InputError
from attribution.parse.chat import build_run
from attribution.parse.common import describe, flatten_content, pointer, tool_call_text, warn
from attribution.types import ACTION, OBSERVATION, Origin, Run, Step

__all__ = ["NAME", "DESCRIPTION", "ACTIONS", "IDS", "detect", "read"]

NAME = "swe-agent"
DESCRIPTION = "SWE-agent .traj files: {trajectory, history, info}; history (exact model messages) read first"
ACTIONS = ("assistant history entries are actions of their 'agent' (default 'main'); system, user and tool "
           "entries and demonstrations are observations; trajectory fallback: response = action, observation = observation")
IDS = "no record ids in the format; JSON pointer /history/N or /trajectory/N[/observation]"

_TYPES = {"system_prompt", "demonstration", "thought", "action", "observation"}
_ROLES = {"system", "user", "assistant", "tool"}


def _is_step(x: Any) -> bool:
    """A trajectory step: SWE-agent's steps carry both the action and its observation."""
    return isinstance(x, dict) and "action" in x and "observation" in x and ("response" in x or "thought" in x)


def _is_traj(x: Any) -> bool:
    if not isinstance(x, dict):
        return False
    traj, hist, info = x.get("trajectory"), x.get("history"), x.get("info")
    if isinstance(traj, list) and traj and _is_step(traj[0]):
        return True
    if isinstance(hist, list) and hist and isinstance(hist[0], dict) and "agent" in hist[0] and (
            "message_type" in hist[0] or isinstance(info, dict) and "exit_status" in info):
        return True
    return isinstance(x.get("attempts"), list) and bool(x["attempts"]) and all(_is_traj(a) for a in x["attempts"])


def detect(value: Any) -> float:
    """1.0 for a .traj object: trajectory steps holding both 'action' and 'observation', a history
    whose entries name their 'agent' with a 'message_type' (or with info.exit_status), or
    RetryAgent 'attempts' of those; 0 otherwise.

    Examples
    --------
    >>> detect({"trajectory": [{"action": "ls", "observation": "a.py", "response": "ls", "thought": ""}]})
    1.0
    >>> detect({"history": [{"role": "user", "content": "hi"}]})
    0.0
    """
    return 1.0 if _is_traj(value) else 0.0


def read(value: Any, source: str, *, lines: list[int] | None = None) -> list[Run]:
    """One run per .traj (one per attempt for a RetryAgent file)."""
    if not isinstance(value, dict):
        raise InputError(source, "a SWE-agent .traj object {trajectory, history, info}", got=describe(value))
    run_id = _run_id(value, source)
    attempts = value.get("attempts")
    if isinstance(attempts, list) and attempts:
        best = (value.get("info") or {}).get("best_attempt_idx") if isinstance(value.get("info"), dict) else None
        runs = []
        for k, attempt in enumerate(attempts):
            if not isinstance(attempt, dict):
                raise InputError(f"{source}, attempt {k}", "an attempt object {trajectory, history, info}",
                                 got=describe(attempt))
            run = _read_one(attempt, f"{source}, attempt {k}", f"{run_id}/attempt-{k}", base=("attempts", k))
            meta = {**run.meta, "attempt": k, "chosen": best == k, "position": k}
            runs.append(dataclasses.replace(run, source=source, meta=meta))
        return runs
    return [_read_one(value, source, run_id, base=())]


def _run_id(value: dict, source: str) -> str:
    config = value.get("replay_config")
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except (json.JSONDecodeError, RecursionError):
            config = None
    ps = config.get("problem_statement") if isinstance(config, dict) else None
    if isinstance(ps, dict) and isinstance(ps.get("id"), str) and ps["id"]:
        return ps["id"]
    return Path(source).stem


def _read_one(obj: dict, source: str, run_id: str, base: tuple) -> Run:
    history = obj.get("history")
    info = obj.get("info") if isinstance(obj.get("info"), dict) else {}
    meta = {"info": info, "environment": obj.get("environment")}
    traj = obj.get("trajectory")
    if history is not None and not isinstance(history, list):
        # read from 'trajectory' instead, the task statement (only in the history) would be lost without a word
        raise InputError(source, "'history' to be a list of messages {role, content, agent, message_type}",
                         got=describe(history))
    for i, entry in enumerate(history or []):  # a malformed entry is an error, never a silent fallback
        if not isinstance(entry, dict):
            raise InputError(source, "a history entry {role, content, agent, message_type}", step=i,
                             got=describe(entry))
        if entry.get("role") not in _ROLES:
            raise InputError(source, f"a history role among {', '.join(sorted(_ROLES))}", step=i,
                             got=repr(entry.get("role")))
    own_turns = isinstance(history, list) and any(
        isinstance(e, dict) and e.get("role") == "assistant" and not e.get("is_demo") for e in history)
    if isinstance(history, list) and history and (own_turns or not (isinstance(traj, list) and traj)):
        steps, links = _from_history(history, source, base)
        meta["read_from"] = "history"
    else:  # no history, or one without any turn of the model's own (demonstrations only)
        if not (isinstance(traj, list) and traj):
            raise InputError(source, "a non-empty 'history' or 'trajectory' list", got=describe(obj))
        if history:
            warn(source, f"'history' holds no assistant turn of the model's own ({len(history)} entries: prompt and "
                         "demonstrations): read from 'trajectory', which does not hold the task statement")
        steps, links = _from_trajectory(traj, source, base)
        meta["read_from"] = "trajectory"
    return build_run(steps, source=source, run_id=run_id, format=NAME, meta={"tool_calls": links, **meta})


def _from_history(history: list, source: str, base: tuple) -> tuple[list[Step], list[tuple[int, int]]]:
    steps: list[Step] = []
    calls: dict[str, int] = {}
    links: list[tuple[int, int]] = []
    for i, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise InputError(source, "a history entry {role, content, agent, message_type}", step=i, got=describe(entry))
        role = entry.get("role")
        if role not in _ROLES:
            raise InputError(source, f"a history role among {', '.join(sorted(_ROLES))}", step=i, got=repr(role))
        mtype = entry.get("message_type")
        if mtype is not None and mtype not in _TYPES:
            raise InputError(source, f"a message_type among {', '.join(sorted(_TYPES))}", step=i, got=repr(mtype))
        name = entry.get("agent")
        if name is not None and not (isinstance(name, str) and name):
            raise InputError(source, "'agent' to be a non-empty string", step=i, got=repr(name))
        text = flatten_content(entry.get("content"), source=source, step=i)
        demo = bool(entry.get("is_demo")) or mtype == "demonstration"
        if demo:
            kind, agent = OBSERVATION, "demonstration"
        elif role == "assistant":
            kind, agent = ACTION, name or "main"
        elif role == "system":
            kind, agent = OBSERVATION, "system"
        else:
            kind, agent = OBSERVATION, "environment"
        own = _calls(entry, source, i)
        if own:
            text = "\n".join(([text] if text else []) + [_call_text(c, source, i) for c in own])
            if kind == ACTION:
                calls.update({c["id"]: i for c in own if isinstance(c.get("id"), str)})
            elif not demo:
                warn(source, f"a {role} entry (an observation) carries {len(own)} tool call(s); they are kept in its "
                     "text but not scored", step=i)
        for cid in entry.get("tool_call_ids") or []:
            if cid in calls and kind == OBSERVATION:
                links.append((calls[cid], i))
        steps.append(Step(index=i, agent=agent, role=role, kind=kind, content=text,
                          origin=Origin(pointer=pointer(*base, "history", i))))
    return steps, links


def _calls(entry: dict, source: str, i: int) -> list[dict]:
    calls = entry.get("tool_calls") or []
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        raise InputError(source, "'tool_calls' to be a list of {id, function: {name, arguments}}", step=i,
                         got=describe(calls))
    return calls


def _call_text(call: dict, source: str, i: int) -> str:
    fn = call.get("function")
    if not (isinstance(fn, dict) and isinstance(fn.get("name"), str)):
        raise InputError(source, "tool_calls entries {id, function: {name, arguments}}", step=i, got=describe(call))
    return tool_call_text(fn["name"], fn.get("arguments"))


def _from_trajectory(traj: list, source: str, base: tuple) -> tuple[list[Step], list[tuple[int, int]]]:
    steps: list[Step] = []
    links: list[tuple[int, int]] = []
    for k, item in enumerate(traj):
        if not _is_step(item):
            raise InputError(f"{source}, trajectory step {k}", "a step {action, observation, response, thought}",
                             got=describe(item))
        response = item.get("response") if isinstance(item.get("response"), str) else ""
        if not response.strip():
            response = item.get("thought") if isinstance(item.get("thought"), str) else ""
        action = item.get("action") if isinstance(item.get("action"), str) else ""
        if action.strip() and action.strip() not in response:  # function calling: the call is not in the text
            response = "\n".join(p for p in (response, action) if p)
        observation = item.get("observation")
        if observation is not None and not isinstance(observation, str):
            raise InputError(f"{source}, trajectory step {k}", "'observation' to be a string", got=describe(observation))
        a = len(steps)
        steps.append(Step(index=a, agent="main", role="assistant", kind=ACTION, content=response,
                          origin=Origin(pointer=pointer(*base, "trajectory", k))))
        steps.append(Step(index=a + 1, agent="environment", role="observation", kind=OBSERVATION,
                          content=observation or "", origin=Origin(pointer=pointer(*base, "trajectory", k, "observation"))))
        links.append((a, a + 1))
    return steps, links
