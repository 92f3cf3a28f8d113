"""``attribution formats``: the log formats the readers know, with their action/observation rule."""

from __future__ import annotations

import textwrap

import click

__all__ = ["formats"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON (name, description, actions, ids).")
def formats(as_json: bool) -> None:
    """List the log formats `diagnose` and `eval` read: one line each, then what is an action and which id is kept."""
    import json

    from attribution.parse import format_table

    rows = format_table()
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    width = max(len(r["name"]) for r in rows) + 2
    pad = " " * width
    for r in rows:
        click.echo(f"{r['name']:<{width}}{r['description']}")
        for label in ("actions", "ids"):
            text = textwrap.fill(f"{label}: {r[label]}", 100, initial_indent=pad + "  ", subsequent_indent=pad + "    ",
                                 break_long_words=False, break_on_hyphens=False)
            click.echo(text)
