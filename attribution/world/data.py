"""The world's labelled data sets, fixed by their seeds (``datasets/world/*.jsonl``).

* ``failures``: 300 failed runs of the reference agents (tabular pi_ref), labelled
  (:mod:`attribution.world.labels`); evaluation and the RL curve use the non-lucky ones.
* ``mixed``: 400 runs of the reference agents as they come, successes and failures,
  for predicting success from the run-level score.
* ``failures_heldout``: 300 more failures from another seed. The training recipe was
  developed while watching accuracy on ``failures``; this set was only scored once the
  committed pair existed, as a check that the numbers do not depend on that choice.

Training never reads these runs (its runs are drawn with other seeds, fresh each step),
but the world is small, so the same run text can also occur in training.
"""

from __future__ import annotations

from pathlib import Path

from attribution.world.labels import read_jsonl, sample_labelled, write_jsonl
from attribution.world.solve import Solution

__all__ = ["N_FAILURES", "N_MIXED", "failure_set", "mixed_set", "heldout_failure_set", "write_sets", "generate", "load_set", "DATA_DIR"]

N_FAILURES = 300
N_MIXED = 400
FAILURES_SEED = 1001
MIXED_SEED = 2002
HELDOUT_SEED = 3003
DATA_DIR = Path("datasets/world")


def failure_set(solution: Solution, n: int = N_FAILURES) -> list[dict]:
    return sample_labelled(solution, n, seed=FAILURES_SEED, failures_only=True, prefix="world-failure")


def mixed_set(solution: Solution, n: int = N_MIXED) -> list[dict]:
    return sample_labelled(solution, n, seed=MIXED_SEED, failures_only=False, prefix="world-mixed")


def heldout_failure_set(solution: Solution, n: int = N_FAILURES) -> list[dict]:
    return sample_labelled(solution, n, seed=HELDOUT_SEED, failures_only=True, prefix="world-heldout")


def generate(out_dir: str | Path = DATA_DIR) -> dict[str, Path]:
    """Solve the world at :data:`attribution.world.BETA` and write its three labelled sets (fixed seeds)."""
    from attribution.world import BETA, World, solve

    return write_sets(solve(World(), BETA), out_dir)


def write_sets(solution: Solution, out_dir: str | Path = DATA_DIR) -> dict[str, Path]:
    out_dir = Path(out_dir)
    paths = {
        "failures": out_dir / "failures.jsonl",
        "mixed": out_dir / "mixed.jsonl",
        "failures_heldout": out_dir / "failures_heldout.jsonl",
    }
    write_jsonl(failure_set(solution), paths["failures"])
    write_jsonl(mixed_set(solution), paths["mixed"])
    write_jsonl(heldout_failure_set(solution), paths["failures_heldout"])
    return paths


def load_set(name: str, data_dir: str | Path = DATA_DIR) -> list[dict]:
    return read_jsonl(Path(data_dir) / f"{name}.jsonl")
