"""Ground-truth labels for runs of the world, in the generic labelled format.

The decisive step of a failed run is its agent step with the most negative true
A*(s, a) = Q*(s, a) - V*(s) (the earliest one on a tie), at the temperature the pair was
trained at: the decision that, by the exact solution, cost the team the most relative to
what its reference agents would on average have done there. A failed run is a *lucky
failure* (bad luck alone) when every agent decision in it maximised Q*(s, .): no agent could
have done better, and the environment (a timeout, a silently wrong value) made it fail.
Lucky failures keep a ``mistake_step`` (the most negative A*, which is then >= 0) so that
every failed run has one, but evaluations leave them out.

Records (one JSON object per run; see ``datasets/README.md``)::

    {"id": "world-failures-0007", "messages": [...], "success": false,
     "mistake_step": 4, "mistake_agent": "worker", "lucky_failure": false,
     "advantages": [null, 0.10, -0.01, null, -0.20, ...],
     "beta": 0.2, "reward": 0.0}

``advantages`` is aligned with ``messages`` (null for observations). Successful runs carry
``mistake_step`` / ``mistake_agent`` null.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np

from attribution.world.runs import Trajectory, replay, sample_run
from attribution.world.solve import Solution

__all__ = ["label", "sample_labelled", "write_jsonl", "read_jsonl", "advantages_of"]


def advantages_of(solution: Solution, messages: list[dict]) -> list[float | None]:
    """True A* of every message of a run (None for observations), recovered from the text."""
    out: list[float | None] = [None] * len(messages)
    for d in replay(solution.world, messages):
        out[d.step] = float(solution.advantage(d.state)[d.action])
    return out


def label(solution: Solution, traj: Trajectory, run_id: str) -> dict:
    """The labelled record of one run (see the module docstring)."""
    adv = [None] * len(traj.messages)
    best = []
    for d in traj.decisions:
        adv[d.step] = float(solution.advantage(d.state)[d.action])
        best.append(solution.is_best(d.state, d.action))
    record = {"id": run_id, "messages": traj.messages, "success": traj.success}
    if traj.success:
        record.update(mistake_step=None, mistake_agent=None, lucky_failure=False)
    else:
        steps = [d.step for d in traj.decisions]
        worst = steps[int(np.argmin([adv[s] for s in steps]))]
        record.update(mistake_step=worst, mistake_agent=traj.messages[worst]["name"], lucky_failure=all(best))
    record.update(
        advantages=adv,
        beta=solution.beta,
        reward=traj.reward,
    )
    return record


def sample_labelled(
    solution: Solution, n: int, *, seed: int, failures_only: bool, prefix: str, max_draws: int = 1_000_000
) -> list[dict]:
    """``n`` labelled runs of the reference agents (pi_ref), all failures or a natural mix."""
    rng = np.random.default_rng(seed)
    world = solution.world
    out: list[dict] = []
    draws = 0
    while len(out) < n:
        draws += 1
        if draws > max_draws:
            raise RuntimeError(f"fewer than {n} failures in {max_draws} runs")
        traj = sample_run(world, world.ref_probs, rng)
        if failures_only and traj.success:
            continue
        out.append(label(solution, traj, f"{prefix}-{len(out):04d}"))
    return out


def write_jsonl(records: Iterable[dict], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path) -> list[dict]:
    """The records of a JSONL file written by :func:`write_jsonl`; a line that is not a JSON
    object is an :class:`~attribution.errors.InputError` naming the file and the line."""
    from attribution.errors import InputError
    from attribution.io import json_error, parse_json

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, "a readable UTF-8 JSONL file", got=type(err).__name__) from None
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {n}"
        try:
            record = parse_json(line, where)
        except json.JSONDecodeError as err:
            raise InputError(where, "one JSON object per line (JSONL)", got=json_error(err, column_only=True)) from None
        if not isinstance(record, dict):
            raise InputError(where, "one JSON object per line (JSONL)", got=type(record).__name__)
        out.append(record)
    return out
