"""The one place where library errors become what a user sees: one line and an exit status.

:class:`Group` (the ``attribution`` group and its sub-groups) runs every command under
:func:`one_line_errors`, so command modules raise library errors and never format them.

=====================================  ===========  =========================================
error                                  exit status  printed
=====================================  ===========  =========================================
:class:`~attribution.errors.AttributionError`  2    ``error: <message>`` (its message is one line)
=====================================  ===========  =========================================

Usage errors that click detects itself (a bad option value, a missing argument) keep click's
own handling (exit status 2). A :class:`~attribution.errors.ParseWarning` (a log read, but with
something to know) is printed as ``warning: <one line>`` on standard error, each once.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Iterator

import click

from attribution.errors import AttributionError, ParseWarning

__all__ = ["EXIT_STATUS", "Group", "one_line_errors", "message"]

#: Exit status of each library error class (most specific first); every user error is 2.
EXIT_STATUS: dict[type[BaseException], int] = {AttributionError: 2}


def message(err: BaseException) -> str:
    """The one line shown for ``err``: its message with line breaks folded."""
    return " ".join(str(err).split()) or type(err).__name__


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn a user's mistake (a library error) into ``error: <one line>`` and its exit status."""
    def show(msg, category, *args, **kwargs):
        if issubclass(category, ParseWarning):
            click.echo(f"warning: {' '.join(str(msg).split())}", err=True)
        else:
            original(msg, category, *args, **kwargs)

    original = warnings.showwarning
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", ParseWarning)
            warnings.showwarning = show
            yield
    except tuple(EXIT_STATUS) as err:
        status = next(code for cls, code in EXIT_STATUS.items() if isinstance(err, cls))
        click.echo(f"error: {message(err)}", err=True)
        sys.exit(status)


class Group(click.Group):
    """A click group whose commands (and sub-groups' commands) report library errors in one line."""

    def invoke(self, ctx: click.Context):
        with one_line_errors():
            return super().invoke(ctx)
