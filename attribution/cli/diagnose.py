"""``attribution diagnose LOG``: declares options, calls :func:`attribution.diagnose`, prints the table."""

from __future__ import annotations

import click

from attribution.cli.terminal import echo, visible
from attribution.cli.options import (
    device_option,
    dtype_option,
    emit_option,
    engine_options,
    engine_settings,
    format_option,
    json_option,
    memory_options,
    pair_options,
    quiet_option,
    role_options,
    window_options,
)

__all__ = ["diagnose", "print_diagnosis", "print_summary", "print_warnings"]


def _snippet(text: str, width: int = 60) -> str:
    text = visible(" ".join(str(text).split()))
    return text if len(text) <= width else text[: width - 1] + "…"


def print_diagnosis(diag) -> None:
    """The ranked table (step, agent, score, snippet) and the verdict."""
    by_index = {s["index"]: s for s in diag.run_steps}
    score_of = {s.index: s for s in diag.steps}
    echo(f"run {diag.run_id}: {len(diag.run_steps)} steps, {sum(s.n_tokens for s in diag.steps)} scored tokens")
    echo(f"{'rank':>4}  {'step':>4}  {'agent':<22} {'score':>9} {'tokens':>6}  text")
    for r, i in enumerate(diag.top, 1):
        st = score_of[i]
        echo(f"{r:>4}  {i:>4}  {_snippet(st.agent, 22):<22} {st.score:>9.3f} {st.n_tokens:>6}  {_snippet(by_index[i]['content'])}")
    totals = ", ".join(f"{a} {v:.3f}" for a, v in sorted(diag.agent_totals.items(), key=lambda t: t[1]))
    echo(f"agent totals: {totals}")
    verdict = f"culprit: step {diag.culprit_step} by {diag.culprit_agent}"
    echo(verdict, bold=True)
    print_warnings(diag)
    if "mistake_step" in diag.labels:
        gold_step, gold_agent = diag.labels["mistake_step"], diag.labels.get("mistake_agent")
        hit = "step and agent match" if gold_step == diag.culprit_step else (
            "agent matches" if gold_agent == diag.culprit_agent else "no match")
        echo(f"label:   step {gold_step} by {gold_agent} ({hit})")


def print_warnings(diag) -> None:
    """The diagnosis's caveats (toy pair, unknown tokens), one line each, right under its verdict."""
    for w in diag.warnings:
        echo(f"warning: {w}", fg="yellow")


def print_summary(diags) -> None:
    """One line per diagnosed run (many logs): the culprit, its score and the label when there is one."""
    hits = 0
    labelled = 0
    echo(f"{'run':<40} {'culprit':>7}  {'agent':<22} {'score':>9}  label")
    for d in diags:
        score = next(s.score for s in d.steps if s.index == d.culprit_step)
        label = ""
        if "mistake_step" in d.labels:
            labelled += 1
            hits += d.labels["mistake_step"] == d.culprit_step
            label = f"step {d.labels['mistake_step']} by {d.labels.get('mistake_agent')}"
        name = f"{d.source}" + (f" [{d.run_id}]" if d.run_id and d.run_id not in str(d.source) else "")
        name = name if len(name) <= 40 else "…" + name[-39:]  # a long path keeps its file name
        echo(f"{name:<40} {d.culprit_step:>7}  {_snippet(d.culprit_agent, 22):<22} {score:>9.3f}  {label}")
    echo(f"{len(diags)} runs diagnosed" + (f"; culprit step matches the label in {hits} of {labelled}" if labelled else ""))
    warned = [d for d in diags if d.warnings]
    if warned:
        echo(f"warning: {len(warned)} of {len(diags)} runs carry a warning, e.g. {warned[0].run_id}: {warned[0].warnings[0]}")


