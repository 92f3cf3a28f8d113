"""Messages out of a span: OpenInference ``llm.*_messages``, GenAI ``gen_ai.*.messages`` and events,
legacy ``gen_ai.prompt.N`` attributes, and the provider envelopes trace stores keep as input/output
(chat.completion, Responses API, Gemini ``candidates``, LangChain messages), decoded from JSON
strings when stored so."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from attribution.errors import InputError
from attribution.io import json_error
from attribution.parse.common import describe, flatten_content, text_of, tool_call_text, warn
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
        raise InputError(span.where(source), f"'{what}' to hold JSON messages", got=json_error(err, column_only=True)) from err
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


#: Keys only a provider's request/response envelope has: never the agent's own words.
ENVELOPE_KEYS = ("usage", "object", "candidates", "system_fingerprint", "usageMetadata", "usage_metadata")
_LC_ROLES = {"ai": "assistant", "AIMessage": "assistant", "AIMessageChunk": "assistant", "human": "user",
             "HumanMessage": "user", "system": "system", "SystemMessage": "system", "tool": "tool",
             "ToolMessage": "tool", "function": "tool", "FunctionMessage": "tool", "chat": "user"}
_ROLES = {"model": "assistant", "ai": "assistant", "human": "user", "function": "tool"}


def is_envelope(value: Any) -> bool:
    """Whether ``value`` is a provider's request/response object (not a message): it has one of
    :data:`ENVELOPE_KEYS`.

    >>> is_envelope({"object": "chat.completion", "choices": []}), is_envelope({"role": "assistant"})
    (True, False)
    """
    return isinstance(value, dict) and any(k in value for k in ENVELOPE_KEYS)


def decode(value: Any) -> Any:
    """A stored input/output as a JSON value: a string holding a JSON object or list is decoded (most
    OpenTelemetry integrations store them so), any other value is returned as is."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return value
    if isinstance(value, str) and value.strip()[:1] == '"':
        try:
            inner = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return value
        return inner if isinstance(inner, str) else value
    return value


def envelope_messages(value: Any, span: _Span, source: str, what: str) -> list[_Msg] | None:
    """The messages in a trace store's stored ``input`` / ``output`` (``what``), the provider's envelope
    opened: a plain string; a JSON string of any of the below; a chat.completion (``choices``); a
    Responses API object (``output`` items) or request (``input``); Gemini ``candidates`` / request
    ``contents``; a LangChain ``LLMResult`` (``generations``), message dict (``type``: ai / human /
    tool) or serialised message (``lc``/``kwargs``); a request with ``messages`` (also nested one
    level, as under ``json_data``); a message list; one message. None when nothing is stored; an
    envelope with no message in it gives no message, with a warning naming the span."""
    if value is _MISSING or value is None:
        return None
    default = "assistant" if what == "output" else "user"
    raw, value = value, decode(value)
    if isinstance(value, str):
        return [_Msg(default, value)]
    if isinstance(raw, str) and isinstance(value, list) and not any(isinstance(x, (dict, list)) for x in value):
        return [_Msg(default, raw)]  # text that happens to parse as a JSON list of scalars: the text as written
    msgs = _open(value, span, source, default, depth=0)
    if msgs is None:
        if is_envelope(value) or (isinstance(value, dict) and isinstance(value.get("headers"), dict)):
            keys = sorted(map(str, value))[:8]
            warn(source, f"{span.id_type} {span.id}: its {what} is a provider envelope (keys {keys}) with no message "
                         "the reader knows; no step from it", record=None)
            return []
        return [_Msg(default, raw if isinstance(raw, str) else text_of(value))]
    for m in msgs:
        m.role = _ROLES.get(m.role, m.role) or default
    return msgs


