"""What the HTTP service shares between requests: one workspace, its model and indexes, and small caches.

Request handlers run in a thread pool, so everything here is guarded by locks. The loaded indexes are memory-mapped
read-only; when an index job beside the service saves a newer generation, the next request (at most once a second)
drops the old store and loads the new files, while requests already running finish on the old mapping.
"""

from __future__ import annotations

import io
import os
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from lookalike.config import Settings
from lookalike.errors import NotIndexedError
from lookalike.indexer.decode import frame_at, load_image
from lookalike.indexer.plan import key_path
from lookalike.indexer.query_decoder import QueryDecoder
from lookalike.indexer.worker import DecodeLimits
from lookalike.search.searcher import QueryResult
from lookalike.storage.records import MediaRecord
from lookalike.types import MediaKind
from lookalike.workspace import Workspace

if TYPE_CHECKING:
    from lookalike.search.groups import DuplicateGroup
    from lookalike.search.searcher import Searcher

REFRESH_SECONDS = 1.0  # how often a request checks whether an index job saved newer files
THUMBNAIL_CACHE = 512  # thumbnails kept in memory
QUERY_DECODERS = 2  # upload decoding processes
DUPES_CACHE = 8  # duplicate listings kept (per index generation and thresholds)


class FileChangedError(NotIndexedError):
    """The file at an indexed path is no longer the one that was indexed (so it is not served)."""


@dataclass(frozen=True)
class Item:
    """An indexed file as the service shows it."""

    id: int
    record: MediaRecord


OWN_FDS = Path("/proc/self/fd")  # Linux: a path per open file of this process


@dataclass(frozen=True)
class OpenFile:
    """An indexed file opened and checked for serving; ``path`` names the open file itself (on Linux, its
    ``/proc/self/fd`` entry), so what is read is what was checked, whatever happens at the indexed path since."""

    item: Item
    fd: int

    @property
    def path(self) -> Path:
        """A path that reads the open file (without ``/proc``, the indexed path, checked to be the same file)."""
        return OWN_FDS / str(self.fd) if OWN_FDS.is_dir() else key_path(self.item.record.path)

    def close(self) -> None:
        """Close the file."""
        os.close(self.fd)


