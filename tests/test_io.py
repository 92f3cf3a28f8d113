import os

import pytest

from attribution.io import atomic_write_text


def test_atomic_write_keeps_old_file_on_failure_and_uses_umask_mode(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    atomic_write_text(path, "old")
    mask = os.umask(0o022)
    try:
        atomic_write_text(path, "new")
    finally:
        os.umask(mask)
    assert path.read_text() == "new" and path.stat().st_mode & 0o777 == 0o644

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(path, "lost")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary left behind
