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

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lookalike.actions.plan import ACTIONS as RESOLVE_ACTIONS
from lookalike.actions.rules import parse_rules
from lookalike.config import DEFAULT_MODEL, Settings
from lookalike.errors import CollectionMismatchError, NotIndexedError
from lookalike.indexer.discover import IMAGE_MIMES, SNIFF_BYTES, VIDEO_MIMES, sniff_kind
from lookalike.indexer.embedders.registry import collection_name, create_embedder
from lookalike.indexer.embedders.weights import RANDOM_WEIGHTS
from lookalike.indexer.pipeline import Indexer, IndexReport, ProgressFn, pooling_config
from lookalike.storage.library import CollectionStore, Library
from lookalike.storage.locks import lock_if_free, writer_lock
from lookalike.workspace.cleanup import TRASHES, CleanupMethods
from lookalike.workspace.cluster import candidate_search, ray_session, shard_encoder
from lookalike.workspace.serving import ServingMethods, for_serving, schema_revisions, serve_threads, upgrade_schema

# what the front doors use besides Workspace (they import nothing else of lookalike but config, errors and types)
__all__ = [
    "IMAGE_MIMES",
    "RESOLVE_ACTIONS",
    "SNIFF_BYTES",
    "TRASHES",
    "VIDEO_MIMES",
    "Workspace",
    "for_serving",
    "parse_rules",
    "schema_revisions",
    "serve_threads",
    "sniff_kind",
    "upgrade_schema",
]

if TYPE_CHECKING:
    from lookalike.indexer.embedders.base import Embedder
    from lookalike.indexer.query_decoder import QueryDecoder
    from lookalike.search.explain import Explanation
    from lookalike.search.groups import DuplicateGroup
    from lookalike.search.searcher import QueryResult, Searcher
    from lookalike.storage.records import MediaRecord


class Workspace(ServingMethods, CleanupMethods):
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
        self._loading = threading.Lock()  # one load of the collection at a time (the service reads on many threads)

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
            s = self.settings
            self._embedders[key] = create_embedder(
                spec, weights, s.device, s.backend, s.models_dir, s.inference_threads
            )
        return self._embedders[key]

    # -- writing -------------------------------------------------------------------------------------
    def index(self, roots: Sequence[Path], prune: bool = False, progress: ProgressFn | None = None) -> IndexReport:
        """Index folders with the configured model (incremental; one writer at a time).

        With ``settings.ray`` set, files are decoded and embedded on a Ray cluster (see
        :mod:`lookalike.indexer.engines.ray`); this process still plans, commits and saves.

        Raises:
            LibraryLockedError: another process is writing to this library.
            UsageError: Ray is asked for and not installed.
            SharedStorageError: a node of the cluster cannot read a file's folder.
            ClusterError: the Ray cluster cannot be joined, or its pipeline failed.
        """
        spec, weights = self.settings.model, self.settings.weights
        with ray_session(self.settings), writer_lock(self.settings.home, self.library.engine) as lock:
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

            store.lock = lock  # each commit checks the lock is still held (a dropped PostgreSQL session loses it)
            try:
                report = Indexer(self.settings, checked_embedder, store).run(roots, prune=prune, progress=progress)
            finally:
                store.lock = None
            with self._loading:
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
            factory: FAISS factory string for the ``items`` index (``Flat``, ``IVF1024,Flat``, ``HNSW32``,
                ``IVF4096,PQ128`` ...); None chooses by size. The ``videos`` index is always chosen by size.

        With ``settings.ray`` set, the shards of an IVF index are filled by Ray tasks and merged here.

        Returns:
            the factory string of each index, as recorded in the manifest.

        Raises:
            UsageError: Ray is asked for and not installed.
            ClusterError: the Ray cluster cannot be joined, or a task failed.
        """
        with (
            ray_session(self.settings),
            writer_lock(self.settings.home, self.library.engine),
            shard_encoder(self.settings) as encoder,
        ):
            store = self.store()
            store.rebuild(factories={"items": factory} if factory else None, encoder=encoder, strict=True)
            return {name: store.index(name).factory for name in ("items", "videos")}

    # -- reading ---------------------------------------------------------------------------------------
    def store(self) -> CollectionStore:
        """The collection searches use: the one of the configured model and weights (by name); without explicit
        weights, the only collection of the model; without an explicit model either, the only collection there is.

        Raises:
            NotIndexedError: nothing was indexed yet, or no collection (or more than one) fits the settings.
        """
        store = self._store
        if store is not None:
            return store
        with self._loading:
            if self._store is None:
                self._store = self._load_store()
            return self._store

    def _load_store(self) -> CollectionStore:
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
        with lock_if_free(self.settings.home, self.library.engine) as free:
            store.load(repair=free, mmap=True)
        return store

    def refresh(self) -> bool:
        """Forget the loaded collection when a writer has saved newer index files since; the next search loads them.

        Long-lived readers (the HTTP service) call this between requests so that searches see what an index job
        beside them has written. Returns whether anything was dropped.
        """
        with self._loading:
            if self._store is not None and self._store.outdated():
                self._store = self._searcher = None
                return True
        return False

    def _forget_store(self) -> None:
        """Drop the loaded collection after this workspace wrote to it: the next read loads what was written."""
        with self._loading:
            self._store = None

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
        if embedder.device_type == "cuda":
            store.use_gpu(embedder.device.index or 0)
        self._searcher = Searcher(store, embedder, self.settings)
        return self._searcher

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
                ``similar_threshold``; two files of one duplicate group are not paired there again.
            video_threshold: aligned segment score for video copies (default: the settings').
            similar_threshold: add similar groups at this cosine instead.

        With ``settings.ray`` set, the candidate stages search the saved index file on Ray actors (verification
        and grouping stay here).

        Raises:
            UsageError: Ray is asked for and not installed, or no index file is saved yet.
            ClusterError: the Ray cluster cannot be joined, or a search failed.
        """
        from lookalike.actions.resolve import distinct_pairs
        from lookalike.search.duplicates import find_duplicates

        s = self.settings
        if similar_threshold is None and similar:
            similar_threshold = s.similar_threshold
        with ray_session(s):
            store = self.store()
            with candidate_search(s, store) as search:
                return find_duplicates(
                    store,
                    s.video_dupe_threshold if video_threshold is None else video_threshold,
                    similar_threshold,
                    distinct=distinct_pairs(self.library.journal, store.info.id),
                    search=search,
                )

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
                    "runtime": c.runtime,
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
