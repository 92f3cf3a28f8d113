"""One trace's spans to one run: span kinds, agent names, causal order, tool links, hand-offs."""

from __future__ import annotations

import dataclasses
import json

from attribution.parse.chat import build_run
from attribution.parse.common import text_of, warn
from attribution.parse.otel.messages import _cid, _group, _llm_messages, _message_list, decode, input_text
from attribution.parse.otel.spans import _MISSING, Collector, _Span, _err
from attribution.types import ACTION, OBSERVATION, Origin, Run, Step

_LLM_OPS = {"chat", "text_completion", "generate_content", "completion"}
_AGENT_OPS = {"invoke_agent", "create_agent"}


# -- span kinds and names ------------------------------------------------------------------------


def _kind(span: _Span) -> str:
    """'llm', 'agent', 'tool' or 'other'."""
    a = span.attrs
    oi = str(a.get("openinference.span.kind") or span.store_kind or "").upper()
    op = str(a.get("gen_ai.operation.name") or "")
    tl = str(a.get("traceloop.span.kind") or "").lower()
    if oi in ("LLM", "GENERATION") or op in _LLM_OPS or str(a.get("llm.request.type")) in ("chat", "completion"):
        return "llm"
    if oi == "AGENT" or op in _AGENT_OPS or tl == "agent":
        return "agent"
    if oi in ("TOOL", "RETRIEVER") or op == "execute_tool" or tl == "tool":
        return "tool"
    if span.name == "agent run" and isinstance(a.get("agent_name"), str):  # Pydantic AI before GenAI agent spans
        return "agent"
    if isinstance(a.get("gen_ai.tool.name"), str) and not oi and not op:  # Pydantic AI's 'running tool'
        return "tool"
    if any(k.startswith(("gen_ai.completion.", "llm.output_messages.")) for k in a) or "gen_ai.output.messages" in a:
        return "llm"
    if any(name in ("gen_ai.choice", "gen_ai.content.completion") for name, _ in span.events):
        return "llm"
    node = _langgraph_node(span)
    if node is not None and node not in _LANGGRAPH_INNER:
        return "agent"
    return "other"


#: LangGraph node names that are a step inside an agent, not an agent: the prebuilt ReAct agent's
#: 'agent' / 'tools' nodes, and the graph's start and end.
_LANGGRAPH_INNER = {"agent", "model", "call_model", "llm", "tools", "__start__", "__end__"}


def _langgraph_node(span: _Span) -> str | None:
    """The LangGraph node this span is (OpenInference's LangChain spans carry the run's ``metadata``
    with ``langgraph_node``; the node's own span has that name, its children inherit the metadata)."""
    meta = span.attrs.get("metadata")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except (json.JSONDecodeError, RecursionError):
            return None
    node = meta.get("langgraph_node") if isinstance(meta, dict) else None
    return node if isinstance(node, str) and node == span.name else None


def _explicit_agent(span: _Span) -> str | None:
    for key in ("agent.name", "gen_ai.agent.name", "agent_name"):
        v = span.attrs.get(key)
        if isinstance(v, str) and v:
            return v
    return None


def _tool_name(span: _Span) -> str:
    for key in ("tool.name", "gen_ai.tool.name", "traceloop.entity.name"):
        v = span.attrs.get(key)
        if isinstance(v, str) and v:
            return v
    name = span.name
    return name.split(" ", 1)[1] if name.startswith("execute_tool ") and " " in name else name or "tool"


def _tool_output(span: _Span) -> str | None:
    a = span.attrs
    for key in ("output.value", "gen_ai.tool.call.result", "traceloop.entity.output", "tool_response"):
        if a.get(key) is not None:
            return text_of(a[key])
    if span.output is not _MISSING and span.output is not None:
        out = decode(span.output) if isinstance(span.output, str) else span.output
        return out if isinstance(out, str) else span.output if isinstance(span.output, str) else text_of(out)
    docs = _group(a, "retrieval.documents")
    if docs:
        return "\n".join(text_of(d.get("document.content", "")) for d in docs.values())
    if span.error:
        return f"error: {span.error}"
    return None


