"""Sample runs of the world with a causal LM playing every agent.

All runs of a batch advance one token per model call, sharing one KV cache: at each tick a
run either takes its next forced token (a header, a tool answer, a separator) or, inside
an agent's turn, samples the next token of its action from the LM restricted to the
state's action trie (the actions that start with what it wrote so far). When an action is
complete the world answers. The token stream is exactly the rendering the scorer builds.

*Exploring starts*: the first ``ref_prefix[b]`` decisions of run ``b`` are taken by the
reference agents of the world (the tabular pi_ref), written as forced tokens; the LM plays
the rest. The soft-optimal policy is optimal from every state, so training only on the LM's
own decisions after such a prefix aims at the same pi* while visiting the states the
reference agents reach (where the labelled failures happen) and the trained policy would
otherwise almost never see.
"""

from __future__ import annotations

import inspect
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from attribution.world.env import USER, State, World
from attribution.world.lm import Encoder
from attribution.world.runs import Decision, Trajectory, message

__all__ = ["Rollout", "rollout"]


@dataclass
class Rollout:
    """A sampled batch: per run its trajectory, its token ids and each decision's content span."""

    trajectories: list[Trajectory]
    ids: list[list[int]]
    spans: list[list[tuple[int, int, Decision]]] = field(default_factory=list)
    """Per run, ``(start, end, decision)`` of each decision the LM took (not the forced prefix)."""
    allowed: list[list[tuple[int, list[int]]]] = field(default_factory=list)
    """Per run, ``(position, tokens)``: the tokens the trie allowed at each position the LM sampled."""


@dataclass
class _Stream:
    ids: list[int]
    pending: deque
    state: State | None
    node: dict | None = None
    start: int = 0
    messages: list = field(default_factory=list)
    decisions: list = field(default_factory=list)
    spans: list = field(default_factory=list)
    reward: float = 0.0
    forced_left: int = 0
    allowed: list = field(default_factory=list)


def rollout(
    model,
    world: World,
    encoder: Encoder,
    n: int,
    rng: np.random.Generator,
    *,
    ref_prefix: list[int] | None = None,
    temperature: float = 1.0,
) -> Rollout:
    """Sample ``n`` runs with ``model`` acting for every agent after the first ``ref_prefix[b]``
    decisions of run ``b`` (default none), which the tabular pi_ref takes. torch.no_grad inside."""
    import torch

    starts = world.initial()
    streams: list[_Stream] = []
    for b in range(n):
        _, s0, task_text = starts[rng.choice(len(starts), p=[p for p, _, _ in starts])]
        head, body = encoder.step(USER, task_text)
        pending = deque([*head, *body, *encoder.sep, *encoder.step(world.agent(s0), "")[0]])
        st = _Stream(ids=[encoder.bos], pending=pending, state=s0, messages=[message(USER, task_text, action=False)])
        st.forced_left = int(ref_prefix[b]) if ref_prefix is not None else 0
        _force_reference(world, encoder, st, rng)
        streams.append(st)

    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    past = None
    was_training = model.training
    model.eval()
    with torch.no_grad():
        while any(st.state is not None or st.pending for st in streams):
            last = torch.tensor([[st.ids[-1]] for st in streams])
            out = model(input_ids=last, use_cache=True, **{cache_arg: past})
            past = getattr(out, cache_arg)
            probs = torch.softmax(out.logits[:, -1].float() / temperature, dim=-1).numpy()  # [n, vocab]
            for b, st in enumerate(streams):
                if st.pending:
                    st.ids.append(st.pending.popleft())
                    continue
                if st.state is None:
                    st.ids.append(encoder.pad)
                    continue
                if st.node is None:
                    st.node = encoder.trie(world, st.state)
                    st.start = len(st.ids)
                allowed = list(st.node)
                st.allowed.append((len(st.ids), allowed))
                p = probs[b, allowed]
                tok = allowed[int(rng.choice(len(allowed), p=p / p.sum()))]
                st.ids.append(tok)
                nxt = st.node[tok]
                if isinstance(nxt, dict):
                    st.node = nxt
                    continue
                _finish_action(world, encoder, st, nxt, rng)
    if was_training:
        model.train()
    trajs = [Trajectory(st.messages, st.decisions, st.reward) for st in streams]
    return Rollout(trajs, [st.ids for st in streams], [st.spans for st in streams], [st.allowed for st in streams])


def _finish_action(world: World, encoder: Encoder, st: _Stream, index: int, rng: np.random.Generator) -> None:
    state = st.state
    action = world.actions(state)[index]
    decision = Decision(len(st.messages), state, index)
    st.decisions.append(decision)
    st.spans.append((st.start, len(st.ids), decision))
    st.messages.append(message(world.agent(state), action.text, action=True))
    st.node = None
    _answer(world, encoder, st, state, action, rng)


def _answer(world: World, encoder: Encoder, st: _Stream, state: State, action, rng: np.random.Generator) -> None:
    """The world's answer to a completed action: separator, observations, next header."""
    outs = world.outcomes(state, action)
    out = outs[int(rng.choice(len(outs), p=[o.prob for o in outs]))]
    st.pending.extend(encoder.sep)
    for speaker, text in out.observations:
        head, body = encoder.step(speaker, text)
        st.pending.extend([*head, *body, *encoder.sep])
        st.messages.append(message(speaker, text, action=False))
    st.state = out.next
    if out.next is None:
        st.reward = out.reward
    else:
        st.pending.extend(encoder.step(world.agent(out.next), "")[0])


def _force_reference(world: World, encoder: Encoder, st: _Stream, rng: np.random.Generator) -> None:
    """Take the stream's remaining forced decisions from the tabular pi_ref, as pending tokens."""
    while st.forced_left > 0 and st.state is not None:
        st.forced_left -= 1
        state = st.state
        probs = world.ref_probs(state)
        index = int(rng.choice(len(probs), p=probs / probs.sum()))
        action = world.actions(state)[index]
        st.decisions.append(Decision(len(st.messages), state, index))
        st.messages.append(message(world.agent(state), action.text, action=True))
        st.pending.extend(encoder.encode(action.text))
        _answer(world, encoder, st, state, action, rng)
