"""τ-bench and τ²-bench results: many simulated customer-service conversations per file.

τ-bench (``sierra-research/tau-bench``, ``run.py`` writes a JSON list of ``EnvRunResult``)::

    [{"task_id": 12, "trial": 0, "reward": 1.0, "info": {"task": {...}, "reward_info": {...}},
      "traj": [{"role": "system" | "user" | "assistant" | "tool", "content", "tool_calls"?,
                "tool_call_id"?, "name"?}, ...]}, ...]

τ²-bench (``sierra-research/tau2-bench``, ``Results`` in ``src/tau2/data_model/simulation.py``)::

    {"info": {"agent_info": {"implementation"}, "user_info": {"implementation"}, ...}, "tasks": [...],
     "simulations": [{"id", "task_id", "trial", "termination_reason", "reward_info": {"reward", ...},
                      "messages": [{"role", "content", "tool_calls": [{"id", "name", "arguments",
                                    "requestor"}], "turn_idx", "timestamp"}, ...]}, ...]}

(a single ``SimulationRun`` object, or a list of them, is read too; so is a single τ-bench
``EnvRunResult`` object, one run a file, whose keys beyond the five go to ``run.meta["extra"]``). Message content may also be
Anthropic blocks (τ-bench's Claude agent): ``tool_use`` blocks are the assistant's calls and a user
message of ``tool_result`` blocks is the tool's output, an observation.

Both have two agents, the agent under test and the **user simulator**, an LLM playing the customer:

=========================================  ===========  =======================================
message                                    kind         agent
=========================================  ===========  =======================================
``assistant``                              action       τ²: ``info.agent_info.implementation``;
                                                        else ``"agent"``
``user`` (the simulator's utterances and,  action       τ²: ``info.user_info.implementation``;
in τ², its own tool calls, ``requestor:                 else ``"user_simulator"``
"user"``)
``user`` starting ``API output:``          observation  the tool named by the preceding
(τ-bench ReAct/Act agents feed tool                     ``Action:`` JSON, else ``"tool"``
output back as a user message)
``tool`` (τ²: also ``tool_messages``       observation  the called tool's name (from the linked
of a ``MultiToolMessage``)                              call), else ``name``, else ``"tool"``
``system``                                 observation  ``"system"``
=========================================  ===========  =======================================

Tool calls are appended to the caller's text (``{"name", "arguments"}`` per line, arguments as
emitted), and each tool result is linked to its call (``tool_call_id``; τ²: the tool message's
``id``) in ``run.meta["tool_calls"]``. A τ² call whose ``requestor`` disagrees with the role of
the message carrying it is warned about.

Labels: ``success`` is ``reward == 1`` (within 1e-6, τ-bench's ``REWARD_SUCCESS_MIN``/``MAX``);
``reward``, ``task_id``, ``trial`` (and τ²'s ``termination_reason``) go to ``run.meta``. Run ids:
τ-bench ``"<task_id>/trial-<trial>"``; τ² the simulation's ``id``. A run whose conversation is
empty (a task that crashed: ``info.error``) is skipped with a warning.
"""

from __future__ import annotations

import json
from typing import Any

from attribution.errors import InputError
from attribution.parse.chat import build_run
from attribution.parse.common import describe, flatten_content, iso_time, pointer, tool_call_text, warn
from attribution.types import ACTION, OBSERVATION, Origin, Run, Step

__all__ = ["NAME", "DESCRIPTION", "ACTIONS", "IDS", "detect", "read"]

NAME = "tau-bench"
DESCRIPTION = ("τ-bench results (a list of {task_id, trial, reward, traj}, or one such object a file) and τ²-bench "
               "results ({simulations: [...]})")
ACTIONS = ("assistant messages are actions of the agent, user messages (and their tool calls) actions of the user "
           "simulator; tool results ('API output:' user messages in τ-bench ReAct), system prompts are observations")
IDS = "τ²: the tool message's call id and the message timestamp; τ-bench: tool_call_id; JSON pointer of each message"

_ROLES = ("system", "user", "assistant", "tool")
_API_OUTPUT = "API output: "
_V1_KEYS = ("task_id", "trial", "reward", "info", "traj")


