"""Atomic file replacement: write a temp file, fsync it, rename over the target, fsync the directory."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry so a rename inside it survives a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Replace ``target`` atomically with what ``write`` puts in a temp file beside it.

    A reader sees either the old file or the complete new one, never a partial file; a crash leaves at
    most a stray ``.tmp`` file, which the next save removes (:func:`remove_stray_temps`).

    Args:
        target: the file to replace.
        write: called with the temp path; must write the complete new content there.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def remove_stray_temps(directory: Path, older_than: float = 0.0) -> int:
    """Delete temp files that a crash in :func:`atomic_write` left in ``directory``. A live writer's temp file looks
    the same: only the single writer may call this with ``older_than`` 0; where several processes write, only files
    untouched for ``older_than`` seconds are removed. Returns how many were removed."""
    removed = 0
    now = time.time()
    for tmp in directory.glob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if older_than and now - tmp.stat().st_mtime < older_than:
                continue
            tmp.unlink()
            removed += 1
    return removed


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Replace ``target`` atomically with ``data``."""

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    atomic_write(target, write)
