"""The index runner: discover -> plan -> decode (workers) -> embed (batched) -> pool -> write."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lookalike.config import Settings
from lookalike.errors import LookalikeError
from lookalike.indexer.describe import MediaDescriptor
from lookalike.indexer.discover import Skipped, classify, walk
from lookalike.indexer.exif import META_VERSION, read_photos_metadata
from lookalike.indexer.plan import (
    Plan,
    absent,
    key_path,
    make_plan,
    make_record,
    path_key,
    root_bases,
    settled,
    under,
)
from lookalike.storage.library import CollectionStore
from lookalike.storage.records import KnownMedia, MediaRecord, PhotoMetadata, VectorRecord
from lookalike.types import MediaKind, MediaStatus

METADATA_BATCH = 500  # files whose EXIF is read, then committed, at a time (filling a library's older rows)

if TYPE_CHECKING:
    from lookalike.indexer.embed import Embedded
    from lookalike.indexer.embedders.base import Embedder
    from lookalike.indexer.engines import Engine

ProgressFn = Callable[[int, int], None]
WRITE_EVERY_FILES = 64
WRITE_EVERY_SECONDS = 5.0
SAVE_EVERY_SECONDS = 600.0


@dataclass(frozen=True)
class Failure:
    """A file that was not indexed, and why."""

    path: str
    code: str
    message: str


@dataclass
class IndexReport:
    """What an index run did; printed as the end summary.

    ``missing``: files under the roots gone since they were indexed (left out of answers until they are back or
    pruned); ``restored``: missing files found again at their path; ``moved``: missing files found again, by their
    content, at another path (the new path took their vectors); ``pruned``: rows of missing files forgotten.
    """

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    copied: int = 0
    images: int = 0
    videos: int = 0
    frames: int = 0
    pruned: int = 0
    missing: int = 0
    restored: int = 0
    moved: int = 0
    metadata: int = 0
    seconds: float = 0.0
    failed: list[Failure] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def pooling_config(settings: Settings) -> dict[str, Any]:
    """How a new collection turns videos into vectors (:class:`MediaDescriptor`); stored with it."""
    return MediaDescriptor.from_settings(settings).to_pooling()


class Indexer:
    """Runs index jobs against one collection; the model is built only when some file needs embedding."""

    def __init__(self, settings: Settings, embedder: Callable[[], Embedder], store: CollectionStore) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self._failed_by_sha: dict[str, Failure] = {}

    def run(self, roots: Sequence[Path], prune: bool = False, progress: ProgressFn | None = None) -> IndexReport:
        """Index every media file under ``roots``; only new or changed files are decoded.

        Args:
            roots: folders (or single files) to index.
            prune: forget catalogued files under ``roots`` that no longer exist.
            progress: called with (files done, files to do) as files complete.
        """
        started = time.perf_counter()
        report = IndexReport()
        known = self.store.catalog.known_media(self.store.info.id)

        def kind_of(path: Path, st: os.stat_result) -> MediaKind | None:
            old = known.get(path_key(path))
            if old is not None and settled(old, st.st_size, st.st_mtime_ns):
                return MediaKind(old.kind)  # unchanged: no need to open it again
            return classify(path)

        home = self.settings.home  # the library's own folder (its trash) is never indexed
        found = (
            item
            for root in roots
            for item in walk(Path(root), self.settings.follow_symlinks, kind_of=kind_of, skip=home)
        )
        plan = make_plan(found, known)
        report.skipped = plan.skipped
        report.unchanged = len(set(plan.unchanged) | {job.key for job in plan.touched})
        for job in plan.touched:
            self.store.catalog.touch(self.store.info.id, job.key, job.size, job.mtime_ns, job.device, job.inode)
        gone = absent(known, roots, plan)
        self.store.delete_paths(gone.forgotten)
        self.store.mark_absent(gone.missing)
        self.store.restore([make_record(job, MediaStatus.OK) for job in plan.restored])
        report.restored = len(plan.restored)
        report.metadata = self._fill_metadata(plan, known)  # before the copies, which take their source's
        total = len(plan.jobs) + len(plan.copies)
        if plan.jobs:
            self._embed_and_write(plan, report, total, progress)
        self._write_copies(plan, report)
        if progress:
            progress(total, total)
        # a missing file whose content a new path of this run holds was moved there: the new path has its vectors
        landed = {job.sha256 for job in plan.copies if job.sha256}
        missing = {key for key, m in known.items() if m.status == MediaStatus.MISSING.value} | set(gone.missing)
        missing -= plan.seen
        bases = root_bases(roots)
        moved = {key for key in missing if known[key].sha256 in landed and under(key, bases)}
        self.store.delete_paths(sorted(moved) + gone.aliases)  # after the copies that took their vectors
        report.moved = len(moved)
        still = sorted(key for key in missing - moved if under(key, bases))
        if prune:
            self.store.delete_paths(still)
            report.pruned = len(still)
        else:
            report.missing = len(still)
        self.store.sync_files()  # also repairs files an interrupted earlier run left behind
        report.seconds = time.perf_counter() - started
        return report

    def _fill_metadata(self, plan: Plan, known: dict[str, KnownMedia]) -> int:
        """Read the EXIF of files this run leaves as they are whose rows predate the metadata reader (or an older
        version of it), from their headers; their vectors stay untouched. Returns how many rows were filled.

        Batches are committed as they are read (a first run over a large library keeps what it read when stopped);
        each batch is marked as begun first, so that a file whose header kills the process is not read again by
        every later run (its row keeps no metadata); a file that cannot be read now is tried again next run.
        """
        kept = set(plan.unchanged) | {job.key for job in plan.touched} | {job.key for job in plan.restored}

        def due(m: KnownMedia) -> bool:
            version = m.meta_version or 0
            return version < META_VERSION and version != -META_VERSION and m.status != MediaStatus.FAILED.value

        stale = sorted(key for key in kept if due(known[key]))
        images = [key for key in stale if known[key].kind == MediaKind.IMAGE.value]
        others = [(key, PhotoMetadata()) for key in stale if known[key].kind != MediaKind.IMAGE.value]
        cid, catalog = self.store.info.id, self.store.catalog
        if others:
            catalog.set_metadata(cid, others, META_VERSION)
        filled = len(others)
        for start in range(0, len(images), METADATA_BATCH):
            batch = images[start : start + METADATA_BATCH]
            catalog.mark_metadata(cid, batch, -META_VERSION)
            read = read_photos_metadata([key_path(key) for key in batch])
            found = [(key, photo) for key, photo in zip(batch, read, strict=True) if photo is not None]
            catalog.set_metadata(cid, found, META_VERSION)
            catalog.mark_metadata(cid, [key for key, photo in zip(batch, read, strict=True) if photo is None], 0)
            filled += len(found)
        return filled

    def _embed_and_write(self, plan: Plan, report: IndexReport, total: int, progress: ProgressFn | None) -> None:
        from lookalike.indexer.engines import make_engine  # torch (or Ray) is imported only when there is work

        pending: list[tuple[MediaRecord, list[VectorRecord]]] = []
        last_write = last_save = time.monotonic()
        video = MediaDescriptor.from_pooling(self.store.info.pooling)  # what the collection was built with
        engine = make_engine(self.settings, self.embedder)
        try:
            for done, done_file in enumerate(engine.embed(plan.jobs, video), 1):
                pending.append((done_file.record, done_file.vectors))
                self._count(done_file, plan, report)
                if progress:
                    progress(done, total)
                now = time.monotonic()
                if len(pending) >= WRITE_EVERY_FILES or now - last_write > WRITE_EVERY_SECONDS:
                    self._write_embedded(pending, engine)
                    pending, last_write = [], now
                if now - last_save > SAVE_EVERY_SECONDS:
                    self.store.save()
                    last_save = now
        # the engine stopped (a cluster lost, a folder a node cannot see) or the user pressed Ctrl-C: keep what finished
        except (LookalikeError, KeyboardInterrupt):
            if pending:
                self._write_embedded(pending, engine)
            raise
        if pending:
            self._write_embedded(pending, engine)

    def _write_embedded(self, items: list[tuple[MediaRecord, list[VectorRecord]]], engine: Engine) -> None:
        """Commit freshly embedded files, the runtimes that computed their vectors noted first: a run killed after
        a write leaves no vector whose runtime the collection does not list."""
        for runtime, tolerance in sorted(engine.runtimes):
            self.store.note_runtime(runtime, tolerance)
        self.store.write(items)

    def _count(self, done: Embedded, plan: Plan, report: IndexReport) -> None:
        job, record = done.job, done.record
        if record.status == MediaStatus.FAILED.value:
            failure = Failure(job.key, record.error_code or "", record.error or "")
            report.failed.append(failure)
            if job.sha256:
                self._failed_by_sha[job.sha256] = failure
            return
        if job.key in plan.updated:
            report.updated += 1
        else:
            report.new += 1
        if job.kind == MediaKind.IMAGE:
            report.images += 1
        else:
            report.videos += 1
            report.frames += done.frames

    def _write_copies(self, plan: Plan, report: IndexReport) -> None:
        """Files whose bytes equal an indexed file's: store the same vectors without decoding."""
        catalog, cid = self.store.catalog, self.store.info.id
        items: list[tuple[MediaRecord, list[VectorRecord]]] = []
        for job in plan.copies:
            source = catalog.ok_media_with_sha(cid, job.sha256 or "")
            src = catalog.media(cid, source) if source is not None else None
            if source is None or src is None:
                twin = self._failed_by_sha.get(job.sha256 or "")
                code = twin.code if twin else "duplicate_of_failed"
                message = f"same bytes as {twin.path}: {twin.message}" if twin else "same bytes as a failed file"
                items.append((make_record(job, MediaStatus.FAILED, error_code=code, error=message), []))
                report.failed.append(Failure(job.key, code, message))
                continue
            vectors = catalog.vectors_of(cid, source, self.store.dim)
            items.append(
                (
                    make_record(
                        job,
                        MediaStatus.OK,
                        width=src.width,
                        height=src.height,
                        duration=src.duration,
                        fps=src.fps,
                        n_frames=src.n_frames,
                        taken_at=src.taken_at,
                        camera=src.camera,
                        exif_fields=src.exif_fields,
                        meta_version=src.meta_version,
                    ),
                    vectors,
                )
            )
            report.copied += 1
            if job.key in plan.updated:
                report.updated += 1
            else:
                report.new += 1
        for start in range(0, len(items), WRITE_EVERY_FILES):
            self.store.write(items[start : start + WRITE_EVERY_FILES])