@click.command()
@click.argument("log", metavar="LOG...", nargs=-1, required=True, type=click.Path())
@pair_options
@click.option("--aggregate", default="sum", show_default=True, type=click.Choice(["sum", "mean", "min", "last"]), help="Token -> step aggregation.")
@click.option("--ranker", default="most-negative", show_default=True, type=click.Choice(["most-negative", "lowest-total", "sharpest-drop"]))
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(min=1))
@format_option
@click.option("--run", "run_id", metavar="ID", help="Diagnose the run with this id, when LOG holds several.")
@click.option("--all", "all_runs", is_flag=True, help="Diagnose every run in LOG, one diagnosis each.")
@role_options
@window_options
@dtype_option("Weights' dtype (auto: bf16 on a GPU that has it, else fp32); log-softmax is always fp32.")
@device_option
@memory_options
@engine_options
@json_option("Write the diagnosis as JSON (schema attribution.diagnosis/2; with --all or several logs, a list of them).")
@click.option("--graph", "graph_out", type=click.Path(dir_okay=False), help="Write the step graph as node-link JSON.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), help="Write a self-contained HTML report.")
@emit_option
@quiet_option("No progress bar or table; print only the verdict.")
def diagnose(log, policy, reference, pairs, beta, pair, allow_toy_pair, aggregate, ranker, top_k, fmt, run_id, all_runs, actors, observers,
             window, min_context, no_chat_template, dtype, device, device_map, max_batch_tokens, engine, address, workers,
             gpus_per_worker, json_out, graph_out, html_out, emits, quiet):
    """Diagnose the failed run in LOG: which agent, at which step, made it fail."""
    # Several LOGs or a folder of logs (its .json/.jsonl files) diagnose every run of every file,
    # one line each (print_summary); --engine ray spreads them over a Ray cluster.
    import json
    from pathlib import Path

    from attribution.diagnoser import config_roles, diagnose_many, expand_logs
    from attribution.emit import check_ids, emit, parse_emit
    from attribution.errors import ConfigError
    from attribution.io import atomic_write_text, check_outputs
    from attribution.parse import load_run, load_runs

    if run_id is not None and all_runs:
        raise ConfigError("give --run ID or --all, not both")
    if all_runs and (graph_out or html_out):
        raise ConfigError("--graph and --html describe one run; pick it with --run ID instead of --all")
    targets = [parse_emit(e) for e in emits]
    outputs = {"--json": json_out, "--graph": graph_out, "--html": html_out}
    outputs.update({f"--emit {kind}:{path}": path for kind, path in targets})
    check_outputs(outputs, inputs=[*log, pairs])  # before any work, so that a typo costs no scoring
    more_actors, more_observers = config_roles(pairs)
    roles = {"actors": (*more_actors, *actors), "observers": (*more_observers, *observers)}
    logs = log  # LOG... : one or more files or folders
    many = len(logs) > 1 or Path(logs[0]).is_dir() or engine != "local"  # one line per run
    if many:
        if run_id is not None or graph_out or html_out:
            raise ConfigError("--run, --graph and --html take one LOG; with several logs, a folder or --engine ray every run is diagnosed")
        runs = [r for path in expand_logs(logs) for r in load_runs(path, fmt, **roles)]
    else:
        if any(v is not None for v in (address, workers, gpus_per_worker)):
            raise ConfigError("--address, --workers and --gpus-per-worker apply to --engine ray")
        runs = load_runs(logs[0], fmt, **roles) if all_runs else [load_run(logs[0], fmt, run_id=run_id, **roles)]
    for kind, _ in targets:
        check_ids(runs, kind)
    if graph_out:
        from attribution.graph import build_graph, write_graph

        write_graph(build_graph(runs[0]), graph_out)
    # One batched scoring of every run (a file's --all runs share forward-pass batches too).
    diags = diagnose_many(
        runs, policy=policy, reference=reference, pairs=pairs, beta=beta, aggregate=aggregate, ranker=ranker,
        top_k=top_k, window=window, min_context=min_context, chat_template=False if no_chat_template else "auto",
        dtype=dtype, device=device, device_map=device_map, max_batch_tokens=max_batch_tokens, progress=not quiet,
        pair=pair, allow_toy_pair=allow_toy_pair, **engine_settings(engine, address, workers, gpus_per_worker),
    )
    if many:
        print_summary(diags)
    else:
        for diag in diags:
            if quiet:
                prefix = f"run {diag.run_id}: " if all_runs else ""
                echo(f"{prefix}culprit: step {diag.culprit_step} by {diag.culprit_agent}")
                print_warnings(diag)
            else:
                print_diagnosis(diag)
    if json_out:
        if many or all_runs:
            atomic_write_text(json_out, json.dumps([d.to_dict() for d in diags], ensure_ascii=False, indent=1))
        else:
            atomic_write_text(json_out, diags[0].to_json(indent=1))
    if html_out:
        from attribution.report import write_html

        write_html(diags[0], html_out)
    for kind, path in targets:
        emit(diags, kind, path)
