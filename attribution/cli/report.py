"""``attribution report DIAGNOSIS.json --html OUT``: the HTML report of a saved diagnosis."""

from __future__ import annotations

from pathlib import Path

import click

from attribution.report.html import COLLAPSE_TOKENS

__all__ = ["report"]


@click.command()
@click.argument("diagnosis_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--html",
    "html_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the self-contained HTML report.",
)
@click.option(
    "--collapse-tokens",
    default=COLLAPSE_TOKENS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Steps with more tokens start collapsed.",
)
def report(diagnosis_file: Path, html_path: Path, collapse_tokens: int) -> None:
    """Write the HTML report of DIAGNOSIS_FILE, a diagnosis saved with `diagnose --json`."""
    from attribution.report import write_report

    try:
        write_report(diagnosis_file, html_path, collapse_tokens=collapse_tokens)
    except OSError as err:
        raise click.FileError(str(html_path), hint=err.strerror or str(err)) from err
    click.echo(f"wrote {html_path}")
