"""``attribution report DIAGNOSIS.json --html OUT``: the HTML report of a saved diagnosis."""

from __future__ import annotations

from pathlib import Path

import click

from attribution.report import COLLAPSE_TOKENS, load_diagnosis, write_html


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
    # Imported here: attribution.cli imports this module to register the command.
    from attribution.cli import user_errors

    user_errors(_report)(diagnosis_file, html_path, collapse_tokens)


def _report(diagnosis_file: Path, html_path: Path, collapse_tokens: int) -> None:
    diagnosis = load_diagnosis(diagnosis_file)
    try:
        write_html(diagnosis, html_path, collapse_tokens=collapse_tokens)
    except OSError as err:
        raise click.FileError(str(html_path), hint=err.strerror or str(err)) from err
    click.echo(f"wrote {html_path}")
