"""Options shared by several commands, each declared once.

Each name below is a decorator adding one option (or a group of options) to a command;
the command receives the option under the parameter name given here.

========================  ==========================================  ===============================
decorator                 options (parameter names)                   used by
========================  ==========================================  ===============================
:func:`pair_options`      ``--policy``, ``--reference``, ``--pairs``, diagnose, eval, select, monitor
                          ``--beta``, ``--pair``, ``--allow-toy-pair``
                          (policy, reference, pairs, beta, pair,
                          allow_toy_pair)
:func:`format_option`     ``--format`` (fmt)                          diagnose, eval, select, monitor
:func:`role_options`      ``--actor``, ``--observer`` (actors,        diagnose, eval
                          observers)
:func:`emit_option`       ``--emit KIND:PATH`` (emits)                diagnose
:func:`window_options`    ``--window``, ``--min-context``,             diagnose, eval, select, monitor
                          ``--no-chat-template``
:func:`dtype_option`      ``--dtype`` (dtype)                         diagnose, eval, select, monitor
:func:`device_option`     ``--device`` (device)                       diagnose, eval, select, monitor
:func:`memory_options`    ``--device-map``, ``--max-batch-tokens``     diagnose, eval
                          (device_map, max_batch_tokens)
:func:`engine_options`    ``--engine``, ``--address``, ``--workers``,  diagnose, eval
                          ``--gpus-per-worker`` (engine, address,
                          workers, gpus_per_worker)
:func:`shard_option`      ``--shard`` (shard)                         eval
:func:`json_option`       ``--json`` (json_out)                       diagnose, eval, select, monitor
:func:`quiet_option`      ``--quiet/-q`` (quiet)                      diagnose, eval, select, monitor
:func:`since_option`      ``--since T`` (since)                       diagnose, watch
:func:`timeout_option`    ``--timeout S`` (timeout)                   diagnose, watch
========================  ==========================================  ===============================
"""

from __future__ import annotations

from typing import Callable

import click

__all__ = [
    "DTYPES",
    "pair_options",
    "format_option",
    "role_options",
    "emit_option",
    "window_options",
    "dtype_option",
    "device_option",
    "memory_options",
    "engine_options",
    "engine_settings",
    "check_placement",
    "shard_option",
    "json_option",
    "quiet_option",
    "since_option",
    "timeout_option",
    "compose",
]

DTYPES = ["auto", "float32", "bfloat16", "float16"]


def compose(*decorators: Callable) -> Callable:
    """Apply ``decorators`` so that the options appear in ``--help`` in the order given."""

    def apply(fn: Callable) -> Callable:
        for deco in reversed(decorators):
            fn = deco(fn)
        return fn

    return apply


pair_options = compose(
    click.option("--policy", help="RL-trained checkpoint: a local folder or a hub id (one pair for every agent)."),
    click.option("--reference", help="The policy's pre-RL reference checkpoint (folder or hub id)."),
    click.option("--pairs", "pairs", type=click.Path(dir_okay=False), help="Pair config (JSON) mapping agents to checkpoint pairs."),
    click.option("--beta", type=float, help="KL coefficient of the pair (default 1, or the config's)."),
    click.option("--pair", "pair", metavar="NAME",
                 help="A named public pair (`attribution pairs` lists them); fetched from the hub into its cache once."),
    click.option("--allow-toy-pair", is_flag=True,
                 help="Let the embedded world pair score runs outside its world; every output then says the verdict is not a finding."),
)

def _format_names() -> str:
    from attribution.parse import READERS

    return ", ".join(READERS)


format_option = click.option(
    "--format", "fmt",
    help=f"Force the log format ({_format_names()}; see `attribution formats`); auto-detected otherwise.",
)

role_options = compose(
    click.option("--actor", "actors", multiple=True, metavar="GLOB",
                 help="Agents whose steps are actions (scored), overriding the format's rule; repeatable."),
    click.option("--observer", "observers", multiple=True, metavar="GLOB",
                 help="Agents whose steps are observations (context only), e.g. a code executor; repeatable."),
)

