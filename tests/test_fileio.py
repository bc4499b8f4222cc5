"""Atomic writes: complete file or the old one, never a half-written file."""

import os
import stat

import pytest

from focus_hw.fileio import atomic_write_bytes, atomic_write_text


def test_write_and_permissions(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    atomic_write_text(path, "hello")
    assert path.read_text() == "hello"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "a.bin"
    atomic_write_bytes(path, b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]  # temp file removed
