"""Library consistency: the DB is the truth, FAISS files are repaired from it; one writer at a time."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import CollectionMismatchError, LibraryLockedError
from lookalike.indexer.pooling import unit_rows
from lookalike.storage.library import Library
from lookalike.storage.locks import lock_if_free, writer_lock
from lookalike.storage.manifest import Manifest
from lookalike.storage.records import MediaRecord, VectorRecord

DIM = 16


def _items(start: int, n: int, rng: np.random.Generator):
    out = []
    for i in range(start, start + n):
        rec = MediaRecord(path=f"/media/{i}.jpg", kind="image", size=i, mtime_ns=i, status="ok", sha256=f"{i:064x}")
        out.append((rec, [VectorRecord("image", unit_rows(rng.normal(size=DIM)))]))
    return out


_URLS: dict[str, str] = {}


def _open(tmp_path):
    from tests.conftest import fresh_db_url

    url = _URLS.setdefault(str(tmp_path), fresh_db_url(tmp_path))  # the same database when reopened
    lib = Library(tmp_path, url)
    info = lib.catalog.collection("m")
    store = lib.open_collection("m") if info else lib.create_collection("m", "model", "w1", DIM, {}, {})
    return lib, store


def _saved_then_committed(tmp_path, saved: int, more: int, seed: int) -> Path:
    """A library whose FAISS files hold ``saved`` vectors while the database has ``more`` beyond them, as after a
    kill (or during an ingest) between a commit and the next save. Returns the collection's directory."""
    rng = np.random.default_rng(seed)
    lib, store = _open(tmp_path)
    store.load()
    store.write(_items(0, saved, rng))
    store.save()
    store.write(_items(saved, more, rng))  # committed to SQL, FAISS files not saved
    lib.close()
    return store.directory


def test_write_save_reopen_is_consistent(tmp_path):
    rng = np.random.default_rng(0)
    lib, store = _open(tmp_path)
    store.load()
    store.write(_items(0, 30, rng))
    store.save()
    lib.close()
    lib, store = _open(tmp_path)
    store.load()
    report = store.check()
    assert report["ok"] and report["items"]["index"] == 30
    lib.close()


def test_crash_before_save_is_repaired_from_the_database(tmp_path):
    directory = _saved_then_committed(tmp_path, 20, 15, seed=1)
    assert Manifest.load(directory).counts["items"] == 20
    lib, store = _open(tmp_path)
    store.load()
    report = store.check()
    assert report["ok"], report
    assert report["items"]["index"] == 35
    assert Manifest.load(store.directory).counts["items"] == 35  # repaired files were saved
    lib.close()


def test_a_writer_with_nothing_to_write_still_repairs_files_left_behind(tmp_path):
    """The next index run after a kill may find no new files; it must still leave current files for readers,
    and remove the temp file an interrupted save left."""
    directory = _saved_then_committed(tmp_path, 10, 5, seed=2)
    (directory / ".items.faiss.abc123.tmp").write_bytes(b"half a save")
    lib, store = _open(tmp_path)
    store.sync_files()  # what `lookalike index` does at the end of every run
    assert Manifest.load(store.directory).counts["items"] == 15
    assert not list(store.directory.glob("*.tmp"))
    saved = (store.directory / "items.faiss").stat().st_mtime_ns
    store.sync_files()  # current now: nothing is rewritten
    assert (store.directory / "items.faiss").stat().st_mtime_ns == saved
    lib.close()


def test_replacing_a_file_replaces_its_vectors(tmp_path):
    rng = np.random.default_rng(2)
    lib, store = _open(tmp_path)
    store.load()
    store.write(_items(0, 5, rng))
    result = store.write(_items(0, 1, rng))
    assert len(result.removed_ids) == 1
    assert store.check()["ok"] and len(store.index("items")) == 5
    lib.close()


def test_manifest_of_another_model_is_refused(tmp_path):
    lib, store = _open(tmp_path)
    store.load()
    Manifest(model="other", weights_tag="x", dim=DIM, generation=store.catalog.generation(store.info.id)).save(
        store.directory
    )
    lib.close()
    lib, store = _open(tmp_path)
    with pytest.raises(CollectionMismatchError, match="other"):
        store.load()
    lib.close()


def test_second_writer_gets_a_clear_error_within_two_seconds(tmp_path):
    from tests.conftest import another_writer

    with another_writer(tmp_path, seconds=5):
        started = time.monotonic()
        with pytest.raises(LibraryLockedError, match="another lookalike process"), writer_lock(tmp_path):
            pass
        assert time.monotonic() - started < 2.5


def test_a_reader_beside_a_writer_uses_saved_files_and_writes_nothing(tmp_path):
    directory = _saved_then_committed(tmp_path, 10, 5, seed=3)  # an ingest committed more than it saved
    files = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}
    lib, reader = _open(tmp_path)
    reader.load(repair=False)
    assert len(reader.index("items")) == 10  # the last saved state, consistent in itself
    assert {p.name: p.stat().st_mtime_ns for p in reader.directory.iterdir()} == files
    lib.close()


def test_a_reader_before_the_first_save_builds_in_memory(tmp_path):
    rng = np.random.default_rng(4)
    lib, store = _open(tmp_path)
    store.write(_items(0, 7, rng))  # committed ...
    lib.close()
    shutil.rmtree(store.directory)  # ... and no index file on disk yet
    lib, reader = _open(tmp_path)
    reader.load(repair=False)
    assert len(reader.index("items")) == 7
    assert not (reader.directory / "manifest.json").exists()
    lib.close()


def test_a_reader_repairs_files_only_while_holding_the_writer_lock(tmp_path):
    """``Workspace.store`` repairs lagging files inside ``lock_if_free``: while a writer holds the lock the reader
    gets False (and loads without repairing); once free, it holds the lock itself for the repair, so an indexer
    starting meanwhile waits instead of racing it."""
    from tests.conftest import another_writer

    directory = _saved_then_committed(tmp_path, 10, 5, seed=5)
    files = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}
    with another_writer(tmp_path, seconds=5), lock_if_free(tmp_path) as free:
        assert free is False
        lib, reader = _open(tmp_path)
        reader.load(repair=free)
        assert len(reader.index("items")) == 10
        lib.close()
    assert {p.name: p.stat().st_mtime_ns for p in directory.iterdir()} == files
    with lock_if_free(tmp_path) as free:
        assert free is True
        # a writer starting during the repair waits, then is told
        with pytest.raises(LibraryLockedError), writer_lock(tmp_path, timeout=0.1):
            pass
        lib, reader = _open(tmp_path)
        reader.load(repair=free)
        assert len(reader.index("items")) == 15
        lib.close()
    assert Manifest.load(directory).counts["items"] == 15  # repaired on disk, under the lock
    with writer_lock(tmp_path, timeout=0.1):  # and released
        pass
    with lock_if_free(tmp_path / "no-such-home") as free:
        assert free is False and not (tmp_path / "no-such-home").exists()
