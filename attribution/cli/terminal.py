"""The one way the command line writes to the terminal: :func:`echo`, which makes control
characters visible.

Agent names, step texts, file names and error messages come from files the user did not
write; printed raw, an ``ESC [`` sequence could recolour or clear the terminal, move the
cursor over the verdict, or set the window title, and a bidi override could reorder what is
shown. :func:`visible` writes each such character as a Python-style escape (``\\x1b``,
``\\u202e``); every print of the CLI goes through :func:`echo`.
"""

from __future__ import annotations

import re

import click

__all__ = ["visible", "echo", "wrote"]

# C0 controls, DEL, C1 controls, the line/paragraph separators, bidi embeddings, overrides and
# isolates, and lone surrogates (which no terminal encoding can write).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match) -> str:
    c = match.group()
    if c in _NAMED:
        return _NAMED[c]
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def visible(text: object, *, newlines: bool = False) -> str:
    """``text`` with every control character escaped (``newlines=True`` keeps line breaks).

    Examples
    --------
    >>> print(visible("agent\\x1b[2J\\u202eevil\\tname"))
    agent\\x1b[2J\\u202eevil\\tname
    >>> print(visible("two\\nlines", newlines=True))
    two
    lines
    """
    text = str(text)
    if newlines:
        return "\n".join(_UNSAFE.sub(_escape, line) for line in text.split("\n"))
    return _UNSAFE.sub(_escape, text)


def echo(message: object = "", *, err: bool = False, bold: bool = False, fg: str | None = None, newlines: bool = False) -> None:
    """``click.echo`` of :func:`visible` ``(message)``; ``bold`` and ``fg`` style the whole line."""
    text = visible(message, newlines=newlines)
    if bold or fg:
        click.secho(text, err=err, bold=bold, fg=fg)
    else:
        click.echo(text, err=err)


def wrote(path: object, quiet: bool = False) -> None:
    """Announce a written file (``wrote PATH``), as every command does unless ``-q``."""
    if not quiet:
        echo(f"wrote {path}")
