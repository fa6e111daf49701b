"""Grouping near-duplicate pairs in bounded memory: the streaming union-find equals grouping all pairs at once."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.search.duplicates import _connected, _Forest


@pytest.mark.parametrize("seed", range(5))
def test_forest_in_batches_equals_components_of_all_pairs(seed):
    rng = np.random.default_rng(seed)
    n, m = 600, 300  # near the critical density: a few big groups and many small ones
    a, b = rng.integers(n, size=m), rng.integers(n, size=m)
    keep = a != b
    a, b = a[keep], b[keep]
    sims = rng.uniform(0.9, 1.0, size=len(a)).astype(np.float32)
    forest = _Forest(n)
    for start in range(0, len(a), 37):  # edges arrive in batches, as range searches return them
        forest.add(a[start : start + 37], b[start : start + 37], sims[start : start + 37])
    got = {tuple(nodes.tolist()): score for nodes, score in forest.components()}

    nodes, labels, edge_labels = _connected(a, b)  # the reference: every pair held at once
    want = {
        tuple(nodes[labels == label].tolist()): float(sims[edge_labels == label].min()) for label in np.unique(labels)
    }
    assert got.keys() == want.keys()
    for members, score in want.items():
        assert got[members] == pytest.approx(score)
    assert len(got) > 5 and max(len(k) for k in got) > 10  # the random graph has both small and big groups


def test_a_node_without_edges_is_in_no_group():
    forest = _Forest(5)
    forest.add(np.array([0, 3]), np.array([1, 4]), np.array([0.95, 0.91], np.float32))
    groups = sorted((nodes.tolist(), round(s, 2)) for nodes, s in forest.components())
    assert groups == [([0, 1], 0.95), ([3, 4], 0.91)]


def test_video_copies_ignore_images_among_a_segments_neighbours(settings_factory, corpus, tmp_path):
    """A photo of a video's frame is among its segments' nearest items; copy finding must step over it."""
    import shutil

    from benchmarks.corpus import frame_at
    from lookalike.workspace import Workspace

    folder = tmp_path / "lib"
    folder.mkdir()
    shutil.copy(corpus.videos["bikes"], folder / "bikes.mp4")
    shutil.copy(corpus.videos["bikes_small"], folder / "bikes_small.mp4")
    for t in (1.0, 5.0, 9.0):
        frame_at(corpus.videos["bikes"], t).save(folder / f"still_{t:.0f}.png")
    settings = settings_factory()
    with Workspace(settings) as ws:
        ws.index([folder])
        groups = ws.duplicates()
    kinds = [{it.kind for it in g.items} for g in groups]
    assert {"video"} in kinds  # the two videos are one group
    assert all(len(k) == 1 for k in kinds)  # images and videos are never grouped together
