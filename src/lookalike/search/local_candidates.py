"""Candidates from local features: pictures that share many distinctive keypoints, whatever their global vectors say.

A collage, a picture-in-picture, a screenshot or a tight crop is far from its original in the space of global
vectors (a collage's vector is nearest to other collages), so the nearest-vector candidates never propose the pair.
Their keypoints do: every keypoint of the photo inside the collage has its twin in the original. This pass puts the
RootSIFT descriptors that verification extracts anyway into one approximate nearest-neighbour index (FAISS, IVF with
8-bit scalar quantisation) and lets each descriptor vote once for every other picture holding a descriptor within
:data:`MATCH_DISTANCE` of it among its :data:`NEIGHBOURS` nearest. Lowe's ratio test does not work across pictures:
a picture with twenty copies has twenty twins of each keypoint, all equally near. Pairs with enough votes are
candidates, verified like the others.

Each picture keeps two kinds of partners: its most-voted ones, and the ones that explain its keypoints best one after
the other (:func:`_explaining`: a partner is chosen for the keypoints of the picture that no partner chosen before it
matched). Without the second kind a collage kept only the other composites that share one of its fillers (a
filler's keypoints vote for each of them) and the twenty copies of the filler-free quadrant's photo came after them;
with it, once one composite sharing a filler is chosen that filler's keypoints are explained, and the quadrant's
photo (or one of its copies) comes next (dev half of ``benchmarks.dupes_quality``: collages with a partner of
their own picture 33 -> 44 of 51, screenshots 43 -> 47, for 10% more pairs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lookalike.search.features import Features

MIN_NEW = 4  # keypoints of a picture no earlier partner explained that a partner chosen for explaining must match
NEIGHBOURS = 32  # nearest descriptors looked up per descriptor (its own picture's are skipped)
MATCH_DISTANCE = 0.25  # RootSIFT (Hellinger) distance under which two descriptors are the same keypoint
NPROBE = 8  # inverted lists searched per descriptor
CHUNK = 200_000  # descriptors added / searched at a time
EXACT_BELOW = 50_000  # descriptors under which the index is exact (a flat one)


@dataclass(frozen=True)
class LocalPairs:
    """Pairs of pictures (positions in the list the caller gave) and the keypoint matches they share."""

    a: np.ndarray
    b: np.ndarray
    votes: np.ndarray

    def __len__(self) -> int:
        return len(self.a)


def local_candidates(
    count: int,
    features: Callable[[int], Features | None],
    per_image: int,
    min_votes: int,
    max_descriptors: int = 1000,
) -> LocalPairs:
    """Pairs of pictures sharing at least ``min_votes`` keypoint matches, the ``per_image`` best of each.

    Args:
        count: how many pictures; they are ``0 .. count - 1``.
        features: the local features of picture ``i`` (None when it cannot be read: it takes no part).
        per_image: a pair is kept when it is among the ``per_image`` most-voted pairs of either picture (ties
            broken by the pair's order: its smaller picture, then the other), or among the ``per_image`` partners
            that explain either picture's keypoints one after the other (:func:`_explaining`, among the pairs with
            ``min_votes``).
        min_votes: votes a pair needs: each descriptor of either picture with a twin in the other is one (a
            keypoint both pictures find counts twice).
        max_descriptors: descriptors of one picture taken at most (spread evenly over its list; memory is about
            ``count * max_descriptors * 128`` bytes for the codes, as much for the index, and the search
            buffers).
    """
    owner, codes = _gather(count, features, max_descriptors)
    empty = np.zeros(0, np.int64)
    if len(codes) < 2 * NEIGHBOURS or len(np.unique(owner)) < 2:
        return LocalPairs(empty, empty, empty)
    index = _build(codes)
    qr, qa, qb = [], [], []
    for start in range(0, len(codes), CHUNK):
        block = _floats(codes[start : start + CHUNK])
        dist, ids = index.search(block, NEIGHBOURS)
        row, a, b = _votes(owner[start : start + CHUNK], owner, dist, ids)
        qr.append(row + start)
        qa.append(a)
        qb.append(b)
    row, a, b = np.concatenate(qr), np.concatenate(qa), np.concatenate(qb)
    pair = _key(a, b, count)
    keys, votes = np.unique(pair, return_counts=True)
    keep = votes >= min_votes
    keys, votes = keys[keep], votes[keep]
    if not len(keys):
        return LocalPairs(empty, empty, empty)
    best = _best_per_image(keys // count, keys % count, votes, per_image)
    # chosen for what they explain: among the pairs with enough votes, for the pictures with more such partners
    # than the most-voted ones kept (the others keep all of theirs already)
    partners = np.bincount(np.concatenate([keys // count, keys % count]), minlength=count)
    take = np.isin(pair, keys) & (partners[a] > per_image)
    ea, eb = _explaining(row[take], a[take], b[take], per_image)
    chosen = np.union1d(_key(best.a, best.b, count), _key(ea, eb, count))
    chosen_votes = votes[np.searchsorted(keys, chosen)]
    order = np.argsort(-chosen_votes, kind="stable")
    return LocalPairs(chosen[order] // count, chosen[order] % count, chosen_votes[order])


def _key(a: np.ndarray, b: np.ndarray, count: int) -> np.ndarray:
    """One number per unordered pair of pictures (of ``count``): the smaller times ``count`` plus the larger."""
    return np.minimum(a, b) * count + np.maximum(a, b)


def _gather(count: int, features: Callable[[int], Features | None], limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Every picture's descriptors as uint8 codes (RootSIFT values lie in [0, 1]) and the picture each belongs to."""
    owners: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    for i in range(count):
        f = features(i)
        if f is None or not len(f):
            continue
        d = f.descriptors[np.linspace(0, len(f) - 1, limit).astype(int)] if len(f) > limit else f.descriptors
        codes.append(np.clip(np.rint(d * 255.0), 0, 255).astype(np.uint8))
        owners.append(np.full(len(d), i, np.int64))
    if not codes:
        return np.zeros(0, np.int64), np.zeros((0, 128), np.uint8)
    return np.concatenate(owners), np.concatenate(codes)


