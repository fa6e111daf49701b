"""Video-to-video matching over segment vectors: a score and the matching time ranges on both sides."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from lookalike.indexer.pooling import Segment, normalise
from lookalike.storage.records import VectorRecord
from lookalike.types import Level

MATCH_FLOOR = 0.5  # segment pairs below this similarity are not evidence of shared content


@dataclass(frozen=True)
class QueryVideo:
    """A video as its segment vectors (time order) and its whole-video vector.

    Attributes:
        starts: each segment's first frame time (seconds).
        ends: each segment's end: its last frame time plus one frame step (clipped to the video's duration).
        vectors: (n, dim) unit segment vectors.
        video_vector: the whole-video vector.
        weights: how much each segment counts as evidence of shared footage, in [0, 1] (None: all 1). Footage
            many unrelated videos share (a channel intro, black frames) gets a low weight.
        frame_step: seconds between sampled frames; None when unknown, and ranges then end on segment edges.
    """

    starts: np.ndarray
    ends: np.ndarray
    vectors: np.ndarray
    video_vector: np.ndarray
    weights: np.ndarray | None = None
    frame_step: float | None = None

    @classmethod
    def from_segments(cls, segments: Sequence[Segment], frame_step: float | None = 1.0) -> QueryVideo:
        """From freshly pooled segments of frames sampled every ``frame_step`` seconds (default: one a second, the
        default frame rate; pass the collection's own)."""
        vectors = np.vstack([s.vector for s in segments]).astype(np.float32)
        return cls(
            np.array([s.start for s in segments]),
            np.array([s.end for s in segments]),
            vectors,
            normalise(vectors.mean(axis=0)),
            frame_step=frame_step,
        )

    @classmethod
    def from_records(cls, records: Sequence[VectorRecord], frame_step: float | None = 1.0) -> QueryVideo:
        """From stored vectors of one video (segments and the video vector), sampled every ``frame_step`` seconds
        (as :meth:`from_segments`)."""
        segs = sorted((r for r in records if r.level == Level.SEGMENT.value), key=lambda r: r.start or 0.0)
        video = [r for r in records if r.level == Level.VIDEO.value]
        vectors = np.vstack([r.embedding for r in segs]).astype(np.float32)
        vv = video[0].embedding if video else normalise(vectors.mean(axis=0))
        return cls(
            np.array([r.start or 0.0 for r in segs]),
            np.array([r.end or 0.0 for r in segs]),
            vectors,
            np.asarray(vv, np.float32),
            frame_step=frame_step,
        )

    @property
    def weight(self) -> np.ndarray:
        """Each segment's weight (all 1 when none were given)."""
        return np.ones(len(self.starts)) if self.weights is None else self.weights

    @property
    def duration(self) -> float:
        """Seconds from the first segment's start to the last one's end."""
        return float(self.ends[-1] - self.starts[0]) if len(self.starts) else 0.0

    def frames(self) -> np.ndarray:
        """How many sampled frames each segment holds (1 per segment when the frame step is unknown)."""
        if self.frame_step is None:
            return np.ones(len(self.starts), np.int64)
        # a segment spans its frames plus one step; sampled times run a little late (the first frame at or after
        # each tick), and the last segment may be cut short by the end of the video
        return np.maximum(1, np.ceil((self.ends - self.starts) / self.frame_step - 0.25)).astype(np.int64)

    def centres(self) -> np.ndarray:
        """Each segment's centre in time: the mean time of its frames."""
        if self.frame_step is None:
            return (self.starts + self.ends) / 2
        return self.starts + (self.frames() - 1) * self.frame_step / 2


@dataclass(frozen=True)
class VideoMatch:
    """How well a reference video matches a query video, and where.

    ``score`` is the mean similarity of the aligned segment pairs (weighted by the segments' weights); ``speed``
    is reference seconds per query second on the aligned line (1.0: same speed); ``pairs`` is how many query
    segments are aligned, and ``evidence`` the sum of the weights of those aligned strongly enough (see
    :func:`align`; ``pairs`` when no weights were given).
    """

    score: float
    ref_start: float
    ref_end: float
    query_start: float
    query_end: float
    speed: float = 1.0
    pairs: int = 0
    evidence: float = 0.0

    def flipped(self) -> VideoMatch:
        """The same match seen from the reference's side (query and reference swapped)."""
        return replace(
            self,
            ref_start=self.query_start,
            ref_end=self.query_end,
            query_start=self.ref_start,
            query_end=self.ref_end,
            speed=1.0 / self.speed,
        )


# Reference seconds per query second tried by the alignment: copies sped up or slowed down by 0.5x-2x (one copy
# slowed to 0.75x and another sped up to 1.5x are 2x apart).
SPEEDS = np.array([0.5, 0.55, 0.6, 0.67, 0.75, 0.8, 0.87, 0.93, 1.0, 1.07, 1.15, 1.25, 1.33, 1.5, 1.67, 1.8, 2.0])
CANDIDATES_PER_SEGMENT = 8  # each query segment votes with its best reference segments only
MAX_GAP_SEGMENTS = 3  # aligned pairs further apart than this (in query segments) start a new run


@dataclass(frozen=True)
class _Line:
    """``t_ref = speed * t_query + offset``, and the similarity a segment pair on it needs to count (``keep``)."""

    speed: float
    offset: float
    keep: float

    def inverse(self) -> _Line:
        return _Line(1.0 / self.speed, -self.offset / self.speed, self.keep)


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


def align(
    query: QueryVideo, ref: QueryVideo, floor: float = MATCH_FLOOR, refine: bool = True, strong: float = 0.0
) -> VideoMatch | None:
    """Temporal alignment of a query video with a reference video: Hough voting over lines
    ``t_ref = speed * t_query + offset``.

    Each query segment's best reference segments (similarity >= ``floor``) vote, for every speed in
    :data:`SPEEDS`, for the offset bin their pair implies (one vote per query segment per bin, weighted by how far
    its similarity clears the floor and by the segments' weights; one vote per reference segment too), with a
    slight preference for speed 1. The heaviest (speed, offset) wins; its offset is refined on its one-to-one
    pairs, and the query is walked along that line (:func:`_along_line`) for the score and the ranges. When both
    videos know their frame step, the line and the ranges' ends are then refined below the segment length
    (:func:`_refine`; ``refine=False`` skips that, for a score alone). The match's ``evidence`` counts the weights
    of the run's segments matching at ``strong`` or more. The voting is linear in the candidate pairs (at most
    :data:`CANDIDATES_PER_SEGMENT` per query segment) per speed tried; the one quadratic step is the segment
    similarity matrix of the two videos (1800 x 1800 segments for two hours: ~0.1 s).

    Returns:
        the match, or None when no pair of segments reaches ``floor``.
    """
    found = _coarse(query, ref, floor, strong)
    if found is None:
        return None
    match, line, run = found
    if not refine or query.frame_step is None or ref.frame_step is None:
        return match
    if _anchor_is_ref(query, ref, line, run):
        # the line is found from the side cut out of other footage: the reference's segments vote instead
        flipped = _coarse(ref, query, floor, strong)
        if flipped is not None:
            fine = _refine(ref, query, flipped[1], flipped[2], flipped[0]).flipped()
            return replace(match, **{f: getattr(fine, f) for f in _RANGE_FIELDS})
    return _refine(query, ref, line, run, match)


_RANGE_FIELDS = ("speed", "query_start", "query_end", "ref_start", "ref_end")


def _coarse(
    query: QueryVideo, ref: QueryVideo, floor: float, strong: float = 0.0
) -> tuple[VideoMatch, _Line, np.ndarray] | None:
    """The match of :func:`align` on whole segments, its line and its run of query segments."""
    sims = query.vectors @ ref.vectors.T
    line = _vote(query, ref, sims, floor)
    if line is None:
        return None
    found = _along_line(query, ref, sims, line, strong)
    return None if found is None else (found[0], line, found[1])


def _vote(query: QueryVideo, ref: QueryVideo, sims: np.ndarray, floor: float) -> _Line | None:
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
    return _Line(speed, offset, max(floor, 0.8 * float(np.median(s[inliers]))))


def _heaviest_run(good: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """The run of ``good`` indices (gaps of up to :data:`MAX_GAP_SEGMENTS` allowed) with the largest ``gain``."""
    runs = np.split(good, np.flatnonzero(np.diff(good) > MAX_GAP_SEGMENTS) + 1)
    return max(runs, key=lambda r: float(gain[r].sum()))


def _along_line(
    query: QueryVideo, ref: QueryVideo, sims: np.ndarray, line: _Line, strong: float = 0.0
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
    run = _heaviest_run(good, (on_line - line.keep + 1e-3) * (weight + 1e-3))
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


# -- below the segment length ----------------------------------------------------------------------------------
# Stored vectors are 2 s means of frame vectors; frame vectors are not kept. The line's offset is refined against
# the other video's segment vectors interpolated in time, and a matched range's ends are placed on the frame grid
# by splitting the segment that straddles the cut into its share of inside and outside footage.

OFFSET_STEPS = 10  # offsets tried per frame step when the line is refined
LINE_SAMPLE = 256  # segments per side a refined line is judged on (evenly spaced in longer videos)
WHOLE_MISSES = 0.2  # share of segments that may miss the line through two whole copies' ends
CUT_MARGIN = 0.1  # an edge is placed by the side whose own footage changes more across it, by this much
VIDEO_END_CUT = 0.5  # a video's own start or end counts as a cut between footage this alike (see _agree)


def _interpolate(video: QueryVideo, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The video's segment vectors linearly interpolated between segment centres at ``times`` (renormalised), and
    whether each time falls inside the video."""
    centres = video.centres()
    pos = np.interp(times, centres, np.arange(len(centres), dtype=np.float64))
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(centres) - 1)
    frac = (pos - lo)[:, None]
    vectors = normalise((1 - frac) * video.vectors[lo] + frac * video.vectors[hi])
    inside = (times >= video.starts[0]) & (times <= video.ends[-1])
    return vectors, inside


def _line_sims(a: QueryVideo, b: QueryVideo, line: _Line, idx: np.ndarray | None = None) -> np.ndarray:
    """Similarity of segments ``idx`` (default: all) of ``a`` with ``b`` at the time the line maps their centres
    to (-1 outside ``b``)."""
    idx = np.arange(len(a.starts)) if idx is None else idx
    vectors, inside = _interpolate(b, line.speed * a.centres()[idx] + line.offset)
    return np.where(inside, np.einsum("nd,nd->n", a.vectors[idx], vectors), -1.0)


def _inner(run: np.ndarray) -> np.ndarray:
    """A run's segments without its two ends (which may hold footage from outside the match), evenly sampled."""
    inner = run[1:-1] if len(run) > 3 else run
    return inner[np.unique(np.linspace(0, len(inner) - 1, min(len(inner), LINE_SAMPLE)).round().astype(np.int64))]


def _whole(query: QueryVideo, ref: QueryVideo, line: _Line) -> _Line | None:
    """The line through both videos' starts and ends, when the segments of both (but :data:`WHOLE_MISSES` of
    them) match on it: whole copies need no offset guessed from the footage (slowly changing
    footage fits many lines about as well), and their speed is their durations' ratio."""
    speed = ref.duration / max(query.duration, 1e-9)
    if not SPEEDS[0] <= speed <= SPEEDS[-1]:
        return None
    whole = _Line(speed, float(ref.starts[0] - speed * query.starts[0]), line.keep)
    for a, b, ln in ((query, ref, whole), (ref, query, whole.inverse())):
        if float(np.mean(_line_sims(a, b, ln) >= line.keep)) < 1.0 - WHOLE_MISSES:
            return None
    return whole


def _anchor_is_ref(query: QueryVideo, ref: QueryVideo, line: _Line, run: np.ndarray) -> bool:
    """Whether the reference's matched run is cut more clearly out of other footage than the query's: its line is
    then better found from its side (the other side may be footage that looks alike for long stretches, where
    any offset fits about as well)."""
    inv = line.inverse()
    r_run = _side_run(ref, query, inv, _mapped(query, line, run))
    if r_run is None or _whole(query, ref, line) is not None:
        return False
    q_cut = sum(e.cut for e in _edges(query, ref, line, run))
    return sum(e.cut for e in _edges(ref, query, inv, r_run)) < q_cut - CUT_MARGIN


def _mapped(a: QueryVideo, line: _Line, run: np.ndarray) -> tuple[float, float]:
    """The time range a run of ``a``'s segments maps to through the line."""
    ends = (line.speed * float(a.starts[run[0]]) + line.offset, line.speed * float(a.ends[run[-1]]) + line.offset)
    return min(ends), max(ends)


def _anchored_line(a: QueryVideo, b: QueryVideo, line: _Line, run: np.ndarray) -> _Line:
    """The line fitted on ``a``'s run: the weighted mean similarity of the run's inner segments (its end segments
    may hold footage from outside the match) with ``b`` interpolated at the times the line maps them to, with the
    slight preference for speed 1; every speed of :data:`SPEEDS` pivoting about the run's centre with offsets
    within a segment, then the best one's offset to a tenth of a frame step. Only ``a``'s side is fitted: the
    segments of ``b`` that belong to the match are not known before the line is (measured on the benchmark:
    fitting them too, chosen either way, misplaced more partial copies)."""
    idx = _inner(run)
    centres = a.centres()
    w = a.weight[idx] + 1e-3

    def fit(c: _Line) -> float:
        return float((np.clip(_line_sims(a, b, c, idx), 0.0, None) * w).sum() / w.sum()) * _prior(c.speed)

    pivot_a = float(centres[run].mean())
    pivot_b = line.speed * pivot_a + line.offset
    seg = float(np.median(b.ends - b.starts))
    candidates = [line] + [
        replace(line, speed=float(speed), offset=pivot_b - float(speed) * pivot_a + d)
        for speed in SPEEDS
        for d in np.linspace(-seg, seg, 9)
    ]
    best = max(candidates, key=fit)
    step = float(a.frame_step or 1.0) * best.speed / OFFSET_STEPS
    return max((replace(best, offset=best.offset + d) for d in np.arange(-seg / 4, seg / 4 + 1e-9, step)), key=fit)


def _inside_share(v: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> float | None:
    """How much of a segment vector ``v`` is made of footage like ``inside`` rather than like ``outside``: the
    non-negative least-squares mix ``v ~ a * inside + b * outside``, as ``a / (a + b)``. None when the two look
    alike (nothing to tell them apart by)."""
    gram = np.array([[inside @ inside, inside @ outside], [inside @ outside, outside @ outside]])
    if float(inside @ outside) > 0.95:
        return None
    a, b = np.linalg.solve(gram, np.array([v @ inside, v @ outside]))
    if a <= 0:
        return 0.0
    if b <= 0:
        return 1.0
    return float(a / (a + b))


def _frames_in(a: QueryVideo, at: int, outer: int, other: np.ndarray, passed: bool) -> int:
    """How many frames of segment ``at`` (on the side of the run) hold the matched footage, with segment ``outer``
    (next to it, away from the run) taken as the footage outside the match; ``passed``: whether ``at`` scored
    well enough to be in the run, the answer when the two cannot be told apart."""
    n = int(a.frames()[at])
    if not 0 <= outer < len(a.starts):
        return n if passed else 0
    share = _inside_share(a.vectors[at], other[at], a.vectors[outer])
    return n if share is None and passed else 0 if share is None else round(share * n)


@dataclass(frozen=True)
class _Edge:
    """One end of a matched range on one side: its time, and how alike that side's own footage is across it
    (:data:`VIDEO_END_CUT` at the video's own start or end)."""

    time: float
    cut: float


def _edges(a: QueryVideo, b: QueryVideo, line: _Line, run: np.ndarray) -> tuple[_Edge, _Edge]:
    """The start and end of a run of ``a``'s segments matching ``b`` along ``line``, in ``a``'s time on its frame
    grid: the first and last frame holding the matched footage, half a frame step out (the cut lies between two
    sampled frames), or the video's own ends."""
    step = float(a.frame_step or 1.0)
    other = _interpolate(b, line.speed * a.centres() + line.offset)[0]
    start = _edge(a, other, int(run[0]), int(run[-1]), -1)
    end = _edge(a, other, int(run[-1]), int(run[0]), 1)
    if start.time <= a.starts[0] + 1e-6:
        start = _Edge(float(a.starts[0]), VIDEO_END_CUT)
    else:
        start = replace(start, time=start.time - step / 2)
    if end.time >= a.ends[-1] - step - 1e-6:
        end = _Edge(float(a.ends[-1]), VIDEO_END_CUT)
    else:
        end = replace(end, time=end.time + step / 2)
    return start, end if end.time >= start.time else replace(end, time=start.time)


def _edge(a: QueryVideo, other: np.ndarray, at: int, far: int, out: int) -> _Edge:
    """The frame time at one end of a run (the first frame in it for ``out=-1``, the last for ``out=1``; ``at``
    is that end's segment, ``far`` the other end's) and how alike ``a``'s own footage is across it: the run's end
    segment (or the one beyond it) may straddle the cut; the first segment wholly inside is compared with the
    first one wholly outside. ``other``: ``b``'s vectors interpolated at the times ``a``'s segments map to."""
    step = float(a.frame_step or 1.0)
    n, count = len(a.starts), a.frames()

    def first_frame(seg: int, k: int) -> float:  # time of the k-th frame of a segment counted from the run's side
        return float(a.starts[seg] + (count[seg] - 1 - k if out < 0 else k) * step)

    inside = _frames_in(a, at, at + out, other, True)
    if inside < count[at]:  # the run's end segment straddles the cut
        time, pure_in, pure_out = first_frame(at, inside - 1), at - out if at != far else at, at + out
    else:
        beyond = _frames_in(a, at + out, at + 2 * out, other, False) if 0 <= at + out < n else 0
        if beyond:  # the segment beyond the run straddles it
            time, pure_in, pure_out = first_frame(at + out, beyond - 1), at, at + 2 * out
        else:
            time, pure_in, pure_out = first_frame(at, count[at] - 1), at, at + out
    pure_out = min(max(pure_out, 0), n - 1)
    return _Edge(time, float(a.vectors[pure_in] @ a.vectors[pure_out]) if pure_out != pure_in else 1.0)


def _agree(q: _Edge, r: _Edge, line: _Line) -> tuple[float, float]:
    """One end of the shared range on both sides (query time, reference time). Where one side's own footage
    changes clearly more across the edge than the other's (a cut into other footage there, footage that goes on
    here), the cut places the edge and the line carries it to the other side; otherwise each side keeps its own
    (two whole copies: both ends are the videos' ends, whatever the line's offset). A video's own end is weaker
    evidence than a cut into other footage (its first sampled frame may lie a little inside the shared footage)
    and stronger than footage that goes on."""
    if q.cut < r.cut - CUT_MARGIN:
        return q.time, line.speed * q.time + line.offset
    if r.cut < q.cut - CUT_MARGIN:
        inv = line.inverse()
        return inv.speed * r.time + inv.offset, r.time
    return q.time, r.time


def _side_run(a: QueryVideo, b: QueryVideo, line: _Line, near: tuple[float, float]) -> np.ndarray | None:
    """The run of ``a``'s segments matching ``b`` along ``line`` that overlaps ``near`` (in ``a``'s time) most."""
    sims = _line_sims(a, b, line)
    good = np.flatnonzero(sims >= line.keep)
    if len(good) == 0:
        return None
    overlap = np.clip(np.minimum(a.ends, near[1]) - np.maximum(a.starts, near[0]), 0.0, None)
    return _heaviest_run(good, overlap + 1e-6 * sims)


def _refine(query: QueryVideo, ref: QueryVideo, line: _Line, run: np.ndarray, match: VideoMatch) -> VideoMatch:
    """The match with its line refined below the segment length (through both ends of whole copies,
    :func:`_whole`, else fitted on the query's run, :func:`_anchored_line`) and its ranges' ends on the frame grid:
    each side's run is found by walking it against the other video interpolated in time, its ends are placed on its
    own frames (:func:`_edges`), and each end of the shared range is taken from the side whose footage shows it
    (:func:`_agree`)."""
    line = _whole(query, ref, line) or _anchored_line(query, ref, line, run)
    inv = line.inverse()
    q_run = _side_run(query, ref, line, (match.query_start, match.query_end))
    r_run = _side_run(ref, query, inv, (match.ref_start, match.ref_end))
    if q_run is None or r_run is None:
        return match
    (q_start, q_end), (r_start, r_end) = _edges(query, ref, line, q_run), _edges(ref, query, inv, r_run)
    (qs, rs), (qe, re) = _agree(q_start, r_start, line), _agree(q_end, r_end, line)
    q_lo, q_hi, r_lo, r_hi = float(query.starts[0]), float(query.ends[-1]), float(ref.starts[0]), float(ref.ends[-1])
    return replace(
        match,
        speed=line.speed,
        query_start=float(np.clip(qs, q_lo, q_hi)),
        query_end=float(np.clip(max(qe, qs), q_lo, q_hi)),
        ref_start=float(np.clip(rs, r_lo, r_hi)),
        ref_end=float(np.clip(max(re, rs), r_lo, r_hi)),
    )


def score_video(query: QueryVideo, ref: QueryVideo, floor: float = MATCH_FLOOR) -> VideoMatch | None:
    """How ``ref`` matches ``query`` (see :func:`align`)."""
    return align(query, ref, floor)
