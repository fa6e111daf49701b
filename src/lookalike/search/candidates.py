"""Duplicate candidates: pairs of images whose global vectors are close, from any FAISS index type.

The stored vectors are read from the catalog in chunks and searched against the index: nothing here asks an index
to ``reconstruct`` (IVF cannot without a direct map) and memory stays bounded by the pairs kept, at most ``k`` per
image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lookalike.storage.library import CollectionStore
from lookalike.types import Level

CHUNK = 2048  # query vectors per search call
OVERFETCH = 8  # extra neighbours per query: video segments share the items index and are stepped over


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


def image_candidates(store: CollectionStore, k: int, floor: float, nprobe: int | None = None) -> CandidatePairs:
    """Each image's ``k`` nearest images at cosine >= ``floor``, as unique pairs sorted by falling similarity.

    Args:
        nprobe: inverted lists an IVF index scans per image (default: the index's own setting).
    """
    cid, dim = store.info.id, store.dim
    ids = store.catalog.vector_ids(cid, [Level.IMAGE.value])
    index = store.index("items")
    keys: list[np.ndarray] = []
    sims: list[np.ndarray] = []
    n = len(ids)
    for chunk_ids, vectors in store.catalog.iter_vectors(cid, [Level.IMAGE.value], dim, chunk=CHUNK):
        # an index job beside us may have committed vectors since the ids were read: leave those to the next run
        listed = ids[np.minimum(np.searchsorted(ids, chunk_ids), max(n - 1, 0))] == chunk_ids if n else chunk_ids < 0
        chunk_ids, vectors = chunk_ids[listed], vectors[listed]
        if not len(chunk_ids):
            continue
        found = index.search(vectors, k + 1 + OVERFETCH, nprobe=nprobe)
        q = np.repeat(np.searchsorted(ids, chunk_ids), found.ids.shape[1])
        other = found.ids.ravel()
        score = found.scores.ravel()
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


def _rank_within_query(q: np.ndarray) -> np.ndarray:
    """For neighbours listed best first per query, each one's rank among its query's kept neighbours."""
    if len(q) == 0:
        return q
    start = np.r_[0, np.flatnonzero(np.diff(q)) + 1]
    counts = np.diff(np.r_[start, len(q)])
    return np.arange(len(q)) - np.repeat(start, counts)
