"""``attribution eval``: declares options and calls :func:`attribution.evaluate`."""

from __future__ import annotations

import click

from attribution.cli.terminal import echo, wrote
from attribution.cli.options import (
    device_option,
    dtype_option,
    engine_options,
    engine_settings,
    format_option,
    json_option,
    memory_options,
    pair_options,
    quiet_option,
    role_options,
    shard_option,
    window_options,
)

__all__ = ["eval_command", "print_label_problems"]

_PROBLEMS = {
    "gold_observation": "the labelled step is an observation (no method scoring actions can hit it)",
    "agent_mismatch": "the mistake_agent is not the speaker at mistake_step",
    "agent_mismatch_case_only": "the mistake_agent differs from the speaker only in case",
    "duplicate_content": "the run is identical to an earlier run",
}


def print_label_problems(problems: dict) -> None:
    """One line per kind of label problem that occurs: how many runs, and the first few ids."""
    for key, what in _PROBLEMS.items():
        got = problems.get(key, {})
        if got.get("n"):
            ids = ", ".join(got["runs"][:5]) + (", ..." if got["n"] > 5 else "")
            echo(f"labels: {got['n']} {'run' if got['n'] == 1 else 'runs'} where {what}: {ids}")

def headline(result) -> str:
    """One line: the reported attribution method's step and agent accuracy on all the runs (eval -q)."""
    subset = "all" if "all" in result.subsets else next(iter(result.subsets))
    name = result.attribution_method
    m = result.subsets[subset][name].metrics

    def pct(key: str) -> str:
        v = m[key].value if key in m else None
        return f"{100 * v:.2f}%" if v is not None and v == v else "n/a"

    return f"{name} on {subset}: step accuracy {pct('step_accuracy_score')}, agent accuracy {pct('agent_accuracy_score')} " \
           f"over {m['step_accuracy_score'].n} failed runs with a culprit label"


_AGGREGATES = ["select", "sum", "mean", "min", "last"]
_RANKERS = ["select", "most-negative", "lowest-total", "sharpest-drop"]


@click.command("eval")
@click.option("--dataset", default="who-and-when", show_default=True,
              help="'who-and-when', or a file or folder of labelled runs in any format `diagnose` reads (see datasets/README.md).")
@click.option("--subset", default="all", show_default=True,
              help="Who&When: all, algorithm-generated or hand-crafted; a file: the runs whose 'subset' is this.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Local copy of Who&When's JSON files (e.g. ../shared/datasets/who_and_when); default: the hub.")
@format_option
@click.option("--labels", "labels", type=click.Path(dir_okay=False),
              help="Labels by run id (JSON/JSONL: run_id, mistake_step or mistake_id, mistake_agent, success).")
@click.option("--require-labels", is_flag=True,
              help="Stop at the first unlabelled run (default: evaluate the labelled runs and count the others).")
@role_options
@pair_options
@click.option("--aggregate", default="select", show_default=True, type=click.Choice(_AGGREGATES),
              help="Token -> step aggregation; 'select' chooses it by cross-validation (diagnose and select take one fixed "
                   "setting instead, default sum).")
@click.option("--ranker", default="select", show_default=True, type=click.Choice(_RANKERS),
              help="Step ranker; 'select' chooses it by cross-validation (diagnose's fixed default: most-negative).")
