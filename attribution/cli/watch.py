"""``attribution watch phoenix://HOST:PORT/PROJECT``: declares options, loads the scorer once, runs
:class:`attribution.remote.watch.Watcher` poll after poll and prints one line per trace."""

from __future__ import annotations

import time

import click

from attribution.cli.options import (
    device_option,
    dtype_option,
    pair_options,
    quiet_option,
    role_options,
    timeout_option,
    window_options,
)
from attribution.cli.terminal import echo

__all__ = ["watch"]


@click.command("watch")
@click.argument("url", metavar="phoenix://HOST:PORT/PROJECT")
@click.option("--state", "state_file", default="attribution-watch.json", show_default=True, type=click.Path(dir_okay=False),
              help="Where the watch keeps its place (the traces it has handled); a restart annotates nothing twice.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Folder for each trace's diagnosis JSON, written before the post (default: STATE's name + '-diagnoses').")
@click.option("--interval", default=30.0, show_default=True, type=click.FloatRange(min=0), help="Seconds between polls.")
@click.option("--polls", default=0, show_default=True, type=click.IntRange(min=0), help="Stop after this many polls (0: until interrupted).")
@click.option("--max-traces", default=20, show_default=True, type=click.IntRange(min=1),
              help="Traces diagnosed per poll at most; the rest wait for the next poll.")
@click.option("--lookback", default="24h", show_default=True, metavar="AGE",
              help="How far back each poll looks for finished traces (30m, 2h, 1d); longer than the longest run.")
@pair_options
@click.option("--aggregate", default="sum", show_default=True, type=click.Choice(["sum", "mean", "min", "last"]), help="Token -> step aggregation.")
@click.option("--ranker", default="most-negative", show_default=True, type=click.Choice(["most-negative", "lowest-total", "sharpest-drop"]))
@role_options
@window_options
@dtype_option("Weights' dtype (auto: bf16 on a GPU that has it, else fp32); log-softmax is always fp32.")
@device_option
@timeout_option
@quiet_option("errors and warnings")
def watch(url, state_file, out_dir, interval, polls, max_traces, lookback, policy, reference, pairs, beta, pair, allow_toy_pair,
          aggregate, ranker,
          actors, observers, window, min_context, no_chat_template, dtype, device, timeout, quiet):
    """Diagnose each trace of a Phoenix project once, as it finishes, and post the culprit annotation."""
    import datetime as _dt
    from pathlib import Path

    from attribution.diagnoser import config_roles, diagnose, make_scorer
    from attribution.errors import ConfigError
    from attribution.io import check_outputs
    from attribution.remote import open_store
    from attribution.remote.phoenix import parse_since
    from attribution.remote.watch import Watcher, WatchState

    store = open_store(url, timeout=timeout)
    if store.kind != "phoenix":
        raise ConfigError(f"watch reads a Phoenix project (phoenix://HOST:PORT/PROJECT); got {url!r}")
    now = _dt.datetime.now(_dt.timezone.utc)
    lookback_s = (now - parse_since(lookback, now)).total_seconds()
    if lookback_s <= 0:
        raise ConfigError(f"--lookback takes an age (30m, 2h, 1d); got {lookback!r}")
    out_dir = out_dir or str(Path(state_file).with_name(Path(state_file).stem + "-diagnoses"))
    check_outputs({"--state": state_file}, inputs=[pairs])
    state = WatchState.load(state_file, str(store))
    more_actors, more_observers = config_roles(pairs)
    roles = {"actors": (*more_actors, *actors), "observers": (*more_observers, *observers)}
    scorer = make_scorer(policy=policy, reference=reference, beta=beta, pairs=pairs, window=window, min_context=min_context,
                         chat_template=False if no_chat_template else "auto", dtype=dtype, device=device, pair=pair)

    def score(run):
        return diagnose(run, scorer=scorer, aggregate=aggregate, ranker=ranker, allow_toy_pair=allow_toy_pair)

    def said(entry) -> None:
        if quiet:
            return
        if "error" in entry:
            echo(f"trace {entry['trace_id']}: not diagnosed (recorded; not tried again)")
        else:
            echo(f"trace {entry['trace_id']}: culprit step {entry['culprit_step']} by {entry['culprit_agent']}; "
                 f"posted {entry['sent']} span annotations, {entry['accepted']} accepted")

    watcher = Watcher(store.client, state, score, out=out_dir, max_traces=max_traces, lookback_s=lookback_s, roles=roles,
                      on_trace=said)
    n = 0
    try:
        while True:
            result = watcher.poll()
            n += 1
            if not quiet:
                left = f", {result.left} left for the next poll" if result.left else ""
                echo(f"poll {state.polls}: {result.seen} finished trace(s) in the last {lookback}, {result.new} new, "
                     f"{len(result.diagnosed)} diagnosed and posted{left}")
            if polls and n >= polls:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        echo("stopped", err=True)
