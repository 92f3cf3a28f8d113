"""Score a run step by step while it runs, and alert when it goes wrong.

:class:`Monitor` is fed :class:`~attribution.types.Step` objects one at a time. Each new step
costs forward passes over its own tokens only: every checkpoint pair keeps a key/value cache of
the prefix (:class:`~attribution.score.incremental.IncrementalPairScorer`), and runs longer
than the model's window slide as in :func:`attribution.diagnose`, so on a finished run the
per-step scores equal ``diagnose``'s.

After each step the monitor reports every action step's score (the sum of its tokens'
``beta * log pi/pi_ref``), each agent's running total and the *running run score*: the
run-level progress advantage of the prefix (:func:`attribution.select.run_score`, ``sum`` by
default). Summed advantages telescope to ``V(s_t) - V(s_0)`` (plus the environment's
surprises), so the running sum falls as the run's prospects fall. An alert fires once, at the
first step where it drops below the threshold (given directly, or from a calibration file
written by :func:`attribution.evaluation.calibration.calibrate`).

:func:`follow_jsonl` reads a JSONL log that another process is still writing: it yields each
complete line as it arrives and waits on an incomplete last line, and follows the path when the
log is replaced by a rename (as ``tail -F`` does, with a warning); :func:`follow_steps` turns the
lines into steps with any reader whose JSONL lines are the records of one run (chat messages,
OpenHands events, OpenTelemetry collector lines, Langfuse observations, ...).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from attribution.errors import ConfigError, InputError, ParseWarning
from attribution.rank import agent_totals
from attribution.score.incremental import IncrementalPairScorer
from attribution.select import RUN_SCORES, run_score
from attribution.types import Diagnosis, Run, Step, StepScore

__all__ = ["Update", "Monitor", "JsonlFollower", "FollowedSteps", "follow_jsonl", "follow_steps"]


@dataclass
class Update:
    """What the monitor knows after one step.

    Attributes
    ----------
    step : Step, the step just fed
    score : float or None, its score (None for an observation or an empty action)
    run_score : float, the running run score (nan before the first scored step)
    agent_totals : dict, agent -> summed step scores so far
    alert : bool, True on the one update where the alert fires
    changed : list of int, earlier steps whose score moved (a renderer that re-tokenises the
        previous text's tail when a step is appended can move it slightly)
    """

    step: Step
    score: float | None
    run_score: float
    agent_totals: dict[str, float]
    alert: bool = False
    changed: list[int] = field(default_factory=list)


class Monitor:
    """Scores a growing run step by step with a :class:`~attribution.score.Scorer`'s pairs.

    Parameters
    ----------
    scorer : Scorer, its pairs, ``window``, ``min_context`` and ``chat_template`` are used
    threshold : float, optional, alert when the running run score drops below it
    by : {"sum", "mean", "min"}, the run-level aggregation of the running score
    run_id, source : name the run in errors and in the diagnosis
    format : the reader that parsed the steps (recorded in the diagnosis)

    Attributes
    ----------
    run : Run, the steps fed so far
    steps : list of StepScore, every step's scores so far (``score`` set)
    alerted_at : int or None, the step where the alert fired
    """

    def __init__(self, scorer: Any, *, threshold: float | None = None, by: str = "sum", run_id: str = "monitored", source: str = "",
                 format: str = ""):
        if by not in RUN_SCORES:
            raise ConfigError(f"The 'by' parameter must be one of {sorted(RUN_SCORES)}. Got {by!r} instead.")
        if threshold is not None and not (isinstance(threshold, (int, float)) and math.isfinite(threshold)):
            raise ConfigError(f"The 'threshold' parameter must be a finite number (an alert must be able to fire). Got {threshold!r} instead.")
        self.scorer = scorer
        self.threshold = threshold
        self.by = by
        self.run = Run([], run_id, source=source, format=format)
        self.steps: list[StepScore] = []
        self.alerted_at: int | None = None
        self.history: list[float] = []  # running run score after each step
        self._pair_of: dict[int, Any] = {}
        self._inc: dict[tuple[str, str], IncrementalPairScorer] = {}

    @property
    def fed_tokens(self) -> int:
        """Tokens run through each model so far, over all pairs (the monitor's cost)."""
        return sum(s.fed_tokens for s in self._inc.values())

    def feed(self, step: Step) -> Update:
        """Score ``step`` (appended to the run) and return the new state.

        Raises
        ------
        InputError
            If ``step.index`` is not the next index.
        ConfigError
            If no pair covers the step's agent.
        """
        if step.index != len(self.run.steps):
            raise InputError(self.run.source or self.run.run_id, f"step {len(self.run.steps)} next", step=step.index,
                             got=f"step index {step.index}")
        self.run.steps.append(step)
        if step.is_action:
            pair = self.scorer.pairs.pair_for(step.agent)
            if pair is None:
                self.run.steps.pop()
                raise ConfigError(
                    f"{self.run.source or self.run.run_id}, step {step.index}: no checkpoint pair for agent {step.agent!r} "
                    f"in {self.scorer.pairs.source} (add it to 'agents' or set a 'default')"
                )
            self._pair_of[step.index] = pair
            if pair.key not in self._inc:
                window, min_context = self.scorer.window_for(pair)
                self._inc[pair.key] = IncrementalPairScorer(
                    pair, window, min_context, chat_template=self.scorer.chat_template, chunk=self.scorer.chunk
                )
        before = {s.index: s.score for s in self.steps}
        self.steps = self._step_scores()
        changed = [s.index for s in self.steps[:-1] if s.score != before.get(s.index)]
        total = run_score(self.steps, self.by)
        self.history.append(total)
        alert = False
        if self.threshold is not None and self.alerted_at is None and total == total and total < self.threshold:
            self.alerted_at = step.index
            alert = True
        return Update(step, self.steps[-1].score, total, agent_totals(self.steps), alert, changed)

    def rewind(self, index: int) -> None:
        """Forget the steps from ``index`` on, so that the next :meth:`feed` gives step ``index`` again.

        For a followed log that revises a step already fed (a span whose parent arrives later and
        names its agent): the revised tail is fed again and scored as usual; the key/value caches
        keep the rendering's common prefix, so only the tokens from the first change are computed
        again. An alert already fired stays fired.
        """
        if not 0 <= index <= len(self.run.steps):
            raise InputError(self.run.source or self.run.run_id, f"a step to rewind to in 0..{len(self.run.steps)}",
                             got=f"step {index}")
        del self.run.steps[index:]
        del self.history[index:]
        self.steps = self.steps[:index]
        self._pair_of = {i: p for i, p in self._pair_of.items() if i < index}

    def _step_scores(self) -> list[StepScore]:
        """Re-render per pair, score the new tokens, and rebuild every step's StepScore."""
        got: dict[int, tuple[list[str], list[float], list[float], float]] = {}
        for key, inc in self._inc.items():
            mine = [i for i, p in self._pair_of.items() if p.key == key]
            rendered = inc.update(self.run, mine)
            for i in mine:
                s, e = rendered.spans[i]
                lo = max(s, 1)
                vals = [inc.values[p] for p in range(lo, e)]
                got[i] = (rendered.pieces[i][lo - s :], [a for a, _ in vals], [b for _, b in vals], inc.pair.beta)
        out = []
        for st in self.run.steps:
            if st.index not in got:
                out.append(StepScore(st.index, st.agent, st.kind))
                continue
            texts, a, b, beta = got[st.index]
            sc = StepScore(st.index, st.agent, st.kind, list(texts), a, b, beta)
            sc.score = sum(sc.ratios) if a else None
            out.append(sc)
        return out

    def diagnosis(self, *, aggregate: str = "sum", ranker: str = "most-negative", top_k: int = 5) -> Diagnosis:
        """The run so far as a :class:`~attribution.types.Diagnosis` (schema :data:`~attribution.types.SCHEMA_VERSION`);
        ``settings["monitor"]`` records the threshold, the alert step and the running score."""
        from attribution.diagnoser import build_diagnosis

        dtypes = {p.policy.dtype for p in self.scorer.pairs.pairs.values()}
        settings = {
            **self.scorer.settings(),
            "dtype": dtypes.pop() if len(dtypes) == 1 else sorted(dtypes),
            "rendered_tokens": {inc.pair.name: len(inc.ids) for inc in self._inc.values()},
            "monitor": {"by": self.by, "threshold": self.threshold, "alert_step": self.alerted_at, "running_run_score": [v if v == v else None for v in self.history]},  # None before the first scored step
        }
        return build_diagnosis(self.run, self.steps, aggregate=aggregate, ranker=ranker, top_k=top_k, settings=settings,
                               checkpoints=self.scorer.checkpoints())


class JsonlFollower:
    """Reads a JSONL file that is still being written, one complete line at a time.

    A line counts once its newline is written; a last line without one is kept pending (the
    writer may be in the middle of it) until the rest arrives, or, when following stops, is
    taken if it parses as JSON. Blank lines are skipped.

    The path is followed, not the open file (``tail -F``): when another file is renamed onto the
    path (a log rotated, or rewritten atomically), the rest of the old file is read, then the new
    one: after the bytes already read when it starts with them (a rewrite that kept them), else
    from its start; either way a one-line :class:`~attribution.errors.ParseWarning` says so. A
    file that shrinks in place (truncated, not replaced) is an error.

    Parameters
    ----------
    path : the log
    poll : float, seconds between looks at the file
    idle_timeout : float, optional, stop after this many seconds without a new line (None: never)
    stop : threading.Event, optional, stop when set

    Attributes
    ----------
    pending : str, the incomplete last line when following stopped ("" when none)
    line : int, the number of lines read
    replaced : int, how many times the log was replaced by a rename while followed
    """

    def __init__(self, path: str | os.PathLike, *, poll: float = 0.1, idle_timeout: float | None = None,
                 stop: threading.Event | None = None):
        self.path = Path(path)
        self.poll = poll
        self.idle_timeout = idle_timeout
        self.stop = stop
        self.pending = ""
        self.line = 0
        self.replaced = 0

    def _parse(self, raw: bytes) -> Any:
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(self.path, "one JSON value per line (JSONL)", got=f"line {self.line}: {err}") from None

    def __iter__(self) -> Iterator[Any]:
        buf = b""
        pos = 0
        seen = hashlib.sha256()  # of the bytes read so far: does a replacing file continue them?
        last = time.monotonic()
        fh = None
        try:
            while True:
                if fh is None and self.path.exists():
                    fh = self.path.open("rb")
                chunk = b""
                if fh is not None:
                    size = os.fstat(fh.fileno()).st_size
                    if size < pos:
                        raise InputError(self.path, "a log that only grows", got=f"it shrank from {pos} to {size} bytes")
                    chunk = fh.read()
                    if not chunk:
                        new = self._replacement(fh)
                        if new is not None:  # another file was renamed onto the path: follow it
                            fh.close()
                            fh = new
                            pos, buf = self._resume(fh, pos, seen, buf)
                            if pos == 0:
                                seen = hashlib.sha256()
                            chunk = fh.read()
                    pos += len(chunk)
                    seen.update(chunk)
                if chunk:
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for raw in lines:
                        self.line += 1
                        if raw.strip():
                            last = time.monotonic()
                            yield self._parse(raw)
                    continue
                if (self.stop is not None and self.stop.is_set()) or (
                    self.idle_timeout is not None and time.monotonic() - last > self.idle_timeout
                ):
                    break
                time.sleep(self.poll)
        finally:
            if fh is not None:
                fh.close()
        if buf.strip():  # following stopped with a last line lacking its newline: take it if it is whole
            try:
                obj = json.loads(buf.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                self.pending = buf.decode("utf-8", "replace")
                return
            self.line += 1
            yield obj


    def _replacement(self, fh: Any) -> Any:
        """The file now at the path, opened, when it is not the one ``fh`` reads (else None)."""
        try:
            now = os.stat(self.path)
        except OSError:  # moved away and not yet replaced: keep reading the old file
            return None
        old = os.fstat(fh.fileno())
        if (now.st_dev, now.st_ino) == (old.st_dev, old.st_ino):
            return None
        try:
            return self.path.open("rb")
        except OSError:
            return None

    def _resume(self, new: Any, pos: int, seen: Any, buf: bytes) -> tuple[int, bytes]:
        """Where to read a replacing file from: after the bytes already read if it starts with them,
        else from its start (an incomplete last line of the old file is then dropped)."""
        self.replaced += 1
        head = new.read(pos)
        if len(head) == pos and hashlib.sha256(head).digest() == seen.digest():
            how = f"it starts with the {pos} bytes already read: reading on from there"
            at, keep = pos, buf
        else:
            dropped = f"; the old file's incomplete last line ({len(buf)} bytes) is dropped" if buf.strip() else ""
            how = f"it does not continue the old one: reading it from its start, as line {self.line + 1} on{dropped}"
            at, keep = 0, b""
        new.seek(at)
        warnings.warn(ParseWarning(f"{self.path}: the log was replaced by another file (renamed onto its path) after "
                                   f"line {self.line}; following the path as tail -F does: {how}"), stacklevel=2)
        return at, keep


def follow_jsonl(path: str | os.PathLike, **kw: Any) -> Iterator[Any]:
    """The JSON values of a growing JSONL file as their lines complete (see :class:`JsonlFollower`)."""
    return iter(JsonlFollower(path, **kw))


class FollowedSteps:
    """The steps of a growing JSONL log whose lines are the records of one run, as they arrive.

    Any reader whose JSONL lines are the records of one run works: chat messages, OpenHands
    events (V0 and V1), OpenTelemetry collector lines, Langfuse observations, Agents SDK spans...
    The format is ``format``, else detected once the lines so far are recognised, then kept.
    The lines so far are read again at each new line (cheap next to scoring), so that rules across
    records (a tool result answering an earlier call, a span's agent from its parent) apply as in a
    finished log, and only the new steps are yielded.

    While no step has been yielded, a log that cannot be read yet (only a system prompt, a trace
    header, a span whose parent has not arrived) is waited on, with one warning unless it only
    lacks a step so far; the error is raised if following stops before it reads (a log that only
    lacked a step yields none). A line that changes steps already yielded (a parent span arriving
    after its children, which names their agent) makes the steps from the first change be yielded
    again, with their indices (a consumer rewinds to it: :meth:`Monitor.rewind`), with one warning;
    a log that holds several runs is an error. The reader's warnings of the last read are issued when following ends
    (earlier reads' warnings can be about records that had not arrived yet).

    Attributes
    ----------
    format : str or None, the format read (None until detected)
    revisions : int, how many lines revised steps already yielded
    """

    def __init__(self, follower: JsonlFollower, *, format: str | None = None):
        self.follower = follower
        self.format = format
        self.revisions = 0

    def __iter__(self) -> Iterator[Step]:
        from attribution.parse import detect_format, read_runs

        path = str(self.follower.path)
        values: list[Any] = []
        lines: list[int] = []
        done: list[tuple[str, str, str]] = []
        waiting: InputError | None = None
        caught: list[warnings.WarningMessage] = []
        try:
            for obj in self.follower:
                line = self.follower.line
                if self.format == "chat" and isinstance(obj, dict) and ("messages" in obj or "history" in obj):
                    raise InputError(path, "one chat message per line to follow", got=f"a whole run on line {line}")
                values.append(obj)
                lines.append(line)
                try:
                    with warnings.catch_warnings(record=True) as now:
                        warnings.simplefilter("always")
                        name = self.format or detect_format(values, path)
                        runs = read_runs(values, path, name, lines=lines)
                except InputError as err:
                    if done:
                        raise
                    if waiting is None and not err.expected.startswith("at least one"):  # not only "no step yet"
                        warnings.warn(ParseWarning(f"{path}: not a run yet at line {line} ({err.expected}); "
                                                   "waiting for more lines"), stacklevel=2)
                    waiting = err
                    continue
                waiting, caught = None, list(now)
                if self.format is None:
                    self.format = name
                    if name == "chat" and any(isinstance(v, dict) and ("messages" in v or "history" in v) for v in values):
                        raise InputError(path, "one chat message per line to follow", got=f"a whole run on line {line}")
                if len(runs) != 1:
                    raise InputError(path, "the records of one run to follow",
                                     got=f"{len(runs)} runs by line {line}: {', '.join(r.run_id for r in runs[:5])}")
                steps = runs[0].steps
                now = [(st.agent, st.kind, st.content) for st in steps]
                k = next((i for i, (a, b) in enumerate(zip(now, done)) if a != b), min(len(now), len(done)))
                if k < len(done):  # a record arrived late (a parent span): steps already yielded changed
                    self.revisions += 1
                    if self.revisions == 1:
                        warnings.warn(ParseWarning(f"{path}: line {line} revises step {k} (records out of order, "
                                                   "e.g. a parent span after its children): the steps from there are "
                                                   "yielded again (and scored again); so are later revisions"),
                                      stacklevel=2)
                    del done[k:]
                for st in steps[len(done):]:
                    done.append((st.agent, st.kind, st.content))
                    yield st
            if waiting is not None and not waiting.expected.startswith("at least one"):
                raise waiting  # the log never became readable (nothing scoreable yet is not an error: no step)
        finally:
            shown: set[str] = set()
            for w in caught:
                if str(w.message) not in shown:
                    shown.add(str(w.message))
                    warnings.warn(w.message, stacklevel=2)


def follow_steps(follower: JsonlFollower, *, format: str | None = None) -> FollowedSteps:
    """The steps of a growing JSONL log (see :class:`FollowedSteps`); ``format``: detected when None."""
    return FollowedSteps(follower, format=format)
