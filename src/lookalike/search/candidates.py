"""Duplicate candidates: pairs of images whose global vectors are close, from any FAISS index type.

The stored vectors are read from the catalog in chunks and searched against the index: nothing here asks an index
to ``reconstruct`` (IVF cannot without a direct map) and memory stays bounded by the pairs kept, at most ``k`` per
image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from lookalike.storage.library import CollectionStore
from lookalike.storage.vectors import Neighbours, VectorIndex
from lookalike.types import Level

CHUNK = 2048  # query vectors per search call
OVERFETCH = 8  # extra neighbours per query: video segments share the items index and are stepped over
LOSSY_FETCH = 4  # a lossy index (PQ codes) fetches this many times more, re-ranked by the stored vectors

ChunkSearch = Callable[[Iterable[np.ndarray], int, "int | None"], Iterator[Neighbours]]
"""Searches chunks of query vectors (``k`` neighbours, ``nprobe``) and yields each chunk's neighbours in order:
here (:func:`search_here`) or on a Ray cluster (:mod:`lookalike.indexer.engines.ray_index`)."""


def search_here(index: VectorIndex) -> ChunkSearch:
    """Chunks searched in this process against a loaded index."""

    def search(chunks: Iterable[np.ndarray], k: int, nprobe: int | None) -> Iterator[Neighbours]:
        return (index.search(vectors, k, nprobe=nprobe) for vectors in chunks)

    return search


@dataclass(frozen=True)
class CandidatePairs:
    """Pairs of image vectors close enough to verify, each pair once.

    Attributes:
        ids: the image vector ids, ascending; ``a`` and ``b`` index into it (``a < b``).
        a: first member of each pair.
        b: second member of each pair.
        cosine: the pair's similarity.
    """

    ids: np.ndarray
    a: np.ndarray
    b: np.ndarray
    cosine: np.ndarray

    def __len__(self) -> int:
        return len(self.a)


def image_candidates(
    store: CollectionStore, k: int, floor: float, nprobe: int | None = None, search: ChunkSearch | None = None
) -> CandidatePairs:
    """Each image's ``k`` nearest images at cosine >= ``floor``, as unique pairs sorted by falling similarity.

    Args:
        nprobe: inverted lists an IVF index scans per image (default: the index's own setting).
        search: where the chunks of stored vectors are searched (default: here, against the loaded index).
    """
    cid, dim = store.info.id, store.dim
    ids = store.catalog.vector_ids(cid, [Level.IMAGE.value])
    n = len(ids)
    index = store.index("items")
    queried: list[tuple[np.ndarray, np.ndarray]] = []

    def listed_chunks() -> Iterator[np.ndarray]:
        for chunk_ids, vectors in store.catalog.iter_vectors(cid, [Level.IMAGE.value], dim, chunk=CHUNK):
            # an index job beside us may have committed vectors since the ids were read: leave those to the next run
            listed = (
                ids[np.minimum(np.searchsorted(ids, chunk_ids), max(n - 1, 0))] == chunk_ids if n else chunk_ids < 0
            )
            if listed.any():
                queried.append((chunk_ids[listed], vectors[listed] if index.lossy else vectors[:0]))
                yield vectors[listed]

    keys: list[np.ndarray] = []
    sims: list[np.ndarray] = []
    search = search or search_here(index)
    fetch = (k + 1 + OVERFETCH) * (LOSSY_FETCH if index.lossy else 1)
    for i, found in enumerate(search(listed_chunks(), fetch, nprobe)):
        query_ids, query_vectors = queried[i]
        queried[i] = (query_ids[:0], query_vectors[:0])  # answered: need not be kept
        if index.lossy:  # compressed codes give estimates: each pair's cosine from the stored vectors
            found = rescored(store, query_vectors, found)
        q = np.repeat(np.searchsorted(ids, query_ids), found.ids.shape[1])
        score = found.scores.ravel()
        other = found.ids.ravel()
        o = np.minimum(np.searchsorted(ids, other), max(n - 1, 0))
        keep = (ids[o] == other) & (o != q) & (score >= floor)  # image vectors only, not the query itself
        q, o, score = q[keep], o[keep], score[keep]
        rank = _rank_within_query(q)
        keep = rank < k
        lo, hi = np.minimum(q[keep], o[keep]), np.maximum(q[keep], o[keep])
        keys.append(lo.astype(np.int64) * n + hi)
        sims.append(score[keep].astype(np.float32))
    if not keys:
        empty = np.zeros(0, np.int64)
        return CandidatePairs(ids, empty, empty, np.zeros(0, np.float32))
    key = np.concatenate(keys)
    sim = np.concatenate(sims)
    key, first = np.unique(key, return_index=True)
    sim = sim[first]
    order = np.argsort(-sim, kind="stable")
    return CandidatePairs(ids, key[order] // n, key[order] % n, sim[order])


def rescored(store: CollectionStore, queries: np.ndarray, found: Neighbours) -> Neighbours:
    """``found`` (neighbours from a lossy index, whose scores are estimates) scored by the stored vectors and
    re-ranked best first per query; a neighbour no longer stored (or none: id -1) scores -inf."""
    ids = found.ids
    got_ids, got = store.catalog.vectors_by_id(store.info.id, np.unique(ids[ids >= 0]).tolist(), store.dim)
    if not len(got_ids):
        return Neighbours(np.full(ids.shape, -np.inf, np.float32), ids)
    at = np.minimum(np.searchsorted(got_ids, ids), len(got_ids) - 1)
    scores = np.where(got_ids[at] == ids, np.einsum("qkd,qd->qk", got[at], queries), -np.inf).astype(np.float32)
    order = np.argsort(-scores, axis=1, kind="stable")
    return Neighbours(np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1))


def _rank_within_query(q: np.ndarray) -> np.ndarray:
    """For neighbours listed best first per query, each one's rank among its query's kept neighbours."""
    if len(q) == 0:
        return q
    start = np.r_[0, np.flatnonzero(np.diff(q)) + 1]
    counts = np.diff(np.r_[start, len(q)])
    return np.arange(len(q)) - np.repeat(start, counts)
