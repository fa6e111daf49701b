"""Temporal pooling of frame vectors into segments and a video vector."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import DeviceError
from lookalike.indexer.pooling import pool_segments, pool_video, unit_rows

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


def test_segments_cover_fixed_windows_and_are_unit_vectors():
    rng = np.random.default_rng(0)
    times = np.arange(0, 7.0, 1.0)  # 7 frames at 1 fps
    vecs = unit_rows(rng.normal(size=(7, 8)))
    segs = pool_segments(times, vecs, window=2.0, frame_step=1.0, duration=6.5)
    assert [(s.start, s.end) for s in segs] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 6.5)]
    assert np.allclose(segs[0].vector, unit_rows(vecs[:2].mean(axis=0)))
    assert all(abs(np.linalg.norm(s.vector) - 1) < 1e-5 for s in segs)


def test_video_vector_is_the_normalised_mean():
    vecs = unit_rows(np.eye(4, dtype=np.float32))
    assert np.allclose(pool_video(vecs), np.full(4, 0.5))


def test_no_frames_no_segments():
    assert pool_segments(np.array([]), np.zeros((0, 4)), 2.0, 1.0) == []


def test_decode_worker_policy():
    import torch

    from lookalike.indexer.device import decode_workers, resolve_device

    assert decode_workers(torch.device("cpu"), cpus=2) == 1  # isolation by default, even on 2 cores
    assert decode_workers(torch.device("cpu"), cpus=16) == 4  # a few more on big machines, at most 4
    assert decode_workers(torch.device("cpu"), cpus=8) == 3
    assert decode_workers(torch.device("cuda"), cpus=16) == 8
    assert decode_workers(torch.device("cpu"), requested=3) == 3
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="this machine has no CUDA GPU: use --device cpu"):
            resolve_device("cuda")
