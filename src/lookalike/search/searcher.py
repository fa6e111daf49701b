"""Nearest-neighbour search by example file, by text, by vector or by indexed item."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from lookalike.config import Settings
from lookalike.errors import DecodeError, NotIndexedError
from lookalike.indexer.decode import load_image
from lookalike.indexer.describe import MediaDescriptor, describe_video, embed_frames, pool_pictures
from lookalike.indexer.discover import classify
from lookalike.indexer.file_decoding import (
    DecodeLimits,
    Failed,
    FrameChunk,
    ImageItem,
    Message,
    Task,
    VideoEnd,
    decode_job,
)
from lookalike.indexer.plan import key_path, path_key, sha256_file
from lookalike.search.alignment import VideoVectors, score_video
from lookalike.search.candidates import rescored
from lookalike.search.explain import Explanation, draw, explain_images
from lookalike.search.feature_cache import features_of
from lookalike.search.features import Features
from lookalike.search.groups import Relation
from lookalike.search.image_dupes import VerifyRule, content_key, relation, verify_in_order
from lookalike.search.windows import windows
from lookalike.storage.library import CollectionStore
from lookalike.types import MediaKind, MediaStatus, SearchHit

if TYPE_CHECKING:
    from lookalike.indexer.embedders.base import Embedder

log = logging.getLogger(__name__)

OVERFETCH = 4  # several segments of one video can crowd the top k; fetch more, keep one per file
VERIFY_POOL = 40  # candidates a verified search checks with local features
WINDOW_K = 20  # hits searched per window of a verified image query (:mod:`lookalike.search.windows`)
WINDOW_POOL = 16  # candidates the windows add to a verified search (the nearest to any window, not already in)
UNVERIFIED = "unverified"  # a verified search's hit not compared with the query (a video, a file it cannot read)
NOT_DUPLICATE = "not_duplicate"  # a verified search's hit compared with the query: not the same picture
RERANK = 16  # a compressed index fetches k x this many neighbours, re-ranked by their stored vectors


@dataclass
class QueryResult:
    """Results of one query, best first; ``error`` says why a query file could not be used."""

    query: str
    hits: list[SearchHit] = field(default_factory=list)
    error: str | None = None


class Searcher:
    """Answers queries against one collection, with the embedder that built it."""

    def __init__(self, store: CollectionStore, embedder: Embedder, settings: Settings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.video = MediaDescriptor.from_pooling(store.info.pooling)
        self.frame_step = 1.0 / self.video.frame_rate  # seconds between the collection's sampled video frames

    # -- entry points ---------------------------------------------------------------------------------
    def search_files(self, paths: Sequence[Path], k: int = 10, verify: bool = False) -> list[QueryResult]:
        """One result list per query file: images find images and video moments, videos find videos.

        Args:
            paths: query files.
            k: results per query.
            verify: verify an image query's top candidates with local features (as ``dupes`` does): verified
                copies come first, each with its relation to the query.
        """
        return [self._search_file(Path(p), k, verify) for p in paths]

    def explain(self, a: Path, b: Path, picture: Path | None = None) -> Explanation:
        """The duplicate decision on two image files, as ``dupes`` makes it, with its evidence.

        Args:
            a: the first picture (taken as the representative).
            b: the second picture.
            picture: where to write a side-by-side picture of the matched regions and keypoints.

        Raises:
            DecodeError: a file is missing or cannot be decoded as an image.
        """
        image_a, image_b = self._load_image(a), self._load_image(b)
        va, vb = self._image_vector(a), self._image_vector(b)
        keys = (sha256_file(a) or str(a), sha256_file(b) or str(b))
        fa, fb = self._features(a), self._features(b)
        expl, m = explain_images(a, fa, b, fb, float(va @ vb), VerifyRule(), identical=keys[0] == keys[1], keys=keys)
        if picture is not None:
            draw(image_a, image_b, m, picture, duplicate=expl.duplicate)
        return expl

    def _load_image(self, path: Path) -> Image.Image:
        if not path.is_file():
            raise DecodeError("not_found", f"{path} is not a file")
        if classify(path) != MediaKind.IMAGE:
            raise DecodeError("not_an_image", f"{path} is not an image")
        s = self.settings
        try:
            return load_image(path, max_pixels=s.max_image_pixels, max_bytes=s.max_image_bytes)[0]
        except DecodeError as e:  # say which of the two files it is
            raise DecodeError(e.code, f"{path}: {e.args[0]}") from e

    def _image_vector(self, path: Path) -> np.ndarray:
        """An image file's vector, described as the collection describes its images."""
        described = self._describe(
            list(decode_job(Task(0, path, MediaKind.IMAGE), self.embedder.preprocess, self._limits()))
        )
        if isinstance(described, str):
            code, _, message = described.partition(": ")
            raise DecodeError(code, message)
        assert isinstance(described, np.ndarray)
        return described

    def _features(self, path: Path) -> Features:
        s = self.settings
        return features_of(path, s.max_image_pixels, s.max_image_bytes)

    def _verified(self, query: Path, hits: list[SearchHit], k: int) -> list[SearchHit]:
        """``hits`` verified against the query picture: verified copies first, then the rest as ranked, each
        ``not_duplicate`` (compared and rejected) or ``unverified`` (a video, or a file that cannot be read). A file
        holding the query's bytes (the query itself, when it is in the library) is ``identical`` without looking
        further, as ``dupes`` groups identical bytes."""
        rule = VerifyRule()
        fq = self._features(query)
        digest = sha256_file(query)
        records = self.store.catalog.media_many(self.store.info.id, [h.media_id for h in hits])
        confirmed, others = [], []
        for h in hits:
            if h.kind != MediaKind.IMAGE:
                others.append(replace(h, relation=UNVERIFIED))
                continue
            record = records.get(h.media_id)
            if digest is not None and record is not None and record.sha256 == digest:
                confirmed.append(replace(h, relation=Relation.IDENTICAL.value))
                continue
            try:
                fh = self._features(key_path(h.path))  # a catalog key (a name that is not UTF-8 is encoded)
            except (DecodeError, OSError):
                others.append(replace(h, relation=UNVERIFIED))
                continue
            keys = (digest or str(query), content_key(record) if record else h.path)
            verdict = verify_in_order(fq, fh, h.score, rule, keys)
            if verdict.duplicate and verdict.match is not None:
                rel = relation(fq, fh, verdict.match).value
                confirmed.append(replace(h, relation=rel, inliers=verdict.match.inliers))
            else:
                others.append(replace(h, relation=NOT_DUPLICATE))
        return (confirmed + others)[:k]

    def search_texts(self, texts: Sequence[str], k: int = 10) -> list[QueryResult]:
        """Text queries (CLIP models only)."""
        vectors = self.embedder.embed_texts(texts)
        return [QueryResult(t, self.search_vector(vectors[i], k)) for i, t in enumerate(texts)]

    def search_media(self, media_id: int, k: int = 10) -> QueryResult:
        """Items similar to an indexed file (the file itself left out).

        Raises:
            NotIndexedError: no indexed file has that id.
        """
        catalog, cid = self.store.catalog, self.store.info.id
        record = catalog.media(cid, media_id)
        if record is None or record.status != MediaStatus.OK.value:
            raise NotIndexedError(f"no indexed item with id {media_id}")
        vectors = catalog.vectors_of(cid, media_id, self.store.dim)
        if record.kind == MediaKind.IMAGE.value:
            hits = self.search_vector(vectors[0].embedding, k + 1)
        else:
            query = VideoVectors.from_records(vectors, self.frame_step)
            hits = self._search_video(query, k + 1)
        return QueryResult(record.path, [h for h in hits if h.media_id != media_id][:k])

    def search_vector(self, vector: np.ndarray, k: int = 10) -> list[SearchHit]:
        """Images and video moments nearest to a vector; one hit per file, best first."""
        index = self.store.index("items")
        query = np.asarray(vector, np.float32)[None, :]
        found = index.search(query, k * (RERANK if index.lossy else OVERFETCH))
        if index.lossy:  # compressed codes give estimates: rank the fetched neighbours by their stored vectors
            found = rescored(self.store, query, found)
        scores, ids = found.scores[0], found.ids[0]
        stored = self.store.catalog.hydrate(self.store.info.id, ids.tolist())
        hits: list[SearchHit] = []
        seen: set[int] = set()
        for score, vid in zip(scores, ids, strict=True):
            sv = stored.get(int(vid))
            if sv is None or sv.media_id in seen:
                continue
            seen.add(sv.media_id)
            hits.append(SearchHit(sv.media_id, sv.path, MediaKind(sv.kind), float(score), sv.start, sv.end))
            if len(hits) == k:
                break
        return hits

    # -- helpers ---------------------------------------------------------------------------------------
    def _search_file(self, path: Path, k: int, verify: bool = False) -> QueryResult:
        """A query file decoded here, by the indexer's own decode step (as the service decodes uploads in worker
        processes): one description of media for both."""
        name = path_key(path)  # as the catalog names files: a name that is not UTF-8 as its (quoted) bytes
        if not path.is_file():
            return QueryResult(name, error=f"not_found: {name} is not a file")
        kind = classify(path) or MediaKind.IMAGE  # unknown content: the image decoder says precisely why
        messages = list(decode_job(Task(0, path, kind), self.embedder.preprocess, self._limits()))
        if not verify or kind != MediaKind.IMAGE:
            return self.search_decoded(name, messages, k)
        described = self._describe(messages)
        if isinstance(described, str):
            return QueryResult(name, error=described)
        assert isinstance(described, np.ndarray)
        pool = self.search_vector(described, max(k, VERIFY_POOL))
        try:
            pool += self._window_hits(path, described, {h.media_id for h in pool})
        except DecodeError as e:  # the query decoded once already: verify what the whole query found
            log.warning("%s: its parts are not searched: %s", name, e)
        try:
            return QueryResult(name, self._verified(path, pool, k))
        except DecodeError as e:
            return QueryResult(name, error=str(e))

    def _window_hits(self, path: Path, vector: np.ndarray, known: set[int]) -> list[SearchHit]:
        """Images nearest to the windows of an image query (:mod:`lookalike.search.windows`: a collage or a
        screenshot holds its picture in a part) that ``known`` does not hold: the :data:`WINDOW_POOL` best by
        their best window's score, each scored by the cosine of its vector with the whole query's ``vector`` (as
        ``dupes`` scores a pair its keypoints proposed)."""
        s = self.settings
        pictures, _ = self.video.pictures(  # windows are half the sides: decoded (JPEG draft) at twice the model's size
            path, max_pixels=s.max_image_pixels, max_bytes=s.max_image_bytes, draft=2 * self.embedder.preprocess.resize
        )
        parts = [self.video.clean_image(w) for w in windows(pictures[0])]
        if not parts:
            return []
        best: dict[int, tuple[float, SearchHit]] = {}
        for window in self.embedder.embed_images(parts):
            for h in self.search_vector(window, WINDOW_K):
                if h.kind == MediaKind.IMAGE and h.media_id not in known and h.score > best.get(h.media_id, (-2.0,))[0]:
                    best[h.media_id] = (h.score, h)
        chosen = [h for _, h in sorted(best.values(), key=lambda sh: -sh[0])[:WINDOW_POOL]]
        cid, dim = self.store.info.id, self.store.dim
        return [
            replace(h, score=float(vector @ self.store.catalog.vectors_of(cid, h.media_id, dim)[0].embedding))
            for h in chosen
        ]

    def _limits(self) -> DecodeLimits:
        s = self.settings
        return DecodeLimits(s.max_image_pixels, s.max_image_bytes, s.batch_size, self.video)

    def search_decoded(self, name: str, messages: Sequence[Message], k: int = 10) -> QueryResult:
        """Search with a query file decoded into the indexer's messages (here, or in a worker process).

        An image's pixels find images and video moments; a video's frame chunks find videos with ranges; a
        :class:`Failed` message becomes the result's error.
        """
        described = self._describe(messages)
        if isinstance(described, str):
            return QueryResult(name, error=described)
        if isinstance(described, VideoVectors):
            return QueryResult(name, self._search_video(described, k))
        return QueryResult(name, self.search_vector(described, k))

    def _describe(self, messages: Sequence[Message]) -> np.ndarray | VideoVectors | str:
        """A decoded query as the collection describes its files: an image's vector, a video's segment vectors
        (:func:`describe_video`, which the indexer uses too), or why it cannot be used."""
        failed = next((m for m in messages if isinstance(m, Failed)), None)
        if failed is not None:
            return f"{failed.code}: {failed.message}"
        image = next((m for m in messages if isinstance(m, ImageItem)), None)
        if image is not None:
            return pool_pictures(self.embedder.embed_pixels(image.pixels))
        chunks = [m for m in messages if isinstance(m, FrameChunk)]
        end = next((m for m in messages if isinstance(m, VideoEnd)), None)
        if not chunks or end is None:
            return "no_frames: the query video holds no decodable frame"
        size = self.settings.batch_size
        pixels = np.concatenate([c.pixels for c in chunks])
        vectors = np.vstack(
            [
                embed_frames(self.embedder.embed_pixels, pixels[i : i + size], self.video.mirror)
                for i in range(0, len(pixels), size)
            ]
        )
        described = describe_video(np.concatenate([c.times for c in chunks]), vectors, end.meta.duration, self.video)
        return VideoVectors.from_segments(described.segments, self.frame_step, described.vector)

    def _search_video(self, query: VideoVectors, k: int) -> list[SearchHit]:
        """Videos sharing content with the query, ranked by the aligned segment score."""
        catalog, cid, dim = self.store.catalog, self.store.info.id, self.store.dim
        candidates: set[int] = set()
        seg_hits = self.store.index("items").search(query.vectors, k * OVERFETCH)
        vid_hits = self.store.index("videos").search(query.video_vector[None, :], k * OVERFETCH)
        ids = seg_hits.ids.ravel().tolist() + vid_hits.ids.ravel().tolist()
        for sv in catalog.hydrate(cid, ids).values():
            if sv.kind == MediaKind.VIDEO.value:
                candidates.add(sv.media_id)
        hits = []
        for media_id in candidates:
            record = catalog.media(cid, media_id)
            if record is None:
                continue
            ref = VideoVectors.from_records(catalog.vectors_of(cid, media_id, dim), self.frame_step)
            match = score_video(query, ref)
            if match is None:
                continue
            hits.append(
                SearchHit(
                    media_id,
                    record.path,
                    MediaKind.VIDEO,
                    match.score,
                    match.ref_start,
                    match.ref_end,
                    match.query_start,
                    match.query_end,
                )
            )
        hits.sort(key=lambda h: -h.score)
        return hits[:k]
