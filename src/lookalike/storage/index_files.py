"""A collection's FAISS files: loaded (memory-mapped for readers), repaired from the SQL rows when they lag, saved
atomically with the manifest that ties them to the database's generation."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import CollectionMismatchError
from lookalike.storage.catalog import Catalog
from lookalike.storage.files import remove_stray_temps
from lookalike.storage.index_policy import DEFAULT_FACTORY, choose_factory, rebuild_factories, training_size
from lookalike.storage.manifest import Manifest
from lookalike.storage.records import CollectionInfo, WriteResult
from lookalike.storage.vectors import VectorIndex
from lookalike.types import Level

log = logging.getLogger(__name__)

SHARD_VECTORS = 50_000  # vectors per shard a shard encoder fills (200 MB of 1280-d float32)

ShardEncoder = Callable[[VectorIndex, Iterable[tuple[np.ndarray, np.ndarray]]], Iterator[VectorIndex]]
"""Fills copies of a trained, empty index, one per chunk of ``(ids, vectors)``, and yields them filled, in the
chunks' order (e.g. on a Ray cluster: :mod:`lookalike.indexer.engines.ray_index`)."""

# Which vector levels live in which FAISS file.
INDEX_LEVELS: dict[str, tuple[str, ...]] = {
    "items": (Level.IMAGE.value, Level.SEGMENT.value),
    "videos": (Level.VIDEO.value,),
}


