"""The contract layer: runs, steps and diagnoses. No torch import here.

A :class:`Run` is what a parser returns: an ordered list of :class:`Step`. Scoring
turns a run into :class:`StepScore` objects (per-token log-probs under the policy
and the reference of the step's agent); ranking turns those into a
:class:`Diagnosis`, which serialises to the versioned JSON schema documented in
``docs/diagnosis-schema.md``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "ACTION",
    "OBSERVATION",
    "SCHEMA_VERSION",
    "READABLE_SCHEMAS",
    "Origin",
    "ToolCall",
    "Step",
    "Run",
    "StepScore",
    "Diagnosis",
]

ACTION: Literal["action"] = "action"
OBSERVATION: Literal["observation"] = "observation"
SCHEMA_VERSION = "attribution.diagnosis/2"
#: Versions :meth:`Diagnosis.from_dict` reads (version 1 lacks ``format``, ``ranking`` and step origins).
READABLE_SCHEMAS = ("attribution.diagnosis/1", SCHEMA_VERSION)


@dataclass(frozen=True)
class Origin:
    """Where a step came from in its source file, so that a verdict can be joined back to it.

    Every field is optional: a reader fills what its format has.

    Attributes
    ----------
    id : str or None
        The format's own id of the record: a span id (OpenTelemetry, hex as written), a
        message id, an event id, an observation id. None where the format has none.
    id_type : str or None
        What ``id`` is: ``"span"``, ``"message"``, ``"event"``, ``"observation"``, ``"item"``...
    pointer : str or None
        RFC 6901 JSON pointer of the record inside the file's JSON value (for JSONL, inside
        its line's value), e.g. ``"/history/3"`` or ``"/resourceSpans/0/scopeSpans/0/spans/5"``.
    line : int or None
        1-based line of the record in a JSONL file.
    trace_id : str or None
        The trace the record belongs to (OpenTelemetry, Langfuse, Agents SDK).
    timestamp : str or None
        When the record was written, ISO 8601 (converted from epoch nanoseconds where the
        format stores those).
    """

    id: str | None = None
    id_type: str | None = None
    pointer: str | None = None
    line: int | None = None
    trace_id: str | None = None
    timestamp: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class ToolCall:
    """One tool call of an action step, as the agent emitted it.

    Attributes
    ----------
    name : str
        The function called.
    arguments : str, dict, list or None
        The arguments exactly as the log holds them: the raw string the model emitted (its
        spacing and key order are the model's own tokens), or the decoded value where the
        log stores one.
    id : str or None
        The call's id, where the log gives one (``tool_call_id`` of the answering message).
    """

    name: str
    arguments: str | dict[str, Any] | list[Any] | None = None
    id: str | None = None


@dataclass(frozen=True)
class Step:
    """One entry of a multi-agent log.

    Attributes
    ----------
    index : int
        0-based position in the log (``history[index]`` for Who&When).
    agent : str
        The speaker, normalised: ``"Orchestrator (-> WebSurfer)"`` becomes ``"Orchestrator"``.
        For observations this is the tool / human / environment that produced the text.
    role : str
        The raw role string as it appears in the log.
    kind : {"action", "observation"}
        ``action`` is an agent's own output (scored); ``observation`` is context only
        (tool or terminal output, the human's input, environment text).
    content : str
        The text of the step; for chat messages, ``tool_calls`` are appended as text.
    to : str or None
        The agent this step hands off to, when the log says so (``Orchestrator (-> WebSurfer)``).
    origin : Origin
        Where the step came from in the source file (record id, JSON pointer, line, trace id,
        timestamp), carried into the diagnosis so that verdicts join back to the source.
    tool_calls : tuple of ToolCall
        The step's tool calls as structured data, where the reader records them (the chat
        reader does). ``content`` still ends with their text form, one line per call, so a
        plain rendering is unchanged; a chat template with a tool-call form renders them in
        its own form instead (see :mod:`attribution.score.render`).
    """

    index: int
    agent: str
    role: str
    kind: Literal["action", "observation"]
    content: str
    to: str | None = None
    origin: Origin = field(default_factory=Origin)
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def is_action(self) -> bool:
        return self.kind == ACTION


@dataclass
class Run:
    """A parsed multi-agent run, with optional labels.

    ``mistake_step`` is an integer index into ``steps`` (converted once, at load).
    """

    steps: list[Step]
    run_id: str
    source: str = ""
    format: str = ""
    question: str | None = None
    mistake_step: int | None = None
    mistake_agent: str | None = None
    success: bool | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def agents(self) -> list[str]:
        """Agents with at least one action step, in order of first appearance."""
        seen: dict[str, None] = {}
        for s in self.steps:
            if s.is_action:
                seen.setdefault(s.agent, None)
        return list(seen)

    @property
    def action_indices(self) -> list[int]:
        return [s.index for s in self.steps if s.is_action]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_dict` turns back into an equal run."""
        d = asdict(self)
        for st in d["steps"]:
            st["origin"] = {k: v for k, v in st["origin"].items() if v is not None}
            st["tool_calls"] = [dict(c) for c in st["tool_calls"]]
        d["meta"] = json.loads(json.dumps(self.meta, default=str))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Run":
        """The inverse of :meth:`to_dict`."""
        steps = [
            Step(**{
                **s,
                "origin": Origin(**s.get("origin", {})),
                "tool_calls": tuple(ToolCall(**c) for c in s.get("tool_calls", ())),
            })
            for s in d["steps"]
        ]
        meta = dict(d.get("meta", {}))
        if "tool_calls" in meta:  # JSON turns the (caller, tool) pairs into lists
            meta["tool_calls"] = [tuple(p) for p in meta["tool_calls"]]
        return cls(steps=steps, **{k: v for k, v in d.items() if k not in ("steps", "meta")}, meta=meta)

    def content_hash(self) -> str:
        """Hash of everything that scoring reads (speakers, kinds, texts, tool calls), not the labels."""
        h = hashlib.sha256()
        for s in self.steps:
            fields: list[Any] = [s.agent, s.role, s.kind, s.content, s.to]
            if s.tool_calls:  # only where present, so that the hashes of runs without calls stay as they were
                fields.append([[c.name, c.arguments, c.id] for c in s.tool_calls])
            h.update(json.dumps(fields, default=str).encode())
        return h.hexdigest()[:16]


@dataclass
class StepScore:
    """Per-token scores of one step.

    ``logps`` / ``ref_logps`` are the log-probs of the step's tokens under the
    policy and the reference; ``ratios`` are ``beta * (logps - ref_logps)``.
    Observations carry empty lists and ``score = None``.
    """

    index: int
    agent: str
    kind: str
    tokens: list[str] = field(default_factory=list)
    logps: list[float] = field(default_factory=list)
    ref_logps: list[float] = field(default_factory=list)
    beta: float = 1.0
    score: float | None = None

    @property
    def n_tokens(self) -> int:
        return len(self.logps)

    @property
    def ratios(self) -> list[float]:
        return [self.beta * (a - b) for a, b in zip(self.logps, self.ref_logps)]


@dataclass
class Diagnosis:
    """The result of :func:`attribution.diagnose`.

    ``culprit_step`` / ``culprit_agent`` name the flagged step; ``top`` the top-k
    step indices best first; ``ranking`` every scored step, most suspicious first;
    ``agent_totals`` each agent's summed step score. ``run_steps`` is the parsed log, each
    entry with its ``origin`` (the source file's ids, see :class:`Origin`).
    """

    run_id: str
    source: str
    culprit_step: int
    culprit_agent: str
    top: list[int]
    agent_totals: dict[str, float]
    steps: list[StepScore]
    settings: dict[str, Any]
    checkpoints: dict[str, dict[str, Any]]
    run_steps: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, Any] = field(default_factory=dict)
    format: str = ""
    ranking: list[int] = field(default_factory=list)
    # One-line caveats every output repeats: the toy pair scored a run outside its world, or the
    # pair's unknown token covers much of the run (attribution.score.domain).
    warnings: list[str] = field(default_factory=list)
    schema: str = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for s in d["steps"]:
            s["n_tokens"] = len(s["logps"])
        return d

    def to_json(self, **kw: Any) -> str:
        d = self.to_dict()
        _check_finite(d)
        return json.dumps(d, ensure_ascii=False, **kw)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Diagnosis":
        if d.get("schema") not in READABLE_SCHEMAS:
            raise ValueError(f"expected schema {SCHEMA_VERSION!r}, got {d.get('schema')!r}")
        steps = [
            StepScore(**{k: v for k, v in s.items() if k != "n_tokens"}) for s in d["steps"]
        ]
        rest = {k: v for k, v in d.items() if k not in ("steps", "schema")}
        return cls(steps=steps, **rest)


def _check_finite(obj: Any) -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError("refusing to write a non-finite score")
    if isinstance(obj, dict):
        for v in obj.values():
            _check_finite(v)
    elif isinstance(obj, list):
        for v in obj:
            _check_finite(v)
