"""The library's single-writer lock: one process writes (indexes, resolves) at a time; readers repair only under it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from lookalike.errors import LibraryLockedError

LOCK_NAME = "write.lock"


@contextlib.contextmanager
def writer_lock(home: Path, timeout: float = 2.0) -> Iterator[None]:
    """Hold the library's single-writer lock.

    Raises:
        LibraryLockedError: another process holds it for longer than ``timeout`` seconds.
    """
    home.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(home / LOCK_NAME))
    try:
        lock.acquire(timeout=timeout)
    except Timeout as e:
        raise LibraryLockedError(
            f"another lookalike process is writing to {home}; wait for it to finish and try again"
        ) from e
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def lock_if_free(home: Path) -> Iterator[bool]:
    """Hold the writer lock for the block if no process holds it now (yields True), else do nothing (False).

    A reader repairs index files only while holding it, so that an indexer cannot start writing beside the repair
    (an indexer starting meanwhile waits up to 2 s, then is told another process is writing and to try again).
    """
    if not home.is_dir():
        yield False
        return
    lock = FileLock(str(home / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