def _floats(codes: np.ndarray) -> np.ndarray:
    return codes.astype(np.float32) / 255.0


def _build(codes: np.ndarray) -> Any:
    """An IVF index with 8-bit scalar quantisation over all descriptors (exact for small sets)."""
    import faiss  # heavy import, only when verifying

    n, dim = codes.shape
    index: Any
    if n < EXACT_BELOW:
        index = faiss.IndexFlatL2(dim)
        index.add(_floats(codes))
        return index
    nlist = int(min(16384, max(256, 4 * np.sqrt(n))))
    quantizer = faiss.IndexFlatL2(dim)
    index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2)
    rng = np.random.default_rng(0)
    sample = codes[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
    index.train(_floats(sample))
    for start in range(0, n, CHUNK):
        index.add(_floats(codes[start : start + CHUNK]))
    index.nprobe = NPROBE
    return index


def _votes(
    query_owner: np.ndarray, owner: np.ndarray, dist: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (query descriptor's row in the block, query picture, other picture) per query descriptor and other
    picture holding a descriptor within :data:`MATCH_DISTANCE` among its neighbours (``dist``: squared L2
    distances, ``ids``: descriptor rows)."""
    found = ids >= 0
    other = np.where(found, owner[np.maximum(ids, 0)], -1)
    near = found & (other != query_owner[:, None]) & (dist < MATCH_DISTANCE * MATCH_DISTANCE)
    row, col = np.nonzero(near)
    n = int(owner.max()) + 1
    key = np.unique(row.astype(np.int64) * n + other[row, col])  # each descriptor votes once per picture
    return key // n, query_owner[key // n], key % n


def _explaining(row: np.ndarray, a: np.ndarray, b: np.ndarray, per_image: int) -> tuple[np.ndarray, np.ndarray]:
    """Per picture, up to ``per_image`` partners chosen one after the other for the most of its keypoints that no
    partner chosen before matched (at least :data:`MIN_NEW`): ``row`` is the descriptor that voted, ``a`` its
    picture and ``b`` the picture it voted for. Returns the (picture, partner) pairs."""
    if not len(a):
        return a, b
    order = np.lexsort((b, a))
    row, a, b = row[order], a[order], b[order]
    bounds = np.r_[0, np.flatnonzero(np.diff(a)) + 1, len(a)]
    out_a: list[int] = []
    out_b: list[int] = []
    for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        _, keypoint = np.unique(row[start:end], return_inverse=True)
        partners, partner = np.unique(b[start:end], return_inverse=True)
        explained = np.zeros(int(keypoint.max()) + 1, bool)
        open_ = np.ones(end - start, bool)
        for _ in range(per_image):
            new = np.bincount(partner[open_], minlength=len(partners))
            j = int(new.argmax())
            if new[j] < MIN_NEW:
                break
            out_a.append(int(a[start]))
            out_b.append(int(partners[j]))
            explained[keypoint[partner == j]] = True
            open_ &= ~explained[keypoint]
    return np.asarray(out_a, np.int64), np.asarray(out_b, np.int64)


def _best_per_image(a: np.ndarray, b: np.ndarray, votes: np.ndarray, per_image: int) -> LocalPairs:
    """The pairs that are among the ``per_image`` most-voted of either picture."""
    if not len(a):
        return LocalPairs(a, b, votes)
    ends = np.concatenate([a, b])
    pair = np.concatenate([np.arange(len(a)), np.arange(len(a))])
    v = np.concatenate([votes, votes])
    order = np.lexsort((-v, ends))
    ends, pair = ends[order], pair[order]
    start = np.r_[0, np.flatnonzero(np.diff(ends)) + 1]
    rank = np.arange(len(ends)) - np.repeat(start, np.diff(np.r_[start, len(ends)]))
    chosen = np.unique(pair[rank < per_image])
    order = chosen[np.argsort(-votes[chosen], kind="stable")]
    return LocalPairs(a[order], b[order], votes[order])
