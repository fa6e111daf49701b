"""The Workspace methods a long-lived service uses: untrusted uploads decoded in worker processes, warming up,
indexed files opened (checked) and thumbnailed; and the process-level helpers of the front doors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lookalike.config import Settings
from lookalike.errors import NotIndexedError
from lookalike.storage.library import CollectionStore, Library

if TYPE_CHECKING:
    from lookalike.indexer.query_decoder import QueryDecoder
    from lookalike.search.media_files import OpenFile
    from lookalike.search.searcher import QueryResult, Searcher
    from lookalike.storage.records import MediaRecord
    from lookalike.types import MediaKind

QUERY_DECODERS = 2  # processes that decode untrusted query files (uploads)


def serve_threads() -> None:
    """Tune this process for serving: one torch and one FAISS thread per request (process-wide); ONNX Runtime's and
    OpenVINO's sessions take theirs from the settings (:func:`for_serving`)."""
    from lookalike.indexer.device import one_thread_per_request
    from lookalike.storage.vectors import set_search_threads

    one_thread_per_request()
    set_search_threads(1)


SERVE_INFERENCE_THREADS = 1  # per ONNX Runtime / OpenVINO session, as serve_threads sets torch's


def for_serving(settings: Settings) -> Settings:
    """``settings`` as ``lookalike serve`` runs them: each inference session on one thread (see
    :func:`serve_threads`), unless a count was set."""
    return settings.with_(inference_threads=settings.inference_threads or SERVE_INFERENCE_THREADS)


def upgrade_schema(settings: Settings) -> tuple[str | None, str | None]:
    """Migrate the settings' database to the newest schema; returns the revision before and after."""
    from lookalike.storage.db import current_revision, make_engine, upgrade

    engine = make_engine(settings.database_url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        return before, current_revision(engine)
    finally:
        engine.dispose()


def schema_revisions(settings: Settings) -> tuple[str | None, str | None]:
    """The database's schema revision and the newest this lookalike knows."""
    from lookalike.storage.db import current_revision, head_revision, make_engine

    engine = make_engine(settings.database_url)
    try:
        return current_revision(engine), head_revision()
    finally:
        engine.dispose()


class ServingMethods:
    """Part of :class:`lookalike.workspace.Workspace` (which provides the attributes and methods declared here)."""

    settings: Settings
    library: Library
    _decoder: QueryDecoder | None

    if TYPE_CHECKING:

        def store(self) -> CollectionStore: ...

        def searcher(self) -> Searcher: ...

    def search_upload(self, path: Path, kind: MediaKind, name: str, k: int = 10) -> QueryResult:
        """Search with an untrusted file (an upload), decoded in a supervised worker process unless the settings
        say ``workers=0``: a decoder crash, hang or memory blow-up fails this query (``decoder_crashed``,
        ``decode_timeout``, ``out_of_memory``), not the caller."""
        from lookalike.indexer.file_decoding import DecodeLimits
        from lookalike.search.searcher import QueryResult

        searcher = self.searcher()
        s = self.settings
        if s.workers == 0:
            result = searcher.search_files([path], k)[0]
            return QueryResult(name, result.hits, result.error)
        limits = DecodeLimits(s.max_image_pixels, s.max_image_bytes, s.batch_size, searcher.video)
        messages = self.query_decoder().decode(path, kind, searcher.embedder.preprocess, limits)
        return searcher.search_decoded(name, messages, k)

    def query_decoder(self) -> QueryDecoder:
        """The processes that decode untrusted query files (started on first use, stopped by :meth:`close`)."""
        from lookalike.indexer.query_decoder import QueryDecoder

        if self._decoder is None:
            s = self.settings
            memory = s.decode_memory_mb * 2**20 if s.decode_memory_mb else None
            self._decoder = QueryDecoder(s.workers or QUERY_DECODERS, s.decode_timeout, memory)
        return self._decoder

    def warm_up(self) -> bool:
        """Load the model and indexes, run a first inference and fault the index pages in, and start the query
        decoders: the first request is then as fast as the next; False when nothing is indexed yet."""
        import numpy as np
        from PIL import Image

        if self.settings.workers != 0:
            self.query_decoder()  # its processes start now, not in the first upload
        try:
            searcher = self.searcher()
        except NotIndexedError:
            return False
        # the first inference is slow, and on ONNX Runtime or OpenVINO it exports and checks the graph against torch
        # (on the main thread, before requests): a picture with detail, not a flat one, makes that check mean something
        detail = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
        searcher.embedder.embed_images([Image.fromarray(detail)])
        store = searcher.store
        for name in ("items", "videos"):
            index = store.index(name)
            if len(index):
                index.search(np.zeros((1, store.dim), np.float32), 1)
        return True

    def summary(self) -> dict[str, Any]:
        """The searched collection: model, whether it takes text queries, files and vectors, index generation."""
        searcher = self.searcher()
        store = searcher.store
        stats = store.catalog.stats(store.info.id)
        return {
            "model": store.info.model,
            "text_search": searcher.embedder.supports_text,
            "items": sum(v for k, v in stats.items() if k.endswith("_ok")),
            "vectors": sum(v for k, v in stats.items() if k.startswith("vectors_")),
            "generation": store.generation,
        }

    def item(self, media_id: int) -> MediaRecord:
        """What the catalog holds about one file.

        Raises:
            NotIndexedError: no file has that id.
        """
        record = self.library.catalog.media(self.store().info.id, media_id)
        if record is None:
            raise NotIndexedError(f"no item with id {media_id}")
        return record

    def open_file(self, media_id: int) -> OpenFile:
        """An indexed file opened for reading after checking it is still the file indexed (see
        :func:`lookalike.search.media_files.open_indexed`); the caller closes it.

        Raises:
            NotIndexedError: no ok file has that id.
            FileChangedError: the file is gone or changed since it was indexed.
        """
        from lookalike.search.media_files import open_indexed

        return open_indexed(media_id, self.item(media_id), self.settings.follow_symlinks)

    def thumbnail(self, media_id: int, size: int, at: float | None = None) -> bytes:
        """A JPEG of an indexed image, or of a video's frame at ``at`` seconds, ``size`` px (see :meth:`open_file`)."""
        from lookalike.search.media_files import thumbnail

        opened = self.open_file(media_id)
        try:
            s = self.settings
            return thumbnail(opened, size, at, s.max_image_pixels, s.max_image_bytes)
        finally:
            opened.close()
