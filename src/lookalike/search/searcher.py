"""Nearest-neighbour search by example file, by text, by vector or by indexed item."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from lookalike.config import Settings
from lookalike.errors import DecodeError, NotIndexedError
from lookalike.indexer.decode import load_image, sample_frames
from lookalike.indexer.describe import MediaDescriptor, fold_mirrors, pool_pictures, with_mirrors
from lookalike.indexer.discover import classify
from lookalike.indexer.plan import key_path
from lookalike.indexer.pooling import pool_segments
from lookalike.indexer.worker import Failed, FrameChunk, ImageItem, Message, VideoEnd
from lookalike.search.alignment import QueryVideo, score_video
from lookalike.search.explain import Explanation, draw, explain_images
from lookalike.search.features import Features
from lookalike.search.image_dupes import VerifyRule, features_of, relation
from lookalike.search.image_dupes import verify as verify_pair
from lookalike.storage.library import CollectionStore
from lookalike.types import MediaKind, SearchHit

if TYPE_CHECKING:
    from lookalike.indexer.embedders.base import Embedder

OVERFETCH = 4  # several segments of one video can crowd the top k; fetch more, keep one per file
VERIFY_POOL = 40  # candidates a verified search checks with local features


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
        identical = a.read_bytes() == b.read_bytes()
        expl, m = explain_images(
            a, self._features(a), b, self._features(b), float(va @ vb), VerifyRule(), identical=identical
        )
        if picture is not None:
            draw(image_a, image_b, m, picture)
        return expl

    def _load_image(self, path: Path) -> Image.Image:
        if not path.is_file():
            raise DecodeError("not_found", f"{path} is not a file")
        if classify(path) != MediaKind.IMAGE:
            raise DecodeError("not_an_image", f"{path} is not an image")
        s = self.settings
        return load_image(path, max_pixels=s.max_image_pixels, max_bytes=s.max_image_bytes)[0]

    def _image_vector(self, path: Path) -> np.ndarray:
        """An image file's vector, described as the collection describes its images."""
        s = self.settings
        pictures, _ = self.video.pictures(
            path, max_pixels=s.max_image_pixels, max_bytes=s.max_image_bytes, draft=self.embedder.preprocess.resize
        )
        return pool_pictures(self.embedder.embed_images(pictures))

    def _features(self, path: Path) -> Features:
        s = self.settings
        return features_of(path, s.max_image_pixels, s.max_image_bytes)

    def _verified(self, query: Path, hits: list[SearchHit], k: int) -> list[SearchHit]:
        """``hits`` verified against the query picture: verified copies first, then the rest as ranked."""
        rule = VerifyRule()
        fq = self._features(query)
        confirmed, others = [], []
        for h in hits:
            if h.kind != MediaKind.IMAGE:
                others.append(replace(h, relation="unverified"))
                continue
            try:
                fh = self._features(key_path(h.path))  # a catalog key (a name that is not UTF-8 is encoded)
            except (DecodeError, OSError):
                others.append(replace(h, relation="unverified"))
                continue
            verdict = verify_pair(fq, fh, h.score, rule)
            if verdict.duplicate and verdict.match is not None:
                rel = relation(fq, fh, verdict.match).value
                confirmed.append(replace(h, relation=rel, inliers=verdict.match.inliers))
            else:
                others.append(replace(h, relation="unverified"))
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
        if record is None or record.status != "ok":
            raise NotIndexedError(f"no indexed item with id {media_id}")
        vectors = catalog.vectors_of(cid, media_id, self.store.dim)
        if record.kind == MediaKind.IMAGE.value:
            hits = self.search_vector(vectors[0].embedding, k + 1)
        else:
            query = QueryVideo.from_records(vectors, self.frame_step)
            hits = self._search_video(query, k + 1)
        return QueryResult(record.path, [h for h in hits if h.media_id != media_id][:k])

    def search_vector(self, vector: np.ndarray, k: int = 10) -> list[SearchHit]:
        """Images and video moments nearest to a vector; one hit per file, best first."""
        index = self.store.index("items")
        found = index.search(vector[None, :], k * OVERFETCH)
        stored = self.store.catalog.hydrate(self.store.info.id, found.ids[0].tolist())
        hits: list[SearchHit] = []
        seen: set[int] = set()
        for score, vid in zip(found.scores[0], found.ids[0], strict=True):
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
        try:
            if not path.is_file():
                raise DecodeError("not_found", f"{path} is not a file")
            kind = classify(path)
            if kind == MediaKind.VIDEO:
                return QueryResult(str(path), self._search_video(self._embed_video(path), k))
            vector = self._image_vector(path)
            if verify:
                pool = self.search_vector(vector, max(k, VERIFY_POOL))
                return QueryResult(str(path), self._verified(path, pool, k))
            return QueryResult(str(path), self.search_vector(vector, k))
        except DecodeError as e:
            return QueryResult(str(path), error=str(e))

    def search_decoded(self, name: str, messages: Sequence[Message], k: int = 10) -> QueryResult:
        """Search with a query file decoded elsewhere (in a worker process) into the indexer's messages.

        An image's pixels find images and video moments; a video's frame chunks find videos with ranges; a
        :class:`Failed` message becomes the result's error.
        """
        failed = next((m for m in messages if isinstance(m, Failed)), None)
        if failed is not None:
            return QueryResult(name, error=f"{failed.code}: {failed.message}")
        image = next((m for m in messages if isinstance(m, ImageItem)), None)
        if image is not None:
            vector = pool_pictures(self.embedder.embed_pixels(image.pixels))
            return QueryResult(name, self.search_vector(vector, k))
        chunks = [m for m in messages if isinstance(m, FrameChunk)]
        end = next((m for m in messages if isinstance(m, VideoEnd)), None)
        if not chunks or end is None:
            return QueryResult(name, error="no_frames: the query video holds no decodable frame")
        size = self.settings.batch_size
        pixels = np.concatenate([c.pixels for c in chunks])
        vectors = np.vstack([self._embed_pixels(pixels[i : i + size]) for i in range(0, len(pixels), size)])
        times = np.concatenate([c.times for c in chunks])
        return QueryResult(name, self._search_video(self._query_video(times, vectors, end.meta.duration), k))

    def _embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Frame vectors made as the indexer makes them (the same mirror handling)."""
        if not self.video.mirror:
            return self.embedder.embed_pixels(pixels)
        return fold_mirrors(self.embedder.embed_pixels(with_mirrors(pixels)))

    def _embed_frames(self, frames: list[Image.Image]) -> np.ndarray:
        return self._embed_pixels(np.stack([self.embedder.preprocess(im) for im in frames]))

    def _query_video(self, times: np.ndarray, vectors: np.ndarray, duration: float | None) -> QueryVideo:
        video = self.video
        segments = pool_segments(times, vectors, video.segment_seconds, 1.0 / video.frame_rate, duration)
        return QueryVideo.from_segments(segments, self.frame_step)

    def _embed_video(self, path: Path) -> QueryVideo:
        """A query video described exactly as the collection describes its videos."""
        video = self.video
        meta, frames = sample_frames(path, video.frame_rate, short_side=self.embedder.preprocess.resize)
        times, vectors = [], []
        batch: list[Image.Image] = []
        for frame in frames:
            batch.append(video.clean(frame.image))
            times.append(frame.time)
            if len(batch) == self.settings.batch_size:
                vectors.append(self._embed_frames(batch))
                batch = []
        if batch:
            vectors.append(self._embed_frames(batch))
        return self._query_video(np.array(times), np.vstack(vectors), meta.duration)

    def _search_video(self, query: QueryVideo, k: int) -> list[SearchHit]:
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
            ref = QueryVideo.from_records(catalog.vectors_of(cid, media_id, dim), self.frame_step)
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