def _input_text(span: _Span, source: str) -> str | None:
    if span.attrs.get("gen_ai.input.messages") is not None and span.attrs.get("input.value") is None:
        msgs = _message_list(span.attrs["gen_ai.input.messages"], span, source, "gen_ai.input.messages")
        return "\n".join(m.content() for m in msgs if m.role in ("user", "human")) or None
    for key in ("input.value", "traceloop.entity.input"):
        v = span.attrs.get(key)
        if v is not None:
            return text_of(v)
    return input_text(span.input, span, source)


# -- one trace to one run -------------------------------------------------------------------------


@dataclasses.dataclass
class _Item:
    key: tuple
    agent: str
    role: str
    kind: str
    text: str
    span: _Span
    calls: list = dataclasses.field(default_factory=list)
    call_id: str | None = None
    tool: str | None = None


def trace_run(trace: str, spans: list[_Span], source: str, c: Collector, stem: str, *, skip_plain: bool) -> Run | None:
    label = f"trace {trace}"
    by_id: dict[str, _Span] = {}
    for s in spans:
        if s.id in by_id:
            first = by_id[s.id]
            if _same_span(first, s):  # the same span exported twice (a retried export): read once
                warn(source, f"span id {s.id} appears twice with the same content; read once", record=label)
                continue
            # two different spans under one id: parent links and steps would go to the wrong span
            raise _err(source, s.record(), f"span ids unique within the trace (span {s.id} is also {first.record()})",
                       f"a second, different span {s.name!r} with that id")
        by_id[s.id] = s
    spans = list(by_id.values())
    parent: dict[str, _Span | None] = {}
    for s in spans:
        if s.parent is not None and s.parent == s.id:
            raise _err(source, s.record(), "a parent span id other than its own", repr(s.parent))
        p = by_id.get(s.parent) if s.parent else None
        if s.parent and p is None:
            warn(source, f"parent span {s.parent} of {s.id_type} {s.id} is not in the file; read as a root", record=label)
        parent[s.id] = p
    children: dict[str | None, list[_Span]] = {}
    for s in spans:
        p = parent[s.id]
        children.setdefault(p.id if p else None, []).append(s)

    # start times: a span without one inherits its parent's; order: (start, tree order)
    start: dict[str, int] = {}
    pre: dict[str, int] = {}
    last: dict[str, int] = {}  # last preorder index in the subtree

    def visit(s: _Span, inherited: int, stack: set[str]) -> None:
        if s.id in stack:
            raise _err(source, s.record(), "parent links without a cycle", f"a cycle through {s.id}")
        start[s.id] = s.start if s.start is not None else inherited
        pre[s.id] = len(pre)
        kids = sorted(children.get(s.id, []), key=lambda k: (k.start if k.start is not None else start[s.id], k.order))
        for k in kids:
            visit(k, start[s.id], stack | {s.id})
        last[s.id] = len(pre) - 1

    roots = sorted(children.get(None, []), key=lambda k: (k.start or 0, k.order))
    if not roots:
        raise _err(source, label, "a root span (one without a parent)", "every span has a parent: a cycle")
    for r in roots:
        visit(r, r.start or 0, set())
    if len(pre) != len(spans):
        bad = next(s for s in spans if s.id not in pre)
        raise _err(source, bad.record(), "parent links without a cycle", f"a cycle through {bad.id}")
    end = {s.id: s.end if s.end is not None else max(start[k.id] for k in _subtree(s, children)) for s in spans}

    kinds = {s.id: _kind(s) for s in spans}
    root = roots[0]
    default_agent = next((s.service for s in roots if s.service), None) or c.names.get(trace) or root.name or "agent"

    items: list[_Item] = []
    names: dict[str, str] = {}
    tool_names = {_tool_name(t) for t in spans if kinds[t.id] == "tool"}

    def boundary_name(s: _Span) -> str:
        """An agent span's name; memoised, first asked when its first LLM call is read, so that the
        steps of the agents above it (which may name it in a tool call) are known by then."""
        if s.id not in names:
            names[s.id] = _boundary_name(s)
        return names[s.id]

    def _boundary_name(s: _Span) -> str:
        name = _explicit_agent(s)
        p = parent[s.id]
        if name is None and p is not None and kinds[p.id] == "tool":
            name = _tool_name(p)  # a managed sub-agent, named only by the tool call that runs it
        for key in ("graph.node.name", "graph.node.id"):  # CrewAI sets only the id: the agent's role
            if name is None and isinstance(s.attrs.get(key), str) and s.attrs[key]:
                name = s.attrs[key]
        if name is None:
            name = _langgraph_node(s)
        if name is None and p is not None:
            name = _called_by(s, p)
        if name is None and s.name.startswith("invoke_agent ") and len(s.name) > 13:
            name = s.name[13:]
        if name is None and (not s.name or "." in s.name or s.name.lower() in ("agent", "invoke_agent", "run")):
            # a class or method name ('ToolCallingAgent.run'), not an agent's own name
            warn(source, f"agent {s.id_type} {s.id} has no agent name; using its span name {s.name!r}", record=label)
        return name or s.name or "agent"

    def _called_by(s: _Span, p: _Span) -> str | None:
        """The name a calling agent gave this one: the last tool call, before this span starts, by the
        agent above that no tool span answers (smolagents calls managed agents so; the caller's
        ``smolagents.managed_agents.N.name`` lists them)."""
        up, up_span = owner(p)
        if up_span is None:
            return None
        managed = {v for k, v in up_span.attrs.items() if k.startswith("smolagents.managed_agents.") and k.endswith(".name")}
        at = (start[s.id], pre[s.id])
        for it in reversed(items):
            if it.kind == ACTION and it.agent == up and it.key[:2] < at:
                for _, call, _ in reversed(it.calls):
                    if call in managed or (not managed and call not in tool_names):
                        return call
        return next(iter(managed)) if len(managed) == 1 else None

    def owner(s: _Span) -> tuple[str, _Span | None]:
        x: _Span | None = s
        while x is not None:
            name = _explicit_agent(x)
            if name:
                return name, x
            if kinds[x.id] == "agent":
                return boundary_name(x), x
            x = parent[x.id]
        return default_agent, None

    def _below(s: _Span, ids: set[str]) -> bool:
        x = parent[s.id]
        while x is not None:
            if x.id in ids:
                return True
            x = parent[x.id]
        return False

    llm_below: set[str] = set()
    for s in spans:
        if kinds[s.id] == "llm":
            x = parent[s.id]
            while x is not None and x.id not in llm_below:
                llm_below.add(x.id)
                x = parent[x.id]

    # what happens, in causal order: LLM calls at their start, tool results at their end
    todo = []
    for s in spans:
        k = kinds[s.id]
        if k == "llm" or (k == "agent" and s.id not in llm_below and _has_output(s)):
            todo.append(((start[s.id], pre[s.id], 0), "llm", s))
        elif k == "tool":
            todo.append(((end[s.id], last[s.id], 1), "tool", s))
    todo.sort(key=lambda t: t[0])

    seen_user: set[str] = set()
    seen_tool: set[str] = set()
    emitted: set[str] = set()
    call_names: dict[str, str] = {}
    unseen_history = 0
    answered: set[str] = set()  # LLM spans that gave an action
    silent: list[str] = []  # LLM spans without a recorded output
    for key, what, s in todo:
        if what == "llm" and _below(s, answered):
            continue  # a provider SDK's span inside a framework's span of the same call: read once
        if what == "tool":
            text = _tool_output(s)
            if text is None:
                continue
            call_id = _cid(s.attrs.get("tool_call.id", s.attrs.get("gen_ai.tool.call.id")))
            items.append(_Item(key, _tool_name(s), "tool", OBSERVATION, text, s, call_id=call_id, tool=_tool_name(s)))
            seen_tool.update(x for x in (call_id, text.strip()) if x)
            continue
        agent, boundary = owner(s)
        ins, outs = _llm_messages(s, source)
        caller = None
        if boundary is not None and parent[boundary.id] is not None:
            up, up_span = owner(parent[boundary.id])
            caller = up if up_span is not None else None  # the agent that delegated to this one
        sub = 0
        for m in ins:
            text = m.content().strip()
            if m.role in ("user", "human"):
                if text and text not in seen_user and text not in emitted:  # not an earlier action, passed on
                    seen_user.add(text)
                    who = caller if caller and caller != agent else m.name or "user"
                    items.append(_Item((*key[:2], -1, sub), who, m.role, OBSERVATION, m.content(), s))
                    sub += 1
            elif m.role in ("tool", "function", "ipython"):
                if text and m.call_id not in seen_tool and text not in seen_tool:
                    seen_tool.update(x for x in (m.call_id, text) if x)
                    tool = m.name or call_names.get(m.call_id) or "tool"
                    items.append(_Item((*key[:2], -1, sub), tool, "tool", OBSERVATION, m.content(), s,
                                       call_id=m.call_id, tool=tool))
                    sub += 1
            elif m.role in ("assistant", "model") and text and text not in emitted:
                unseen_history += 1
        if outs is None:
            silent.append(s.id)
            continue
        text = "\n".join(m.content() for m in outs if m.content())
        if not text.strip():
            warn(source, f"LLM {s.id_type} {s.id} has an empty output; no step", record=label)
            continue
        emitted.update(m.content().strip() for m in outs)
        emitted.add(text.strip())
        items.append(_Item((*key[:2], 0, 0), agent, "assistant", ACTION, text, s,
                           calls=[c for m in outs for c in m.calls]))
        answered.add(s.id)
        call_names.update((cid, name) for m in outs for cid, name, _ in m.calls if cid)
    silent = [x for x in silent if not any(_below(by_id[y], {x}) for y in answered)]  # not a wrapper of one that did
    if silent and any(it.kind == ACTION for it in items):
        warn(source, f"{len(silent)} LLM span(s) record no output (content capture off, or a failed call), "
                     f"e.g. {silent[0]}; no step for them", record=label)
    if unseen_history:
        warn(source, f"{unseen_history} assistant message(s) in LLM inputs match no span's output "
                     "(history from outside the trace?); kept out of the steps", record=label)
    if not any(it.kind == ACTION for it in items):
        if skip_plain and not any(kinds[x.id] != "other" for x in spans):
            # a collector file also holds the app's other traces (HTTP, database): say so, go on
            warn(source, f"{label} has no LLM, agent or tool span; skipped")
            return None
        llm = [x.id for x in spans if kinds[x.id] == "llm"]
        got = (f"{len(spans)} span(s), {len(llm)} LLM span(s) (e.g. {llm[0]}) with no output text in "
               f"{_LOOKED}" if llm else f"{len(spans)} span(s), no LLM output (no span is an LLM call: "
               f"openinference.span.kind LLM, gen_ai.operation.name chat/text_completion/generate_content, "
               f"a Langfuse GENERATION)")
        raise _err(source, label, "at least one LLM call with an output (nothing to score)", got)

    items.sort(key=lambda it: it.key)
    first_action = next(i for i, it in enumerate(items) if it.kind == ACTION)
    if not any(it.kind == OBSERVATION and it.role in ("user", "human") for it in items[:first_action]):
        task = c.roots_input.get(trace)
        task = input_text(task, root, source) if task is not None else _input_text(root, source)
        if task and task.strip():
            items.insert(0, _Item((-1,), "user", "user", OBSERVATION, task, root))

    # steps, tool-call links and hand-offs
    steps: list[Step] = []
    pending: dict[str, int] = {}
    by_name: dict[str, list[int]] = {}
    links: list[tuple[int, int]] = []
    for i, it in enumerate(items):
        s = it.span
        origin = Origin(id=s.id, id_type=s.id_type, pointer=s.pointer, line=s.line, trace_id=s.trace or None,
                        timestamp=s.timestamp)
        steps.append(Step(index=i, agent=it.agent, role=it.role, kind=it.kind, content=it.text, origin=origin))
        for cid, name, _ in it.calls:
            if cid:
                pending[cid] = i
            by_name.setdefault(name, []).append(i)
        if it.kind == OBSERVATION and it.role == "tool":
            j = pending.pop(it.call_id, None) if it.call_id else None
            if j is None and it.tool and by_name.get(it.tool):
                j = by_name[it.tool][-1]
            if j is not None:
                links.append((j, i))
                if it.tool in by_name and j in by_name[it.tool]:
                    by_name[it.tool].remove(j)
    keys = [it.key for it in items]
    delegations = []
    for s in spans:
        if kinds[s.id] != "agent" or parent[s.id] is None:
            continue
        sub_agent = boundary_name(s)
        wrapper = _tool_name(parent[s.id]) if kinds[parent[s.id].id] == "tool" else None

        def names_it(i: int) -> bool:
            return any(n in (sub_agent, wrapper) or _handoff_tool(n, sub_agent) for _, n, _ in items[i].calls)

        at = (start[s.id], pre[s.id])
        up, up_span = owner(parent[s.id])
        if up != sub_agent and (up_span is not None or any(it.agent == up and it.kind == ACTION for it in items)):
            # nested: the caller's last action before the sub-agent starts (preferably one that names it)
            cands = [i for i, it in enumerate(items) if it.kind == ACTION and it.agent == up and keys[i][:2] < at]
            cands = [i for i in cands if names_it(i)] or cands
        else:
            # side by side (LangGraph nodes, sequential agents): the agent its graph.node.parent_id
            # names (CrewAI's previous agent), else an action that names it by a tool call
            # ('research_expert', 'transfer_to_research_expert') hands off to it
            before = [i for i, it in enumerate(items) if it.kind == ACTION and it.agent != sub_agent and keys[i][:2] < at]
            node_parent = s.attrs.get("graph.node.parent_id")
            cands = [i for i in before if items[i].agent == node_parent] or [i for i in before if names_it(i)]
        if not cands:
            continue
        j = cands[-1]
        delegations.append((j, sub_agent, s.id))
        if steps[j].to is None:
            steps[j] = dataclasses.replace(steps[j], to=sub_agent)
        elif steps[j].to != sub_agent:
            warn(source, f"step {j} delegates to {steps[j].to!r} and {sub_agent!r}; Step.to keeps the first",
                 step=j, record=label)

    question = next((st.content for st in steps if st.kind == OBSERVATION and st.role in ("user", "human")), None)
    return build_run(
        steps, source=source, run_id=trace or stem, format="otel", question=question,
        meta={"tool_calls": links, "trace_id": trace or None, "spans": len(spans),
              "delegations": [{"step": j, "to": a, "span": sid} for j, a, sid in delegations]},
    )


