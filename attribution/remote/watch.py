"""``attribution watch phoenix://HOST:PORT/PROJECT``: diagnose each trace once, as it finishes, and post.

Each poll (:meth:`Watcher.poll`):

1. asks Phoenix for the root spans that started in the last ``lookback`` seconds (a root span
   arrives when its trace has finished: SDKs export a span when it ends, and the root ends last);
2. takes, oldest first, at most ``max_traces`` of those traces that the state file does not list
   (bounded work per poll; the rest wait for the next poll);
3. for each: reads its spans, diagnoses it, writes the diagnosis JSON to ``out/<trace id>.json``,
   posts the span annotations (the ``--emit phoenix`` payload) and records the trace in the state
   file, written atomically after every trace.

A restart reads the state file and annotates nothing twice. A trace that cannot be diagnosed
(no LLM output, say) is recorded with its error and a one-line warning, and not tried again. A
server fault stops the watch with one line (:class:`~attribution.errors.RemoteError`); the trace
then in hand is not recorded, so the next start diagnoses and posts it (the annotations carry an
``identifier``: a post that had reached Phoenix is updated, not doubled).

The state file (schema ``attribution.watch/1``)::

    {"schema": "attribution.watch/1", "source": "phoenix://host:port/project", "polls": 3,
     "done": {"<trace id>": {"root_start": "...", "culprit_step": 7, "culprit_agent": "manager",
                             "accepted": 4, "diagnosis": "out/<trace id>.json"}}}

Entries whose root started before the lookback window are dropped: no poll can see them again.
The source URL holds no API key.
"""

from __future__ import annotations

import datetime as _dt
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from attribution.errors import ConfigError, InputError, ParseWarning
from attribution.io import atomic_write_text, parse_json
from attribution.remote.phoenix import Phoenix, parse_time, trace_id_of

__all__ = ["STATE_SCHEMA", "WatchState", "Watcher", "PollResult"]

STATE_SCHEMA = "attribution.watch/1"


@dataclass
class WatchState:
    """Which traces a watch has handled, kept in a JSON file written atomically."""

    path: Path
    source: str
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    polls: int = 0

    @classmethod
    def load(cls, path: str | Path, source: str) -> "WatchState":
        """The state in ``path`` (a new one when the file does not exist).

        Raises
        ------
        InputError
            The file is not a watch state, or it is the state of another source.
        """
        path = Path(path)
        if not path.exists():
            return cls(path, source)
        try:
            value = parse_json(path.read_text(encoding="utf-8"), path)
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise InputError(path, f"a watch state file ({STATE_SCHEMA})", got=type(err).__name__) from None
        if not isinstance(value, dict) or value.get("schema") != STATE_SCHEMA or not isinstance(value.get("done"), dict):
            raise InputError(path, f"a watch state file ({STATE_SCHEMA})", got="another JSON value")
        if value.get("source") != source:
            raise ConfigError(f"{path} is the watch state of {value.get('source')}, not of {source}; give another --state")
        return cls(path, source, dict(value["done"]), int(value.get("polls") or 0))

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps({"schema": STATE_SCHEMA, "source": self.source, "polls": self.polls,
                                                 "done": self.done}, ensure_ascii=False, indent=1) + "\n")


@dataclass
class PollResult:
    """What one poll did: finished traces seen, new ones, diagnosed (and posted), skipped, left for later."""

    seen: int = 0
    new: int = 0
    diagnosed: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    left: int = 0


class Watcher:
    """Polls one Phoenix project; ``diagnose(run) -> Diagnosis`` scores a run (one scorer, loaded once).

    ``on_trace(entry)`` is called after each trace is recorded (the CLI prints a line).
    """

    def __init__(self, client: Phoenix, state: WatchState, diagnose: Callable[[Any], Any], *, out: str | Path,
                 max_traces: int = 20, lookback_s: float = 86400.0, roles: dict[str, Any] | None = None,
                 on_trace: Callable[[dict[str, Any]], None] | None = None):
        if max_traces < 1 or lookback_s <= 0:
            raise ConfigError("a watch needs max_traces >= 1 and a positive lookback")
        self.client, self.state, self.diagnose = client, state, diagnose
        self.out, self.max_traces, self.lookback_s = Path(out), max_traces, lookback_s
        self.roles = roles or {}
        self.on_trace = on_trace or (lambda entry: None)

    def poll(self, now: _dt.datetime | None = None) -> PollResult:
        """One look at the project: diagnose and post at most ``max_traces`` new finished traces."""
        from attribution.emit import phoenix_payload

        now = now or _dt.datetime.now(_dt.timezone.utc)
        since = now - _dt.timedelta(seconds=self.lookback_s)
        roots = self.client.roots(since=since)
        starts = {trace_id_of(r): str(r.get("start_time") or "") for r in roots if trace_id_of(r)}
        new = [t for t in starts if t not in self.state.done]
        result = PollResult(seen=len(starts), new=len(new), left=max(0, len(new) - self.max_traces))
        self.state.polls += 1
        for trace in new[: self.max_traces]:
            entry: dict[str, Any] = {"trace_id": trace, "root_start": starts[trace]}
            try:
                runs = self.client.runs(self.client.spans(trace_ids=[trace]), **self.roles)
                diag = self.diagnose(runs[0])
            except InputError as err:  # this trace cannot be diagnosed: say so once, never retry it
                warnings.warn(ParseWarning(f"{self.client.url}: trace {trace} not diagnosed: {err}"))
                entry["error"] = " ".join(str(err).split())
                result.skipped += 1
            else:
                path = self.out / f"{trace}.json"
                atomic_write_text(path, diag.to_json(indent=1))  # kept before the post: nothing is lost
                entry.update(culprit_step=diag.culprit_step, culprit_agent=diag.culprit_agent, diagnosis=str(path))
                payload = phoenix_payload([diag])
                entry["sent"] = len(payload["data"])
                entry["accepted"] = self.client.post(payload)
                result.diagnosed.append(entry)
            self.state.done[trace] = {k: v for k, v in entry.items() if k != "trace_id"}
            self.state.save()
            self.on_trace(entry)
        # Traces whose root started before the window cannot be returned again: forget them.
        for trace, e in list(self.state.done.items()):
            t = parse_time(e.get("root_start"))
            if t is not None and t < since:
                del self.state.done[trace]
        self.state.save()
        return result