class Service:
    """One library opened for the lifetime of an app; thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workspace = Workspace(settings)
        self._lock = threading.Lock()
        self._searcher: Searcher | None = None
        self._checked = 0.0
        self._dupes: dict[tuple[int, float | None, float], list[DuplicateGroup]] = {}
        self._thumbs: OrderedDict[tuple[int, int, float | None, int], bytes] = OrderedDict()
        self._decoder: QueryDecoder | None = None
        if settings.workers != 0:  # 0: uploads are decoded in this process, unprotected (as `index --workers 0`)
            memory = settings.decode_memory_mb * 2**20 if settings.decode_memory_mb else None
            self._decoder = QueryDecoder(settings.workers or QUERY_DECODERS, settings.decode_timeout, memory)

    def close(self) -> None:
        """Stop the decode workers; release the database."""
        if self._decoder is not None:
            self._decoder.close()
        self.workspace.close()

    def search_upload(self, path: Path, kind: MediaKind, name: str, k: int) -> QueryResult:
        """Search with an uploaded file, decoded in a worker process: a decoder crash, hang or memory blow-up
        fails this query (``decoder_crashed``, ``decode_timeout``, ``out_of_memory``), not the service."""
        searcher = self.searcher()
        if self._decoder is None:
            result = searcher.search_files([path], k)[0]
            return QueryResult(name, result.hits, result.error)
        s = self.settings
        limits = DecodeLimits(s.max_image_pixels, s.max_image_bytes, s.batch_size, searcher.video)
        messages = self._decoder.decode(path, kind, searcher.embedder.preprocess, limits)
        return searcher.search_decoded(name, messages, k)

    def warm_up(self) -> bool:
        """Load the model and indexes now rather than on the first request; False when nothing is indexed yet."""
        try:
            searcher = self.searcher()
        except NotIndexedError:
            return False
        store = searcher.store
        searcher.embedder.embed_images([Image.new("RGB", (256, 256), (128, 128, 128))])  # first inference is slow
        for name in ("items", "videos"):  # fault the memory-mapped index pages in now, not in a user's request
            index = store.index(name)
            if len(index):
                index.search(np.zeros((1, store.dim), np.float32), 1)
        return True

    @property
    def ready(self) -> bool:
        """Whether a collection is loaded (searches can be answered without loading first)."""
        return self._searcher is not None

    def searcher(self) -> Searcher:
        """The shared searcher, reloaded when an index job has saved newer index files.

        Raises:
            NotIndexedError: nothing is indexed yet.
        """
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= REFRESH_SECONDS:
                self._checked = now
                if self.workspace.refresh():
                    self._searcher = None
            if self._searcher is None:
                self._searcher = self.workspace.searcher()
                self._dupes.clear()
            return self._searcher

    def item(self, media_id: int) -> Item:
        """An indexed file by id.

        Raises:
            NotIndexedError: no file has that id.
        """
        store = self.searcher().store
        record = store.catalog.media(store.info.id, media_id)
        if record is None:
            raise NotIndexedError(f"no item with id {media_id}")
        return Item(media_id, record)

    def indexed_file(self, media_id: int) -> OpenFile:
        """An indexed file opened for serving: indexed ok, still a regular file, unchanged. The caller closes it.

        Only paths the catalog holds are ever opened. The file is opened first, without following a symbolic
        link at its place (unless the library follows links), and the open file is what is checked and served:
        a file replaced after indexing (another size or mtime, no longer a regular file, a link swapped in to
        point elsewhere) is refused rather than served, and cannot be swapped between the check and the reading.

        Raises:
            NotIndexedError: no ok item has that id.
            FileChangedError: the file is gone or changed since it was indexed.
        """
        item = self.item(media_id)
        if item.record.status != "ok":
            raise NotIndexedError(f"item {media_id} failed to index ({item.record.error_code}); nothing to show")
        # non-blocking: a FIFO put in the file's place must not hang the request before it is refused below
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
        if not self.settings.follow_symlinks:
            flags |= getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(key_path(item.record.path), flags)  # a catalog key: a name that is not UTF-8 is encoded
        except FileNotFoundError as e:
            raise FileChangedError(f"item {media_id} is no longer on disk; run `lookalike index --prune`") from e
        except OSError as e:  # a link where the file was (ELOOP), or unreadable now
            raise FileChangedError(f"item {media_id} changed on disk since it was indexed; index it again") from e
        st = os.fstat(fd)
        changed = not stat.S_ISREG(st.st_mode) or st.st_size != item.record.size
        changed = changed or st.st_mtime_ns != item.record.mtime_ns
        if not changed and not OWN_FDS.is_dir():  # no /proc: the path is what is read, so it must be this file
            try:
                at_path = os.stat(key_path(item.record.path), follow_symlinks=self.settings.follow_symlinks)
                changed = (at_path.st_dev, at_path.st_ino) != (st.st_dev, st.st_ino)
            except OSError:
                changed = True
        if changed:
            os.close(fd)
            raise FileChangedError(f"item {media_id} changed on disk since it was indexed; index it again")
        return OpenFile(item, fd)

    def thumbnail(self, media_id: int, size: int, at: float | None) -> bytes:
        """A JPEG of an indexed image, or of a video's frame at ``at`` seconds (default: its first), ``size`` px."""
        opened = self.indexed_file(media_id)
        try:
            return self._thumbnail(opened.item, opened.path, size, at)
        finally:
            opened.close()

    def _thumbnail(self, item: Item, path: Path, size: int, at: float | None) -> bytes:
        media_id = item.id
        is_video = item.record.kind == MediaKind.VIDEO.value
        at = (at or 0.0) if is_video else None
        key = (media_id, item.record.mtime_ns, None if at is None else round(at, 1), size)
        with self._lock:
            if key in self._thumbs:
                self._thumbs.move_to_end(key)
                return self._thumbs[key]
        if is_video:
            image = frame_at(path, at or 0.0, short_side=size)
        else:
            image, _ = load_image(
                path, max_pixels=self.settings.max_image_pixels, max_bytes=self.settings.max_image_bytes, draft=size
            )
        image.thumbnail((size, size), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        image.convert("RGB").save(buf, "JPEG", quality=85)
        data = buf.getvalue()
        with self._lock:
            self._thumbs[key] = data
            while len(self._thumbs) > THUMBNAIL_CACHE:
                self._thumbs.popitem(last=False)
        return data

    def duplicates(self, similar_threshold: float | None, video_threshold: float | None) -> list[DuplicateGroup]:
        """Duplicate groups (and similar groups when ``similar_threshold`` is given), computed once per index
        generation and thresholds."""
        from lookalike.search.duplicates import find_duplicates

        store = self.searcher().store
        video_t = self.settings.video_dupe_threshold if video_threshold is None else video_threshold
        key = (store.generation, similar_threshold, video_t)
        with self._lock:
            cached = self._dupes.get(key)
        if cached is None:
            cached = find_duplicates(store, video_t, similar_threshold)
            with self._lock:
                if len(self._dupes) >= DUPES_CACHE:
                    self._dupes.clear()
                self._dupes[key] = cached
        return cached
