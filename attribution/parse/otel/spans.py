"""The span record every shape is read into, and the helpers the shape readers share.

Each shape module (:mod:`.otlp`, :mod:`.phoenix`, :mod:`.jaeger`, :mod:`.langfuse`, :mod:`.trail`,
:mod:`.console`) turns its records into :class:`_Span` objects in a :class:`Collector`;
:mod:`.trace` turns the spans of one trace into a run.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
from typing import Any

from attribution.errors import InputError
from attribution.parse.common import attributes as _kv_attributes, describe

#: Attributes whose whole value is one thing (a message list, a JSON document): never flattened.
_WHOLE = {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions", "gen_ai.tool.definitions",
          "gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "input.value", "output.value", "metadata",
          "gen_ai.event.content", "llm.invocation_parameters", "tool.parameters", "event.body", "body", "events",
          "all_messages_events", "tool_arguments", "tool_response"}
_MISSING = object()


# -- the common span record -----------------------------------------------------------------------


@dataclasses.dataclass
class _Span:
    id: str
    parent: str | None
    trace: str
    name: str
    attrs: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    start: int | None
    end: int | None
    pointer: str
    line: int | None
    order: int
    id_type: str = "span"
    store_kind: str | None = None  # Phoenix span_kind, Langfuse type
    service: str | None = None
    error: str | None = None
    input: Any = _MISSING  # Langfuse observation input / output
    output: Any = _MISSING
    timestamp: str | None = None

    def record(self) -> str:
        return f"{self.id_type} {self.id}" + (f" (line {self.line})" if self.line else f" ({self.pointer or '/'})")

    def where(self, source: str) -> str:
        return f"{source}, {self.record()}"


def _err(source: str, record: str, expected: str, got: str | None = None) -> InputError:
    return InputError(f"{source}, {record}", expected, got=got)


def _flat(attrs: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Nested attributes as flat dotted keys (lists of objects get their index as a key part),
    except :data:`_WHOLE` values, kept as one value.

    >>> _flat({"llm": {"input_messages": [{"message": {"role": "user"}}]}, "input.value": {"a": 1}})
    {'llm.input_messages.0.message.role': 'user', 'input.value': {'a': 1}}
    """
    out = {} if out is None else out
    for k, v in attrs.items():
        key = f"{prefix}{k}"
        if key in _WHOLE:
            out[key] = v
        elif isinstance(v, dict) and v:
            _flat(v, key + ".", out)
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for i, x in enumerate(v):
                _flat(x, f"{key}.{i}.", out)
        else:
            out[key] = v
    return out


def _attrs(value: Any, source: str, record: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, list):
        for kv in value:
            if not (isinstance(kv, dict) and isinstance(kv.get("key"), str)):
                raise _err(source, record, "attributes as a list of {key, value} (OTLP KeyValue)", describe(kv))
        return _unwrap(value, source, record)
    if isinstance(value, dict):
        return _unwrap(value, source, record)
    raise _err(source, record, "'attributes' to be a KeyValue list or an object", describe(value))


def _unwrap(value: Any, source: str, record: str) -> dict[str, Any]:
    try:
        return _flat(_kv_attributes(value))
    except (AttributeError, TypeError) as err:  # an AnyValue whose arrayValue / kvlistValue is not an object
        raise _err(source, record, "attribute values of the OTLP AnyValue form", type(err).__name__) from err


def _ns(value: Any, unit: int = 1) -> int | None:
    """Nanoseconds since the epoch from an integer (in ``unit`` ns), a digit string or an ISO string."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value * unit) if value > 0 else None
    if isinstance(value, str):
        if value.strip().isdigit():
            return int(value) * unit or None
        text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip().replace("Z", "+00:00"))
        try:
            t = _dt.datetime.fromisoformat(text)
        except ValueError:
            return None
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        return int(t.timestamp() * 1_000_000) * 1000
    return None


def _id(value: Any, source: str, record: str, what: str, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise _err(source, record, f"a {what}", "none")
        return None
    if isinstance(value, str):
        return value  # as written: hex in OTLP/JSON, never re-encoded
    raise _err(source, record, f"the {what} to be a string", describe(value))


class Collector:
    """The spans of one file, in file order, and what the trace objects around them say."""

    def __init__(self, source: str):
        self.source = source
        self.spans: list[_Span] = []
        self.roots_input: dict[str, Any] = {}  # trace -> task input (Langfuse trace input)
        self.names: dict[str, str] = {}  # trace -> trace name

    def add(self, span: _Span) -> None:
        span.order = len(self.spans)
        self.spans.append(span)


def _obj(value: Any, source: str, record: str, what: str) -> dict:
    if not isinstance(value, dict):
        raise _err(source, record, what, describe(value))
    return value


def _as_list(value: Any, span: _Span, source: str, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(span.where(source), f"'{what}' to be a list", got=describe(value))
    return value


def _pick(d: dict, *keys: str) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def _list(value: Any, source: str, ptr: str) -> list:
    if not isinstance(value, list):
        raise _err(source, ptr or "/", "a list", describe(value))
    return value

