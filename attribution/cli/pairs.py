"""``attribution pairs``: the named public checkpoint pairs that ``--pair NAME`` takes."""

from __future__ import annotations

import click

from attribution.cli.options import json_option
from attribution.cli.terminal import echo

__all__ = ["pairs"]


@click.command("pairs")
@click.option("--download", "download", metavar="NAME",
              help="Fetch pair NAME's two checkpoints into the Hugging Face cache now (for a machine that will be offline).")
@json_option("Write the registry's rows as JSON.")
def pairs(download, json_out):
    """List the named public pairs (policy <- its reference) that --pair NAME takes."""
    import json

    from attribution.io import atomic_write_text
    from attribution.score.registry import REGISTRY_PATH, download_pair, table_rows

    if download:
        policy, reference = download_pair(download)
        echo(f"pair {download!r} is in the local cache:")
        echo(f"  policy    {policy}")
        echo(f"  reference {reference}")
        echo(f"use --pair {download}, or --policy {policy} --reference {reference}")
        return
    rows = table_rows()
    if json_out:
        atomic_write_text(json_out, json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    echo(f"{'name':<20} {'reference':<9} {'size':<8} {'licence':<12} {'beta':<6} policy <- reference")
    for r in rows:
        beta = "?" if r["beta"] is None else f"{r['beta']:g}"
        echo(f"{r['name']:<20} {r['reference_kind'] or '':<9} {(r['size'] or '').split(' ')[0]:<8} "
             f"{(r['license'] or '').split(' ')[0]:<12} {beta:<6} {r['policy']} <- {r['reference']}")
        if r["note"]:
            echo(f"{'':<20} {r['note']}")
        if r["checked"]:
            echo(f"{'':<20} checked: {r['checked']}")
    echo(f"reference: exact = the checkpoint RL started from; base = the base model, an approximation. "
         f"beta ?: not published, scores are log-ratios (beta 1). Registry: {REGISTRY_PATH}")
