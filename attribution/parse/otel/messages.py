"""Messages out of a span: OpenInference ``llm.*_messages``, GenAI ``gen_ai.*.messages`` and events,
legacy ``gen_ai.prompt.N`` attributes, and the provider envelopes trace stores keep as input/output
(chat.completion, Responses API, Gemini ``candidates``, LangChain messages), decoded from JSON
strings when stored so."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from attribution.errors import InputError
from attribution.parse.common import describe, flatten_content, text_of, tool_call_text
from attribution.parse.otel.spans import _MISSING, _Span, _as_list, _flat


@dataclasses.dataclass
class _Msg:
    role: str
    text: str
    calls: list[tuple[str | None, str, Any]] = dataclasses.field(default_factory=list)  # (id, name, arguments)
    call_id: str | None = None  # on a tool result
    name: str | None = None

    def __post_init__(self) -> None:  # ids are strings as written; anything else is no id
        self.call_id = _cid(self.call_id)
        self.calls = [(_cid(i), str(n), a) for i, n, a in self.calls]
        self.name = self.name if isinstance(self.name, str) and self.name else None

    def content(self) -> str:
        return "\n".join(([self.text] if self.text else []) + [tool_call_text(n, a) for _, n, a in self.calls])


def _cid(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else str(value) if type(value) is int else None


def _json(value: Any, span: _Span, source: str, what: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        raise InputError(span.where(source), f"'{what}' to hold JSON messages", got=f"{err.msg} at column {err.colno}") from err
    except RecursionError:
        raise InputError(span.where(source), f"'{what}' to hold JSON messages", got="too deeply nested JSON") from None


def _group(attrs: dict[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """Flattened list items by index, in one pass: ``{prefix}.N.rest`` -> ``{N: {rest: value}}``.

    >>> _group({"m.0.role": "user", "m.1.role": "tool", "m.1.name": "x", "other": 1}, "m")
    {0: {'role': 'user'}, 1: {'role': 'tool', 'name': 'x'}}
    """
    out: dict[int, dict[str, Any]] = {}
    cut = len(prefix) + 1
    for k, v in attrs.items():
        if k.startswith(prefix) and k[cut - 1:cut] == ".":
            head, _, rest = k[cut:].partition(".")
            if head.isdigit() and rest:
                out.setdefault(int(head), {})[rest] = v
    return dict(sorted(out.items()))


def _oi_messages(attrs: dict[str, Any], prefix: str, span: _Span, source: str) -> list[_Msg] | None:
    """OpenInference ``llm.input_messages`` / ``llm.output_messages`` (flattened), or None when absent."""
    if isinstance(attrs.get(prefix), (str, list)):  # recorded whole: a JSON string or a list
        value = _json(attrs[prefix], span, source, prefix)
        if not isinstance(value, list):
            raise InputError(span.where(source), f"'{prefix}' to be a list of messages", got=describe(value))
        attrs = _flat({prefix: value})
    groups = _group(attrs, prefix)
    if not groups:
        return None
    out = []
    for n, msg in groups.items():
        text = msg.get("message.content")
        if not isinstance(text, str):
            parts = []
            for part in _group(msg, "message.contents").values():
                kind = part.get("message_content.type", "text")
                body = part.get("message_content.text")
                parts.append(body if kind == "text" and isinstance(body, str) else f"<{kind}>")
            text = "\n".join(parts) if parts else text_of(text) if text is not None else ""
        calls = []
        for k, call in _group(msg, "message.tool_calls").items():
            name = call.get("tool_call.function.name")
            if not isinstance(name, str):
                where = f"{prefix}.{n}.message.tool_calls.{k}.tool_call.function.name"
                raise InputError(span.where(source), f"'{where}' to be a string", got=describe(name))
            calls.append((call.get("tool_call.id"), name, call.get("tool_call.function.arguments")))
        if isinstance(msg.get("message.function_call_name"), str):  # older OpenInference
            calls.append((None, msg["message.function_call_name"], msg.get("message.function_call_arguments_json")))
        out.append(_Msg(str(msg.get("message.role") or ""), text, calls, msg.get("message.tool_call_id"),
                        msg.get("message.name")))
    return out


def _parts_message(m: dict[str, Any], span: _Span, source: str) -> _Msg:
    """A GenAI ``{role, parts}`` message, or an OpenAI/Anthropic-style ``{role, content, tool_calls}`` one."""
    role = str(m.get("role") or "")
    if "parts" not in m:
        return _chat_message(m, role, span, source)
    parts = m["parts"]
    if not isinstance(parts, list):
        raise InputError(span.where(source), "message 'parts' to be a list", got=describe(parts))
    texts, calls, call_id = [], [], None
    for part in parts:
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise InputError(span.where(source), "message parts with a 'type'", got=describe(part))
        kind = part["type"]
        if kind == "tool_call":
            calls.append((part.get("id"), str(part.get("name", "")), part.get("arguments")))
        elif kind == "tool_call_response":
            call_id = part.get("id")
            texts.append(text_of(part.get("response", part.get("result", ""))))
        else:
            texts.append(flatten_content([part], source=span.where(source)))
    return _Msg(role, "\n".join(t for t in texts if t), calls, call_id, m.get("name"))


def _chat_message(m: dict[str, Any], role: str, span: _Span, source: str) -> _Msg:
    content = m.get("content")
    texts, calls, result_of = [], [], None
    if isinstance(content, list):  # typed parts (OpenAI, Anthropic)
        for part in content:
            if isinstance(part, dict) and part.get("type") == "tool_use":
                calls.append((part.get("id"), str(part.get("name", "")), part.get("input")))
            elif isinstance(part, dict) and part.get("type") == "tool_result":  # Anthropic: a user turn of results
                result_of = part.get("tool_use_id")
                texts.append(flatten_content(part.get("content"), source=span.where(source)))
            else:
                texts.append(flatten_content([part], source=span.where(source)))
        text = "\n".join(t for t in texts if t)
    elif isinstance(content, dict):  # Azure agents: {"text": {"value": ...}}; event bodies {"content": ...}
        inner = content.get("text", content)
        text = inner.get("value") if isinstance(inner, dict) and isinstance(inner.get("value"), str) else text_of(content)
    else:
        text = "" if content is None else text_of(content)
    for call in _as_list(m.get("tool_calls"), span, source, "tool_calls"):
        if not isinstance(call, dict):
            raise InputError(span.where(source), "tool_calls entries as objects", got=describe(call))
        fn = call.get("function") if isinstance(call.get("function"), dict) else call
        if not isinstance(fn.get("name"), str):
            raise InputError(span.where(source), "tool_calls entries with a function name", got=describe(call))
        calls.append((call.get("id"), fn["name"], fn.get("arguments")))
    if result_of is not None and not calls:
        role = "tool"
    call_id = m.get("tool_call_id") or result_of or (m.get("id") if role == "tool" else None)
    return _Msg(role, text, calls, call_id, m.get("name"))


def _message_list(value: Any, span: _Span, source: str, what: str) -> list[_Msg]:
    value = _json(value, span, source, what)
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InputError(span.where(source), f"'{what}' to be a list of messages", got=describe(value))
    out = []
    for m in value:
        if not isinstance(m, dict):
            raise InputError(span.where(source), f"'{what}' entries to be message objects", got=describe(m))
        out.append(_parts_message(m, span, source))
    return out


_EVENT_ROLES = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}


def _event_body(attrs: dict[str, Any], span: _Span, source: str) -> dict[str, Any]:
    """An older GenAI event's body: in ``gen_ai.event.content`` (JSON), ``event.body``/``body``, or the attributes."""
    for key in ("gen_ai.event.content", "event.body", "body"):
        if key in attrs:
            body = _json(attrs[key], span, source, key)
            if isinstance(body, dict):
                return body
            return {"content": body}
    return {k: v for k, v in attrs.items() if not k.startswith("gen_ai.system")}


