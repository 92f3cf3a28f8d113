"""``attribution monitor LOG``: declares options, feeds the log to :class:`attribution.monitor.Monitor`,
prints each step's score and the running run score, and raises the alert."""

from __future__ import annotations

import math
import os
import subprocess
import sys

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

__all__ = ["monitor"]

#: Exit status when ``--fail-on-alert`` is given and the alert fires (bad input is 2).
ALERT_STATUS = 1


@click.command("monitor")
@click.argument("log", type=click.Path(dir_okay=False))
@click.option("--follow", "-f", is_flag=True, help="Watch a growing JSONL log (one record of the run per line: chat messages, OpenHands events, OTel collector lines, Langfuse observations...) and score each new step as it arrives; a log replaced by a rename is followed as tail -F does.")
@click.option("--idle-timeout", type=click.FloatRange(min=0), help="With --follow: stop after this many seconds without a new line (default: follow until interrupted).")
@click.option("--poll", default=0.2, show_default=True, type=click.FloatRange(min=0.001), help="With --follow: seconds between looks at the log.")
@click.option("--threshold", type=float, help="Alert when the running run score (sum of step scores so far) drops below this.")
@click.option("--calibration", "calibration_file", type=click.Path(dir_okay=False), help="Take the threshold from a calibration file (attribution eval --calibrate).")
@click.option("--on-alert", "on_alert", help="Shell command run once when the alert fires (env: ATTRIBUTION_ALERT_STEP, ATTRIBUTION_RUN_SCORE, ATTRIBUTION_LOG).")
@click.option("--fail-on-alert", is_flag=True, help=f"Stop at the alert and exit with status {ALERT_STATUS}.")
@click.option("--run", "run_id", metavar="ID", help="Monitor the run with this id, when LOG holds several.")
@click.option("--all", "all_runs", is_flag=True, help="Not for monitor, which follows one run: see diagnose --all or select --all.")
@pair_options
@format_option
@window_options
@dtype_option("Weights' dtype; log-softmax is always fp32.")
@device_option
@json_option("Write the scored run as JSON when monitoring ends (the diagnosis schema, as diagnose --json; settings.monitor holds the alert).")
@quiet_option("alerts")
def monitor(log, follow, idle_timeout, poll, threshold, calibration_file, on_alert, fail_on_alert, run_id, all_runs, policy, reference,
            pairs, beta, pair, allow_toy_pair, fmt, window, min_context, no_chat_template, dtype, device, json_out, quiet):
    """Score the run in LOG step by step; alert when its running score crosses the threshold."""
    from attribution.diagnoser import make_scorer
    from attribution.errors import ConfigError
    from attribution.io import atomic_write_text, check_outputs
    from attribution.monitor import JsonlFollower, Monitor, follow_steps

    check_outputs({"--json": json_out}, inputs=[log, pairs, calibration_file])  # before any work: never overwrite the log
    if all_runs:
        raise ConfigError("monitor follows one run: pick it with --run ID (diagnose --all and select --all score every run of a file)")
    if follow and run_id is not None:
        raise ConfigError("--follow reads one growing run; --run ID picks a run of a finished log")
    if threshold is not None and calibration_file is not None:
        raise ConfigError("give either --threshold or --calibration, not both")
    if threshold is not None and not math.isfinite(threshold):
        raise ConfigError(f"--threshold must be a finite number; got {threshold} (the alert would never fire, or fire at once)")
    scorer = make_scorer(policy=policy, reference=reference, beta=beta, pairs=pairs, window=window, min_context=min_context,
                         chat_template=False if no_chat_template else "auto", dtype=dtype, device=device, pair=pair)
    if calibration_file is not None:
        from attribution.evaluation.calibration import load_calibration

        threshold = load_calibration(calibration_file, scorer.checkpoints()).threshold
    caveats: list[str] = []  # a followed log grows: its out-of-domain check is not made
    if follow:
        follower = JsonlFollower(log, poll=poll, idle_timeout=idle_timeout)
        steps = follow_steps(follower, format=fmt)
    else:
        from attribution.parse import load_run

        run = load_run(log, format=fmt, run_id=run_id)
        follower, steps = None, iter(run.steps)
        from attribution.score.domain import check_domain

        caveats = check_domain([run], scorer, allow_toy_pair=allow_toy_pair)[0][0]  # a finished log: checked before scoring
        for w in caveats:
            echo(f"warning: {w}", fg="yellow")
    mon = Monitor(scorer, threshold=threshold, run_id=run.run_id if run_id is not None else os.path.basename(str(log)), source=str(log),
                  format=(fmt or "") if follow else run.format)
    if not quiet:
        echo(f"{'step':>4}  {'agent':<20} {'score':>9} {'run score':>10}  agents" + (f"  (alert below {threshold:.4f})" if threshold is not None else ""))
    stopped_at_alert = False
    try:
        for step in steps:
            if step.index < len(mon.run.steps):  # the followed log revised this step (a late parent span)
                mon.rewind(step.index)
            up = mon.feed(step)
            if not quiet and step.is_action:
                totals = ", ".join(f"{a} {v:.3f}" for a, v in up.agent_totals.items())
                score = f"{up.score:>9.4f}" if up.score is not None else f"{'-':>9}"
                echo(f"{step.index:>4}  {step.agent[:20]:<20} {score} {up.run_score:>10.4f}  {totals}")
            if up.alert:
                echo(f"ALERT: step {step.index} ({step.agent}): running run score {up.run_score:.4f} < threshold {threshold:.4f}",
                     fg="red", bold=True)
                if on_alert:
                    env = {**os.environ, "ATTRIBUTION_ALERT_STEP": str(step.index), "ATTRIBUTION_RUN_SCORE": repr(up.run_score),
                           "ATTRIBUTION_LOG": str(log)}
                    done = subprocess.run(on_alert, shell=True, env=env, check=False)
                    if done.returncode != 0:
                        echo(f"warning: --on-alert command failed (exit status {done.returncode}): {on_alert}", err=True)
                if fail_on_alert:
                    stopped_at_alert = True
                    break
    except KeyboardInterrupt:
        echo("stopped", err=True)
    if follower is not None and follower.pending:
        echo(f"warning: {log}: stopped waiting for the rest of line {follower.line + 1} (incomplete record not scored)", err=True)
    if not mon.run.steps:
        echo(f"{log}: no step read", err=True)
    elif mon.alerted_at is None and threshold is not None:
        echo(f"no alert: lowest running run score {min((v for v in mon.history if v == v), default=float('nan')):.4f}")
    if follow:
        mon.run.format = steps.format or ""
    if json_out:
        diag = mon.diagnosis()
        diag.warnings = list(caveats)
        atomic_write_text(json_out, diag.to_json(indent=1))
        wrote(json_out, quiet)
    if stopped_at_alert:
        sys.exit(ALERT_STATUS)
