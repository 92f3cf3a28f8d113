"""Exact soft (KL-regularised) value iteration on the world.

With reference pi_ref and temperature beta, on the finite, acyclic world:

    Q*(s, a) = E[r + V*(s') | s, a]                     (V* = 0 after the end)
    V*(s)    = beta * log sum_a pi_ref(a|s) exp(Q*(s, a) / beta)
    pi*(a|s) = pi_ref(a|s) exp((Q*(s, a) - V*(s)) / beta)

so beta * log pi*/pi_ref = Q* - V* = A*, the optimal advantage, in any environment.
pi* maximises J(pi) = E_pi[R] - beta * E_pi[sum_t KL(pi(.|s_t) || pi_ref(.|s_t))],
and J(pi*) = E_{s0} V*(s0) (:func:`soft_objective` evaluates J exactly).

Along one run s_0, a_0, ..., the advantages telescope to::

    sum_t A*(s_t, a_t) = R - V*(s_0) + sum_t (E[r_t + V*(s') | s_t, a_t] - (r_t + V*(s_{t+1})))

where the expectation is over the environment's answer and V* = 0 after the end (the world
pays its reward only at the end, so the last term compares the expected and the received
reward). The leftover terms, the environment's surprises, vanish in a deterministic world
(:func:`telescope`); sampled from the environment they have mean zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from attribution.world.env import State, World

__all__ = ["Solution", "solve", "soft_objective", "telescope"]


def _logsumexp(x: np.ndarray) -> float:
    m = float(np.max(x))
    return m + float(np.log(np.sum(np.exp(x - m))))


@dataclass
class Solution:
    """The exact solution at temperature ``beta``: V*, Q* and pi_ref for every reachable state."""

    world: World
    beta: float
    V: dict[State, float]
    Q: dict[State, np.ndarray]
    ref: dict[State, np.ndarray]

    def advantage(self, state: State) -> np.ndarray:
        """A*(s, .) = Q*(s, .) - V*(s)."""
        return self.Q[state] - self.V[state]

    def pi_star(self, state: State) -> np.ndarray:
        """pi*(. | s) = pi_ref exp(A*/beta), normalised by construction."""
        return self.ref[state] * np.exp(self.advantage(state) / self.beta)

    def expected_next_value(self, state: State, index: int) -> float:
        """E[r + V*(s') | s, a] over the environment's answer, which is Q*(s, a)."""
        action = self.world.actions(state)[index]
        return sum(
            o.prob * (o.reward + (self.V[o.next] if o.next is not None else 0.0)) for o in self.world.outcomes(state, action)
        )

    def is_best(self, state: State, index: int, tol: float = 1e-12) -> bool:
        """Whether ``a`` maximises Q*(s, .): the agent did the best thing available."""
        q = self.Q[state]
        return bool(q[index] >= q.max() - tol)

    def v0(self) -> float:
        """E_{s0} V*(s0) over the task distribution."""
        return sum(p * self.V[s] for p, s, _ in self.world.initial())


def solve(world: World, beta: float) -> Solution:
    """Solve ``world`` exactly at temperature ``beta`` (> 0) by backward induction."""
    if not beta > 0:
        raise ValueError(f"The 'beta' parameter of solve must be > 0. Got {beta!r} instead.")
    V: dict[State, float] = {}
    Q: dict[State, np.ndarray] = {}
    ref: dict[State, np.ndarray] = {}

    def value(s: State) -> float:
        if s in V:
            return V[s]
        acts = world.actions(s)
        q = np.array(
            [sum(o.prob * (o.reward + (value(o.next) if o.next is not None else 0.0)) for o in world.outcomes(s, a)) for a in acts]
        )
        r = world.ref_probs(s)
        Q[s], ref[s] = q, r
        V[s] = beta * _logsumexp(np.log(r) + q / beta)
        return V[s]

    for _, s0, _ in world.initial():
        value(s0)
    return Solution(world, beta, V, Q, ref)


def soft_objective(world: World, beta: float, policy: Callable[[State], np.ndarray] | Mapping[State, np.ndarray]) -> float:
    """J(pi) = E_pi[R] - beta E_pi[sum_t KL(pi(.|s_t) || pi_ref(.|s_t))], computed exactly."""
    get = policy.__getitem__ if isinstance(policy, Mapping) else policy
    memo: dict[State, float] = {}

    def j(s: State) -> float:
        if s in memo:
            return memo[s]
        pi, r = np.asarray(get(s), dtype=float), world.ref_probs(s)
        total = 0.0
        for a, p in zip(world.actions(s), pi):
            if p <= 0.0:
                continue
            cont = sum(o.prob * (o.reward + (j(o.next) if o.next is not None else 0.0)) for o in world.outcomes(s, a))
            total += p * (cont - beta * np.log(p / r[world.actions(s).index(a)]))
        memo[s] = total
        return total

    return sum(p * j(s0) for p, s0, _ in world.initial())


def telescope(solution: Solution, decisions: list[tuple[State, int]], reward: float) -> dict[str, float]:
    """The terms of the telescoping identity along one run.

    Parameters
    ----------
    decisions : list of (state, action index)
        The run's agent decisions in order; the first state is s_0.
    reward : float
        The run's return R, paid after the last decision.

    Returns
    -------
    dict
        ``sum_advantage`` (sum_t A*), ``reward``, ``v0`` (V*(s_0)) and ``leftover``
        (sum_t E[r_t + V*(s')|s_t,a_t] - (r_t + V*(s_{t+1}))), with
        ``sum_advantage == reward - v0 + leftover`` up to rounding.
    """
    V = solution.V
    sum_adv = sum(float(solution.advantage(s)[i]) for s, i in decisions)
    leftover = 0.0
    for t, (s, i) in enumerate(decisions):
        received = V[decisions[t + 1][0]] if t + 1 < len(decisions) else float(reward)
        leftover += solution.expected_next_value(s, i) - received
    return {"sum_advantage": sum_adv, "reward": float(reward), "v0": V[decisions[0][0]], "leftover": leftover}