def _attribute_events(span: _Span, source: str) -> list[tuple[str, dict[str, Any]]]:
    """GenAI events recorded in one ``events`` attribute (Pydantic AI / Logfire's ``event_mode=
    'attributes'``: a JSON list of ``{"event.name": ..., body fields}``)."""
    value = span.attrs.get("events")
    if value is None:
        return []
    value = _json(value, span, source, "events")
    if not isinstance(value, list):
        raise InputError(span.where(source), "'events' to be a list of GenAI events", got=describe(value))
    out = []
    for ev in value:
        if not isinstance(ev, dict):
            raise InputError(span.where(source), "'events' entries to be objects with 'event.name'", got=describe(ev))
        out.append((str(ev.get("event.name", "")), {k: v for k, v in ev.items() if k != "event.name"}))
    return out


def _event_messages(span: _Span, source: str) -> tuple[list[_Msg] | None, list[_Msg] | None]:
    ins: list[_Msg] = []
    outs: list[_Msg] = []
    for name, attrs in span.events + _attribute_events(span, source):
        if name in _EVENT_ROLES:
            body = _unflat(_event_body(attrs, span, source))
            ins.append(_chat_message(body, str(body.get("role") or _EVENT_ROLES[name]), span, source))
        elif name == "gen_ai.choice":
            body = _unflat(_event_body(attrs, span, source))
            msg = body.get("message", body)
            if not isinstance(msg, dict):
                msg = {"content": msg}
            outs.append(_chat_message(msg, str(msg.get("role") or "assistant"), span, source))
        elif name in ("gen_ai.content.prompt", "gen_ai.content.completion"):  # GenAI conventions before v1.28
            key = "gen_ai.prompt" if name == "gen_ai.content.prompt" else "gen_ai.completion"
            msgs = (_message_list(attrs[key], span, source, key) if key in attrs
                    else _legacy_messages(attrs, key) or [])
            (ins if key == "gen_ai.prompt" else outs).extend(msgs)
    return ins or None, outs or None


