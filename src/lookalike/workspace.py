"""The Python API: open a library home, index folders, search, find duplicates.

Front doors (CLI, HTTP service) are thin wrappers over :class:`Workspace`::

    from lookalike.config import Settings
    from lookalike.workspace import Workspace

    with Workspace(Settings(home=Path("~/lib").expanduser())) as ws:
        ws.index([Path("~/Pictures").expanduser()])
        for hit in ws.search_files([Path("cat.jpg")])[0].hits:
            print(hit.score, hit.path)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lookalike.actions.plan import ACTIONS as RESOLVE_ACTIONS
from lookalike.actions.rules import parse_rules
from lookalike.config import DEFAULT_MODEL, Settings
from lookalike.errors import CollectionMismatchError, NotIndexedError, UsageError
from lookalike.indexer.discover import IMAGE_MIMES, SNIFF_BYTES, VIDEO_MIMES, sniff_kind
from lookalike.indexer.embedders.registry import collection_name, create_embedder
from lookalike.indexer.embedders.weights import RANDOM_WEIGHTS
from lookalike.indexer.pipeline import Indexer, IndexReport, ProgressFn, pooling_config
from lookalike.storage.library import CollectionStore, Library
from lookalike.storage.locks import lock_if_free, writer_lock

# what the front doors use besides Workspace (they import nothing else of lookalike but config, errors and types)
__all__ = [
    "IMAGE_MIMES",
    "RESOLVE_ACTIONS",
    "SNIFF_BYTES",
    "VIDEO_MIMES",
    "Workspace",
    "parse_rules",
    "schema_revisions",
    "serve_threads",
    "sniff_kind",
    "upgrade_schema",
]

if TYPE_CHECKING:
    from datetime import timedelta

    from lookalike.actions.apply import RunReport
    from lookalike.actions.resolve import Resolution
    from lookalike.indexer.embedders.base import Embedder
    from lookalike.indexer.query_decoder import QueryDecoder
    from lookalike.search.explain import Explanation
    from lookalike.search.groups import DuplicateGroup
    from lookalike.search.media_files import OpenFile
    from lookalike.search.searcher import QueryResult, Searcher
    from lookalike.storage.records import DecisionRecord, MediaRecord, RunRecord
    from lookalike.types import MediaKind


QUERY_DECODERS = 2  # processes that decode untrusted query files (uploads)


def serve_threads() -> None:
    """Tune this process for serving: one torch and one FAISS thread per request (process-wide)."""
    from lookalike.indexer.device import one_thread_per_request
    from lookalike.storage.vectors import set_search_threads

    one_thread_per_request()
    set_search_threads(1)


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


class Workspace:
    """A library home opened with one settings object; builds models and indexes lazily."""

    def __init__(self, settings: Settings, auto_upgrade: bool = True, create: bool = True) -> None:
        """Open the library ``settings`` name; with ``create`` (indexing), make it when there is none.

        Raises:
            NotIndexedError: ``create`` is False and there is no library in the settings' home.
            DatabaseUnavailableError: the catalog database cannot be reached.
        """
        self.settings = settings
        self.library = Library(settings.home, settings.database_url, auto_upgrade=auto_upgrade, create=create)
        self._embedders: dict[tuple[str, str | None], Embedder] = {}
        self._store: CollectionStore | None = None
        self._searcher: Searcher | None = None
        self._decoder: QueryDecoder | None = None

    def close(self) -> None:
        """Stop the query decoders (if any were started); release the database."""
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None
        self.library.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def embedder(self, spec: str, weights: str | None) -> Embedder:
        """The embedder for a model spec, built once per workspace."""
        key = (spec, weights)
        if key not in self._embedders:
            self._embedders[key] = create_embedder(spec, weights, self.settings.device)
        return self._embedders[key]

    # -- writing -------------------------------------------------------------------------------------
    def index(self, roots: Sequence[Path], prune: bool = False, progress: ProgressFn | None = None) -> IndexReport:
        """Index folders with the configured model (incremental; one writer at a time).

        Raises:
            LibraryLockedError: another process is writing to this library.
        """
        spec, weights = self.settings.model, self.settings.weights
        with writer_lock(self.settings.home):
            name = collection_name(spec, weights)
            if self.library.catalog.collection(name) is None:
                emb = self.embedder(spec, weights)
                store = self.library.create_collection(
                    name,
                    emb.spec,
                    emb.weights_tag,
                    emb.dim,
                    emb.preprocess.to_dict(),
                    pooling_config(self.settings),
                )
            else:
                store = self.library.open_collection(name)

            def checked_embedder() -> Embedder:
                emb = self.embedder(spec, weights)
                self._check_weights(store, emb)
                return emb

            report = Indexer(self.settings, checked_embedder, store).run(roots, prune=prune, progress=progress)
            self._store = store
            return report

    @staticmethod
    def _check_weights(store: CollectionStore, embedder: Embedder) -> None:
        if embedder.weights_tag != store.info.weights_tag or embedder.spec != store.info.model:
            raise CollectionMismatchError(
                f"collection {store.info.name!r} was built with {store.info.model} [{store.info.weights_tag}]; "
                f"this run has {embedder.spec} [{embedder.weights_tag}]; pass the same --model/--weights"
            )

    def reindex(self, factory: str | None = None) -> dict[str, str]:
        """Rebuild the collection's FAISS indexes from the stored vectors.

        Args:
            factory: FAISS factory string for the ``items`` index (``Flat``, ``IVF1024,Flat``, ``HNSW32`` ...);
                None chooses by size. The ``videos`` index is always chosen by size.

        Returns:
            the factory string of each index, as recorded in the manifest.
        """
        with writer_lock(self.settings.home):
            store = self.store()
            store.rebuild(factories={"items": factory} if factory else None)
            return {name: store.index(name).factory for name in ("items", "videos")}

    # -- reading ---------------------------------------------------------------------------------------
    def store(self) -> CollectionStore:
        """The collection searches use: the one of the configured model and weights (by name); without explicit
        weights, the only collection of the model; without an explicit model either, the only collection there is.

        Raises:
            NotIndexedError: nothing was indexed yet, or no collection (or more than one) fits the settings.
        """
        if self._store is not None:
            return self._store
        collections = self.library.collections()
        if not collections:
            raise NotIndexedError(f"nothing is indexed in {self.settings.home} yet; run `lookalike index PATH`")
        wanted = collection_name(self.settings.model, self.settings.weights)
        chosen = [c for c in collections if c.name == wanted]
        if not chosen and self.settings.weights is None:
            chosen = [c for c in collections if c.model == self.settings.model]
            if not chosen and len(collections) == 1 and self.settings.model == DEFAULT_MODEL:
                chosen = collections
        if len(chosen) != 1:
            names = ", ".join(f"{c.model} ({c.weights_tag})" for c in collections)
            what = "several collections" if chosen else "no collection"
            raise NotIndexedError(f"{what} of {wanted}; pass --model and --weights for one of: {names}")
        store = self.library.open_collection(chosen[0].name)
        # a reader beside a running writer uses the last saved index files as they are, memory-mapped
        # repairs lagging files only under the writer lock (taken if free); beside a writer, the last saved files
        with lock_if_free(self.settings.home) as free:
            store.load(repair=free, mmap=True)
        self._store = store
        return store

    def refresh(self) -> bool:
        """Forget the loaded collection when a writer has saved newer index files since; the next search loads them.

        Long-lived readers (the HTTP service) call this between requests so that searches see what an index job
        beside them has written. Returns whether anything was dropped.
        """
        if self._store is not None and self._store.outdated():
            self._store = self._searcher = None
            return True
        return False

    def searcher(self) -> Searcher:
        """The searcher over :meth:`store` with the embedder that built it (made once per loaded store).

        Raises:
            CollectionMismatchError: the collection was built with weights other than the ones given.
        """
        from lookalike.search.searcher import Searcher

        store = self.store()
        if self._searcher is not None and self._searcher.store is store:
            return self._searcher
        weights = self.settings.weights
        if weights is None and store.info.weights_tag == RANDOM_WEIGHTS:
            weights = RANDOM_WEIGHTS
        embedder = self.embedder(store.info.model, weights)
        self._check_weights(store, embedder)
        if embedder.device.type == "cuda":
            store.use_gpu(embedder.device.index or 0)
        self._searcher = Searcher(store, embedder, self.settings)
        return self._searcher

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
        searcher.embedder.embed_images([Image.new("RGB", (256, 256), (128, 128, 128))])  # first inference is slow
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

    def search_files(self, paths: Sequence[Path], k: int = 10, verify: bool = False) -> list[QueryResult]:
        """Search by example files (images or videos); ``verify`` checks image results with local features and
        puts verified copies first, each with its relation to the query."""
        return self.searcher().search_files(paths, k, verify)

    def explain(self, a: Path, b: Path, picture: Path | None = None) -> Explanation:
        """Why two image files are or are not duplicates (see :meth:`Searcher.explain`); with ``picture``, a
        side-by-side picture of the matched regions and keypoints is written there."""
        return self.searcher().explain(a, b, picture)

    def search_texts(self, texts: Sequence[str], k: int = 10) -> list[QueryResult]:
        """Search by text (CLIP models)."""
        return self.searcher().search_texts(texts, k)

    def search_media(self, media_id: int, k: int = 10) -> QueryResult:
        """Search by the id of an indexed file."""
        return self.searcher().search_media(media_id, k)

    def duplicates(
        self, similar: bool = False, video_threshold: float | None = None, similar_threshold: float | None = None
    ) -> list[DuplicateGroup]:
        """Verified duplicate groups (images and whole video copies), video overlaps, and with ``similar`` (or a
        ``similar_threshold``) also groups of similar images (not verified). Remembered "not duplicates" decisions
        are respected.

        Args:
            similar: add groups of images whose global vectors are close (kind ``similar``), at the settings'
                ``similar_threshold``.
            video_threshold: aligned segment score for video copies (default: the settings').
            similar_threshold: add similar groups at this cosine instead.
        """
        from lookalike.actions.resolve import distinct_pairs
        from lookalike.search.duplicates import find_duplicates

        s = self.settings
        if similar_threshold is None and similar:
            similar_threshold = s.similar_threshold
        store = self.store()
        return find_duplicates(
            store,
            s.video_dupe_threshold if video_threshold is None else video_threshold,
            similar_threshold,
            distinct=distinct_pairs(self.library.journal, store.info.id),
        )

    # -- cleaning up (the only methods that move user files: see lookalike.actions) ------------------------
    def _writable(self) -> CollectionStore:
        """The collection of :meth:`store`, opened for writing (the caller holds the writer lock)."""
        store = self.library.open_collection(self.store().info.name)
        store.load()
        self._store = None  # readers reload what this writes
        return store

    def resolve(self, keep: str | None = None, apply: bool = False, action: str = "trash") -> Resolution:
        """Plan the clean-up of verified duplicate groups, and with ``apply`` carry it out (journaled, undoable).

        Args:
            keep: keep-best rules, comma-separated (see :data:`lookalike.actions.rules.RULES`); default: keep each
                group's representative.
            apply: move the files (a dry run, the default, changes nothing).
            action: ``trash`` (into ``<home>/trash/<run>/``), or ``hardlink``/``symlink`` to the keeper (identical
                copies only).

        Raises:
            UsageError: an unknown rule or action.
            LibraryLockedError: another process is writing to the library.
        """
        from lookalike.actions.plan import ACTIONS
        from lookalike.actions.resolve import resolve
        from lookalike.actions.rules import KeepRule, parse_rules

        if action not in ACTIONS:
            raise UsageError(f"unknown action {action!r}; use one of: {', '.join(ACTIONS)}")
        rules = parse_rules(keep) if keep else [KeepRule("representative")]
        with writer_lock(self.settings.home):
            store = self._writable()
            return resolve(
                store,
                self.library.journal,
                self.settings.home,
                rules,
                self.settings.video_dupe_threshold,
                apply,
                action,
            )

    def undo(self, run: int | None = None) -> RunReport:
        """Put back every file a run moved (default: the latest run), byte-identical, with the catalog."""
        from lookalike.actions.resolve import undo

        with writer_lock(self.settings.home):
            return undo(self._writable(), self.library.journal, self.settings.home, run)

    def trash_runs(self) -> list[RunRecord]:
        """The runs of this collection, newest first, with their files by state and trash size."""
        return self.library.journal.runs(self.store().info.id)

    def empty_trash(self, older_than: timedelta) -> RunReport:
        """Delete for good the trashed files of runs older than ``older_than`` (they can no longer be undone)."""
        from lookalike.actions.apply import Runner

        with writer_lock(self.settings.home):
            return Runner(self._writable(), self.library.journal, self.settings.home).empty(older_than)

    def distinct(self, paths: Sequence[Path]) -> int:
        """Remember that these files are not duplicates of one another; returns how many pairs were new."""
        from lookalike.actions.resolve import mark_distinct

        with writer_lock(self.settings.home):
            return mark_distinct(self.store(), self.library.journal, paths)

    def decisions(self) -> list[DecisionRecord]:
        """The remembered "not duplicates" pairs."""
        return self.library.journal.decisions(self.store().info.id)

    def forget_decisions(self, ids: Sequence[int]) -> int:
        """Forget remembered pairs by id; returns how many there were."""
        with writer_lock(self.settings.home):
            return self.library.journal.forget(self.store().info.id, ids)

    def info(self) -> dict[str, Any]:
        """Counts per collection, and where the library lives."""
        out: dict[str, Any] = {"home": str(self.settings.home), "collections": []}
        for c in self.library.collections():
            stats = self.library.catalog.stats(c.id)
            out["collections"].append(
                {
                    "name": c.name,
                    "model": c.model,
                    "weights": c.weights_tag,
                    "dim": c.dim,
                    "generation": c.generation,
                    **stats,
                }
            )
        return out

    def files(self, media_ids: Iterable[int]) -> dict[int, MediaRecord]:
        """The catalog records (size, resolution, dates ...) of indexed files by id."""
        return self.library.catalog.media_many(self.store().info.id, media_ids)

    def failures(self) -> list[tuple[str, str, str]]:
        """Files that failed to index, with reason code and message."""
        return self.library.catalog.failures(self.store().info.id)
