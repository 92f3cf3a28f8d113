"""Files in and out, safely.

- Atomic writes: a kill at any moment leaves either the old file or the new one, never half of one.
- :func:`check_writable`: every output path is checked before long work starts, so a typo in
  ``--html`` does not cost a scoring run. A missing parent folder is not an error: writers here
  create it (``mkdir -p``), and the check makes sure that they will be able to.
- :func:`parse_json`: ``json.loads`` with the two guards every JSON reader of the package needs:
  nesting deeper than :data:`MAX_DEPTH` is refused before the parser recurses into it, and lone
  UTF-16 surrogates (``"\\ud800"`` escapes, often an emoji cut in half by a UTF-16 truncation)
  are replaced with U+FFFD, with one warning naming the file and the first place.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable

from attribution.errors import InputError, OutputError, ParseWarning

__all__ = [
    "MAX_DEPTH",
    "atomic_write_text",
    "atomic_write_bytes",
    "check_writable",
    "check_outputs",
    "parse_json",
    "json_error",
    "read_json_file",
    "check_depth",
    "replace_surrogates",
]

#: JSON nesting deeper than this is refused before parsing (Python's parser would recurse).
MAX_DEPTH = 200

_SURROGATE = re.compile("[\ud800-\udfff]")
# A \uD800-\uDFFF escape in JSON text; surrogate pairs match too, the parsed strings decide.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)  # unrolled: a run of plain characters per step
_BRACKET = re.compile(r"[\[\]{}]")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating missing parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file a normal file's mode
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` as UTF-8 atomically (see :func:`atomic_write_bytes`).

    A lone surrogate cannot be encoded; it is written as U+FFFD rather than failing after the work.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = _SURROGATE.sub("\ufffd", text).encode("utf-8")
    atomic_write_bytes(path, data)


# -- output paths ------------------------------------------------------------------------------


def _refuse(path: Path | str, option: str | None, why: str) -> OutputError:
    shown = str(path) if str(path).strip() else repr(str(path))
    what = f"the {option} output" if option else "the output"
    return OutputError(f"{shown}: cannot write {what}: {why}")


def check_writable(path: str | os.PathLike, *, option: str | None = None, folder: bool = False) -> Path:
    """Make sure that ``path`` can be written later, before any long work; return it.

    A missing parent folder is allowed (writers create it) when its nearest existing ancestor
    is a writable folder. Nothing is left behind: the check creates and deletes one temporary
    file in that ancestor, which also catches read-only file systems and (for root) what
    ``os.access`` would report writable.

    Parameters
    ----------
    path : path-like
        The file (or, with ``folder=True``, the folder) to be written.
    option : str, optional
        The option that named it (``"--html"``), for the message.
    folder : bool, default False
        ``path`` is a folder to write into (created when missing), not a file.

    Raises
    ------
    OutputError
        The path is empty, holds a NUL character, is too long, is an existing folder (for a
        file) or file (for a folder), lies under a file, or its folder is not writable.
    """
    text = os.fspath(path)
    if not str(text).strip():
        raise _refuse(str(text), option, "the path is empty")
    if "\x00" in str(text):
        raise _refuse(str(text), option, "the path holds a NUL character")
    path = Path(text).expanduser()
    probe_dir = path.parent
    try:
        if path.exists():
            if folder and not path.is_dir():
                raise _refuse(path, option, "it is a file, not a folder")
            if not folder and path.is_dir():
                raise _refuse(path, option, "it is a folder, not a file")
        probe_dir = path if folder and path.is_dir() else path.parent
        while not probe_dir.exists():
            if probe_dir == probe_dir.parent:
                break
            probe_dir = probe_dir.parent
        if not probe_dir.is_dir():
            raise _refuse(path, option, f"{probe_dir} is a file, not a folder")
        if not folder and path.exists() and not os.access(path, os.W_OK):
            raise _refuse(path, option, "the file is read-only")
        fd, tmp = tempfile.mkstemp(prefix=".attribution-check.", dir=probe_dir)
        os.close(fd)
        os.unlink(tmp)
    except OutputError:
        raise
    except UnicodeEncodeError:
        raise _refuse(path, option, "the path cannot be encoded for this file system") from None
    except OSError as err:
        why = {errno.ENAMETOOLONG: "the path is too long", errno.EROFS: "the file system is read-only"}.get(
            err.errno, f"cannot create a file in {probe_dir} ({(err.strerror or type(err).__name__).lower()})"
        )
        raise _refuse(path, option, why) from None
    return path


def check_outputs(outputs: dict[str, str | os.PathLike | None], *, inputs: Iterable[str | os.PathLike | None] = ()) -> None:
    """:func:`check_writable` for each named output (``{"--json": path}``; None is no output, an
    empty path an error), and refuse
    two outputs on one path, or an output that would overwrite an input."""
    seen: dict[Path, str] = {}
    ins = {_resolved(p): p for p in inputs if p}
    for option, p in outputs.items():
        if p is None:
            continue
        path = check_writable(p, option=option)
        key = _resolved(path)
        if key in seen:
            raise _refuse(path, option, f"{seen[key]} writes the same file")
        if key in ins:
            raise _refuse(path, option, "it is an input of this command and would be overwritten")
        seen[key] = option


def _resolved(path: str | os.PathLike) -> Path:
    try:
        return Path(path).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        return Path(path)


# -- reading JSON ------------------------------------------------------------------------------


def check_depth(text: str, where: str | os.PathLike) -> None:
    """Refuse JSON nested deeper than :data:`MAX_DEPTH` before ``json.loads`` recurses into it.

    Raises
    ------
    InputError
        Naming ``where`` (the file, and the line for JSONL).
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    # Strings removed (at C speed), only the brackets are walked in Python.
    for ch in _BRACKET.findall(_STRING.sub("", text)):
        if ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise InputError(where, f"JSON nested at most {MAX_DEPTH} levels deep", got="deeper nesting")
        else:
            depth -= 1