def _unflat(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys back into nested objects, digit parts into lists (event bodies flattened as
    attributes: ``tool_calls.0.function.name``)."""
    root: dict[str, Any] = {}
    for key, v in flat.items():
        node = root
        parts = key.split(".")
        for p in parts[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = node[p] = {}
            node = nxt
        node[parts[-1]] = v

    def lists(x: Any) -> Any:
        if isinstance(x, dict):
            x = {k: lists(v) for k, v in x.items()}
            if x and all(k.isdigit() for k in x):
                return [x[k] for k in sorted(x, key=int)]
        return x

    return lists(root)


def _legacy_messages(attrs: dict[str, Any], prefix: str) -> list[_Msg] | None:
    """``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` (OpenLLMetry and GenAI before messages attributes)."""
    groups = _group(attrs, prefix)
    if not groups:
        return None
    out = []
    for msg in groups.values():
        calls = [(c.get("id"), str(c.get("name", "")), c.get("arguments")) for c in _group(msg, "tool_calls").values()]
        if isinstance(msg.get("function_call.name"), str):
            calls.append((None, msg["function_call.name"], msg.get("function_call.arguments")))
        content = msg.get("content")
        out.append(_Msg(str(msg.get("role") or ""), "" if content is None else text_of(content), calls,
                        msg.get("tool_call_id")))
    return out


def _langfuse_messages(value: Any, span: _Span, source: str, what: str) -> list[_Msg] | None:
    if value is _MISSING or value is None:
        return None
    if isinstance(value, str):
        return [_Msg("assistant" if what == "output" else "user", value)]
    if isinstance(value, dict) and isinstance(value.get("choices"), list) and value["choices"]:
        value = [c.get("message", c) if isinstance(c, dict) else c for c in value["choices"]]
    if isinstance(value, dict) and not ({"role", "content", "parts", "tool_calls", "messages"} & set(value)):
        return [_Msg("assistant" if what == "output" else "user", text_of(value))]
    msgs = _message_list(value, span, source, what)
    if what == "output":
        for m in msgs:
            m.role = m.role or "assistant"
    return msgs


def _llm_messages(span: _Span, source: str) -> tuple[list[_Msg], list[_Msg] | None]:
    """(input messages, output messages or None when the span records no output)."""
    a = span.attrs
    ev_in, ev_out = _event_messages(span, source) if span.events or "events" in a else (None, None)
    ins = _oi_messages(a, "llm.input_messages", span, source)
    if ins is None and "gen_ai.input.messages" in a:
        ins = _message_list(a["gen_ai.input.messages"], span, source, "gen_ai.input.messages")
    ins = ins if ins is not None else ev_in if ev_in is not None else _legacy_messages(a, "gen_ai.prompt")
    if ins is None:
        ins = _langfuse_messages(span.input, span, source, "input")
    outs = _oi_messages(a, "llm.output_messages", span, source)
    if outs is None and "gen_ai.output.messages" in a:
        outs = _message_list(a["gen_ai.output.messages"], span, source, "gen_ai.output.messages")
    outs = outs if outs is not None else ev_out if ev_out is not None else _legacy_messages(a, "gen_ai.completion")
    if outs is None:
        outs = _langfuse_messages(span.output, span, source, "output")
    if outs is None and isinstance(a.get("output.value"), str) and a.get("openinference.span.kind") == "LLM":
        raw = a["output.value"]
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            doc = None
        outs = (_langfuse_messages(doc, span, source, "output") if isinstance(doc, dict) and "choices" in doc
                else [_Msg("assistant", raw)])
    return ins or [], outs

