"""Video-to-video matching over segment vectors: a score and the matching time ranges on both sides."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lookalike.indexer.pooling import Segment, normalise
from lookalike.storage.records import VectorRecord
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


def _prior(speed: float) -> float:
    """A slight preference for unchanged speed, which decides between lines that explain the pairs equally well."""
    return 1.0 - 0.1 * abs(float(np.log(speed)))


def align(query: QueryVideo, ref: QueryVideo, floor: float = MATCH_FLOOR) -> VideoMatch | None:
    """Temporal alignment of a query video with a reference video: Hough voting over lines
    ``t_ref = speed * t_query + offset``.

    Each query segment's best reference segments (similarity >= ``floor``) vote, for every speed in
    :data:`SPEEDS`, for the offset bin their pair implies (one vote per query segment per bin, weighted by how far
    its similarity clears the floor; one vote per reference segment too), with a slight preference for speed 1.
    The heaviest (speed, offset) wins; its offset is refined on its one-to-one pairs, and the query is walked along
    that line (:func:`_along_line`) for the score and the ranges. The voting is linear in the candidate pairs
    (at most :data:`CANDIDATES_PER_SEGMENT` per query segment) per speed tried; the one quadratic step is the
    segment similarity matrix of the two videos (1800 x 1800 segments for two hours: ~0.1 s).

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
            # one vote per query segment and bin, then per reference segment and bin: a line must pair the two
            # videos' segments one to one (a static shot otherwise lets every query segment vote for one frame)
            chosen = _best_per_query(bins * (len(query.starts) + 1) + qi, weight, np.ones(len(qi), bool))
            mask = np.zeros(len(qi), bool)
            mask[chosen] = True
            chosen = _best_per_query(bins * (len(ref.starts) + 1) + rj, weight, mask)
            votes = np.bincount(bins[chosen] - bins.min(), weights=weight[chosen]) * _prior(speed)
            b = int(votes.argmax())
            if best is None or votes[b] > best[0] + 1e-9:
                best = (float(votes[b]), float(speed), (b + bins.min() - shift) * width)
    assert best is not None
    _, speed, low = best
    offsets = tr - speed * tq
    band = (offsets >= low - 0.25 * width) & (offsets < low + 1.25 * width)
    mask = np.zeros(len(qi), bool)
    mask[_best_per_query(qi, weight, band)] = True
    inliers = _best_per_query(rj, weight, mask)
    offset = float(np.median(tr[inliers] - speed * tq[inliers]))  # the line, refined on its one-to-one pairs
    return _along_line(query, ref, sims, speed, offset, max(floor, 0.8 * float(np.median(s[inliers]))))


def _along_line(
    query: QueryVideo, ref: QueryVideo, sims: np.ndarray, speed: float, offset: float, keep: float
) -> VideoMatch | None:
    """Walk the query along ``t_ref = speed * t_query + offset``: each query segment is scored against the
    reference segments at its predicted time; the heaviest run of segments scoring >= ``keep`` (gaps of up to
    :data:`MAX_GAP_SEGMENTS` allowed) is the match. The reference range is the query range mapped through the line,
    so both sides are consistent even when the speed differs."""
    q_mid = (query.starts + query.ends) / 2
    r_mid = (ref.starts + ref.ends) / 2
    tol = 0.75 * float(np.max(ref.ends - ref.starts)) if len(ref.starts) else 1.0
    predicted = speed * q_mid + offset
    lo = np.searchsorted(r_mid, predicted - tol, side="left")
    hi = np.searchsorted(r_mid, predicted + tol, side="right")
    on_line = np.array([sims[i, lo[i] : hi[i]].max() if hi[i] > lo[i] else -1.0 for i in range(len(q_mid))])
    good = np.flatnonzero(on_line >= keep)
    if len(good) == 0:
        return None
    runs = np.split(good, np.flatnonzero(np.diff(good) > MAX_GAP_SEGMENTS) + 1)
    run = max(runs, key=lambda r: float((on_line[r] - keep + 1e-3).sum()))
    q_start, q_end = float(query.starts[run[0]]), float(query.ends[run[-1]])
    r_lo, r_hi = float(ref.starts.min()), float(ref.ends.max())
    return VideoMatch(
        float(on_line[run].mean()),
        float(np.clip(speed * q_start + offset, r_lo, r_hi)),
        float(np.clip(speed * q_end + offset, r_lo, r_hi)),
        q_start,
        q_end,
        speed,
        len(run),
    )


def score_video(query: QueryVideo, ref: QueryVideo, floor: float = MATCH_FLOOR) -> VideoMatch | None:
    """How ``ref`` matches ``query`` (see :func:`align`)."""
    return align(query, ref, floor)
