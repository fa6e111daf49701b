"""Matched video ranges below the segment length: the alignment line refined against interpolated segment vectors,
and each range end placed on the frame grid where the footage visibly cuts.

Stored vectors are 2 s means of frame vectors; frame vectors are not kept. The line's offset is refined against the
other video's segment vectors interpolated in time, and a matched range's ends are placed on the frame grid by
splitting the segment that straddles the cut into its share of inside and outside footage.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lookalike.indexer.pooling import unit_rows
from lookalike.search.video_vectors import SPEEDS, Line, VideoMatch, VideoVectors, heaviest_run, speed_prior

OFFSET_STEPS = 10  # offsets tried per frame step when the line is refined
LINE_SAMPLE = 256  # segments per side a refined line is judged on (evenly spaced in longer videos)
WHOLE_MISSES = 0.2  # share of segments that may miss the line through two whole copies' ends
CUT_MARGIN = 0.1  # an edge is placed by the side whose own footage changes more across it, by this much
VIDEO_END_CUT = 0.5  # a video's own start or end counts as a cut between footage this alike (see _agree)


def _interpolate(video: VideoVectors, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The video's segment vectors linearly interpolated between segment centres at ``times`` (renormalised), and
    whether each time falls inside the video."""
    centres = video.centres()
    pos = np.interp(times, centres, np.arange(len(centres), dtype=np.float64))
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(centres) - 1)
    frac = (pos - lo)[:, None]
    vectors = unit_rows((1 - frac) * video.vectors[lo] + frac * video.vectors[hi])
    inside = (times >= video.starts[0]) & (times <= video.ends[-1])
    return vectors, inside


def _line_sims(a: VideoVectors, b: VideoVectors, line: Line, idx: np.ndarray | None = None) -> np.ndarray:
    """Similarity of segments ``idx`` (default: all) of ``a`` with ``b`` at the time the line maps their centres
    to (-1 outside ``b``)."""
    idx = np.arange(len(a.starts)) if idx is None else idx
    vectors, inside = _interpolate(b, line.speed * a.centres()[idx] + line.offset)
    return np.where(inside, np.einsum("nd,nd->n", a.vectors[idx], vectors), -1.0)


def _inner(run: np.ndarray) -> np.ndarray:
    """A run's segments without its two ends (which may hold footage from outside the match), evenly sampled."""
    inner = run[1:-1] if len(run) > 3 else run
    return inner[np.unique(np.linspace(0, len(inner) - 1, min(len(inner), LINE_SAMPLE)).round().astype(np.int64))]


def _whole(query: VideoVectors, ref: VideoVectors, line: Line) -> Line | None:
    """The line through both videos' starts and ends, when the segments of both (but :data:`WHOLE_MISSES` of
    them) match on it: whole copies need no offset guessed from the footage (slowly changing
    footage fits many lines about as well), and their speed is their durations' ratio."""
    speed = ref.duration / max(query.duration, 1e-9)
    if not SPEEDS[0] <= speed <= SPEEDS[-1]:
        return None
    whole = Line(speed, float(ref.starts[0] - speed * query.starts[0]), line.keep)
    for a, b, ln in ((query, ref, whole), (ref, query, whole.inverse())):
        if float(np.mean(_line_sims(a, b, ln) >= line.keep)) < 1.0 - WHOLE_MISSES:
            return None
    return whole


def anchor_is_ref(query: VideoVectors, ref: VideoVectors, line: Line, run: np.ndarray) -> bool:
    """Whether the reference's matched run is cut more clearly out of other footage than the query's: its line is
    then better found from its side (the other side may be footage that looks alike for long stretches, where
    any offset fits about as well)."""
    inv = line.inverse()
    r_run = _side_run(ref, query, inv, _mapped(query, line, run))
    if r_run is None or _whole(query, ref, line) is not None:
        return False
    q_cut = sum(e.cut for e in _edges(query, ref, line, run))
    return sum(e.cut for e in _edges(ref, query, inv, r_run)) < q_cut - CUT_MARGIN


def _mapped(a: VideoVectors, line: Line, run: np.ndarray) -> tuple[float, float]:
    """The time range a run of ``a``'s segments maps to through the line."""
    ends = (line.speed * float(a.starts[run[0]]) + line.offset, line.speed * float(a.ends[run[-1]]) + line.offset)
    return min(ends), max(ends)


def _anchored_line(a: VideoVectors, b: VideoVectors, line: Line, run: np.ndarray) -> Line:
    """The line fitted on ``a``'s run: the weighted mean similarity of the run's inner segments (its end segments
    may hold footage from outside the match) with ``b`` interpolated at the times the line maps them to, with the
    slight preference for speed 1; every speed of :data:`SPEEDS` pivoting about the run's centre with offsets
    within a segment, then the best one's offset to a tenth of a frame step. Only ``a``'s side is fitted: the
    segments of ``b`` that belong to the match are not known before the line is (measured on the benchmark:
    fitting them too, chosen either way, misplaced more partial copies)."""
    idx = _inner(run)
    centres = a.centres()
    w = a.weight[idx] + 1e-3

    def fit(c: Line) -> float:
        return float((np.clip(_line_sims(a, b, c, idx), 0.0, None) * w).sum() / w.sum()) * speed_prior(c.speed)

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


def _frames_in(a: VideoVectors, at: int, outer: int, other: np.ndarray, passed: bool) -> int:
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


def _edges(a: VideoVectors, b: VideoVectors, line: Line, run: np.ndarray) -> tuple[_Edge, _Edge]:
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


def _edge(a: VideoVectors, other: np.ndarray, at: int, far: int, out: int) -> _Edge:
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


def _agree(q: _Edge, r: _Edge, line: Line) -> tuple[float, float]:
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


def _side_run(a: VideoVectors, b: VideoVectors, line: Line, near: tuple[float, float]) -> np.ndarray | None:
    """The run of ``a``'s segments matching ``b`` along ``line`` that overlaps ``near`` (in ``a``'s time) most."""
    sims = _line_sims(a, b, line)
    good = np.flatnonzero(sims >= line.keep)
    if len(good) == 0:
        return None
    overlap = np.clip(np.minimum(a.ends, near[1]) - np.maximum(a.starts, near[0]), 0.0, None)
    return heaviest_run(good, overlap + 1e-6 * sims)


def refine_ranges(query: VideoVectors, ref: VideoVectors, line: Line, run: np.ndarray, match: VideoMatch) -> VideoMatch:
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
