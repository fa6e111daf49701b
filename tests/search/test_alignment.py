"""Temporal alignment on known offsets and speeds (synthetic segment vectors with real temporal structure)."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.indexer.pooling import unit_rows
from lookalike.search.alignment import VideoVectors, align

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out

DIM, SEG = 64, 2.0


def _content(seed: int):
    """A smooth random 'video content' curve f(t) in R^DIM: nearby times look alike, distant ones do not."""
    rng = np.random.default_rng(seed)
    freqs = rng.uniform(0.02, 0.25, size=(24, 1))
    phases = rng.uniform(0, 2 * np.pi, size=(24, DIM))
    amps = rng.normal(size=(24, DIM))

    def f(t: np.ndarray) -> np.ndarray:
        return unit_rows(np.einsum("kd,tkd->td", amps, np.sin(2 * np.pi * freqs[None] * t[:, None, None] + phases)))

    return f


def _video(vectors: np.ndarray) -> VideoVectors:
    starts = np.arange(len(vectors)) * SEG
    return VideoVectors(starts, starts + SEG, vectors.astype(np.float32), unit_rows(vectors.mean(axis=0)))


def _segments(f, start: float, n: int, speed: float = 1.0, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    centres = start + (np.arange(n) * SEG + SEG / 2) * speed
    v = f(centres)
    return unit_rows(v + noise * np.random.default_rng(seed).normal(size=v.shape) / np.sqrt(DIM))


def test_excerpt_inside_other_footage_is_found_at_its_offsets():
    ref_f, other_f = _content(1), _content(2)
    ref = _video(_segments(ref_f, 0.0, 40))  # 80 s
    # query: 10 s of other footage, then ref 24 s..50 s (13 segments), then 10 s of other footage
    query = _video(
        np.vstack([_segments(other_f, 0, 5), _segments(ref_f, 24.0, 13, noise=0.3), _segments(other_f, 300, 5)])
    )
    m = align(query, ref)
    assert m is not None and m.speed == 1.0
    assert (m.query_start, m.query_end) == (10.0, 36.0)
    assert (m.ref_start, m.ref_end) == (24.0, 50.0)
    assert m.score > 0.85 and m.pairs == 13


@pytest.mark.parametrize("speed", [0.75, 1.5])
def test_speed_changed_copy_is_aligned_on_a_sloped_line(speed: float):
    ref_f = _content(3)
    ref = _video(_segments(ref_f, 0.0, 60))  # 120 s
    # the copy plays ref from 30 s on at `speed` for 16 query segments (32 s of query time)
    query = _video(_segments(ref_f, 30.0, 16, speed=speed, noise=0.2))
    m = align(query, ref)
    assert m is not None
    assert m.speed == pytest.approx(speed, abs=0.08)
    assert m.query_start == 0.0 and m.query_end == 32.0
    truth = (30.0, 30.0 + 32.0 * speed)
    overlap = min(m.ref_end, truth[1]) - max(m.ref_start, truth[0])
    iou = overlap / (max(m.ref_end, truth[1]) - min(m.ref_start, truth[0]))
    assert iou > 0.8, (m, truth)


def test_unrelated_videos_do_not_align():
    a, b = _video(_segments(_content(4), 0, 20)), _video(_segments(_content(5), 0, 20))
    m = align(a, b)
    assert m is None or m.score < 0.7
