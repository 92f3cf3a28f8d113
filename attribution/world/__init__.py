"""A controlled multi-agent world where the true advantage is known.

``env`` defines the world, ``solve`` its exact soft-optimal solution, ``runs`` samples runs
and renders them as chat messages, ``labels`` writes the labelled data sets, ``lm`` the
tokenizer and the tiny causal LM, ``train`` the SFT + KL-regularised RL that makes the
committed pair, ``results`` the evaluation (the ``attribution world`` commands live in :mod:`attribution.cli.world`).
"""

from attribution.world.env import AGENTS, TASKS, Action, Outcome, State, World, WorldConfig
from attribution.world.solve import Solution, soft_objective, solve, telescope

#: The temperature the committed pair was trained at and the oracle is solved at.
BETA = 0.2

__all__ = [
    "AGENTS",
    "BETA",
    "TASKS",
    "Action",
    "Outcome",
    "State",
    "World",
    "WorldConfig",
    "Solution",
    "solve",
    "soft_objective",
    "telescope",
]
