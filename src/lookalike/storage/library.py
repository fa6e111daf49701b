"""A library on disk: the catalog database plus, per collection, FAISS files tied by a manifest."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError

from lookalike.errors import (
    CollectionMismatchError,
    DatabaseUnavailableError,
    LibraryLockedError,
    NotIndexedError,
)
from lookalike.storage.catalog import Catalog
from lookalike.storage.db import ensure_schema, make_engine, sqlite_file
from lookalike.storage.files import remove_stray_temps
from lookalike.storage.journal import Journal
from lookalike.storage.manifest import Manifest
from lookalike.storage.records import CollectionInfo, MediaRecord, VectorRecord, WriteResult
from lookalike.storage.vectors import DEFAULT_FACTORY, FLAT_LIMIT, VectorIndex, choose_factory, training_size
from lookalike.types import MediaStatus

log = logging.getLogger(__name__)

# Which vector levels live in which FAISS file.
INDEX_LEVELS: dict[str, tuple[str, ...]] = {"items": ("image", "segment"), "videos": ("video",)}
LEVEL_INDEX = {lvl: name for name, lvls in INDEX_LEVELS.items() for lvl in lvls}
LOCK_NAME = "write.lock"


def collection_dirname(name: str) -> str:
    """A filesystem-safe folder name for a collection."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "default"


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


