"""A library on disk: the catalog database plus, per collection, FAISS files tied by a manifest."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError

from lookalike.errors import DatabaseUnavailableError, NotIndexedError
from lookalike.storage.catalog import Catalog
from lookalike.storage.db import ensure_schema, make_engine, sqlite_file
from lookalike.storage.index_files import IndexFiles, ShardEncoder
from lookalike.storage.journal import Journal
from lookalike.storage.locks import HeldLock
from lookalike.storage.records import CollectionInfo, MediaRecord, VectorRecord, WriteResult
from lookalike.storage.vectors import VectorIndex
from lookalike.types import MediaStatus


def collection_dirname(name: str) -> str:
    """A filesystem-safe folder name for a collection."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "default"


class CollectionStore:
    """One collection: writes go to the SQL catalog (the truth) and are mirrored in its FAISS files
    (:class:`~lookalike.storage.index_files.IndexFiles`, which load, repair and save them)."""

    def __init__(self, home: Path, catalog: Catalog, info: CollectionInfo) -> None:
        self.home = home
        self.catalog = catalog
        self.info = info
        self.directory = home / "collections" / collection_dirname(info.name)
        self.files = IndexFiles(self.directory, catalog, info)
        self.lock: HeldLock | None = None  # the writer lock a writing run holds: checked before each commit

    @property
    def dim(self) -> int:
        """Vector dimension of the collection."""
        return self.info.dim

    # -- the FAISS files (see IndexFiles) --------------------------------------------------------------
    def index(self, name: str) -> VectorIndex:
        """The loaded FAISS index ``items`` or ``videos``."""
        return self.files.index(name)

    def load(self, repair: bool = True, mmap: bool = False) -> None:
        """Load the FAISS files, repaired from the database when they lag (see :meth:`IndexFiles.load`)."""
        self.files.load(repair, mmap)

    @property
    def generation(self) -> int:
        """The database generation the loaded indexes reflect (-1 before loading)."""
        return self.files.generation

    def outdated(self) -> bool:
        """Whether a writer saved index files of another generation since these were loaded."""
        return self.files.outdated()

    def use_gpu(self, device: int = 0) -> bool:
        """Search from GPU copies of the indexes when faiss-gpu sees a GPU."""
        return self.files.use_gpu(device)

    def rebuild(
        self,
        generation: int | None = None,
        save: bool = True,
        factories: dict[str, str] | None = None,
        encoder: ShardEncoder | None = None,
        strict: bool = False,
    ) -> None:
        """Rebuild both FAISS indexes from the stored vectors (see :meth:`IndexFiles.rebuild`)."""
        self.files.rebuild(generation, save, factories, encoder, strict)

    def save(self) -> None:
        """Write the FAISS files and their manifest atomically."""
        self.files.save()

    def sync_files(self) -> None:
        """Leave FAISS files that reflect the database (see :meth:`IndexFiles.sync`)."""
        self.files.sync()

    def check(self) -> dict[str, Any]:
        """Compare FAISS ids with database rows."""
        return self.files.check()

    # -- writes ---------------------------------------------------------------------------------
    def note_runtime(self, runtime: str, tolerance: float) -> None:
        """Record the runtime that computed vectors of this collection (see :meth:`Catalog.note_runtime`); the
        manifest carries it from the next save."""
        if runtime in self.info.runtime.get("runtimes", []) and tolerance >= self.info.runtime.get("tolerance", 1):
            return
        self.catalog.note_runtime(self.info.id, runtime, tolerance)
        self.info = self.files.info = self.catalog.collection(self.info.name) or self.info

    def write(self, items: list[tuple[MediaRecord, list[VectorRecord]]]) -> WriteResult:
        """Commit files and vectors to the database, then mirror them in the in-memory indexes.

        The FAISS files on disk change only when saved; until then a crash is repaired on the next load from the
        committed rows.
        """
        if self.lock is not None:
            self.lock.check()
        self.files.writable()
        result = self.catalog.write(self.info.id, self.info.dim, items)
        self.files.apply(result.removed_ids, result, result.generation)
        return result

    def delete_paths(self, paths: list[str]) -> int:
        """Forget files; returns how many vectors were removed."""
        if not paths:
            return 0
        if self.lock is not None:
            self.lock.check()
        self.files.writable()
        removed = self.catalog.delete_media(self.info.id, paths)
        self.files.apply(removed, None, self.catalog.generation(self.info.id))
        return len(removed)

    def mark_absent(self, paths: list[str], status: MediaStatus = MediaStatus.MISSING) -> None:
        """Catalog files as missing or trashed: out of the FAISS indexes, their vectors kept in the database."""
        if not paths:
            return
        if self.lock is not None:
            self.lock.check()
        self.files.writable()
        removed = self.catalog.mark_absent(self.info.id, paths, status)
        self.files.apply(removed, None, self.catalog.generation(self.info.id))

    def restore(self, found: list[MediaRecord]) -> None:
        """Catalog missing or trashed files as there again: their stored vectors go back into the FAISS indexes."""
        if not found:
            return
        if self.lock is not None:
            self.lock.check()
        self.files.writable()
        result = self.catalog.restore(self.info.id, self.info.dim, found)
        self.files.apply(np.zeros(0, np.int64), result, result.generation)


class Library:
    """The catalog database of a library home, and the collections in it."""

    def __init__(self, home: Path, db_url: str, auto_upgrade: bool = True, create: bool = True) -> None:
        """Open (or, with ``create``, make) the library.

        Raises:
            NotIndexedError: ``create`` is False and there is no library (an SQLite catalog) in ``home``.
            DatabaseUnavailableError: the database cannot be reached or opened.
        """
        url = make_url(db_url)
        path = sqlite_file(db_url)
        if not create and path is not None and not path.is_file():
            raise NotIndexedError(f"no library in {home} (check --home, or run `lookalike index PATH` to make one)")
        self.home = home
        self.engine = make_engine(db_url)
        try:
            ensure_schema(self.engine, auto_upgrade=auto_upgrade)
        except (OperationalError, InterfaceError) as e:
            self.engine.dispose()
            reason = str(getattr(e, "orig", e) or e).strip().splitlines()[0]
            where = url.set(query={}).render_as_string(hide_password=True)  # query values may hold secrets too
            raise DatabaseUnavailableError(f"cannot open the database {where}: {reason}") from e
        self.catalog = Catalog(self.engine)
        self.journal = Journal(self.engine)

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def collections(self) -> list[CollectionInfo]:
        """All collections in the library."""
        return self.catalog.collections()

    def open_collection(self, name: str) -> CollectionStore:
        """An existing collection.

        Raises:
            NotIndexedError: there is no collection called ``name``.
        """
        info = self.catalog.collection(name)
        if info is None:
            names = ", ".join(c.name for c in self.collections()) or "none"
            raise NotIndexedError(
                f"no collection {name!r} in {self.home} (collections: {names}); run `lookalike index`"
            )
        return CollectionStore(self.home, self.catalog, info)

    def create_collection(
        self,
        name: str,
        model: str,
        weights_tag: str,
        dim: int,
        preprocessing: dict[str, Any],
        pooling: dict[str, Any],
    ) -> CollectionStore:
        """A new, empty collection."""
        info = self.catalog.create_collection(name, model, weights_tag, dim, preprocessing, pooling)
        return CollectionStore(self.home, self.catalog, info)
