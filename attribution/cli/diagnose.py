"""``attribution diagnose LOG``: declares options, calls :func:`attribution.diagnose`, prints the table."""

from __future__ import annotations

import click

from attribution.cli.terminal import echo, visible, wrote
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
    since_option,
    timeout_option,
    window_options,
)

__all__ = ["diagnose", "print_diagnosis", "print_summary", "print_warnings", "verdict", "label_line", "handle"]


def _snippet(text: str, width: int = 60) -> str:
    text = visible(" ".join(str(text).split()))
    return text if len(text) <= width else text[: width - 1] + "…"


def handle(origin: dict) -> str:
    """Where to find a step in the user's own tool: its span, message or event id, else its JSON
    pointer (and line, in JSONL); empty when the reader recorded none."""
    if origin.get("id"):
        out = f"{origin.get('id_type') or 'id'} {origin['id']}"
        return out + (f" in trace {origin['trace_id']}" if origin.get("trace_id") else "")
    where = [f"line {origin['line']}"] if origin.get("line") else []
    if origin.get("pointer"):
        where.append(f"JSON pointer {origin['pointer']}")
    return ", ".join(where)


def verdict(diag, *, run: bool = False) -> str:
    """``culprit: step N by AGENT (its id or pointer)``, prefixed by the run id with ``run``."""
    step = next((s for s in diag.run_steps if s["index"] == diag.culprit_step), {})
    where = handle(step.get("origin") or {})
    return (f"run {diag.run_id}: " if run else "") + f"culprit: step {diag.culprit_step} by {diag.culprit_agent}" + (
        f" ({where})" if where else "")


def label_line(diag) -> str | None:
    """The run's own label beside the verdict: the labelled mistake, and whether the run succeeded."""
    labels = diag.labels
    if labels.get("success") is True:
        return "label:   the run succeeded (success: true): there is no failure to find; the culprit is only the lowest-scored step"
    if "mistake_step" in labels:
        gold_step, gold_agent = labels["mistake_step"], labels.get("mistake_agent")
        hit = "step and agent match" if gold_step == diag.culprit_step else (
            "agent matches" if gold_agent == diag.culprit_agent else "no match")
        return f"label:   step {gold_step} by {gold_agent} ({hit})" + ("; the run failed" if labels.get("success") is False else "")
    if "mistake_agent" in labels:
        hit = "agent matches" if labels["mistake_agent"] == diag.culprit_agent else "no match"
        return f"label:   agent {labels['mistake_agent']} ({hit})" + ("; the run failed" if labels.get("success") is False else "")
    if labels.get("success") is False:
        return "label:   the run failed (success: false); the log names no culprit step"
    return None


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
    echo(verdict(diag), bold=True)
    print_warnings(diag)
    label = label_line(diag)
    if label:
        echo(label)


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
        elif d.labels.get("success") is not None:
            label = "succeeded" if d.labels["success"] else "failed"
        name = f"{d.source}" + (f" [{d.run_id}]" if d.run_id and d.run_id not in str(d.source) else "")
        name = name if len(name) <= 40 else "…" + name[-39:]  # a long path keeps its file name
        echo(f"{name:<40} {d.culprit_step:>7}  {_snippet(d.culprit_agent, 22):<22} {score:>9.3f}  {label}")
    echo(f"{len(diags)} runs diagnosed" + (f"; culprit step matches the label in {hits} of {labelled}" if labelled else ""))
    warned = [d for d in diags if d.warnings]
    if warned:
        echo(f"warning: {len(warned)} of {len(diags)} runs carry a warning, e.g. {warned[0].run_id}: {warned[0].warnings[0]}")


@click.command()
@click.argument("log", metavar="LOG...", nargs=-1, required=True, type=click.Path())
@click.option("--trace", "trace_ids", multiple=True, metavar="ID",
              help="With a trace store LOG (phoenix://HOST:PORT/PROJECT, langfuse://HOST:PORT): diagnose this trace; repeatable.")
@since_option("With a trace store LOG: diagnose every trace finished that started since T (ISO 8601 time, or an age: 30m, 2h, 1d).")
@click.option("--post", is_flag=True,
              help="With a trace store LOG: write the verdict back (Phoenix span annotations, Langfuse scores; "
                   "re-posting updates) and report how many were accepted.")