def replace_surrogates(value: Any) -> tuple[Any, int, str | None]:
    """``value`` with every lone UTF-16 surrogate in its strings (keys included) replaced by U+FFFD.

    Returns
    -------
    value : Any
        The cleaned value (the same object when there was nothing to replace).
    count : int
        How many surrogates were replaced.
    first : str or None
        RFC 6901 JSON pointer of the first string that held one.

    Examples
    --------
    >>> replace_surrogates({"a": ["ok", "x\\ud800"]})
    ({'a': ['ok', 'x\ufffd']}, 1, '/a/1')
    """
    count, first = 0, None

    def walk(v: Any, pointer: str) -> Any:
        nonlocal count, first
        if isinstance(v, str):
            n = len(_SURROGATE.findall(v))
            if not n:
                return v
            count += n
            first = first or pointer or "/"
            return _SURROGATE.sub("\ufffd", v)
        if isinstance(v, list):
            return [walk(x, f"{pointer}/{i}") for i, x in enumerate(v)]
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                child = f"{pointer}/{_escape_pointer(str(k))}"
                out[walk(k, child)] = walk(x, child)
            return out
        return v

    out = walk(value, "")
    return (out if count else value), count, first


def _escape_pointer(key: str) -> str:
    return _SURROGATE.sub("\ufffd", key.replace("~", "~0").replace("/", "~1"))


def parse_json(text: str, where: str | os.PathLike) -> Any:
    """``json.loads(text)`` guarded for untrusted files.

    Nesting deeper than :data:`MAX_DEPTH` is an :class:`~attribution.errors.InputError` naming
    ``where``; invalid JSON raises :class:`json.JSONDecodeError` as usual (each caller says what
    it expected); lone surrogates become U+FFFD with one :class:`~attribution.errors.ParseWarning`.
    """
    check_depth(text, where)
    value = json.loads(text)
    if _SURROGATE_ESCAPE.search(text):
        value, count, first = replace_surrogates(value)
        if count:
            warnings.warn(
                ParseWarning(f"{where}: replaced {count} lone UTF-16 surrogate(s) with U+FFFD (first at {first})"),
                stacklevel=2,
            )
    return value


def json_error(err: json.JSONDecodeError, line: int | None = None, *, column_only: bool = False) -> str:
    """Where and why JSON text failed to parse, for a message: ``"Expecting value at line 3, column 5"``.

    ``line`` replaces the error's own line (a JSONL file parsed line by line); ``column_only``
    leaves the line out (the caller names it). Python's messages that end in "at"
    (``"Unterminated string starting at"``) do not repeat it.
    """
    where = f"column {err.colno}" if column_only else f"line {err.lineno if line is None else line}, column {err.colno}"
    return f"{err.msg.removesuffix(' at')} at {where}"


def read_json_file(path: str | os.PathLike, expected: str = "a JSON file") -> Any:
    """Read and :func:`parse_json` a UTF-8 JSON file; every failure is one
    :class:`~attribution.errors.InputError` naming the file and saying what was ``expected``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, expected, got="no such file") from None
    except IsADirectoryError:
        raise InputError(path, expected, got="a folder") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"{expected} (readable, UTF-8)", got=type(err).__name__) from None
    try:
        return parse_json(text, path)
    except json.JSONDecodeError as err:
        raise InputError(path, expected, got=f"invalid JSON at line {err.lineno}, column {err.colno} ({err.msg})") from None
