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
    """How well a reference video matches a query video, and where."""

    score: float
    ref_start: float
    ref_end: float
    query_start: float
    query_end: float


def score_video(query: QueryVideo, ref: QueryVideo, floor: float = MATCH_FLOOR) -> VideoMatch | None:
    """Score a reference video against a query by their best-matching segments.

    Each query segment is paired with its most similar reference segment; the score is the mean of
    those similarities over the query segments that match (similarity >= ``floor``). The ranges span
    the matched segments on each side.

    Returns:
        the match, or None when no segment pair reaches ``floor``.
    """
    sims = query.vectors @ ref.vectors.T
    best_ref = sims.argmax(axis=1)
    best = sims[np.arange(len(best_ref)), best_ref]
    matched = best >= floor
    if not matched.any():
        return None
    score = float(best[matched].mean())
    q_idx = np.flatnonzero(matched)
    r_idx = best_ref[matched]
    return VideoMatch(
        score,
        float(ref.starts[r_idx].min()),
        float(ref.ends[r_idx].max()),
        float(query.starts[q_idx].min()),
        float(query.ends[q_idx].max()),
    )
