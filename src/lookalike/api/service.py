"""What the HTTP service shares between requests: one workspace, and small caches over it.

Everything goes through :class:`~lookalike.workspace.Workspace` (the service decodes nothing and reads no catalog
itself). Request handlers run in a thread pool, so the workspace is used under a lock where it loads or reloads.
The loaded indexes are memory-mapped read-only; when an index job beside the service saves a newer generation, the
next request (at most once a second) drops the old store and loads the new files, while requests already running
finish on the old mapping. Changes (resolve, undo, distinct) go through the same workspace methods as the CLI's,
one at a time, and the caches over what they change are dropped after each.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lookalike.config import Settings
from lookalike.types import MediaKind
from lookalike.workspace import Workspace

if TYPE_CHECKING:
    from lookalike.actions.apply import RunReport
    from lookalike.actions.resolve import Resolution
    from lookalike.search.groups import DuplicateGroup
    from lookalike.search.media_files import OpenFile
    from lookalike.search.searcher import QueryResult
    from lookalike.storage.records import DecisionRecord, MediaRecord

T = TypeVar("T")

REFRESH_SECONDS = 1.0  # how often a request checks whether an index job saved newer files
THUMBNAIL_CACHE = 512  # thumbnails kept in memory
DUPES_CACHE = 8  # duplicate listings kept (per index generation and thresholds)


@dataclass(frozen=True)
class Item:
    """An indexed file as the service shows it."""

    id: int
    record: MediaRecord


class Service:
    """One library opened for the lifetime of an app; thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workspace = Workspace(settings)
        self._lock = threading.RLock()
        self._writing = threading.Lock()  # one change at a time (the library's writer lock is per process)
        self._checked = 0.0
        self._ready = False
        self._dupes: dict[tuple[int, tuple[int, ...], float | None, float], list[DuplicateGroup]] = {}
        self._thumbs: OrderedDict[tuple[int, int, float | None, int], bytes] = OrderedDict()

    def close(self) -> None:
        """Stop the query decoders; release the database."""
        self.workspace.close()

    def _current(self) -> Workspace:
        """The workspace, its indexes reloaded when an index job has saved newer files since (checked at most once
        a second), and its searcher made (under the lock: requests arrive on many threads).

        Raises:
            NotIndexedError: nothing is indexed yet.
        """
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= REFRESH_SECONDS:
                self._checked = now
                if self.workspace.refresh():
                    self._dupes.clear()
            self.workspace.searcher()
            self._ready = True
            return self.workspace

    @property
    def ready(self) -> bool:
        """Whether a collection is loaded (searches can be answered without loading first)."""
        return self._ready

    def warm_up(self) -> bool:
        """Load the model and indexes now rather than on the first request; False when nothing is indexed yet."""
        with self._lock:
            self._ready = self.workspace.warm_up()
            return self._ready

    def search_upload(self, path: Path, kind: MediaKind, name: str, k: int) -> QueryResult:
        """Search with an uploaded file, decoded in a worker process (see :meth:`Workspace.search_upload`)."""
        return self._current().search_upload(path, kind, name, k)

    def search_text(self, text: str, k: int) -> QueryResult:
        """Items matching a text (CLIP models)."""
        return self._current().search_texts([text], k)[0]

    def search_media(self, media_id: int, k: int) -> QueryResult:
        """Items similar to an indexed file."""
        return self._current().search_media(media_id, k)

    def summary(self) -> dict[str, Any]:
        """The searched collection (see :meth:`Workspace.summary`)."""
        return self._current().summary()

    def item(self, media_id: int) -> Item:
        """An indexed file by id.

        Raises:
            NotIndexedError: no file has that id.
        """
        return Item(media_id, self._current().item(media_id))

    def indexed_file(self, media_id: int) -> OpenFile:
        """An indexed file opened and checked for serving (see :meth:`Workspace.open_file`); the caller closes it."""
        return self._current().open_file(media_id)

    def thumbnail(self, media_id: int, size: int, at: float | None) -> bytes:
        """A JPEG of an indexed image, or of a video's frame at ``at`` seconds (default: its first), ``size`` px;
        kept in a small cache keyed by the file's modification time."""
        ws = self._current()
        record = ws.item(media_id)
        at = (at or 0.0) if record.kind == MediaKind.VIDEO.value else None
        key = (media_id, record.mtime_ns, None if at is None else round(at, 1), size)
        with self._lock:
            if key in self._thumbs:
                self._thumbs.move_to_end(key)
                return self._thumbs[key]
        data = ws.thumbnail(media_id, size, at)
        with self._lock:
            self._thumbs[key] = data
            while len(self._thumbs) > THUMBNAIL_CACHE:
                self._thumbs.popitem(last=False)
        return data

    def duplicates(self, similar_threshold: float | None, video_threshold: float | None) -> list[DuplicateGroup]:
        """Duplicate groups (and similar groups when ``similar_threshold`` is given), computed once per index
        generation and thresholds; remembered decisions are respected (as `lookalike dupes` does)."""
        ws = self._current()
        video_t = self.settings.video_dupe_threshold if video_threshold is None else video_threshold
        decided = tuple(d.id for d in ws.decisions())  # decisions change groups (ids: a forgotten one is not reused)
        key = (ws.store().generation, decided, similar_threshold, video_t)
        with self._lock:
            cached = self._dupes.get(key)
        if cached is None:
            cached = ws.duplicates(video_threshold=video_t, similar_threshold=similar_threshold)
            with self._lock:
                if len(self._dupes) >= DUPES_CACHE:
                    self._dupes.clear()
                self._dupes[key] = cached
        return cached

    # -- changes -----------------------------------------------------------------------------------------
    def _change(self, change: Callable[[Workspace], T]) -> T:
        """Run ``change`` on the workspace, one change at a time; then drop the duplicate listings, so that the next
        one (and the next search, as the workspace reloads what it wrote) sees what it did."""
        with self._writing:
            ws = self._current()
            try:
                return change(ws)
            finally:
                with self._lock:
                    self._dupes.clear()

    def resolve(self, keep: str | None, apply: bool, action: str, choices: dict[str, str] | None) -> Resolution:
        """Plan the clean-up of the verified duplicate groups, and with ``apply`` carry it out (see
        :meth:`Workspace.resolve`); a dry run changes nothing and runs beside other requests."""
        if not apply:
            return self._current().resolve(keep, False, action, choices)
        return self._change(lambda ws: ws.resolve(keep, True, action, choices))

    def undo(self, run: int | None) -> RunReport:
        """Put back the files of a run (default: the latest), see :meth:`Workspace.undo`."""
        return self._change(lambda ws: ws.undo(run))

    def distinct(self, paths: Sequence[str]) -> tuple[int, list[int]]:
        """Remember these files as not duplicates of one another; returns how many pairs were new and their
        decision ids (which :meth:`forget_decisions` takes back)."""

        def change(ws: Workspace) -> tuple[int, list[int]]:
            before = {d.id for d in ws.decisions()}
            added = ws.distinct([Path(p) for p in paths])
            return added, sorted(d.id for d in ws.decisions() if d.id not in before)

        return self._change(change)

    def forget_decisions(self, ids: Sequence[int]) -> int:
        """Forget remembered decisions by id; returns how many there were."""
        return self._change(lambda ws: ws.forget_decisions(ids))

    def decisions(self) -> list[DecisionRecord]:
        """The remembered "not duplicates" pairs."""
        return self._current().decisions()
