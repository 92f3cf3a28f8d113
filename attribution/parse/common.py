"""Helpers shared by the log readers: one copy of each, imported by every reader that needs it.

- :func:`describe`: a short description of a JSON value, for error messages;
- :func:`pointer`: an RFC 6901 JSON pointer from path parts;
- :func:`flatten_content`: text of a message's content (a string or a list of typed parts),
  with placeholders for parts that are not text (images, audio, files);
- :func:`tool_call_text`: the scored text of one tool call, arguments kept as emitted;
- :func:`any_value` / :func:`attributes`: OpenTelemetry AnyValue / KeyValue-list unwrapping;
- :func:`iso_time`: ISO 8601 from epoch seconds, milli-, micro- or nanoseconds, or a string;
- :func:`warn`: a one-line :class:`~attribution.errors.ParseWarning` naming the file and record.
"""

from __future__ import annotations

import datetime as _dt
import json
import warnings
from typing import Any, Callable, Iterable

from attribution.errors import InputError, ParseWarning

__all__ = [
    "describe",
    "pointer",
    "flatten_content",
    "tool_call_text",
    "any_value",
    "attributes",
    "iso_time",
    "warn",
    "text_of",
    "first",
    "read_each",
]


def describe(value: Any) -> str:
    """A short description of a JSON value for error messages.

    Examples
    --------
    >>> describe({"b": 1, "a": 2}), describe([1]), describe(None)
    ("an object with keys ['a', 'b']", 'a list', 'null')
    """
    names = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number", type(None): "null"}
    if isinstance(value, dict):
        return f"an object with keys {sorted(map(str, value))[:6]}"
    return names.get(type(value), f"a {type(value).__name__}")


def pointer(*parts: Any) -> str:
    """An RFC 6901 JSON pointer from path parts (``~`` and ``/`` escaped).

    Examples
    --------
    >>> pointer("resourceSpans", 0, "scopeSpans", 1, "spans", 5)
    '/resourceSpans/0/scopeSpans/1/spans/5'
    >>> pointer()
    ''
    """
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


#: Content-part types whose text is the part's ``text`` (OpenAI, Anthropic, OTel GenAI, AutoGen...).
_TEXT_PARTS = {"text", "input_text", "output_text", "reasoning", "thinking", "refusal"}


