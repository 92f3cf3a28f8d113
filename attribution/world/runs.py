"""Sample runs of the world and turn them into generic chat messages, and back.

A run's messages are what every other part of the package reads (``attribution.parse``
loads them as format ``chat``): the task is a ``user`` message without a name, each agent
decision an ``assistant`` message named after the agent, each tool answer a ``tool``
message named ``api``. :func:`replay` recovers every decision state from the text alone,
which is what lets a language model that reads the text represent pi_ref(a|s).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from attribution.world.env import TOOL, USER, State, World

__all__ = ["Decision", "Trajectory", "sample_run", "replay", "message"]


@dataclass(frozen=True)
class Decision:
    """One agent decision: its message index in the run, the state and the action's index."""

    step: int
    state: State
    action: int


@dataclass
class Trajectory:
    """A sampled run: its messages, its decisions and its return (1 success, 0 failure)."""

    messages: list[dict]
    decisions: list[Decision]
    reward: float
    meta: dict = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.reward > 0.5

    @property
    def task(self) -> str:
        return self.decisions[0].state.task


Policy = Callable[[State], np.ndarray] | Mapping[State, np.ndarray]


def message(speaker: str, text: str, *, action: bool) -> dict:
    """A chat message in the generic format: actions are named assistant messages."""
    if action:
        return {"role": "assistant", "name": speaker, "content": text}
    if speaker == USER:
        return {"role": "user", "content": text}
    return {"role": "tool", "name": speaker, "content": text}


def sample_run(world: World, policy: Policy, rng: np.random.Generator) -> Trajectory:
    """Sample one run with the agents acting from ``policy`` (state -> probabilities over
    ``world.actions(state)``), e.g. ``world.ref_probs`` or a solution's ``pi_star``."""
    get = policy.__getitem__ if isinstance(policy, Mapping) else policy
    starts = world.initial()
    _, state, task_text = starts[rng.choice(len(starts), p=[p for p, _, _ in starts])]
    messages = [message(USER, task_text, action=False)]
    decisions: list[Decision] = []
    while True:
        actions = world.actions(state)
        probs = np.asarray(get(state), dtype=float)
        index = int(rng.choice(len(actions), p=probs / probs.sum()))
        decisions.append(Decision(len(messages), state, index))
        messages.append(message(world.agent(state), actions[index].text, action=True))
        outs = world.outcomes(state, actions[index])
        out = outs[int(rng.choice(len(outs), p=[o.prob for o in outs]))]
        for speaker, text in out.observations:
            messages.append(message(speaker, text, action=False))
        if out.next is None:
            return Trajectory(messages, decisions, out.reward)
        state = out.next


def replay(world: World, messages: list[dict]) -> list[Decision]:
    """Recover the decisions (state, action) of a run from its messages alone.

    Raises
    ------
    ValueError
        If a message is not what the world could have produced at that point.
    """
    if not messages or messages[0].get("role") != "user":
        raise ValueError("a world run starts with the task as a user message")
    starts = {text: s for _, s, text in world.initial()}
    if messages[0]["content"] not in starts:
        raise ValueError(f"step 0: unknown task {messages[0]['content']!r}")
    state: State | None = starts[messages[0]["content"]]
    decisions: list[Decision] = []
    i = 1
    while i < len(messages):
        if state is None:
            raise ValueError(f"step {i}: the run should have ended")
        msg = messages[i]
        if msg.get("role") != "assistant" or msg.get("name") != world.agent(state):
            raise ValueError(f"step {i}: expected the {world.agent(state)}'s turn, got {msg.get('role')}/{msg.get('name')}")
        texts = [a.text for a in world.actions(state)]
        if msg["content"] not in texts:
            raise ValueError(f"step {i}: {msg['content']!r} is not an action of the {world.agent(state)} here")
        index = texts.index(msg["content"])
        decisions.append(Decision(i, state, index))
        i += 1
        outs = world.outcomes(state, world.actions(state)[index])
        observed: list[str] = []
        while i < len(messages) and messages[i].get("role") == "tool":
            if messages[i].get("name") != TOOL:
                raise ValueError(f"step {i}: unknown tool {messages[i].get('name')!r}")
            observed.append(messages[i]["content"])
            i += 1
        matching = [o for o in outs if [t for _, t in o.observations] == observed]
        nexts = {o.next for o in matching}
        if len(nexts) != 1:
            raise ValueError(f"step {i - 1}: the observations {observed!r} do not follow from the last action")
        state = nexts.pop()
    if state is not None:
        raise ValueError(f"the run stops at step {len(messages) - 1} before its end")
    return decisions
