"""Synthetic runs shared by the scoring and monitoring tests (a plain module, imported by name)."""

import torch

from attribution.types import Run, Step

WORDS = "search the page for the ticket price then report back to the orchestrator exitcode 0 code output".split()


def make_run(n_steps=12, seed=0, run_id="r"):
    """A run of three agents and a terminal (every fourth step, an observation), random words of WORDS."""
    g = torch.Generator().manual_seed(seed)
    steps = []
    for i in range(n_steps):
        k = int(torch.randint(3, 30, (1,), generator=g))
        text = " ".join(WORDS[int(j)] for j in torch.randint(0, len(WORDS), (k,), generator=g))
        if i % 4 == 3:
            steps.append(Step(i, "terminal", "tool", "observation", text))
        else:
            agent = ["Orchestrator", "WebSurfer", "Assistant"][i % 3]
            steps.append(Step(i, agent, agent, "action", text))
    return Run(steps, run_id)
