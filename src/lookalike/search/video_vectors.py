"""Videos as segment vectors, how two of them match, and the alignment line: what the alignment and its range
refinement share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from lookalike.indexer.pooling import Segment, unit_rows
from lookalike.storage.records import VectorRecord
from lookalike.types import Level

# Reference seconds per query second tried by the alignment: copies sped up or slowed down by 0.5x-2x (one copy
# slowed to 0.75x and another sped up to 1.5x are 2x apart).
SPEEDS = np.array([0.5, 0.55, 0.6, 0.67, 0.75, 0.8, 0.87, 0.93, 1.0, 1.07, 1.15, 1.25, 1.33, 1.5, 1.67, 1.8, 2.0])
MAX_GAP_SEGMENTS = 3  # aligned pairs further apart than this (in query segments) start a new run


@dataclass(frozen=True)
class VideoVectors:
    """A video as its segment vectors (time order) and its whole-video vector: a query's, or an indexed reference's.

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
    def from_segments(
        cls, segments: Sequence[Segment], frame_step: float | None = 1.0, video_vector: np.ndarray | None = None
    ) -> VideoVectors:
        """From freshly pooled segments of frames sampled every ``frame_step`` seconds (default: one a second, the
        default frame rate; pass the collection's own) and the whole-video vector (default: their mean)."""
        vectors = np.vstack([s.vector for s in segments]).astype(np.float32)
        return cls(
            np.array([s.start for s in segments]),
            np.array([s.end for s in segments]),
            vectors,
            unit_rows(vectors.mean(axis=0)) if video_vector is None else np.asarray(video_vector, np.float32),
            frame_step=frame_step,
        )

    @classmethod
    def from_records(cls, records: Sequence[VectorRecord], frame_step: float | None = 1.0) -> VideoVectors:
        """From stored vectors of one video (segments and the video vector), sampled every ``frame_step`` seconds
        (as :meth:`from_segments`)."""
        segs = sorted((r for r in records if r.level == Level.SEGMENT.value), key=lambda r: r.start or 0.0)
        video = [r for r in records if r.level == Level.VIDEO.value]
        vectors = np.vstack([r.embedding for r in segs]).astype(np.float32)
        vv = video[0].embedding if video else unit_rows(vectors.mean(axis=0))
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


@dataclass(frozen=True)
class Line:
    """``t_ref = speed * t_query + offset``, and the similarity a segment pair on it needs to count (``keep``)."""

    speed: float
    offset: float
    keep: float

    def inverse(self) -> Line:
        """The same line seen from the other video: ``t_query = t_ref / speed - offset / speed``."""
        return Line(1.0 / self.speed, -self.offset / self.speed, self.keep)


def heaviest_run(good: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """The run of ``good`` indices (gaps of up to :data:`MAX_GAP_SEGMENTS` allowed) with the largest ``gain``."""
    runs = np.split(good, np.flatnonzero(np.diff(good) > MAX_GAP_SEGMENTS) + 1)
    return max(runs, key=lambda r: float(gain[r].sum()))


def speed_prior(speed: float) -> float:
    """A slight preference for unchanged speed, which decides between lines that explain the pairs equally well."""
    return 1.0 - 0.1 * abs(float(np.log(speed)))
