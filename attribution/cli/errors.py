"""The one place where errors become what a user sees: one line and an exit status.

:class:`Group` (the ``attribution`` group and its sub-groups) parses and runs every command
under :func:`one_line_errors`, so command modules raise library errors and never format them.

=================================================  ===========  ===================================
error                                              exit status  printed
=================================================  ===========  ===================================
:class:`~attribution.errors.AttributionError`      2            ``error: <message>``
click's usage errors (missing argument, bad        2            ``error: <click's message> Try
value, unknown option or command)                               '<command> --help'.``
other :class:`click.ClickException`                its own      ``error: <message>``
:class:`OSError` (disk full, permission denied)    1            ``error: <strerror>: <file>``
=================================================  ===========  ===================================

Every message is folded onto one line and its control characters made visible
(:func:`attribution.cli.terminal.visible`). ``--help`` and a bare group (which prints its
help) keep click's output. A :class:`~attribution.errors.ParseWarning` (a log read, but with
something to know) is printed as ``warning: <one line>`` on standard error, each once; other
warnings keep Python's display.
"""

from __future__ import annotations

import contextlib
import errno
import sys
import warnings
from typing import Iterator

import click

from attribution.cli.terminal import echo
from attribution.errors import AttributionError, ParseWarning

__all__ = ["EXIT_STATUS", "Group", "one_line_errors", "message"]

#: Exit status of each library error class (most specific first); every user error is 2.
EXIT_STATUS: dict[type[BaseException], int] = {AttributionError: 2}
#: Exit status of an operating-system error that reaches the command line (not the user's input).
OS_ERROR_STATUS = 1


def message(err: BaseException) -> str:
    """The one line shown for ``err``: its message with line breaks folded."""
    if isinstance(err, click.UsageError):
        text = err.format_message()
        if err.ctx is not None:
            text = f"{text.rstrip()} Try '{err.ctx.command_path} --help'."
    elif isinstance(err, click.ClickException):
        text = err.format_message()
    elif isinstance(err, OSError) and err.strerror:
        text = err.strerror + (f": {err.filename}" if err.filename else "")
    else:
        text = str(err)
    return " ".join(text.split()) or type(err).__name__


def _fail(err: BaseException, status: int) -> None:
    echo(f"error: {message(err)}", err=True)
    sys.exit(status)


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn a user's mistake (a library or usage error) into ``error: <one line>`` and its exit status."""
    def show(msg, category, *args, **kwargs):
        if issubclass(category, ParseWarning):
            echo(f"warning: {' '.join(str(msg).split())}", err=True)
        else:
            original(msg, category, *args, **kwargs)

    original = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("default", ParseWarning)
        warnings.showwarning = show
        try:
            yield
        except tuple(EXIT_STATUS) as err:
            _fail(err, next(code for cls, code in EXIT_STATUS.items() if isinstance(err, cls)))
        except click.exceptions.NoArgsIsHelpError:
            raise  # a bare group prints its help, as click does
        except click.ClickException as err:
            _fail(err, err.exit_code)
        except OSError as err:
            if err.errno == errno.EPIPE:
                raise  # click quiets a closed pipe (`attribution ... | head`)
            _fail(err, OS_ERROR_STATUS)


class Group(click.Group):
    """A click group whose commands (and sub-groups' commands) report every error in one line."""

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        with one_line_errors():  # the group's own options and arguments
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context):
        with one_line_errors():  # resolving the command, parsing its options, running it
            return super().invoke(ctx)
