"""``attribution select RUN RUN…``: declares options, calls :func:`attribution.select.select_runs`, prints the ranking."""

from __future__ import annotations

import json

import click

from attribution.cli.terminal import echo

from attribution.cli.options import (
    device_option,
    dtype_option,
    format_option,
    json_option,
    pair_options,
    quiet_option,
    window_options,
)

__all__ = ["select"]


@click.command("select")
@click.argument("runs", nargs=-1, type=click.Path(dir_okay=False))
@pair_options
@click.option("--by", default="sum", show_default=True, type=click.Choice(["sum", "mean", "min"]),
              help="Run score: sum, mean or min of the action steps' progress advantage (sum: comparable across lengths).")
@format_option
@window_options
@dtype_option("Weights' dtype; log-softmax is always fp32.")
@device_option
@json_option('Write {"ranking": [{"run", "score"}, ...], "settings", "checkpoints"} as JSON, best first.')
@quiet_option("No progress bar or table; print only the best run.")
def select(runs, policy, reference, pairs, beta, pair, allow_toy_pair, by, fmt, window, min_context, no_chat_template, dtype, device, json_out, quiet):
    """Rank candidate RUNS of one task by run-level progress advantage, best first."""
    from attribution.io import atomic_write_text
    from attribution.select import select_runs

    sel = select_runs(
        list(runs), by=by, policy=policy, reference=reference, pairs=pairs, beta=beta, format=fmt, window=window,
        min_context=min_context, chat_template=False if no_chat_template else "auto", dtype=dtype, device=device,
        progress=not quiet, pair=pair, allow_toy_pair=allow_toy_pair,
    )
    if not quiet:
        echo(f"{'rank':>4}  {'score':>10}  {'steps':>5}  run")
        for r, c in enumerate(sel.ranking, 1):
            echo(f"{r:>4}  {c.score:>10.4f}  {len(c.run.steps):>5}  {c.name}")
    echo(f"best: {sel.best.name} (run score {sel.best.score:.4f}, {by} over steps)", bold=not quiet)
    for w in sel.settings.get("warnings", []):
        echo(f"warning: {w}", fg="yellow")
    if json_out:
        atomic_write_text(json_out, json.dumps(sel.to_dict(), indent=1, ensure_ascii=False) + "\n")