class IndexFiles:
    """The FAISS mirror of one collection's vectors: SQL rows are the truth, these files a checkpoint of them."""

    def __init__(self, directory: Path, catalog: Catalog, info: CollectionInfo) -> None:
        self.directory = directory
        self.catalog = catalog
        self.info = info
        self.indexes: dict[str, VectorIndex] = {}
        self.generation = -1  # the database generation the loaded indexes reflect
        self._saved_generation = -1
        self._stale = False  # an index type that cannot remove ids was asked to: rebuild before saving
        self.mmap = False

    def index(self, name: str) -> VectorIndex:
        """The loaded FAISS index ``items`` or ``videos`` (loaded on first use)."""
        if not self.indexes:
            self.load()
        return self.indexes[name]

    # -- loading and repair -------------------------------------------------------------------------
    def _manifest(self, counts: dict[str, int]) -> Manifest:
        return Manifest(
            model=self.info.model,
            weights_tag=self.info.weights_tag,
            dim=self.info.dim,
            metric=self.info.metric,
            factories={n: i.factory for n, i in self.indexes.items()},
            generation=self.generation,
            counts=counts,
            preprocessing=self.info.preprocessing,
            pooling=self.info.pooling,
            runtime=self.info.runtime,
        )

    def current(self, manifest: Manifest | None, generation: int) -> bool:
        """Whether files with this manifest reflect the database at ``generation``.

        Raises:
            CollectionMismatchError: the files hold another model's vectors.
        """
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
                and the process stays small); such indexes cannot be written to.
        """
        self.mmap = mmap
        generation = self.catalog.generation(self.info.id)
        manifest = Manifest.load(self.directory)
        factories = manifest.factories if manifest is not None else {}
        read = self.current(manifest, generation)
        loaded = self._load_files(factories) if read else None
        if (
            loaded is not None
            and manifest is not None
            and all(len(loaded[n]) == manifest.counts.get(n, -1) for n in INDEX_LEVELS)
        ):
            if not any(i.legacy for i in loaded.values()):
                self.indexes, self.generation = loaded, generation
                self._saved_generation = generation
                return
            log.warning(
                "rebuilding the IVF indexes of %s: files of this older layout answer wrongly after removals (a reader "
                "rebuilds them in memory each time: `lookalike reindex` rewrites them)",
                self.info.name,
            )
        if not repair and manifest is not None and all((self.directory / f"{n}.faiss").exists() for n in INDEX_LEVELS):
            if not read:  # (files read above are not read again: a damaged or old one would warn twice)
                loaded = self._load_files(factories)
            if loaded is not None and not any(i.legacy for i in loaded.values()):
                self.indexes = loaded
                self.generation = manifest.generation
                return
        self.rebuild(generation, save=repair, factories=factories)

    def outdated(self) -> bool:
        """Whether a writer saved index files of another generation since these were loaded (a reader reloads)."""
        if not self.indexes:
            return False
        manifest = Manifest.load(self.directory)
        return manifest is not None and manifest.generation != self.generation

    def _load_files(self, factories: dict[str, str]) -> dict[str, VectorIndex] | None:
        """The saved indexes, or None when a file cannot be read (damaged: it is rebuilt from the catalog)."""
        loaded = {}
        for n in INDEX_LEVELS:
            path = self.directory / f"{n}.faiss"
            try:
                loaded[n] = VectorIndex.load(path, factories.get(n, DEFAULT_FACTORY), mmap=self.mmap)
            except (RuntimeError, OSError) as e:
                log.warning("cannot read %s (%s): rebuilding it from the catalog", path, str(e).strip()[-120:])
                return None
        return loaded

    def use_gpu(self, device: int = 0) -> bool:
        """Search from GPU copies of the indexes when faiss-gpu sees a GPU; False when they stay on the CPU."""
        return all([self.index(name).to_gpu(device) for name in INDEX_LEVELS])

    def rebuild(
        self,
        generation: int | None = None,
        save: bool = True,
        factories: dict[str, str] | None = None,
        encoder: ShardEncoder | None = None,
        strict: bool = False,
    ) -> None:
        """Rebuild both FAISS indexes from the vectors stored in the database (and save them).

        The stored vectors are read in chunks and never all held: an IVF index is trained on an evenly spread
        sample, then filled chunk by chunk (a compressed one holds only its codes).

        Args:
            generation: the database generation the rebuilt indexes reflect (default: the current one).
            save: write the files and manifest afterwards.
            factories: FAISS factory string per index; missing ones are chosen by size (:func:`choose_factory`).
            encoder: fills shards of a trained index elsewhere (in parallel), which are merged here in order; the
                result equals filling it here. None: filled in this process.
            strict: ``factories`` were asked for (``reindex --factory``): an IVF with more lists than there are
                vectors is an error; otherwise (a repair) the index is chosen by size instead.

        Raises:
            IndexTypeError: ``strict`` and an IVF cannot be trained on so few vectors.
        """
        if generation is None:
            generation = self.catalog.generation(self.info.id)
        log.info("rebuilding FAISS indexes of %s from the database", self.info.name)
        indexes = {}
        for name, levels in INDEX_LEVELS.items():
            count = self.catalog.count_vectors(self.info.id, levels)
            by_size = choose_factory(count, self.info.dim)
            factory = (factories or {}).get(name) or by_size
            idx = VectorIndex.create(self.info.dim, factory)
            if not strict and not idx.is_trained and idx.lists > count and factory != by_size:
                # a library that shrank below its IVF's list count cannot train it again (a damaged or old file
                # being rebuilt): chosen by size instead
                log.warning(
                    "%s has %d vectors, fewer than the %d lists of %s: rebuilt as %s",
                    name,
                    count,
                    idx.lists,
                    factory,
                    by_size,
                )
                factory = by_size
                idx = VectorIndex.create(self.info.dim, factory)
            if not idx.is_trained:
                idx.train(self._sample(levels, max(training_size(factory), 1), count))
            chunks = self.catalog.iter_vectors(self.info.id, levels, self.info.dim, chunk=SHARD_VECTORS)
            if encoder is not None and idx.shardable:
                for shard in encoder(idx, chunks):
                    idx.merge(shard)
            else:
                for ids, mat in chunks:
                    idx.add(ids, mat)
            indexes[name] = idx
        self.indexes, self.generation, self._stale = indexes, generation, False
        if save:
            self._write()  # as asked: the size check of :meth:`save` must not override a factory chosen just now

    def _sample(self, levels: tuple[str, ...], size: int, total: int) -> np.ndarray:
        """About ``size`` stored vectors spread evenly over the whole collection."""
        rng = np.random.default_rng(0)
        keep = min(1.0, size / max(1, total))
        parts = [
            mat[rng.random(len(mat)) < keep]
            for _, mat in self.catalog.iter_vectors(self.info.id, levels, self.info.dim)
        ]
        return np.vstack(parts) if parts else np.zeros((0, self.info.dim), np.float32)

    # -- saving --------------------------------------------------------------------------------------
    def save(self) -> None:
        """Write both FAISS files atomically, then the manifest that names their generation; an index that must
        be rebuilt first (:func:`rebuild_factories`) is rebuilt from the database."""
        factories = rebuild_factories(self.indexes, self._stale, self.info.dim)
        if factories is not None:
            self.rebuild(self.generation, save=False, factories=factories)
        self._write()

    def _write(self) -> None:
        """Write both FAISS files atomically, then the manifest that names their generation."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if remove_stray_temps(self.directory):
            log.info("removed temp files an interrupted save left in %s", self.directory)
        for name, idx in self.indexes.items():
            idx.save(self.directory / f"{name}.faiss")
        self._manifest({n: len(i) for n, i in self.indexes.items()}).save(self.directory)
        self._saved_generation = self.generation

    def save_if_changed(self) -> None:
        """:meth:`save`, unless nothing was written since the files were last loaded or saved."""
        if self.indexes and self.generation != self._saved_generation:
            self.save()

    def sync(self) -> None:
        """Leave FAISS files that reflect the database: save what changed in memory, or, when nothing was loaded,
        repair files that an interrupted run left behind the database (cheap when they are current)."""
        if self.indexes:
            self.save_if_changed()
        elif not self.current(Manifest.load(self.directory), self.catalog.generation(self.info.id)):
            self.load(repair=True)

    def check(self) -> dict[str, Any]:
        """Compare FAISS ids with database rows; a report with ``ok`` and the differences."""
        report: dict[str, Any] = {"ok": True}
        for name, levels in INDEX_LEVELS.items():
            listed = self.index(name).ids()  # an IVF's are read list by list: once
            in_index = set(listed.tolist())
            in_db: set[int] = set()
            for ids, _ in self.catalog.iter_vectors(self.info.id, levels, self.info.dim):
                in_db.update(ids.tolist())
            missing, extra = len(in_db - in_index), len(in_index - in_db)
            dupes = len(listed) - len(in_index)
            report[name] = {
                "db": len(in_db),
                "index": len(self.index(name)),
                "missing": missing,
                "extra": extra,
                "duplicated": dupes,
            }
            report["ok"] = report["ok"] and missing == 0 and extra == 0 and dupes == 0
        return report

    # -- mirroring writes ----------------------------------------------------------------------------
    def writable(self) -> None:
        """Load the indexes before a write is committed (loading after it would rebuild them with the write's rows,
        which :meth:`apply` would then add twice), and check they may be written to."""
        if not self.indexes:
            self.load()
        if self.mmap:
            raise RuntimeError("indexes loaded with mmap=True are read-only")

    def apply(self, removed: np.ndarray, result: WriteResult | None, generation: int) -> None:
        """Mirror a committed write in memory (after :meth:`writable`): take ``removed`` ids out, put ``result``'s
        new vectors in."""
        if len(removed):
            for idx in self.indexes.values():
                try:
                    idx.remove(removed)
                except RuntimeError:  # HNSW cannot remove: the removed rows are gone from SQL; rebuild on save
                    self._stale = True
        if result is not None and len(result.added_ids):
            levels = np.array(result.added_levels)
            for name, lvls in INDEX_LEVELS.items():
                mask = np.isin(levels, lvls)
                if mask.any():
                    self.indexes[name].add(result.added_ids[mask], result.added_vectors[mask])
        self.generation = generation
