"""``attribution diagnose LOG``: declares options, calls :func:`attribution.diagnose`, prints the table."""

from __future__ import annotations

import click

from attribution.cli.options import (
    device_option,
    dtype_option,
    emit_option,
    format_option,
    json_option,
    pair_options,
    quiet_option,
    role_options,
    window_options,
)

__all__ = ["diagnose", "print_diagnosis"]


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


@click.command()
@click.argument("log", type=click.Path(dir_okay=False))
@pair_options
@click.option("--aggregate", default="sum", show_default=True, type=click.Choice(["sum", "mean", "min", "last"]), help="Token -> step aggregation.")
@click.option("--ranker", default="most-negative", show_default=True, type=click.Choice(["most-negative", "lowest-total", "sharpest-drop"]))
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(min=1))
@format_option
@click.option("--run", "run_id", metavar="ID", help="Diagnose the run with this id, when LOG holds several.")
@click.option("--all", "all_runs", is_flag=True, help="Diagnose every run in LOG, one diagnosis each.")
@role_options
@window_options
@dtype_option("Weights' dtype; log-softmax is always fp32.")
@device_option
@json_option("Write the diagnosis as JSON (schema attribution.diagnosis/2; with --all, a list of them).")
@click.option("--graph", "graph_out", type=click.Path(dir_okay=False), help="Write the step graph as node-link JSON.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), help="Write a self-contained HTML report.")
@emit_option
@quiet_option("No progress bar or table; print only the verdict.")
def diagnose(log, policy, reference, pairs, beta, aggregate, ranker, top_k, fmt, run_id, all_runs, actors, observers,
             window, min_context, no_chat_template, dtype, device, json_out, graph_out, html_out, emits, quiet):
    """Diagnose the failed run in LOG: which agent, at which step, made it fail."""
    import json

    from attribution.diagnoser import config_roles, diagnose as run_diagnose, make_scorer
    from attribution.emit import check_ids, emit, parse_emit
    from attribution.errors import ConfigError
    from attribution.io import atomic_write_text
    from attribution.parse import load_run, load_runs

    if run_id is not None and all_runs:
        raise ConfigError("give --run ID or --all, not both")
    if all_runs and (graph_out or html_out):
        raise ConfigError("--graph and --html describe one run; pick it with --run ID instead of --all")
    targets = [parse_emit(e) for e in emits]
    more_actors, more_observers = config_roles(pairs)
    roles = {"actors": (*more_actors, *actors), "observers": (*more_observers, *observers)}
    runs = load_runs(log, fmt, **roles) if all_runs else [load_run(log, fmt, run_id=run_id, **roles)]
    for kind, _ in targets:
        check_ids(runs, kind)
    if graph_out:
        from attribution.graph import build_graph, write_graph

        write_graph(build_graph(runs[0]), graph_out)
    scorer = make_scorer(policy=policy, reference=reference, pairs=pairs, beta=beta, window=window,
                         min_context=min_context, chat_template=False if no_chat_template else "auto",
                         dtype=dtype, device=device, progress=not quiet)
    diags = []
    for run in runs:
        diag = run_diagnose(run, aggregate=aggregate, ranker=ranker, top_k=top_k, dtype=dtype, scorer=scorer)
        diags.append(diag)
        if quiet:
            prefix = f"run {diag.run_id}: " if all_runs else ""
            click.echo(f"{prefix}culprit: step {diag.culprit_step} by {diag.culprit_agent}")
        else:
            print_diagnosis(diag)
    if json_out:
        if all_runs:
            atomic_write_text(json_out, json.dumps([d.to_dict() for d in diags], ensure_ascii=False, indent=1))
        else:
            atomic_write_text(json_out, diags[0].to_json(indent=1))
    if html_out:
        from attribution.report import write_html

        write_html(diags[0], html_out)
    for kind, path in targets:
        emit(diags, kind, path)