@click.option("--folds", default=5, show_default=True, type=click.IntRange(min=2), help="Cross-validation folds of the selection.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the folds and of the bootstrap.")
@click.option("--bootstrap", "n_boot", default=1000, show_default=True, type=click.IntRange(min=0), help="Bootstrap resamples of the 95% intervals.")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Score cache folder (default: $XDG_CACHE_HOME/attribution/logprobs).")
@click.option("--no-cache", is_flag=True, help="Keep scores in memory only.")
@click.option("--group-size", default=8, show_default=True, type=click.IntRange(min=1), help="Runs per batched scoring call.")
@window_options
@dtype_option("Weights' dtype (auto: bf16 on a GPU that has it, else fp32); log-softmax is always fp32.")
@device_option
@memory_options
@engine_options
@shard_option
@json_option("Write the full result as JSON (schema attribution.eval/1).")
@click.option("--markdown", "md_out", type=click.Path(dir_okay=False), help="Write a Markdown report, with PNG figures beside it.")
@click.option("--calibrate", "calibrate_fpr", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Also choose the monitor's alert threshold for this false-alarm rate among successful runs.")
@click.option("--calibration-out", default="calibration.json", show_default=True, type=click.Path(dir_okay=False),
              help="Where --calibrate writes the calibration file (for attribution monitor --calibration).")
@quiet_option("the headline: the attribution method's step and agent accuracy")
def eval_command(dataset, subset, data_dir, fmt, labels, require_labels, actors, observers, policy, reference, pairs, beta, pair, allow_toy_pair, aggregate, ranker, folds, seed, n_boot, cache_dir,
                 no_cache, group_size, window, min_context, no_chat_template, dtype, device, device_map, max_batch_tokens,
                 engine, address, workers, gpus_per_worker, shard, json_out, md_out, calibrate_fpr, calibration_out, quiet):
    """Measure how often attribution finds the labelled culprit, against baselines."""
    from attribution.cli.options import check_placement
    from attribution.diagnoser import config_roles
    from attribution.evaluation import evaluate
    from attribution.evaluation.report import format_table, resources_line, write_json, write_markdown
    from attribution.errors import ConfigError
    from attribution.io import check_outputs, check_writable

    if shard is not None and (md_out or calibrate_fpr is not None):
        given = "--markdown" if md_out else "--calibrate"
        raise ConfigError(f"{given} needs the metrics, which a --shard run does not compute (it only fills the score cache): "
                          "give it to the plain eval on the same cache after the shards")
    if no_cache and cache_dir:
        raise ConfigError("give --cache-dir or --no-cache, not both (--no-cache keeps scores in memory only)")
    check_placement(device, device_map)
    inputs = [pairs, labels] + ([dataset] if dataset != "who-and-when" else [])
    outputs = {"--json": json_out, "--markdown": md_out}
    if calibrate_fpr is not None:
        outputs["--calibration-out"] = calibration_out
    check_outputs(outputs, inputs=inputs)
    if cache_dir and not no_cache:
        check_writable(cache_dir, option="--cache-dir", folder=True)

    more_actors, more_observers = config_roles(pairs)
    result = evaluate(
        dataset, subset=subset, data_dir=data_dir, format=fmt, labels=labels, actors=(*more_actors, *actors),
        observers=(*more_observers, *observers), policy=policy, reference=reference, pairs=pairs, beta=beta,
        aggregate=aggregate, ranker=ranker, folds=folds, seed=seed, n_boot=n_boot, cache_dir=cache_dir,
        use_cache=not no_cache, group_size=group_size, window=window, min_context=min_context,
        chat_template=False if no_chat_template else "auto", dtype=dtype, device=device, device_map=device_map,
        max_batch_tokens=max_batch_tokens, shard=shard, progress=not quiet, calibrate=calibrate_fpr,
        require_labels=require_labels, pair=pair, allow_toy_pair=allow_toy_pair,
        **engine_settings(engine, address, workers, gpus_per_worker),
    )
    t = result.timing
    if shard is not None:  # a shard reports what it scored; the plain eval afterwards reports the metrics
        echo(f"shard {result.settings['shard']}: {t['runs']} runs, {t['scored']} scored, {t['from_cache']} already cached, "
             f"in {result.settings['cache']['dir']}; {t['total_s']:.1f} s")
        if json_out:
            write_json(result, json_out)
            wrote(json_out, quiet)
        return
    if not quiet:
        echo(format_table(result), newlines=True)
        echo(f"{t['runs']} runs: {t['scored']} scored, {t['from_cache']} from the cache; {t['total_s']:.1f} s")
        echo(resources_line(t))
        print_label_problems(result.settings.get("label_problems", {}))
    else:
        echo(headline(result))
    skipped = result.settings.get("skipped_unlabelled", {})
    if skipped.get("n"):  # said even with -q: the numbers above leave these runs out
        ids = ", ".join(skipped["runs"][:5]) + (", ..." if skipped["n"] > 5 else "")
        echo(f"skipped {skipped['n']} unlabelled {'run' if skipped['n'] == 1 else 'runs'} (no mistake_step, mistake_agent "
             f"or success; --require-labels makes this an error): {ids}")
    for w in result.settings.get("warnings", []):
        echo(f"warning: {w}", fg="yellow")
    if json_out:
        write_json(result, json_out)
        wrote(json_out, quiet)
    if md_out:
        write_markdown(result, md_out)
        wrote(md_out, quiet)
    if result.calibration is not None:
        from attribution.evaluation.calibration import Calibration, write_calibration

        cal = Calibration(**result.calibration)
        write_calibration(cal, calibration_out)
        wrote(calibration_out, quiet)
        recall = f"{cal.recall:.3f} of {cal.n_failure} failures" if cal.recall is not None else "no failures to measure recall on"
        lead = f", median lead {cal.lead_steps_median:g} steps" if cal.lead_steps_median is not None else ""
        echo(f"calibration: alert below {cal.threshold:.4f} (false alarms {cal.fpr:.3f} of {cal.n_success} successes, "
                   f"recall {recall}{lead}) -> {calibration_out}")
