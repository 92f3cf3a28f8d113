"""The ``attribution`` command line. It only declares options and calls the library;
library errors (:class:`attribution.errors.AttributionError`) become one-line messages."""

from __future__ import annotations

import functools
import sys

import click

from attribution.errors import AttributionError


def user_errors(fn):
    """Turn a user's mistake into ``error: <one line>`` and exit status 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AttributionError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="attribution")
def main() -> None:
    """Find which agent, at which step, made a multi-agent LLM run fail."""


def _snippet(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_diagnosis(diag) -> None:
    """The ranked table (step, agent, score, snippet) and the verdict."""
    by_index = {s["index"]: s for s in diag.run_steps}
    score_of = {s.index: s for s in diag.steps}
    click.echo(f"run {diag.run_id}: {len(diag.run_steps)} steps, {sum(s.n_tokens for s in diag.steps)} scored tokens")
    click.echo(f"{'rank':>4}  {'step':>4}  {'agent':<22} {'score':>9} {'tokens':>6}  text")
    for r, i in enumerate(diag.top, 1):
        st = score_of[i]
        click.echo(f"{r:>4}  {i:>4}  {_snippet(st.agent, 22):<22} {st.score:>9.3f} {st.n_tokens:>6}  {_snippet(by_index[i]['content'])}")
    totals = ", ".join(f"{a} {v:.3f}" for a, v in sorted(diag.agent_totals.items(), key=lambda t: t[1]))
    click.echo(f"agent totals: {totals}")
    verdict = f"culprit: step {diag.culprit_step} by {diag.culprit_agent}"
    click.secho(verdict, bold=True)
    if "mistake_step" in diag.labels:
        gold_step, gold_agent = diag.labels["mistake_step"], diag.labels.get("mistake_agent")
        hit = "step and agent match" if gold_step == diag.culprit_step else (
            "agent matches" if gold_agent == diag.culprit_agent else "no match")
        click.echo(f"label:   step {gold_step} by {gold_agent} ({hit})")


@main.command()
@click.argument("log", type=click.Path(dir_okay=False))
@click.option("--policy", help="RL-trained checkpoint: a local folder or a hub id (one pair for every agent).")
@click.option("--reference", help="The policy's pre-RL reference checkpoint (folder or hub id).")
@click.option("--pairs", "pairs", type=click.Path(dir_okay=False), help="Pair config (JSON) mapping agents to checkpoint pairs.")
@click.option("--beta", type=float, help="KL coefficient of the pair (default 1, or the config's).")
@click.option("--aggregate", default="sum", show_default=True, type=click.Choice(["sum", "mean", "min", "last"]), help="Token -> step aggregation.")
@click.option("--ranker", default="most-negative", show_default=True, type=click.Choice(["most-negative", "lowest-total", "sharpest-drop"]))
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--format", "fmt", help="Force the log format (who-and-when, chat); auto-detected otherwise.")
@click.option("--window", type=click.IntRange(min=2), help="Tokens per forward pass (default: the model's context length).")
@click.option("--min-context", type=click.IntRange(min=1), help="Least left context of a token in a later window (default window/4).")
@click.option("--no-chat-template", is_flag=True, help="Render as plain '[agent]: text' even when the tokenizer has a chat template.")
@click.option("--dtype", default="float32", show_default=True, type=click.Choice(["float32", "bfloat16", "float16"]), help="Weights' dtype; log-softmax is always fp32.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the diagnosis as JSON (schema attribution.diagnosis/1).")
@click.option("--graph", "graph_out", type=click.Path(dir_okay=False), help="Write the step graph as node-link JSON.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), help="Write a self-contained HTML report.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or table; print only the verdict.")
@user_errors
def diagnose(log, policy, reference, pairs, beta, aggregate, ranker, top_k, fmt, window, min_context, no_chat_template,
             dtype, device, json_out, graph_out, html_out, quiet):
    """Diagnose the failed run in LOG: which agent, at which step, made it fail."""
    from attribution.diagnoser import diagnose as run_diagnose
    from attribution.io import atomic_write_text
    from attribution.parse import load_run

    run = load_run(log, format=fmt)
    if graph_out:
        from attribution.graph import build_graph, write_graph

        write_graph(build_graph(run), graph_out)
    diag = run_diagnose(
        run, policy=policy, reference=reference, pairs=pairs, beta=beta, aggregate=aggregate, ranker=ranker,
        top_k=top_k, window=window, min_context=min_context, chat_template=False if no_chat_template else "auto",
        dtype=dtype, device=device, progress=not quiet,
    )
    if quiet:
        click.echo(f"culprit: step {diag.culprit_step} by {diag.culprit_agent}")
    else:
        print_diagnosis(diag)
    if json_out:
        atomic_write_text(json_out, diag.to_json(indent=1))
    if html_out:
        from attribution.report import write_html

        write_html(diag, html_out)


# Subcommands live beside the code they drive; each module defines one click command.
# COMMANDS-START (one import per line; helpers add theirs here)
from attribution.report.cli import report; main.add_command(report)  # noqa: E402, E702
from attribution.evaluation.cli import eval_command; main.add_command(eval_command)  # noqa: E402, E702
from attribution.world.cli import world; main.add_command(world)  # noqa: E402, E702
# COMMANDS-END
