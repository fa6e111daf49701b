"""Video-to-video matching over segment vectors: a score and the matching time ranges on both sides."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lookalike.search.video_ranges import anchor_is_ref, refine_ranges
from lookalike.search.video_vectors import SPEEDS, Line, VideoMatch, VideoVectors, heaviest_run, speed_prior

MATCH_FLOOR = 0.5  # segment pairs below this similarity are not evidence of shared content


CANDIDATES_PER_SEGMENT = 8  # each query segment votes with its best reference segments only


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


def align(
    query: VideoVectors, ref: VideoVectors, floor: float = MATCH_FLOOR, refine: bool = True, strong: float = 0.0
) -> VideoMatch | None:
    """Temporal alignment of a query video with a reference video: Hough voting over lines
    ``t_ref = speed * t_query + offset``.

    Each query segment's best reference segments (similarity >= ``floor``) vote, for every speed in
    :data:`SPEEDS`, for the offset bin their pair implies (one vote per query segment per bin, weighted by how far
    its similarity clears the floor and by the segments' weights; one vote per reference segment too), with a
    slight preference for speed 1. The heaviest (speed, offset) wins; its offset is refined on its one-to-one
    pairs, and the query is walked along that line (:func:`_along_line`) for the score and the ranges. When both
    videos know their frame step, the line and the ranges' ends are then refined below the segment length
    (:func:`~lookalike.search.video_ranges.refine_ranges`; ``refine=False`` skips that, for a score alone). The
    match's ``evidence`` counts the weights of the run's segments matching at ``strong`` or more. The voting is
    linear in the candidate pairs (at most :data:`CANDIDATES_PER_SEGMENT` per query segment) per speed tried; the
    one quadratic step is the segment similarity matrix of the two videos (1800 x 1800 segments for two hours: ~0.1 s).

    Returns:
        the match, or None when no pair of segments reaches ``floor``.
    """
    found = _coarse(query, ref, floor, strong)
    if found is None:
        return None
    match, line, run = found
    if not refine or query.frame_step is None or ref.frame_step is None:
        return match
    if anchor_is_ref(query, ref, line, run):
        # the line is found from the side cut out of other footage: the reference's segments vote instead
        flipped = _coarse(ref, query, floor, strong)
        if flipped is not None:
            fine = refine_ranges(ref, query, flipped[1], flipped[2], flipped[0]).flipped()
            return replace(match, **{f: getattr(fine, f) for f in _RANGE_FIELDS})
    return refine_ranges(query, ref, line, run, match)


SHORT_RUN = 4  # matches over fewer query segments have their refined ranges checked (:func:`trusted`)


def _iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def _consistent(coarse: VideoMatch, fine: VideoMatch, segment: float) -> bool:
    """Whether refined ranges can be trusted: they still cover the coarse match (IoU >= 0.5 on both sides) and the
    two sides' lengths agree with the line's speed within half a segment (a short query's refinement can otherwise
    move one end by a whole segment on slowly changing footage)."""
    return (
        _lengths_agree(fine, segment)
        and _iou((coarse.query_start, coarse.query_end), (fine.query_start, fine.query_end)) >= 0.5
        and _iou((coarse.ref_start, coarse.ref_end), (fine.ref_start, fine.ref_end)) >= 0.5
    )


_RANGE_FIELDS = ("speed", "query_start", "query_end", "ref_start", "ref_end")


def _coarse(
    query: VideoVectors, ref: VideoVectors, floor: float, strong: float = 0.0
) -> tuple[VideoMatch, Line, np.ndarray] | None:
    """The match of :func:`align` on whole segments, its line and its run of query segments."""
    sims = query.vectors @ ref.vectors.T
    line = _vote(query, ref, sims, floor)
    if line is None:
        return None
    found = _along_line(query, ref, sims, line, strong)
    return None if found is None else (found[0], line, found[1])


def _vote(query: VideoVectors, ref: VideoVectors, sims: np.ndarray, floor: float) -> Line | None:
    """The Hough line of :func:`align`, or None when no pair of segments reaches ``floor``."""
    qi, rj, s = _candidate_pairs(sims, floor)
    if len(qi) == 0:
        return None
    tq = query.centres()[qi]
    tr = ref.centres()[rj]
    seg = float(np.median(query.ends - query.starts)) if len(query.starts) else 2.0
    width = max(seg, 1e-3)
    weight = (s - floor + 1e-3) * (np.minimum(query.weight[qi], ref.weight[rj]) + 1e-3)
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
            votes = np.bincount(bins[chosen] - bins.min(), weights=weight[chosen]) * speed_prior(speed)
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
    return Line(speed, offset, max(floor, 0.8 * float(np.median(s[inliers]))))


def _along_line(
    query: VideoVectors, ref: VideoVectors, sims: np.ndarray, line: Line, strong: float = 0.0
) -> tuple[VideoMatch, np.ndarray] | None:
    """Walk the query along the line: each query segment is scored against the reference segments at its
    predicted time; the heaviest run of segments scoring >= ``line.keep`` (gaps of up to :data:`MAX_GAP_SEGMENTS`
    allowed, heavier for higher weights) is the match, scored by the weighted mean of its similarities. The
    reference range is the query range mapped through the line, so both sides are consistent even when the speed
    differs. Returns the match and the run (query segment indices)."""
    q_mid = (query.starts + query.ends) / 2
    r_mid = (ref.starts + ref.ends) / 2
    tol = 0.75 * float(np.max(ref.ends - ref.starts)) if len(ref.starts) else 1.0
    predicted = line.speed * q_mid + line.offset
    lo = np.searchsorted(r_mid, predicted - tol, side="left")
    hi = np.searchsorted(r_mid, predicted + tol, side="right")
    on_line = np.full(len(q_mid), -1.0)
    weight = np.zeros(len(q_mid))
    for i in np.flatnonzero(hi > lo):
        j = lo[i] + int(sims[i, lo[i] : hi[i]].argmax())
        on_line[i], weight[i] = sims[i, j], min(query.weight[i], ref.weight[j])
    good = np.flatnonzero(on_line >= line.keep)
    if len(good) == 0:
        return None
    run = heaviest_run(good, (on_line - line.keep + 1e-3) * (weight + 1e-3))
    total = float(weight[run].sum())
    score = float((on_line[run] * weight[run]).sum() / total) if total > 1e-6 else float(on_line[run].mean())
    evidence = float(weight[run][on_line[run] >= strong].sum())
    q_start, q_end = float(query.starts[run[0]]), float(query.ends[run[-1]])
    r_lo, r_hi = float(ref.starts.min()), float(ref.ends.max())
    match = VideoMatch(
        score,
        float(np.clip(line.speed * q_start + line.offset, r_lo, r_hi)),
        float(np.clip(line.speed * q_end + line.offset, r_lo, r_hi)),
        q_start,
        q_end,
        line.speed,
        len(run),
        evidence,
    )
    return match, run


def score_video(query: VideoVectors, ref: VideoVectors, floor: float = MATCH_FLOOR) -> VideoMatch | None:
    """How ``ref`` matches a query video (see :func:`align`); a short query's refined ranges are kept only while they
    agree with the segment-level ones (:func:`_consistent`)."""
    fine = align(query, ref, floor)
    if fine is None or fine.pairs >= SHORT_RUN:
        return fine
    coarse = align(query, ref, floor, refine=False)
    return fine if coarse is None else trusted(query, coarse, fine)


def trusted(query: VideoVectors, coarse: VideoMatch, fine: VideoMatch, overlap: bool = True) -> VideoMatch:
    """``fine`` (:func:`align` refined), unless it ran over fewer than :data:`SHORT_RUN` query segments and its
    ranges disagree with ``coarse`` (the same alignment on whole segments): then ``coarse``. With ``overlap``
    False only the two sides' lengths are checked against the line's speed (`dupes`: a short whole copy's refined
    ends decide whether it covers its source). A 4 s excerpt of a 10 s video was refined to 4 s of itself against
    6 s of the video at speed 1."""
    segment = float(np.median(query.ends - query.starts))
    if fine.pairs >= SHORT_RUN or (_consistent(coarse, fine, segment) if overlap else _lengths_agree(fine, segment)):
        return fine
    return coarse


def _lengths_agree(fine: VideoMatch, segment: float) -> bool:
    """The two sides' lengths agree with the line's speed within half a segment."""
    return abs((fine.ref_end - fine.ref_start) - fine.speed * (fine.query_end - fine.query_start)) <= 0.5 * segment