def _open(value: Any, span: _Span, source: str, default: str, depth: int) -> list[_Msg] | None:
    """Messages out of a decoded envelope, or None when ``value`` has none of the known shapes."""
    if depth > 4:
        return None
    if isinstance(value, list):
        out: list[_Msg] = []
        for item in value:
            if isinstance(item, list):  # LangChain: [[messages]] (a batch of one prompt), [[generations]]
                got = _open(item, span, source, default, depth + 1)
            elif isinstance(item, str):
                got = [_Msg(default, item)]
            elif isinstance(item, dict):
                got = _open(item, span, source, default, depth + 1)
                if got is None:
                    got = [_Msg(default, text_of(item))]
            else:
                got = [_Msg(default, text_of(item))]
            out.extend(got or [])
        return out
    if not isinstance(value, dict):
        return None
    v = value
    if isinstance(v.get("lc"), int) and isinstance(v.get("kwargs"), dict):  # a serialised LangChain object
        kind = v.get("id")[-1] if isinstance(v.get("id"), list) and v["id"] else ""
        kw = dict(v["kwargs"])
        kw.setdefault("type", kind)
        return _open(kw, span, source, default, depth + 1)
    if isinstance(v.get("choices"), list):  # chat.completion / completion
        out = []
        for ch in v["choices"]:
            if isinstance(ch, dict) and isinstance(ch.get("message"), dict):
                out.append(_one(ch["message"], span, source, "assistant"))
            elif isinstance(ch, dict) and isinstance(ch.get("text"), str):
                out.append(_Msg("assistant", ch["text"]))
        return out[:1]  # the first choice is the one the agent went on with
    if isinstance(v.get("candidates"), list):  # Gemini GenerateContentResponse
        for cand in v["candidates"]:
            if isinstance(cand, dict) and isinstance(cand.get("content"), dict):
                return [_gemini(cand["content"], "assistant")]
        return []
    if isinstance(v.get("generations"), list):  # LangChain LLMResult
        gens = [g for batch in v["generations"] for g in (batch if isinstance(batch, list) else [batch])]
        for g in gens:
            if isinstance(g, dict) and isinstance(g.get("message"), dict):
                return _open(g["message"], span, source, "assistant", depth + 1)
            if isinstance(g, dict) and isinstance(g.get("text"), str):
                return [_Msg("assistant", g["text"])]
        return []
    if v.get("object") == "response" or (isinstance(v.get("output"), list) and not ({"role", "content"} & set(v))):
        return _responses_items(v.get("output") or [], span, source)  # Responses API object
    if isinstance(v.get("contents"), list):  # Gemini request
        return [_gemini(c, "user") if isinstance(c, dict) else _Msg("user", text_of(c)) for c in v["contents"]]
    if "messages" in v and isinstance(v["messages"], list):  # a chat request
        return _open(v["messages"], span, source, default, depth + 1)
    if "input" in v and not ({"role", "content"} & set(v)) and isinstance(v["input"], (list, str)):  # Responses request
        items = v["input"]
        return [_Msg("user", items)] if isinstance(items, str) else _responses_items(items, span, source)
    if "role" in v or "parts" in v or "tool_calls" in v or ("content" in v and v.get("type") in _LC_ROLES) \
            or v.get("type") in ("function_call", "function_call_output", "message"):
        return [_one(v, span, source, default)]
    for key in ("json_data", "json", "body", "data", "request", "kwargs"):  # request wrappers (HTTP clients)
        if isinstance(v.get(key), dict):
            got = _open(v[key], span, source, default, depth + 1)
            if got:
                return got
    if set(v) <= {"content", "text", "name"} and isinstance(v.get("content", v.get("text")), (str, list)):
        return [_chat_message({"content": v.get("content", v.get("text"))}, default, span, source)]
    return None


def _one(m: dict[str, Any], span: _Span, source: str, default: str) -> _Msg:
    """One message: OpenAI/Anthropic chat, GenAI parts, Gemini content, LangChain dict, Responses item."""
    kind = m.get("type")
    if kind in ("function_call", "function_call_output", "message", "reasoning"):
        return _responses_items([m], span, source)[0] if kind != "reasoning" else _Msg("assistant", "")
    if isinstance(m.get("parts"), list) and m["parts"] and not all(
            isinstance(p, dict) and isinstance(p.get("type"), str) for p in m["parts"]):
        return _gemini(m, default)
    if kind in _LC_ROLES and "role" not in m:  # LangChain message dict: tool_calls are {name, args, id}
        msg = _chat_message({k: val for k, val in m.items() if k != "tool_calls"}, _LC_ROLES[kind], span, source)
        for call in m.get("tool_calls") or []:
            if isinstance(call, dict) and isinstance(call.get("name"), str):
                msg.calls.append((_cid(call.get("id")), call["name"], call.get("args", call.get("arguments"))))
        msg.call_id = msg.call_id or _cid(m.get("tool_call_id"))
        return msg
    m = dict(m)
    m["role"] = _ROLES.get(str(m.get("role") or ""), str(m.get("role") or "")) or default
    return _parts_message(m, span, source)