class CollectionStore:
    """One collection's vectors: SQL rows are the truth, FAISS files a checkpointed mirror of them."""

    def __init__(self, home: Path, catalog: Catalog, info: CollectionInfo) -> None:
        self.home = home
        self.catalog = catalog
        self.info = info
        self.directory = home / "collections" / collection_dirname(info.name)
        self._indexes: dict[str, VectorIndex] = {}
        self._generation = -1
        self._saved_generation = -1
        self._stale = False  # an index type that cannot remove ids was asked to: rebuild before saving
        self._mmap = False

    @property
    def dim(self) -> int:
        """Vector dimension of the collection."""
        return self.info.dim

    def index(self, name: str) -> VectorIndex:
        """The loaded FAISS index ``items`` or ``videos``."""
        if not self._indexes:
            self.load()
        return self._indexes[name]

    # -- consistency ---------------------------------------------------------------------------------
    def _manifest(self, counts: dict[str, int]) -> Manifest:
        return Manifest(
            model=self.info.model,
            weights_tag=self.info.weights_tag,
            dim=self.info.dim,
            metric=self.info.metric,
            factories={n: i.factory for n, i in self._indexes.items()},
            generation=self._generation,
            counts=counts,
            preprocessing=self.info.preprocessing,
            pooling=self.info.pooling,
        )

    def _files_current(self, manifest: Manifest | None, generation: int) -> bool:
        if manifest is None or manifest.generation != generation:
            return False
        if manifest.model != self.info.model or manifest.dim != self.info.dim:
            raise CollectionMismatchError(
                f"{self.directory} holds vectors of {manifest.model} ({manifest.dim}-d) but the database says "
                f"{self.info.model} ({self.info.dim}-d)"
            )
        return all((self.directory / f"{name}.faiss").exists() for name in INDEX_LEVELS)

    def load(self, repair: bool = True, mmap: bool = False) -> None:
        """Load the FAISS files; rebuild them from the stored vectors when they lag the database.

        Args:
            repair: rebuild (and save) stale files; when False (a reader beside a running writer) the last
                saved files are used as they are, and nothing is written: with no files yet, the indexes are
                built in memory from the committed rows.
            mmap: map current files read-only instead of reading them (searchers: the page cache is shared
                and the process stays small); such a store cannot be written to.
        """
        self._mmap = mmap
        generation = self.catalog.generation(self.info.id)
        manifest = Manifest.load(self.directory)
        current = self._files_current(manifest, generation)
        factories = manifest.factories if manifest is not None else {}
        if current:
            loaded = self._load_files(factories)
            if manifest is not None and all(len(loaded[n]) == manifest.counts.get(n, -1) for n in INDEX_LEVELS):
                self._indexes, self._generation = loaded, generation
                self._saved_generation = generation
                return
        if not repair and manifest is not None and all((self.directory / f"{n}.faiss").exists() for n in INDEX_LEVELS):
            self._indexes = self._load_files(factories)
            self._generation = manifest.generation
            return
        self.rebuild(generation, save=repair, factories=factories)

    @property
    def generation(self) -> int:
        """The database generation the loaded indexes reflect (-1 before loading)."""
        return self._generation

    def outdated(self) -> bool:
        """Whether a writer saved index files of another generation since these were loaded (a reader reloads)."""
        if not self._indexes:
            return False
        manifest = Manifest.load(self.directory)
        return manifest is not None and manifest.generation != self._generation

    def _load_files(self, factories: dict[str, str]) -> dict[str, VectorIndex]:
        return {
            n: VectorIndex.load(self.directory / f"{n}.faiss", factories.get(n, DEFAULT_FACTORY), mmap=self._mmap)
            for n in INDEX_LEVELS
        }

    def use_gpu(self, device: int = 0) -> bool:
        """Search from GPU copies of the indexes when faiss-gpu sees a GPU; False when they stay on the CPU."""
        return all([self.index(name).to_gpu(device) for name in INDEX_LEVELS])

    def rebuild(
        self, generation: int | None = None, save: bool = True, factories: dict[str, str] | None = None
    ) -> None:
        """Rebuild both FAISS indexes from the vectors stored in the database (and save them).

        Args:
            generation: the database generation the rebuilt indexes reflect (default: the current one).
            save: write the files and manifest afterwards.
            factories: FAISS factory string per index; missing ones are chosen by size (:func:`choose_factory`).
                IVF indexes are trained on an evenly spread sample of the stored vectors.
        """
        if generation is None:
            generation = self.catalog.generation(self.info.id)
        log.info("rebuilding FAISS indexes of %s from the database", self.info.name)
        indexes = {}
        for name, levels in INDEX_LEVELS.items():
            count = self.catalog.count_vectors(self.info.id, levels)
            factory = (factories or {}).get(name) or choose_factory(count)
            idx = VectorIndex.create(self.info.dim, factory)
            if not idx.is_trained:
                idx.train(self._sample(levels, max(training_size(factory), 1), count))
            for ids, mat in self.catalog.iter_vectors(self.info.id, levels, self.info.dim):
                idx.add(ids, mat)
            indexes[name] = idx
        self._indexes, self._generation, self._stale = indexes, generation, False
        if save:
            self.save()

    def _sample(self, levels: tuple[str, ...], size: int, total: int) -> np.ndarray:
        """About ``size`` stored vectors spread evenly over the whole collection."""
        rng = np.random.default_rng(0)
        keep = min(1.0, size / max(1, total))
        parts = [
            mat[rng.random(len(mat)) < keep]
            for _, mat in self.catalog.iter_vectors(self.info.id, levels, self.info.dim)
        ]
        return np.vstack(parts) if parts else np.zeros((0, self.info.dim), np.float32)

    def save(self) -> None:
        """Write both FAISS files atomically, then the manifest that names their generation.

        An index that outgrew exact search (more than ``FLAT_LIMIT`` vectors in ``Flat``), or one that could not
        remove replaced vectors, is rebuilt from the database first.
        """
        outgrown = any(i.factory == DEFAULT_FACTORY and len(i) > FLAT_LIMIT for i in self._indexes.values())
        if self._stale or outgrown:
            keep = {n: i.factory for n, i in self._indexes.items() if not outgrown or i.factory != DEFAULT_FACTORY}
            self.rebuild(self._generation, save=False, factories=keep)
        self.directory.mkdir(parents=True, exist_ok=True)
        if remove_stray_temps(self.directory):
            log.info("removed temp files an interrupted save left in %s", self.directory)
        for name, idx in self._indexes.items():
            idx.save(self.directory / f"{name}.faiss")
        self._manifest({n: len(i) for n, i in self._indexes.items()}).save(self.directory)
        self._saved_generation = self._generation

    def save_if_changed(self) -> None:
        """:meth:`save`, unless nothing was written since the files were last loaded or saved."""
        if self._indexes and self._generation != self._saved_generation:
            self.save()

    def sync_files(self) -> None:
        """Leave FAISS files that reflect the database: save what changed in memory, or, when nothing was loaded,
        repair files that an interrupted run left behind the database (cheap when they are current)."""
        if self._indexes:
            self.save_if_changed()
        elif not self._files_current(Manifest.load(self.directory), self.catalog.generation(self.info.id)):
            self.load(repair=True)

    def check(self) -> dict[str, Any]:
        """Compare FAISS ids with database rows; a report with ``ok`` and the differences."""
        report: dict[str, Any] = {"ok": True}
        for name, levels in INDEX_LEVELS.items():
            in_index = set(self.index(name).ids().tolist())
            in_db: set[int] = set()
            for ids, _ in self.catalog.iter_vectors(self.info.id, levels, self.info.dim):
                in_db.update(ids.tolist())
            missing, extra = len(in_db - in_index), len(in_index - in_db)
            dupes = len(self.index(name).ids()) - len(in_index)
            report[name] = {
                "db": len(in_db),
                "index": len(self.index(name)),
                "missing": missing,
                "extra": extra,
                "duplicated": dupes,
            }
            report["ok"] = report["ok"] and missing == 0 and extra == 0 and dupes == 0
        return report

    # -- writes ---------------------------------------------------------------------------------
    def write(self, items: list[tuple[MediaRecord, list[VectorRecord]]]) -> WriteResult:
        """Commit files and vectors to the database, then mirror them in the in-memory indexes.

        The FAISS files on disk change only in :meth:`save`; until then a crash is repaired on the next
        :meth:`load` from the committed rows.
        """
        if not self._indexes:
            self.load()
        if self._mmap:
            raise RuntimeError("a store loaded with mmap=True is read-only")
        result = self.catalog.write(self.info.id, self.info.dim, items)
        self._apply(result.removed_ids, result)
        self._generation = result.generation
        return result

    def delete_paths(self, paths: list[str]) -> int:
        """Forget files; returns how many vectors were removed."""
        if not paths:
            return 0
        if not self._indexes:
            self.load()
        removed = self.catalog.delete_media(self.info.id, paths)
        self._apply(removed, None)
        self._generation = self.catalog.generation(self.info.id)
        return len(removed)

    def mark_absent(self, paths: list[str], status: MediaStatus = MediaStatus.MISSING) -> None:
        """Catalog files as missing or trashed: out of the FAISS indexes, their vectors kept in the database."""
        if not paths:
            return
        if not self._indexes:
            self.load()
        removed = self.catalog.mark_absent(self.info.id, paths, status)
        self._apply(removed, None)
        self._generation = self.catalog.generation(self.info.id)

    def restore(self, found: list[MediaRecord]) -> None:
        """Catalog missing or trashed files as there again: their stored vectors go back into the FAISS indexes."""
        if not found:
            return
        if not self._indexes:
            self.load()
        result = self.catalog.restore(self.info.id, self.info.dim, found)
        self._apply(result.removed_ids, result)
        self._generation = result.generation

    def _apply(self, removed: np.ndarray, result: WriteResult | None) -> None:
        if len(removed):
            for idx in self._indexes.values():
                try:
                    idx.remove(removed)
                except RuntimeError:  # HNSW cannot remove: the removed rows are gone from SQL; rebuild on save
                    self._stale = True
        if result is None or not len(result.added_ids):
            return
        levels = np.array(result.added_levels)
        for name, lvls in INDEX_LEVELS.items():
            mask = np.isin(levels, lvls)
            if mask.any():
                self._indexes[name].add(result.added_ids[mask], result.added_vectors[mask])


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