def _is_v1(x: Any) -> bool:
    return isinstance(x, dict) and "task_id" in x and isinstance(x.get("traj"), list) and ("reward" in x or "trial" in x)


def _is_sim(x: Any) -> bool:
    return isinstance(x, dict) and "task_id" in x and isinstance(x.get("messages"), list) and (
        "termination_reason" in x or "reward_info" in x)


def detect(value: Any) -> float:
    """1.0 for τ-bench results (items with task_id and traj) or τ²-bench results / simulation runs
    (task_id, messages and termination_reason or reward_info); 0 otherwise.

    Examples
    --------
    >>> detect([{"task_id": 3, "trial": 0, "reward": 1.0, "traj": []}])
    1.0
    >>> detect({"simulations": [{"id": "s1", "task_id": "t", "messages": [], "termination_reason": "user_stop"}]})
    1.0
    """
    if isinstance(value, dict):
        sims = value.get("simulations")
        if isinstance(sims, list) and sims and all(_is_sim(s) for s in sims):
            return 1.0
        return 1.0 if _is_sim(value) or _is_v1(value) else 0.0
    if isinstance(value, list) and value and (all(_is_v1(x) for x in value) or all(_is_sim(x) for x in value)):
        return 1.0
    return 0.0


def read(value: Any, source: str, *, lines: list[int] | None = None) -> list[Run]:
    """Every conversation of a τ-bench or τ²-bench results file (JSON or JSONL)."""
    if isinstance(value, dict) and isinstance(value.get("simulations"), list):
        info = value.get("info") if isinstance(value.get("info"), dict) else {}
        names = _names(info)
        return _read_sims(value["simulations"], source, names, base=("simulations",), lines=None)
    if isinstance(value, dict) and _is_sim(value):
        return _read_sims([value], source, _names({}), base=None, lines=None)
    if isinstance(value, list) and value and all(_is_sim(x) for x in value):
        return _read_sims(value, source, _names({}), base=(), lines=lines)
    if isinstance(value, list) and value and all(_is_v1(x) for x in value):
        return _read_v1(value, source, lines)
    if isinstance(value, dict) and _is_v1(value):  # one EnvRunResult a file (extra keys are kept in meta)
        return _read_v1([value], source, None, single=True)
    raise InputError(source, "τ-bench results (a list of {task_id, trial, reward, traj}) or τ²-bench results "
                     "({simulations: [...]})", got=describe(value))


def _names(info: dict) -> tuple[str, str]:
    def impl(key: str, default: str) -> str:
        part = info.get(key)
        name = part.get("implementation") if isinstance(part, dict) else None
        return name if isinstance(name, str) and name else default
    agent, user = impl("agent_info", "agent"), impl("user_info", "user_simulator")
    if agent == user:  # two agents must keep two names
        agent, user = f"agent:{agent}", f"user:{user}"
    return agent, user


def _success(reward: Any, where: str) -> bool | None:
    if reward is None:
        return None
    if isinstance(reward, bool) or not isinstance(reward, (int, float)):
        raise InputError(where, "'reward' to be a number", got=describe(reward))
    return abs(reward - 1.0) <= 1e-6


# -- τ-bench ---------------------------------------------------------------------------------------


def _read_v1(items: list, source: str, lines: list[int] | None, *, single: bool = False) -> list[Run]:
    runs = []
    for k, item in enumerate(items):
        run_id = f"{item['task_id']}/trial-{item.get('trial', 0)}"
        record = f"line {lines[k]}" if lines else f"run {run_id}"
        where = f"{source}, {record}"
        info = item.get("info") if isinstance(item.get("info"), dict) else {}
        if not item["traj"] and single:
            raise InputError(where, "a τ-bench result with a non-empty 'traj'",
                             got=f"an empty traj (error: {str(info.get('error'))[:80]!r})")
        if not item["traj"]:
            warn(source, f"run {run_id} has an empty traj (error: {str(info.get('error'))[:80]!r}); skipped", record=record)
            continue
        base = () if lines or single else (k,)
        steps, links = _messages(item["traj"], where, "agent", "user_simulator", base=(*base, "traj"),
                                 line=lines[k] if lines else None, tau2=False)
        task = info.get("task") if isinstance(info.get("task"), dict) else {}
        runs.append(build_run(
            steps, source=source, run_id=run_id, format=NAME,
            question=task.get("instruction") if isinstance(task.get("instruction"), str) else None,
            success=_success(item.get("reward"), where),
            meta={"tool_calls": links, "task_id": item["task_id"], "trial": item.get("trial"),
                  "reward": item.get("reward"), "info": info,
                  **({"extra": {x: item[x] for x in item if x not in _V1_KEYS}} if single else {"position": k})},
        ))
    return runs


