"""One exception base class with specific subclasses; the CLI prints ``str(err)`` as one line."""

from __future__ import annotations

__all__ = ["AttributionError", "InputError", "CheckpointError", "ScoringError", "ConfigError", "OutputError", "RemoteError", "ParseWarning"]


class AttributionError(Exception):
    """Base class of every error this package raises for a user's mistake."""


class InputError(AttributionError, ValueError):
    """A run file that cannot be read as expected.

    The message always names the file, the step index where it applies and
    what was expected, on one line.
    """

    def __init__(self, path: object, expected: str, step: int | None = None, got: str | None = None):
        self.path = str(path)
        self.step = step
        self.expected = expected
        where = f"{self.path}" + (f", step {step}" if step is not None else "")
        msg = f"{where}: expected {expected}"
        if got is not None:
            msg += f"; got {got}"
        super().__init__(msg)


class CheckpointError(AttributionError):
    """A checkpoint folder or hub id that cannot be loaded, or a mismatched pair."""


class ConfigError(AttributionError, ValueError):
    """A bad setting: unknown aggregation/ranker, a pair config that cannot place a speaker."""


class OutputError(AttributionError):
    """An output path that cannot be written (checked before the work starts)."""


class RemoteError(AttributionError):
    """A trace store that cannot be read or written: down, a wrong project, a 4xx/5xx answer, a timeout.

    The message names the server (never its API key), what was asked and what came back, on one line.
    """


class ScoringError(AttributionError):
    """Scoring produced something that must not be reported (NaN, infinite)."""


class ParseWarning(UserWarning):
    """A log read without error but with something the user should know (one line, names the file and record)."""
