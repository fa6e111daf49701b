"""Temporal pooling: frame vectors -> segment vectors (fixed windows) and one whole-video vector."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Segment:
    """A pooled window of frames: unit vector and the time range it covers, in seconds."""

    start: float
    end: float
    vector: np.ndarray


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def pool_segments(
    times: np.ndarray, vectors: np.ndarray, window: float, frame_step: float, duration: float | None = None
) -> list[Segment]:
    """Mean-pool frame vectors over consecutive windows of ``window`` seconds and renormalise.

    Args:
        times: frame times in seconds, ascending.
        vectors: (n, dim) unit frame vectors.
        window: window length in seconds.
        frame_step: the sampling interval; a frame covers ``[t, t + frame_step)``.
        duration: the video's length, to clip the last window's end.

    Returns:
        segments in time order; each covers the frames whose time falls in its window.
    """
    if len(times) == 0:
        return []
    bins = np.floor(np.asarray(times) / window + 1e-9).astype(np.int64)
    segments = []
    for b in np.unique(bins):
        mask = bins == b
        t = times[mask]
        end = float(t[-1]) + frame_step
        if duration:
            end = min(end, max(duration, float(t[-1])))
        segments.append(Segment(float(t[0]), end, unit_rows(vectors[mask].mean(axis=0))))
    return segments


def pool_video(vectors: np.ndarray) -> np.ndarray:
    """The whole-video vector: mean of the frame vectors, renormalised."""
    return unit_rows(vectors.mean(axis=0))