# -- τ²-bench --------------------------------------------------------------------------------------


def _read_sims(sims: list, source: str, names: tuple[str, str], *, base: tuple | None, lines: list[int] | None) -> list[Run]:
    runs = []
    for k, sim in enumerate(sims):
        if not _is_sim(sim):
            raise InputError(f"{source}, simulation {k}", "a simulation {id, task_id, messages, reward_info}",
                             got=describe(sim))
        run_id = str(sim.get("id") or f"{sim['task_id']}/trial-{sim.get('trial', 0)}")
        record = f"line {lines[k]}" if lines else f"simulation {run_id}"
        where = f"{source}, {record}"
        if not sim["messages"]:
            warn(source, f"simulation {run_id} has no messages (termination: {sim.get('termination_reason')!r}); skipped",
                 record=record)
            continue
        prefix = () if base is None else (*base, k) if not lines else ()
        steps, links = _messages(sim["messages"], where, *names, base=(*prefix, "messages"),
                                 line=lines[k] if lines else None, tau2=True)
        reward_info = sim.get("reward_info") if isinstance(sim.get("reward_info"), dict) else {}
        meta = {"tool_calls": links, "task_id": sim["task_id"], "trial": sim.get("trial"),
                "reward": reward_info.get("reward"), "termination_reason": sim.get("termination_reason"),
                "reward_info": reward_info}
        if base is not None:
            meta["position"] = k
        runs.append(build_run(steps, source=source, run_id=run_id, format=NAME,
                              success=_success(reward_info.get("reward"), where), meta=meta))
    return runs


# -- messages (both versions) ----------------------------------------------------------------------


def _messages(messages: list, where: str, agent: str, user: str, *, base: tuple, line: int | None,
              tau2: bool) -> tuple[list[Step], list[tuple[int, int]]]:
    flat: list[tuple[dict, str]] = []
    for i, msg in enumerate(messages):
        if isinstance(msg, dict) and msg.get("role") == "tool" and isinstance(msg.get("tool_messages"), list):
            flat.extend((m, pointer(*base, i, "tool_messages", j)) for j, m in enumerate(msg["tool_messages"]))
        else:
            flat.append((msg, pointer(*base, i)))
    steps: list[Step] = []
    calls: dict[str, tuple[int, str]] = {}  # call id -> (step index, tool name)
    links: list[tuple[int, int]] = []
    last_action: tuple[int, str] | None = None  # τ-bench ReAct: (assistant step, the Action's tool name)
    for n, (msg, ptr) in enumerate(flat):
        if not isinstance(msg, dict):
            raise InputError(where, "a message {role, content, ...}", step=n, got=describe(msg))
        role = msg.get("role")
        if role not in _ROLES:
            raise InputError(where, f"a message role among {', '.join(_ROLES)}", step=n, got=repr(role))
        own = msg.get("tool_calls") or []
        if not isinstance(own, list):
            raise InputError(where, "'tool_calls' to be a list", step=n, got=describe(own))
        text, uses, results = _blocks(msg.get("content"), where, n)
        own = own + uses
        call_id = None
        api_output = not tau2 and role == "user" and text.startswith(_API_OUTPUT) and not own
        if results:  # Anthropic tool_result blocks: the tool's output, whatever the role says
            kind = OBSERVATION
            call_id = results[0]
            caller = calls.get(call_id)
            name = caller[1] if caller else "tool"
            links.extend((calls[r][0], n) for r in results if r in calls)
            if own or len(results) > 1:
                warn(where, f"a {role} message with {len(results)} tool_result block(s) and {len(own)} tool call(s) "
                     "is read as one observation", step=n)
        elif role == "assistant" or role == "user" and not api_output:
            kind, name = ACTION, agent if role == "assistant" else user
            lines_ = []
            for c in own:
                cid, tool, args = _call(c, where, n, tau2)
                lines_.append(tool_call_text(tool, args))
                if cid:
                    calls[cid] = (n, tool)
                requestor = c.get("requestor") if tau2 else None
                if requestor is not None and requestor != role:
                    warn(where, f"a tool call ({tool!r}) with requestor {requestor!r} on a {role} message; "
                         f"scored as {name!r}'s action", step=n)
            text = "\n".join(([text] if text else []) + lines_)
            if role == "assistant" and not tau2:
                last_action = (n, _react_tool(text))
        elif role == "user":  # τ-bench ReAct / Act: a tool's output fed back as a user message
            kind, name = OBSERVATION, (last_action[1] if last_action else None) or "tool"
            if last_action is not None:
                links.append((last_action[0], n))
        elif role == "tool":
            kind = OBSERVATION
            call_id = msg.get("id") if tau2 else msg.get("tool_call_id")
            caller = calls.get(call_id) if isinstance(call_id, str) else None
            name = caller[1] if caller else msg.get("name") if isinstance(msg.get("name"), str) and msg["name"] else "tool"
            if caller is not None:
                links.append((caller[0], n))
            if own:
                warn(where, f"a tool message (an observation) carries {len(own)} tool call(s); not scored", step=n)
        else:
            kind, name = OBSERVATION, "system"
        origin = Origin(
            id=call_id if isinstance(call_id, str) and call_id else None,
            id_type="tool_call" if isinstance(call_id, str) and call_id else None,
            pointer=ptr,
            line=line,
            timestamp=iso_time(msg.get("timestamp")),
        )
        steps.append(Step(index=n, agent=name, role=role, kind=kind, content=text, origin=origin))
    return steps, links


