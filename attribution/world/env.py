"""The controlled world: a planner, a tool-calling worker and a verifier around a flaky tool.

One run, for a task drawn uniformly from :data:`TASKS`::

    [user]:     task : weather for paris                      (observation)
    [planner]:  use weather then verify twice                 (picks a tool; the last two words are free text)
    [worker]:   weather ( city = paris )                      (the call; three syntaxes)
    [api]:      ok : 18 celsius                               (observation: ok / odd / error)
    [worker]:   ...                                           (only after an error, while calls are left)
    [verifier]: accept , plausible                            (accept ends the run; reject re-plans once)

* The planner names a tool; the right one is the one the task names. Its last two words are free
  text with no effect on anything (16 variants), so its steps are long and uncertain under
  *both* models: a confidence-only judge finds them suspicious, a log-ratio does not.
* The worker's precise syntax ``t ( key = value )`` always parses but is rare under the
  reference (15%); the common sloppy ``t ( value )`` parses 45% of the time; ``t value``
  never does.
* The tool times out at random (15%), and when a call parses, returns a surprising but
  correct value (``odd``) 15% of the time; a normal-looking value from the right tool is
  silently wrong 12% of the time, so a run can fail with every agent doing its best.
* The verifier should accept a value from the right tool (the odd ones too, which the
  reference mostly rejects) and reject anything else; a rejection re-plans once, then fails.

Reward is 1 for an accepted right answer, else 0. States are small tuples; every decision
state is recoverable from the run's text (:func:`attribution.world.runs.replay`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

__all__ = [
    "TASKS",
    "AGENTS",
    "USER",
    "PLANNER",
    "WORKER",
    "VERIFIER",
    "TOOL",
    "WorldConfig",
    "State",
    "Action",
    "Outcome",
    "World",
]

TASKS = ("weather", "fx", "quote")
TASK_TEXT = {"weather": "weather for paris", "fx": "fx for eurusd", "quote": "quote for acme"}
TOOL_KEY = {"weather": "city", "fx": "pair", "quote": "symbol"}
TASK_VALUE = {"weather": "paris", "fx": "eurusd", "quote": "acme"}
NORMAL = {"weather": "18 celsius", "fx": "1.08 usd", "quote": "97 usd"}
ODD = {"weather": "-40 celsius", "fx": "0.01 usd", "quote": "0 usd"}
NOTE_VERBS = ("check", "verify", "confirm", "review")
NOTE_ADVERBS = ("carefully", "quickly", "twice", "once")
ACCEPT_REASONS = ("plausible", "consistent", "expected")
REJECT_REASONS = ("suspicious", "inconsistent", "unexpected")
SYNTAXES = ("precise", "sloppy", "broken")

USER, PLANNER, WORKER, VERIFIER, TOOL = "user", "planner", "worker", "verifier", "api"
AGENTS = (PLANNER, WORKER, VERIFIER)


@dataclass(frozen=True)
class WorldConfig:
    """Probabilities of the environment and of the reference agents (pi_ref).

    The defaults are the world the committed pair was trained on;
    :meth:`deterministic` removes every random outcome of the environment.
    """

    p_timeout: float = 0.15
    """A call times out, whatever its syntax."""
    p_parse: tuple[float, float, float] = (1.0, 0.45, 0.0)
    """A call that did not time out parses, per syntax (precise, sloppy, broken)."""
    p_odd: float = 0.15
    """A parsed call returns a surprising (but, from the right tool, correct) value."""
    p_corrupt: float = 0.12
    """A normal-looking value from the right tool is silently wrong."""
    planner_right: float = 0.6
    """pi_ref of naming the right tool (the two others share the rest)."""
    worker_first: tuple[float, float, float] = (0.15, 0.60, 0.25)
    """pi_ref of the syntaxes on a first call, and on a retry after a timeout."""
    worker_after_syntax_error: tuple[float, float, float] = (0.30, 0.50, 0.20)
    """pi_ref of the syntaxes on a retry after a syntax error."""
    accept_right_ok: float = 0.9
    accept_right_odd: float = 0.3
    accept_wrong_tool: float = 0.4
    accept_error: float = 0.1
    max_calls: int = 2
    """Calls per round: after an error the worker retries while calls are left."""
    max_rounds: int = 2
    """A rejection re-plans while rounds are left, else the run fails."""

    def __post_init__(self) -> None:
        probs = [self.p_timeout, self.p_odd, self.p_corrupt, self.planner_right, self.accept_right_ok,
                 self.accept_right_odd, self.accept_wrong_tool, self.accept_error, *self.p_parse]
        if any(not 0.0 <= p <= 1.0 for p in probs):
            raise ValueError(f"every probability of WorldConfig must lie in [0, 1]. Got {self} instead.")
        for name in ("worker_first", "worker_after_syntax_error"):
            dist = getattr(self, name)
            if len(dist) != 3 or abs(sum(dist) - 1.0) > 1e-12 or min(dist) <= 0.0:
                raise ValueError(f"WorldConfig.{name} must be 3 positive probabilities summing to 1. Got {dist} instead.")
        if not 0.0 < self.planner_right < 1.0 or any(
            not 0.0 < p < 1.0 for p in (self.accept_right_ok, self.accept_right_odd, self.accept_wrong_tool, self.accept_error)
        ):
            raise ValueError("pi_ref must give every action a positive probability (0 < p < 1).")
        if self.max_calls < 1 or self.max_rounds < 1:
            raise ValueError(f"max_calls and max_rounds must be >= 1. Got {self.max_calls}, {self.max_rounds} instead.")

    @classmethod
    def deterministic(cls, **overrides: float) -> "WorldConfig":
        """The same agents in an environment without chance: no timeouts, no odd or corrupt values,
        and sloppy calls never parse."""
        return replace(cls(p_timeout=0.0, p_parse=(1.0, 0.0, 0.0), p_odd=0.0, p_corrupt=0.0), **overrides)


class State(NamedTuple):
    """A decision state. ``phase`` is "plan", "call" or "verify"; ``last`` the last tool outcome
    of this round: None, "ok", "odd", "timeout" or "syntax"."""

    task: str
    round: int
    phase: str
    tool: str | None = None
    calls: int = 0
    last: str | None = None


class Action(NamedTuple):
    """``key`` is structured (``("plan", tool, verb, adverb)``, ``("call", syntax)``,
    ``("verdict", "accept"|"reject", reason)``); ``text`` is what the agent writes."""

    key: tuple
    text: str


class Outcome(NamedTuple):
    """One branch of a transition: ``next`` is None at the end of a run; ``observations`` are
    the (speaker, text) messages the environment writes before the next decision."""

    prob: float
    next: State | None
    reward: float
    observations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class World:
    """The world's dynamics and its reference agents; pure functions of the state."""

    config: WorldConfig = field(default_factory=WorldConfig)

    # ---- states and actions -------------------------------------------------------------
    def initial(self) -> list[tuple[float, State, str]]:
        """(probability, first decision state, task statement) for each task."""
        return [(1.0 / len(TASKS), State(t, 0, "plan"), f"task : {TASK_TEXT[t]}") for t in TASKS]

    @staticmethod
    def agent(state: State) -> str:
        return {"plan": PLANNER, "call": WORKER, "verify": VERIFIER}[state.phase]

    def actions(self, state: State) -> list[Action]:
        if state.phase == "plan":
            return [
                Action(("plan", tool, verb, adv), f"use {tool} then {verb} {adv}")
                for tool, verb, adv in itertools.product(TASKS, NOTE_VERBS, NOTE_ADVERBS)
            ]
        if state.phase == "call":
            tool, key, value = state.tool, TOOL_KEY[state.tool], TASK_VALUE[state.task]
            texts = (f"{tool} ( {key} = {value} )", f"{tool} ( {value} )", f"{tool} {value}")
            return [Action(("call", syn), text) for syn, text in zip(SYNTAXES, texts)]
        if state.phase == "verify":
            return [Action(("verdict", "accept", r), f"accept , {r}") for r in ACCEPT_REASONS] + [
                Action(("verdict", "reject", r), f"reject , {r}") for r in REJECT_REASONS
            ]
        raise ValueError(f"Unknown phase {state.phase!r}")

    def ref_probs(self, state: State) -> np.ndarray:
        """pi_ref(. | state), aligned with :meth:`actions`."""
        c = self.config
        if state.phase == "plan":
            per_note = 1.0 / (len(NOTE_VERBS) * len(NOTE_ADVERBS))
            tool_p = {t: c.planner_right if t == state.task else (1 - c.planner_right) / (len(TASKS) - 1) for t in TASKS}
            return np.array([tool_p[a.key[1]] * per_note for a in self.actions(state)])
        if state.phase == "call":
            return np.array(c.worker_after_syntax_error if state.last == "syntax" else c.worker_first, dtype=float)
        if state.phase == "verify":
            p = self._accept_prob(state)
            n = len(ACCEPT_REASONS)
            return np.array([p / n] * n + [(1 - p) / n] * n)
        raise ValueError(f"Unknown phase {state.phase!r}")

    def _accept_prob(self, state: State) -> float:
        c = self.config
        if state.last in ("timeout", "syntax"):
            return c.accept_error
        if state.tool != state.task:
            return c.accept_wrong_tool
        return c.accept_right_ok if state.last == "ok" else c.accept_right_odd

    # ---- dynamics ------------------------------------------------------------------------
    def outcomes(self, state: State, action: Action) -> list[Outcome]:
        """The environment's answer to ``action`` in ``state``; probabilities sum to 1."""
        c = self.config
        kind = action.key[0]
        if kind == "plan":
            return [Outcome(1.0, State(state.task, state.round, "call", action.key[1], 0, None), 0.0)]
        if kind == "call":
            p_parse = c.p_parse[SYNTAXES.index(action.key[1])]
            branches = [
                ("timeout", c.p_timeout),
                ("ok", (1 - c.p_timeout) * p_parse * (1 - c.p_odd)),
                ("odd", (1 - c.p_timeout) * p_parse * c.p_odd),
                ("syntax", (1 - c.p_timeout) * (1 - p_parse)),
            ]
            out = []
            for last, p in branches:
                if p <= 0.0:
                    continue
                calls = state.calls + 1
                phase = "verify" if last in ("ok", "odd") or calls >= c.max_calls else "call"
                nxt = State(state.task, state.round, phase, state.tool, calls, last)
                out.append(Outcome(p, nxt, 0.0, ((TOOL, self.tool_text(state.tool, last)),)))
            return out
        if kind == "verdict":
            if action.key[1] == "accept":
                if state.tool == state.task and state.last == "ok":
                    return [o for o in (Outcome(1 - c.p_corrupt, None, 1.0), Outcome(c.p_corrupt, None, 0.0)) if o.prob > 0]
                if state.tool == state.task and state.last == "odd":
                    return [Outcome(1.0, None, 1.0)]
                return [Outcome(1.0, None, 0.0)]
            if state.round + 1 < c.max_rounds:
                return [Outcome(1.0, State(state.task, state.round + 1, "plan"), 0.0)]
            return [Outcome(1.0, None, 0.0)]
        raise ValueError(f"Unknown action kind {kind!r}")

    @staticmethod
    def tool_text(tool: str, last: str) -> str:
        if last == "ok":
            return f"ok : {NORMAL[tool]}"
        if last == "odd":
            return f"ok : {ODD[tool]}"
        if last == "timeout":
            return "error : timeout"
        if last == "syntax":
            return "error : bad syntax"
        raise ValueError(f"Unknown tool outcome {last!r}")

    def states(self) -> list[State]:
        """Every reachable decision state (depth-first order)."""
        seen: dict[State, None] = {}
        stack = [s for _, s, _ in self.initial()]
        order: list[State] = []
        while stack:
            s = stack.pop()
            if s in seen:
                continue
            seen[s] = None
            order.append(s)
            for a in self.actions(s):
                for o in self.outcomes(s, a):
                    if o.next is not None and o.next not in seen:
                        stack.append(o.next)
        return order

    def vocabulary(self) -> list[str]:
        """Every whitespace-separated word any message of the world can contain, sorted."""
        words: set[str] = set()
        for _, s, text in self.initial():
            words.update(text.split())
        for s in self.states():
            for a in self.actions(s):
                words.update(a.text.split())
                for o in self.outcomes(s, a):
                    for _, text in o.observations:
                        words.update(text.split())
        for t in TASKS:
            for last in ("ok", "odd", "timeout", "syntax"):
                words.update(self.tool_text(t, last).split())
        return sorted(words)
