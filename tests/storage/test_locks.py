"""The writer lock on a shared PostgreSQL catalog: homes on several machines, one database, one writer."""

from __future__ import annotations

import time

import pytest

from lookalike.config import Settings
from lookalike.errors import LibraryLockedError
from lookalike.storage.db import make_engine
from lookalike.storage.library import Library
from lookalike.storage.locks import lock_if_free, writer_lock
from lookalike.workspace import Workspace
from tests.conftest import TEST_SERVER, another_writer, fresh_db_url

pytestmark = pytest.mark.skipif(not TEST_SERVER, reason="a shared catalog is PostgreSQL: run with LOOKALIKE_TEST_DB")


def test_a_second_writer_on_another_home_with_the_same_database_is_refused_within_2_s(tmp_path):
    url = fresh_db_url(tmp_path)
    Library(tmp_path / "a", url).close()  # the schema, made once
    media = tmp_path / "media"
    media.mkdir()
    other = Settings(home=tmp_path / "b", db_url=url)
    with another_writer(tmp_path / "a", seconds=30, db_url=url), Workspace(other) as ws:
        started = time.monotonic()
        with pytest.raises(LibraryLockedError, match="another lookalike process is writing to the database postgres"):
            ws.index([media])
        assert time.monotonic() - started < 2.0
        assert not (tmp_path / "b" / "collections").exists()  # refused before anything was written
    # the holder is gone (its connection closed with it): the other home writes now
    engine = make_engine(url)
    with writer_lock(tmp_path / "b", engine, timeout=0.1):
        pass
    engine.dispose()


def test_a_reader_on_another_home_does_not_repair_beside_a_writer(tmp_path):
    url = fresh_db_url(tmp_path)
    engine = make_engine(url)
    (tmp_path / "b").mkdir()
    with another_writer(tmp_path / "a", seconds=30, db_url=url), lock_if_free(tmp_path / "b", engine) as free:
        assert free is False
    with lock_if_free(tmp_path / "b", engine) as free:
        assert free is True
        with pytest.raises(LibraryLockedError, match="writing to the database"), writer_lock(tmp_path / "c", engine):
            pass
    engine.dispose()


def test_databases_on_one_server_are_locked_apart(tmp_path):
    """The advisory lock is the database's: libraries in other databases of the same server write side by side."""
    first, second = make_engine(fresh_db_url(tmp_path)), make_engine(fresh_db_url(tmp_path))
    with writer_lock(tmp_path / "a", first), writer_lock(tmp_path / "b", second, timeout=0.1):
        pass
    first.dispose()
    second.dispose()


def test_a_writer_whose_database_lock_was_lost_stops_before_its_next_commit(tmp_path):
    """A dropped session (a restarted server, a cut connection) releases the advisory lock, and another home may
    then write: the writer checks the lock before each commit and stops there, saying why."""
    from sqlalchemy import text

    url = fresh_db_url(tmp_path)
    library = Library(tmp_path / "a", url)
    store = library.create_collection("c", "m", "w", 4, {}, {})
    other = make_engine(url)
    with writer_lock(tmp_path / "a", library.engine) as lock:
        store.lock = lock
        store.write([])  # held: the commit goes through
        with other.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> "
                    "pg_backend_pid() AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            ).all()
            conn.commit()
        assert killed == [(True,)]
        with pytest.raises(LibraryLockedError, match=r"writer lock on the database .* was lost"):
            store.write([])
        with writer_lock(tmp_path / "b", other, timeout=0.1):  # another home may write now
            pass
    library.close()
    other.dispose()