def _gemini(content: dict[str, Any], default: str) -> _Msg:
    """A Gemini ``Content``: ``{role, parts: [{text} | {functionCall} | {functionResponse} ...]}``
    (camelCase from the REST API, snake_case from the Python SDK's ``model_dump``)."""
    role = _ROLES.get(str(content.get("role") or ""), str(content.get("role") or "")) or default
    texts, calls, call_id, name = [], [], None, None
    for part in content.get("parts") or []:
        if not isinstance(part, dict):
            texts.append(text_of(part))
            continue
        fc = part.get("functionCall", part.get("function_call"))
        fr = part.get("functionResponse", part.get("function_response"))
        if isinstance(fc, dict):
            calls.append((fc.get("id"), str(fc.get("name", "")), fc.get("args")))
        elif isinstance(fr, dict):
            role, call_id, name = "tool", fr.get("id"), fr.get("name")
            texts.append(text_of(fr.get("response")))
        elif isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
        elif part.get("thought"):
            continue  # the model's thought summary: not its words to the world
        else:
            texts.append(f"<{next(iter(part), 'part')}>")
    return _Msg(role, "\n".join(x for x in texts if x), calls, call_id, name)


def _responses_items(items: list[Any], span: _Span, source: str) -> list[_Msg]:
    """Responses API items (``output`` of a response, ``input`` of a request): messages,
    ``function_call`` (merged into the assistant message before it), ``function_call_output``
    (a tool message); reasoning items carry no words to the world and are left out."""
    out: list[_Msg] = []
    for it in items:
        if isinstance(it, str):
            out.append(_Msg("user", it))
            continue
        if not isinstance(it, dict):
            continue
        kind = it.get("type", "message" if "role" in it else None)
        if kind == "message":
            m = dict(it)
            m["role"] = str(m.get("role") or "assistant")
            out.append(_chat_message(m, m["role"], span, source))
        elif kind in ("function_call", "custom_tool_call"):
            call = (it.get("call_id") or it.get("id"), str(it.get("name", "")), it.get("arguments", it.get("input")))
            if out and out[-1].role == "assistant" and not out[-1].call_id:
                out[-1].calls.append((_cid(call[0]), call[1], call[2]))
            else:
                out.append(_Msg("assistant", "", [call]))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            out.append(_Msg("tool", text_of(decode(it.get("output"))) if not isinstance(it.get("output"), str)
                            else it["output"], [], it.get("call_id")))
    return out


def input_text(value: Any, span: _Span, source: str) -> str | None:
    """The task in a stored input: the user messages an envelope holds, else the value as text."""
    if value is _MISSING or value is None:
        return None
    msgs = envelope_messages(value, span, source, "input")
    users = [m.content() for m in msgs or [] if m.role in ("user", "human") and m.content().strip()]
    if users:
        return "\n".join(users)
    decoded = decode(value)
    if msgs == [] or is_envelope(decoded):
        return None
    return value if isinstance(value, str) else text_of(value)


def _llm_messages(span: _Span, source: str) -> tuple[list[_Msg], list[_Msg] | None]:
    """(input messages, output messages or None when the span records no output)."""
    a = span.attrs
    ev_in, ev_out = _event_messages(span, source) if span.events or "events" in a else (None, None)
    ins = _oi_messages(a, "llm.input_messages", span, source)
    if ins is None and "gen_ai.input.messages" in a:
        ins = _message_list(a["gen_ai.input.messages"], span, source, "gen_ai.input.messages")
    ins = ins if ins is not None else ev_in if ev_in is not None else _legacy_messages(a, "gen_ai.prompt")
    if ins is None:
        ins = envelope_messages(span.input, span, source, "input")
    outs = _oi_messages(a, "llm.output_messages", span, source)
    if outs is None and "gen_ai.output.messages" in a:
        outs = _message_list(a["gen_ai.output.messages"], span, source, "gen_ai.output.messages")
    outs = outs if outs is not None else ev_out if ev_out is not None else _legacy_messages(a, "gen_ai.completion")
    if outs is None:
        outs = envelope_messages(span.output, span, source, "output")
    if outs is None and a.get("output.value") is not None and a.get("openinference.span.kind") == "LLM":
        outs = envelope_messages(a["output.value"], span, source, "output")
    return ins or [], outs

