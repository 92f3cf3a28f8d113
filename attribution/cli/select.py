"""``attribution select RUN RUN…``: declares options, calls :func:`attribution.select.select_runs`, prints the ranking."""

from __future__ import annotations

import json

import click

from attribution.cli.terminal import echo, wrote

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
@click.option("--run", "run_id", metavar="ID", help="Take the run with this id from each RUN that holds several.")
@click.option("--all", "all_runs", is_flag=True, help="Take every run in each RUN (e.g. one file of N candidate runs).")
@pair_options
@click.option("--by", default="sum", show_default=True, type=click.Choice(["sum", "mean", "min"]),
              help="Run score: sum, mean or min of the action steps' progress advantage (sum: comparable across lengths).")
@format_option
@window_options
@dtype_option("Weights' dtype; log-softmax is always fp32.")
@device_option
@json_option('Write {"ranking": [{"run", "score"}, ...], "settings", "checkpoints"} as JSON, best first.')
@quiet_option("the best run")
def select(runs, run_id, all_runs, policy, reference, pairs, beta, pair, allow_toy_pair, by, fmt, window, min_context, no_chat_template, dtype, device,
           json_out, quiet):
    """Rank candidate RUNS of one task by run-level progress advantage, best first."""
    from attribution.errors import ConfigError
    from attribution.io import atomic_write_text, check_outputs
    from attribution.parse import load_run, load_runs
    from attribution.select import select_runs

    check_outputs({"--json": json_out}, inputs=[*runs, pairs])  # before any work: never overwrite a run
    if run_id is not None and all_runs:
        raise ConfigError("give --run ID or --all, not both")
    if all_runs:
        candidates = [r for path in runs for r in load_runs(path, fmt)]
    else:  # one run per file: a file of several asks for --run ID or --all
        candidates = [load_run(path, fmt, run_id=run_id) for path in runs]
    sel = select_runs(
        candidates, by=by, policy=policy, reference=reference, pairs=pairs, beta=beta, format=fmt, window=window,
        min_context=min_context, chat_template=False if no_chat_template else "auto", dtype=dtype, device=device,
        progress=not quiet, pair=pair, allow_toy_pair=allow_toy_pair,
    )
    if not quiet:
        echo(f"{'rank':>4}  {'score':>10}  {'steps':>5}  run")
        for r, c in enumerate(sel.ranking, 1):
            echo(f"{r:>4}  {c.score:>10.4f}  {len(c.run.steps):>5}  {_name(c, sel)}")
    echo(f"best: {_name(sel.best, sel)} (run score {sel.best.score:.4f}, {by} over steps)", bold=not quiet)
    for w in sel.settings.get("warnings", []):
        echo(f"warning: {w}", fg="yellow")
    if json_out:
        atomic_write_text(json_out, json.dumps(sel.to_dict(), indent=1, ensure_ascii=False) + "\n")
        wrote(json_out, quiet)


def _name(cand, sel) -> str:
    """The candidate's file, and its run id when several candidates share the file."""
    shared = sum(c.run.source == cand.run.source for c in sel.ranking) > 1
    return f"{cand.name} [{cand.run.run_id}]" if shared and cand.run.source else cand.name
