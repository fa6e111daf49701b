"""Video-to-video matching over segment vectors: a score and the matching time ranges on both sides."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lookalike.indexer.pooling import Segment, normalise
from lookalike.storage.catalog import VectorRecord
from lookalike.types import Level

MATCH_FLOOR = 0.5  # segment pairs below this similarity are not evidence of shared content


@dataclass(frozen=True)
class QueryVideo:
    """A video as its segment vectors (time order) and its whole-video vector."""

    starts: np.ndarray
    ends: np.ndarray
    vectors: np.ndarray
    video_vector: np.ndarray

    @classmethod
    def from_segments(cls, segments: Sequence[Segment]) -> QueryVideo:
        """From freshly pooled segments."""
        vectors = np.vstack([s.vector for s in segments]).astype(np.float32)
        return cls(
            np.array([s.start for s in segments]),
            np.array([s.end for s in segments]),
            vectors,
            normalise(vectors.mean(axis=0)),
        )

    @classmethod
    def from_records(cls, records: Sequence[VectorRecord]) -> QueryVideo:
        """From stored vectors of one video (segments and the video vector)."""
        segs = sorted((r for r in records if r.level == Level.SEGMENT.value), key=lambda r: r.start or 0.0)
        video = [r for r in records if r.level == Level.VIDEO.value]
        vectors = np.vstack([r.embedding for r in segs]).astype(np.float32)
        vv = video[0].embedding if video else normalise(vectors.mean(axis=0))
        return cls(
            np.array([r.start or 0.0 for r in segs]),
            np.array([r.end or 0.0 for r in segs]),
            vectors,
            np.asarray(vv, np.float32),
        )


@dataclass(frozen=True)
class VideoMatch:
    """How well a reference video matches a query video, and where.

    ``score`` is the mean similarity of the aligned segment pairs; ``speed`` is reference seconds per query
    second on the aligned line (1.0: same speed); ``pairs`` is how many query segments are aligned.
    """

    score: float
    ref_start: float
    ref_end: float
    query_start: float
    query_end: float
    speed: float = 1.0
    pairs: int = 0


# Reference seconds per query second tried by the alignment: copies sped up or slowed down by 0.6x-1.7x.
SPEEDS = np.array([0.6, 0.67, 0.75, 0.8, 0.87, 0.93, 1.0, 1.07, 1.15, 1.25, 1.33, 1.5, 1.67])
CANDIDATES_PER_SEGMENT = 8  # each query segment votes with its best reference segments only
MAX_GAP_SEGMENTS = 3  # aligned pairs further apart than this (in query segments) start a new run


def _candidate_pairs(sims: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query index, reference index, similarity) of each query segment's best reference segments >= floor."""
    k = min(CANDIDATES_PER_SEGMENT, sims.shape[1])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else np.tile(np.arange(k), (len(sims), 1))
    qi = np.repeat(np.arange(len(sims)), k)
    rj = top.ravel()
    s = sims[qi, rj]
    keep = s >= floor
    return qi[keep], rj[keep], s[keep]


def _best_per_query(qi: np.ndarray, weight: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Indices (into the pair arrays) of the heaviest masked pair of each distinct ``qi`` value."""
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return idx
    order = idx[np.lexsort((-weight[idx], qi[idx]))]
    first = np.ones(len(order), bool)
    first[1:] = qi[order][1:] != qi[order][:-1]
    return order[first]


def align(query: QueryVideo, ref: QueryVideo, floor: float = MATCH_FLOOR) -> VideoMatch | None:
    """Temporal alignment of a query video with a reference video: Hough voting over lines
    ``t_ref = speed * t_query + offset``.

    Each query segment's best reference segments (similarity >= ``floor``) vote, for every speed in
    :data:`SPEEDS`, for the offset bin their pair implies (one vote per query segment per bin, weighted by how far
    its similarity clears the floor). The heaviest (speed, offset) wins; its pairs, one per query segment, are
    split where the query side jumps by more than :data:`MAX_GAP_SEGMENTS` segments, and the heaviest run gives
    the matched ranges. Cost is linear in the number of candidate pairs per speed tried.

    Returns:
        the match, or None when no pair of segments reaches ``floor``.
    """
    sims = query.vectors @ ref.vectors.T
    qi, rj, s = _candidate_pairs(sims, floor)
    if len(qi) == 0:
        return None
    tq = (query.starts + query.ends)[qi] / 2
    tr = (ref.starts + ref.ends)[rj] / 2
    seg = float(np.median(query.ends - query.starts)) if len(query.starts) else 2.0
    width = max(seg, 1e-3)
    weight = s - floor + 1e-3
    best: tuple[float, float, float] | None = None  # (votes, speed, offset bin start)
    for speed in SPEEDS:
        offsets = tr - speed * tq
        for shift in (0.0, 0.5):  # two staggered bin grids, so a true offset never straddles a bin edge
            bins = np.floor(offsets / width + shift).astype(np.int64)
            key = bins * (len(query.starts) + 1) + qi  # one vote per query segment and bin
            chosen = _best_per_query(key, weight, np.ones(len(qi), bool))
            votes = np.bincount(bins[chosen] - bins.min(), weights=weight[chosen])
            b = int(votes.argmax())
            if best is None or votes[b] > best[0] + 1e-9:
                best = (float(votes[b]), float(speed), (b + bins.min() - shift) * width)
    assert best is not None
    _, speed, low = best
    offsets = tr - speed * tq
    inliers = _best_per_query(qi, weight, (offsets >= low - 0.25 * width) & (offsets < low + 1.25 * width))
    inliers = inliers[np.argsort(qi[inliers])]
    runs = np.split(inliers, np.flatnonzero(np.diff(qi[inliers]) > MAX_GAP_SEGMENTS) + 1)
    run = max(runs, key=lambda r: float(weight[r].sum()))
    q_idx, r_idx = qi[run], rj[run]
    return VideoMatch(
        float(s[run].mean()),
        float(ref.starts[r_idx].min()),
        float(ref.ends[r_idx].max()),
        float(query.starts[q_idx].min()),
        float(query.ends[q_idx].max()),
        speed,
        len(run),
    )


def score_video(query: QueryVideo, ref: QueryVideo, floor: float = MATCH_FLOOR) -> VideoMatch | None:
    """How ``ref`` matches ``query`` (see :func:`align`)."""
    return align(query, ref, floor)
