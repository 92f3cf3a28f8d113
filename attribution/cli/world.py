"""``attribution world``: generate the labelled sets, train the pair, write the results."""

from __future__ import annotations

import time
from pathlib import Path

import click

from attribution.cli.errors import Group
from attribution.cli.terminal import echo

__all__ = ["world"]

#: The committed pair's folder (attribution/world/checkpoint), named without importing the world.
CHECKPOINT = Path(__file__).resolve().parents[1] / "world" / "checkpoint"


@click.group("world", cls=Group)
def world() -> None:
    """The controlled world where the true advantage is known."""


def _inputs(checkpoint_dir: str, data_dir: str) -> list[Path]:
    """The files `world results` and `world evidence` read (the labelled sets, the pair), which no output may overwrite."""
    data, ckpt = Path(data_dir), Path(checkpoint_dir)
    files = list(data.glob("*.jsonl")) if data.is_dir() else []
    if ckpt.is_dir():
        files += [p for p in ckpt.rglob("*") if p.is_file()]
    return files


@world.command("generate")
@click.option("--out", "out_dir", default="datasets/world", show_default=True, type=click.Path(file_okay=False))
def generate(out_dir: str) -> None:
    """Write the labelled failures, the mixed set and the held-out failures (fixed seeds) as JSONL."""
    from attribution.io import check_writable
    from attribution.world.data import generate as generate_sets

    check_writable(out_dir, option="--out", folder=True)
    t0 = time.time()
    for name, path in generate_sets(out_dir).items():
        echo(f"wrote {path} ({name})")
    echo(f"done in {time.time() - t0:.1f}s")


@world.command("train")
@click.option("--out", "out_dir", default="world-pair", show_default=True, type=click.Path(file_okay=False),
              help="A new folder for reference/, policy/, pairs.json and training.json (the shipped pair only with "
                   "--replace-shipped).")
@click.option("--replace-shipped", is_flag=True,
              help="Allow --out to be the package's shipped pair (attribution/world/checkpoint), overwriting it.")
@click.option("--seed", default=0, show_default=True)
@click.option("--sft-steps", type=click.IntRange(min=0), default=None, help="Default: TrainConfig's.")
@click.option("--rl-steps", type=click.IntRange(min=0), default=None, help="Default: TrainConfig's.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads for batched passes (default 1).")
def train_command(out_dir: str, replace_shipped: bool, seed: int, sft_steps: int | None, rl_steps: int | None,
                  threads: int | None) -> None:
    """SFT the reference on the reference agents' runs, then KL-regularised RL; save the pair."""
    from attribution.errors import ConfigError
    from attribution.io import check_writable
    from attribution.world.train import TrainConfig, train

    if Path(out_dir).resolve() == CHECKPOINT.resolve() and not replace_shipped:
        raise ConfigError(f"--out {out_dir} is the shipped pair; pass --replace-shipped to overwrite it, or name a new folder")
    if not replace_shipped and Path(out_dir, "pairs.json").exists():
        raise ConfigError(f"--out {out_dir} already holds a trained pair (pairs.json); name a new folder")
    check_writable(out_dir, option="--out", folder=True)
    overrides = {k: v for k, v in (("sft_steps", sft_steps), ("rl_steps", rl_steps), ("threads", threads)) if v is not None}
    config = TrainConfig(seed=seed, **overrides)
    summary = train(out_dir, config, log=echo)
    echo(f"wrote {Path(out_dir, 'reference')}, {Path(out_dir, 'policy')}, {Path(out_dir, 'training.json')}")
    echo(f"wrote {Path(out_dir, 'pairs.json')} (the pair config; total {summary['wall_seconds']['total']:.0f}s)")


@world.command("results")
@click.option("--checkpoint", "checkpoint_dir", default=str(CHECKPOINT), show_default=True, type=click.Path(file_okay=False))
@click.option("--data", "data_dir", default="datasets/world", show_default=True, type=click.Path(file_okay=False))
@click.option("--out", "out_md", default="eval/world_results.md", show_default=True, type=click.Path(dir_okay=False))
@click.option("--png", "out_png", default="eval/world_accuracy_vs_rl_steps.png", show_default=True, type=click.Path(dir_okay=False))
@click.option("--example", "example_out", default="examples/world_failed_run.json", show_default=True, type=click.Path(dir_okay=False))
def results(checkpoint_dir: str, data_dir: str, out_md: str, out_png: str, example_out: str) -> None:
    """Score the labelled sets with the pair; write the results table, the curve and the example run."""
    from attribution.io import check_outputs
    from attribution.world.results import write_results

    check_outputs({"--out": out_md, "--png": out_png, "--example": example_out}, inputs=_inputs(checkpoint_dir, data_dir))
    summary = write_results(checkpoint_dir, data_dir, out_md, out_png, example_out)
    for name, row in summary["rows"].items():
        (step, _), (agent, _) = row["step"], row["agent"]
        echo(f"{name:40s} step {step:.3f}  agent {agent:.3f}")
    echo(f"wrote {out_md}, {out_png}" + (f", {example_out} ({summary['example']})" if summary["example"] else ""))


@world.command("evidence")
@click.option("--checkpoint", "checkpoint_dir", default=str(CHECKPOINT), show_default=True, type=click.Path(file_okay=False))
@click.option("--data", "data_dir", default="datasets/world", show_default=True, type=click.Path(file_okay=False))
@click.option("--out", "out_md", default="eval/world_select_monitor.md", show_default=True, type=click.Path(dir_okay=False),
              help="Markdown report; world_selection.png and world_prefix_auroc.png are written beside it.")
@click.option("--groups", default=300, show_default=True, type=click.IntRange(min=2), help="Task instances of 8 candidate runs each.")
def evidence(checkpoint_dir: str, data_dir: str, out_md: str, groups: int) -> None:
    """Best-of-N selection and prefix success prediction (monitoring) with the pair; write tables and plots."""
    from attribution.io import check_outputs
    from attribution.world.evidence import write_evidence

    out_dir = Path(out_md).parent
    check_outputs({"--out": out_md, "--out (its figure world_selection.png)": out_dir / "world_selection.png",
                   "--out (its figure world_prefix_auroc.png)": out_dir / "world_prefix_auroc.png"},
                  inputs=_inputs(checkpoint_dir, data_dir))
    summary = write_evidence(checkpoint_dir, data_dir, out_md, groups=groups)
    for n, t in summary["selection"].items():
        row = t["rows"]
        echo(f"N={n}: progress advantage {row['progress advantage, sum (trained pair)']['mean']:.3f}, "
             f"first {row['first run']['mean']:.3f}, oracle {row['oracle best-of-N']['mean']:.3f}")
    echo(f"wrote {out_md} ({summary['seconds']['total']:.0f} s)")