#: Where an LLM span's output text is looked for, for the error when none has any.
_LOOKED = ("llm.output_messages, gen_ai.output.messages, gen_ai.choice / gen_ai.content.completion events, "
           "gen_ai.completion.N, output.value of an LLM span, or a stored output")


def _same_span(a: _Span, b: _Span) -> bool:
    """Whether two records of one span id are the same span (a duplicate export), not two spans."""
    return (a.name, a.parent, a.start, a.end, a.attrs, a.events, a.input, a.output) == \
        (b.name, b.parent, b.start, b.end, b.attrs, b.events, b.input, b.output)


def _handoff_tool(tool: str, agent: str) -> bool:
    """Whether a tool's name is a hand-off to ``agent`` ('transfer_to_x', 'handoff_to_x', 'delegate_to_x').

    >>> _handoff_tool("transfer_to_research_expert", "research_expert"), _handoff_tool("search", "research_expert")
    (True, False)
    """
    return tool.lower().endswith(("_to_" + agent.lower(), "to " + agent.lower())) and tool.lower() != agent.lower()


def _subtree(s: _Span, children: dict[str | None, list[_Span]]) -> list[_Span]:
    out, todo = [], [s]
    while todo:
        x = todo.pop()
        out.append(x)
        todo.extend(children.get(x.id, []))
    return out


def _has_output(s: _Span) -> bool:
    return ("gen_ai.output.messages" in s.attrs or any(k.startswith("llm.output_messages.") for k in s.attrs)
            or any(name == "gen_ai.choice" for name, _ in s.events))

