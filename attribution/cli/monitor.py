"""``attribution monitor LOG``: declares options, feeds the log to :class:`attribution.monitor.Monitor`,
prints each step's score and the running run score, and raises the alert."""

from __future__ import annotations

import os
import subprocess
import sys

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

__all__ = ["monitor"]

#: Exit status when ``--fail-on-alert`` is given and the alert fires (bad input is 2).
ALERT_STATUS = 1


@click.command("monitor")
@click.argument("log", type=click.Path(dir_okay=False))
@click.option("--follow", "-f", is_flag=True, help="Watch a growing JSONL log (one chat message per line) and score each new step as it arrives.")
@click.option("--idle-timeout", type=click.FloatRange(min=0), help="With --follow: stop after this many seconds without a new line (default: follow until interrupted).")
@click.option("--poll", default=0.2, show_default=True, type=click.FloatRange(min=0.001), help="With --follow: seconds between looks at the log.")
@click.option("--threshold", type=float, help="Alert when the running run score (sum of step scores so far) drops below this.")
@click.option("--calibration", "calibration_file", type=click.Path(dir_okay=False), help="Take the threshold from a calibration file (attribution eval --calibrate).")
@click.option("--on-alert", "on_alert", help="Shell command run once when the alert fires (env: ATTRIBUTION_ALERT_STEP, ATTRIBUTION_RUN_SCORE, ATTRIBUTION_LOG).")
@click.option("--fail-on-alert", is_flag=True, help=f"Stop at the alert and exit with status {ALERT_STATUS}.")
@pair_options
@format_option
@window_options
@dtype_option("Weights' dtype; log-softmax is always fp32.")
@device_option
@json_option("Write the scored run as JSON when monitoring ends (the diagnosis schema, as diagnose --json; settings.monitor holds the alert).")
@quiet_option("Print only alerts.")
def monitor(log, follow, idle_timeout, poll, threshold, calibration_file, on_alert, fail_on_alert, policy, reference, pairs, beta, pair, allow_toy_pair,
            fmt, window, min_context, no_chat_template, dtype, device, json_out, quiet):
    """Score the run in LOG step by step; alert when its running score crosses the threshold."""
    from attribution.diagnoser import make_scorer
    from attribution.errors import ConfigError
    from attribution.io import atomic_write_text
    from attribution.monitor import JsonlFollower, Monitor, follow_steps

    if threshold is not None and calibration_file is not None:
        raise ConfigError("give either --threshold or --calibration, not both")
    if follow and fmt not in (None, "chat"):
        raise ConfigError(f"--follow reads a JSONL log of chat messages; got --format {fmt!r}")
    scorer = make_scorer(policy=policy, reference=reference, beta=beta, pairs=pairs, window=window, min_context=min_context,
                         chat_template=False if no_chat_template else "auto", dtype=dtype, device=device, pair=pair)
    if calibration_file is not None:
        from attribution.evaluation.calibration import load_calibration

        threshold = load_calibration(calibration_file, scorer.checkpoints()).threshold
    caveats: list[str] = []  # a followed log grows: its out-of-domain check is not made
    if follow:
        follower = JsonlFollower(log, poll=poll, idle_timeout=idle_timeout)
        steps = follow_steps(follower)
    else:
        from attribution.parse import load_run

        run = load_run(log, format=fmt)
        follower, steps = None, iter(run.steps)
        from attribution.score.domain import check_domain

        caveats = check_domain([run], scorer, allow_toy_pair=allow_toy_pair)[0][0]  # a finished log: checked before scoring
        for w in caveats:
            echo(f"warning: {w}", fg="yellow")
    mon = Monitor(scorer, threshold=threshold, run_id=os.path.basename(str(log)), source=str(log),
                  format="chat" if follow else run.format)
    if not quiet:
        echo(f"{'step':>4}  {'agent':<20} {'score':>9} {'run score':>10}  agents" + (f"  (alert below {threshold:.4f})" if threshold is not None else ""))
    stopped_at_alert = False
    try:
        for step in steps:
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
                    subprocess.run(on_alert, shell=True, env=env, check=False)
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
    if json_out:
        diag = mon.diagnosis()
        diag.warnings = list(caveats)
        atomic_write_text(json_out, diag.to_json(indent=1))
    if stopped_at_alert:
        sys.exit(ALERT_STATUS)
