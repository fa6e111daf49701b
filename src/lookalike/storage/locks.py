"""The library's single-writer lock: one process writes (indexes, resolves) at a time; readers repair only under it.

Two locks make it. A file lock in the home guards the home's index files. On PostgreSQL, where several homes (on
several machines) may point at one catalog, a session-level advisory lock in the database guards the catalog too:
two homes sharing a database cannot both write, and a process that dies releases it with its connection. SQLite
lives in its home, so the file lock covers it.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from lookalike.errors import LibraryLockedError

LOCK_NAME = "write.lock"
# the advisory lock's key: one per database (every collection of a catalog is written under it, as under the file)
DB_LOCK_KEY = int.from_bytes(hashlib.sha256(b"lookalike:writer").digest()[:8], "big", signed=True)
DB_LOCK_WAIT = 1.5  # seconds a writer waits for the database lock: refused, connection included, within 2 s
DB_LOCK_POLL = 0.1


def _shared_database(engine: Engine | None) -> bool:
    return engine is not None and engine.dialect.name == "postgresql"


def _where(engine: Engine) -> str:
    return engine.url.set(query={}).render_as_string(hide_password=True)


def _try_database_lock(conn: Connection) -> bool:
    got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": DB_LOCK_KEY}).scalar())
    conn.commit()  # a session lock outlives the transaction; ending it keeps the connection idle, not in a transaction
    return got


class HeldLock:
    """The writer lock as held: :meth:`check` before each commit says whether it still is."""

    def __init__(self, engine: Engine | None = None, conn: Connection | None = None) -> None:
        self._engine = engine
        self._conn = conn

    def check(self) -> None:
        """Raise if the database lock was lost: its session dropped (a restarted server, a cut connection, a
        terminated backend) releases it, and another home may be writing by now.

        Raises:
            LibraryLockedError: the lock's session is gone.
        """
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
        except DBAPIError as e:
            self._conn.invalidate()  # closed, never pooled; the block's end has nothing to unlock
            assert self._engine is not None
            raise LibraryLockedError(
                f"the writer lock on the database {_where(self._engine)} was lost (its connection closed); stopped "
                "before the next commit: run again"
            ) from e


@contextlib.contextmanager
def _database_lock(engine: Engine | None, wait: float) -> Iterator[Connection | bool]:
    """Hold the database's writer lock for the block if it is free within ``wait`` seconds: yields the lock's
    connection, or False when it was not free.

    Nothing is held (True) for a database that is not shared (SQLite).
    """
    if engine is None or not _shared_database(engine):
        yield True
        return
    conn = engine.connect()  # the lock belongs to this session, held for the whole block
    try:
        deadline = time.monotonic() + wait
        while not (got := _try_database_lock(conn)) and time.monotonic() < deadline:
            time.sleep(min(DB_LOCK_POLL, max(0.0, deadline - time.monotonic())))
        try:
            yield conn if got else False
        finally:
            if got and not conn.invalidated:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": DB_LOCK_KEY})
                    conn.commit()
                except SQLAlchemyError:  # the session dropped, which released the lock already
                    conn.invalidate()
    except BaseException:
        conn.invalidate()  # a connection in an unknown state is closed, never pooled (closing releases the lock)
        raise
    finally:
        conn.close()


@contextlib.contextmanager
def writer_lock(home: Path, engine: Engine | None = None, timeout: float = 2.0) -> Iterator[HeldLock]:
    """Hold the library's single-writer lock: the home's file lock and, on PostgreSQL, the database's.

    Args:
        home: the library home (its index files).
        engine: the catalog database; a PostgreSQL one is locked too (several homes may share it).
        timeout: seconds to wait for the file lock (the database lock waits at most ``DB_LOCK_WAIT``).

    Raises:
        LibraryLockedError: another process holds either lock.
    """
    with _database_lock(engine, min(timeout, DB_LOCK_WAIT)) as got:
        if not got:
            assert engine is not None
            raise LibraryLockedError(
                f"another lookalike process is writing to the database {_where(engine)} (from this or another "
                "home); wait for it to finish and try again"
            )
        home.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(home / LOCK_NAME))
        try:
            lock.acquire(timeout=timeout)
        except Timeout as e:
            raise LibraryLockedError(
                f"another lookalike process is writing to {home}; wait for it to finish and try again"
            ) from e
        try:
            yield HeldLock(engine, got if isinstance(got, Connection) else None)
        finally:
            lock.release()


@contextlib.contextmanager
def lock_if_free(home: Path, engine: Engine | None = None) -> Iterator[bool]:
    """Hold the writer lock for the block if no process holds it now (yields True), else do nothing (False).

    A reader repairs index files only while holding it, so that an indexer cannot start writing beside the repair
    (an indexer starting meanwhile waits up to 2 s, then is told another process is writing and to try again).
    """
    if not home.is_dir():
        yield False
        return
    with _database_lock(engine, 0.0) as got:
        if not got:
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