@timeout_option
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
@quiet_option("the verdict")
def diagnose(log, trace_ids, since, post, timeout, policy, reference, pairs, beta, pair, allow_toy_pair, aggregate, ranker, top_k, fmt, run_id, all_runs, actors, observers,
             window, min_context, no_chat_template, dtype, device, device_map, max_batch_tokens, engine, address, workers,
             gpus_per_worker, json_out, graph_out, html_out, emits, quiet):
    """Diagnose the failed run in LOG: which agent, at which step, made it fail."""
    # Several LOGs or a folder of logs (its .json/.jsonl files) diagnose every run of every file,
    # one line each (print_summary); --engine ray spreads them over a Ray cluster.
    import json
    from pathlib import Path

    from attribution.cli.options import check_placement
    from attribution.diagnoser import config_roles, diagnose_many, expand_logs
    from attribution.emit import check_ids, emit, parse_emit
    from attribution.errors import ConfigError
    from attribution.io import atomic_write_text, check_outputs
    from attribution.parse import check_distinct_ids, load_run, load_runs
    from attribution.remote import is_remote

    check_placement(device, device_map)
    store = None
    if any(is_remote(x) for x in log):
        store, json_out = _remote_checks(log, run_id, all_runs, trace_ids, since, post, json_out, timeout)
    elif trace_ids or since or post:
        raise ConfigError("--trace, --since and --post apply to a trace store LOG (phoenix://HOST:PORT/PROJECT, langfuse://HOST:PORT)")
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
    if store is not None:
        from attribution.remote.phoenix import parse_since

        runs = store.load_runs(trace_ids=trace_ids, since=parse_since(since) if since else None, all_runs=all_runs, **roles)
        all_runs = all_runs or len(runs) > 1
    elif many:
        if run_id is not None or graph_out or html_out:
            raise ConfigError("--run, --graph and --html take one LOG; with several logs, a folder or --engine ray every run is diagnosed")
        runs = [r for path in expand_logs(logs) for r in load_runs(path, fmt, **roles)]
        check_distinct_ids(runs)  # as eval does: two files' runs with one id would share rows and emitted ids
    else:
        if any(v is not None for v in (address, workers, gpus_per_worker)):
            raise ConfigError("--address, --workers and --gpus-per-worker apply to --engine ray")
        runs = load_runs(logs[0], fmt, **roles) if all_runs else [load_run(logs[0], fmt, run_id=run_id, **roles)]
    for kind in [k for k, _ in targets] + ([store.kind] if store is not None and post else []):
        check_ids(runs, kind)
    if graph_out:
        from attribution.graph import build_graph, write_graph

        write_graph(build_graph(runs[0]), graph_out)
        wrote(graph_out, quiet)
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
                echo(verdict(diag, run=all_runs))
                print_warnings(diag)
            else:
                print_diagnosis(diag)
    if json_out:
        if many or all_runs:
            atomic_write_text(json_out, json.dumps([d.to_dict() for d in diags], ensure_ascii=False, indent=1))
        else:
            atomic_write_text(json_out, diags[0].to_json(indent=1))
        wrote(json_out, quiet)
    if html_out:
        from attribution.report import write_html

        write_html(diags[0], html_out)
        wrote(html_out, quiet)
    for kind, path in targets:
        emit(diags, kind, path)
        wrote(path, quiet)
    if store is not None and post:
        _post(store, diags, json_out)


def _remote_checks(log, run_id, all_runs, trace_ids, since, post, json_out, timeout):
    """The store a trace-store LOG names, after the option checks; and where the diagnosis JSON goes
    (with --post and no --json: ./attribution-diagnosis.json, so that a failed post loses nothing)."""
    from attribution.errors import ConfigError
    from attribution.remote import open_store

    if len(log) > 1:
        raise ConfigError("a trace store LOG (phoenix://, langfuse://) is diagnosed alone; give one LOG")
    if run_id is not None:
        raise ConfigError("with a trace store LOG, pick traces with --trace ID (not --run)")
    if sum(bool(x) for x in (trace_ids, since, all_runs)) > 1:
        raise ConfigError("give one of --trace ID, --since T and --all")
    store = open_store(log[0], timeout=timeout)
    if post and json_out is None:
        json_out = "attribution-diagnosis.json"
    return store, json_out


def _post(store, diags, json_out) -> None:
    """Send the verdicts back to the store; a failure is one line naming where the diagnosis is kept."""
    from attribution.errors import RemoteError

    try:
        accepted, sent = store.post(diags)
    except RemoteError as err:
        raise RemoteError(f"{err}; the diagnosis is kept in {json_out}") from None
    what = "span annotations" if store.kind == "phoenix" else "scores"
    echo(f"posted {sent} {what} to {store}: {accepted} accepted (the diagnosis is in {json_out})")
    if accepted != sent:
        raise RemoteError(f"{store}: {sent - accepted} of {sent} {what} were not accepted; the diagnosis is kept in {json_out}")