def _blocks(content: Any, where: str, n: int) -> tuple[str, list[dict], list[str]]:
    """Text, ``tool_use`` calls and ``tool_result`` ids of a message's content.

    τ-bench's Claude agent keeps Anthropic content blocks: ``{"type": "tool_use", "id", "name",
    "input"}`` in assistant messages and ``{"type": "tool_result", "tool_use_id", "content"}`` in
    user messages. Any other content goes through :func:`flatten_content`.
    """
    if not isinstance(content, list) or not any(isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result")
                                                for b in content):
        return flatten_content(content, source=where, step=n), [], []
    texts, uses, results = [], [], []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_use":
            uses.append({"id": block.get("id"), "name": block.get("name"), "arguments": block.get("input")})
        elif kind == "tool_result":
            if not isinstance(block.get("tool_use_id"), str):
                raise InputError(where, "a tool_result block with a 'tool_use_id'", step=n, got=describe(block))
            results.append(block["tool_use_id"])
            texts.append(flatten_content(block.get("content"), source=where, step=n))
        else:
            texts.append(flatten_content([block], source=where, step=n))
    return "\n".join(t for t in texts if t), uses, results


def _call(call: Any, where: str, n: int, tau2: bool) -> tuple[str | None, str, Any]:
    """(id, tool name, arguments) of a τ² ``{id, name, arguments}``, OpenAI ``{id, function}`` or
    Anthropic ``tool_use`` call."""
    if isinstance(call, dict) and isinstance(call.get("function"), dict):
        fn = call["function"]
        name, args = fn.get("name"), fn.get("arguments")
    elif isinstance(call, dict):
        name, args = call.get("name"), call.get("arguments")
    else:
        name, args = None, None
    if not isinstance(name, str) or not name:
        shape = "{id, name, arguments, requestor}" if tau2 else "{id, function: {name, arguments}}"
        raise InputError(where, f"tool calls of the form {shape}", step=n, got=describe(call))
    cid = call.get("id")
    return (cid if isinstance(cid, str) and cid else None), name, args


def _react_tool(text: str) -> str | None:
    """The tool a τ-bench ReAct/Act message calls: the ``name`` of the JSON after its last ``Action:``."""
    if "Action:" not in text:
        return None
    try:
        action = json.loads(text.split("Action:")[-1].strip())
    except (json.JSONDecodeError, RecursionError):
        return None
    name = action.get("name") if isinstance(action, dict) else None
    return name if isinstance(name, str) and name and name != "respond" else None