emit_option = click.option(
    "--emit", "emits", multiple=True, metavar="KIND:PATH",
    help="Write the verdict keyed by the log's own ids: jsonl, phoenix, langfuse or otel; repeatable.",
)

window_options = compose(
    click.option("--window", type=click.IntRange(min=2), help="Tokens per forward pass (default: the model's context length)."),
    click.option("--min-context", type=click.IntRange(min=1), help="Least left context of a token in a later window (default window/4)."),
    click.option("--no-chat-template", is_flag=True, help="Render as plain '[agent]: text' even when the tokenizer has a chat template."),
)


def dtype_option(help: str | None = None) -> Callable:
    """``--dtype``; ``help`` differs per command."""
    return click.option("--dtype", default="auto", show_default=True, type=click.Choice(DTYPES), help=help)


device_option = click.option(
    "--device", default="auto", show_default=True,
    help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps; checked before any model loads.",
)

memory_options = compose(
    click.option("--device-map", help="Place the policy and the reference apart: 'policy=cuda:0,reference=cuda:1'."),
    click.option("--max-batch-tokens", type=click.IntRange(min=1),
                 help="Padded tokens per forward pass (default: from free GPU memory, 16384 on CPU); "
                      "out of memory halves it and retries."),
)


def check_placement(device: str, device_map: str | None) -> None:
    """Refuse ``--device`` with ``--device-map``: the map places both models, so ``--device`` would be ignored."""
    if device_map and device != "auto":
        from attribution.errors import ConfigError

        raise ConfigError(f"give --device or --device-map, not both: --device-map {device_map!r} places the policy and the "
                          f"reference itself, so --device {device!r} would be ignored")


engine_options = compose(
    click.option("--engine", default="local", show_default=True, type=click.Choice(["local", "ray"]),
                 help="Where scoring runs: this process, or a Ray cluster (pip install 'attribution[ray]')."),
    click.option("--address", help="Ray: an existing cluster (HOST:PORT, ray://HOST:PORT or auto); default: a local one."),
    click.option("--workers", type=click.IntRange(min=1), help="Ray: actors, each loading the pair(s) once (default 2)."),
    click.option("--gpus-per-worker", type=click.FloatRange(min=0), help="Ray: GPUs per actor (default 0: CPU actors)."),
)


def engine_settings(engine: str, address: str | None, workers: int | None, gpus_per_worker: float | None) -> dict:
    """The library's ``engine``/``engine_options`` arguments from :func:`engine_options`' values."""
    return {"engine": engine, "engine_options": {"address": address, "workers": workers, "gpus_per_worker": gpus_per_worker}}


shard_option = click.option(
    "--shard", help="I/N: score only the I-th of N shards of the runs into the score cache (1 <= I <= N; a job array), "
                    "then run a plain eval on the same cache."
)


def json_option(help: str) -> Callable:
    """``--json FILE`` (parameter ``json_out``); each command says what it writes."""
    return click.option("--json", "json_out", type=click.Path(dir_okay=False), help=help)


def quiet_option(result: str) -> Callable:
    """``--quiet/-q``, one meaning on every command: print only the result (each command names it),
    no progress bar, table or ``wrote PATH`` line."""
    return click.option("--quiet", "-q", is_flag=True, help=f"Print only {result}: no progress bar, table or 'wrote PATH' lines.")


def since_option(help: str) -> Callable:
    """``--since T`` (parameter ``since``): an ISO 8601 time or an age (30m, 2h, 1d); for trace stores."""
    return click.option("--since", metavar="T", help=help)


timeout_option = click.option(
    "--timeout", default=30.0, show_default=True, type=click.FloatRange(min=0.1),
    help="Seconds each request to a trace store (phoenix://, langfuse://) may take.",
)