def flatten_content(content: Any, *, source: str = "<memory>", step: int | None = None, record: str | None = None) -> str:
    """The text of a message's content: a string, or a list of parts joined by newlines.

    A part is a string, or an object with a ``type``: text parts (``text``, ``input_text``,
    ``output_text``, ``refusal``, ``reasoning``) give their ``text`` (or ``content``); any other
    part (image, audio, file, ...) becomes a placeholder ``<image>`` naming its type, so that the
    step keeps its place without pretending to have read it. ``None`` is the empty string.

    Raises
    ------
    InputError
        If ``content`` is neither a string, a list nor null, or a part has no type.

    Examples
    --------
    >>> flatten_content([{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": "x"}}])
    'see\\n<image_url>'
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        raise InputError(_where(source, record), "message content to be a string or a list of parts", step=step,
                         got=describe(content))
    out = []
    for part in content:
        if isinstance(part, str):
            out.append(part)
            continue
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise InputError(_where(source, record), "content parts with a 'type'", step=step, got=describe(part))
        kind = part["type"]
        text = part.get("text", part.get("content"))
        if kind in _TEXT_PARTS and isinstance(text, str):
            out.append(text)
        else:
            out.append(f"<{kind}>")
    return "\n".join(out)


def tool_call_text(name: str, arguments: Any) -> str:
    """The scored text of one tool call: ``{"name": NAME, "arguments": ARGS}`` on one line.

    ``arguments`` is kept exactly as the agent emitted it when it is a string holding JSON
    (no re-serialisation: spacing and key order are the model's own tokens); a string that is
    not JSON is kept as a JSON string; an already-decoded value is serialised compactly.

    Examples
    --------
    >>> tool_call_text("add", '{"a":1,  "b": 2}')
    '{"name": "add", "arguments": {"a":1,  "b": 2}}'
    >>> tool_call_text("say", "hello")
    '{"name": "say", "arguments": "hello"}'
    """
    if isinstance(arguments, str):
        try:
            json.loads(arguments)
            args = arguments.strip()
        except (json.JSONDecodeError, RecursionError):  # too deeply nested: kept as a string too
            args = json.dumps(arguments, ensure_ascii=False)
    else:
        args = json.dumps(arguments, ensure_ascii=False)
    return f'{{"name": {json.dumps(name, ensure_ascii=False)}, "arguments": {args}}}'


def text_of(value: Any) -> str:
    """A value as text: strings unchanged, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def any_value(value: Any) -> Any:
    """Unwrap an OpenTelemetry OTLP/JSON ``AnyValue`` into a plain JSON value.

    ``{"stringValue": s}`` -> s; ``intValue`` (a decimal string in OTLP/JSON) -> int;
    ``doubleValue``, ``boolValue``; ``arrayValue.values`` -> list; ``kvlistValue.values`` -> dict;
    ``bytesValue`` stays the base64 string. A value that is not AnyValue-shaped is returned as is
    (trace stores often export attributes already unwrapped).

    Examples
    --------
    >>> any_value({"intValue": "3"}), any_value({"arrayValue": {"values": [{"stringValue": "a"}]}})
    (3, ['a'])
    """
    if not isinstance(value, dict) or len(value) != 1:
        return value
    (key, inner), = value.items()
    if key == "stringValue":
        return inner
    if key == "intValue":
        try:
            return int(inner)
        except (TypeError, ValueError):
            return inner
    if key in ("doubleValue", "boolValue", "bytesValue"):
        return inner
    if key == "arrayValue":
        return [any_value(v) for v in (inner or {}).get("values", [])]
    if key == "kvlistValue":
        return attributes((inner or {}).get("values", []))
    return value


def attributes(kvs: Any) -> dict[str, Any]:
    """OTLP/JSON attributes (a list of ``{key, value: AnyValue}``) as a dict; a dict passes through."""
    if isinstance(kvs, dict):
        return {k: any_value(v) for k, v in kvs.items()}
    out: dict[str, Any] = {}
    for kv in kvs or []:
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            out[kv["key"]] = any_value(kv.get("value"))
    return out


def iso_time(value: Any) -> str | None:
    """ISO 8601 (UTC) from epoch seconds/ms/us/ns (number or digit string), or a string kept as is.

    Examples
    --------
    >>> iso_time("1700000000000000000")
    '2023-11-14T22:13:20+00:00'
    >>> iso_time("2024-05-01T10:00:00Z")
    '2024-05-01T10:00:00Z'
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not value.strip().isdigit():
            return value or None
        value = int(value)
    if not isinstance(value, (int, float)) or value <= 0:
        return None
    # Past ~1e11 (the year 5138 in seconds) a value is in a finer unit: ms, us or ns.
    seconds = value / 1e9 if value > 1e17 else value / 1e6 if value > 1e14 else value / 1e3 if value > 1e11 else value
    return _dt.datetime.fromtimestamp(seconds, tz=_dt.timezone.utc).isoformat()


def warn(source: str, message: str, *, step: int | None = None, record: str | None = None) -> None:
    """Issue a one-line :class:`ParseWarning`: ``<file>[, <record>][, step N]: <message>``."""
    where = _where(source, record) + (f", step {step}" if step is not None else "")
    warnings.warn(ParseWarning(f"{where}: {' '.join(message.split())}"), stacklevel=2)


def _where(source: str, record: str | None) -> str:
    return f"{source}, {record}" if record else source


def first(mapping: dict[str, Any], keys: Iterable[str], default: Any = None) -> Any:
    """The value of the first of ``keys`` present (and not None) in ``mapping``."""
    for k in keys:
        if mapping.get(k) is not None:
            return mapping[k]
    return default


def read_each(
    items: list[Any],
    source: str,
    lines: list[int] | None,
    read_one: Callable[..., Any],
) -> list[Any]:
    """Every run of a many-run value: ``read_one(item, where, default_id, base, line)`` per item.

    ``where`` names the item in errors (``<file>, line N`` for JSONL, else ``<file>, run K``),
    ``default_id`` is ``"<stem>/<K>"``, ``base`` the item's JSON pointer prefix (empty for JSONL,
    whose pointers are inside the line) and ``line`` its JSONL line. Each run is returned with
    ``source`` set to the file and ``meta["position"] = K``.
    """
    import dataclasses
    from pathlib import Path

    stem = Path(source).stem
    runs = []
    for k, item in enumerate(items):
        where = f"{source}, line {lines[k]}" if lines else f"{source}, run {k}"
        run = read_one(item, where, f"{stem}/{k}", () if lines else (k,), lines[k] if lines else None)
        runs.append(dataclasses.replace(run, source=source, meta={**run.meta, "position": k}))
    return runs
