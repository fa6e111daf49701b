"""FAISS work on a real local Ray (2 CPUs): an index whose shards Ray tasks filled equals the one filled here, and
``dupes`` whose candidates Ray actors searched equals ``dupes`` here; an actor that cannot read the index file
says which file."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lookalike.errors import ClusterError
from lookalike.workspace import Workspace
from tests.indexer.ray_support import assert_loopback_nodes, needs_ray_namespace, ray_settings, worker_env

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'lookalike[ray]')")
pytestmark = needs_ray_namespace()

FACTORY = "IVF4,PQ16x4"  # trained on the few dozen vectors of the corpus; lossy, so search re-ranks


@pytest.fixture(scope="module")
def local_ray():
    os.environ.update(worker_env())  # the workers Ray starts inherit it
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    assert_loopback_nodes(ray)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def library(ray_media, tmp_path_factory, model_cache):
    """The corpus indexed here (the local engine)."""
    settings = ray_settings(tmp_path_factory.mktemp("ray-index"), model_cache)
    with Workspace(settings) as ws:
        ws.index([ray_media])
    return settings


def _index_state(settings, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The items index's ids in order, and its answers to ``queries``."""
    with Workspace(settings) as ws:
        index = ws.store().index("items")
        found = index.search(queries, 8, nprobe=2)
        return index.ids(), found.ids, found.scores


def test_shards_filled_on_ray_equal_the_index_filled_here(local_ray, library, monkeypatch):
    import lookalike.storage.index_files as index_files

    monkeypatch.setattr(index_files, "SHARD_VECTORS", 7)  # several shards, several tasks in flight
    with Workspace(library) as ws:
        assert ws.reindex(FACTORY)["items"] == FACTORY
        store = ws.store()
        queries = np.vstack([v for _, v in ws.library.catalog.iter_vectors(store.info.id, ["image"], store.dim)])
    here = _index_state(library, queries)
    from lookalike.storage.vectors import VectorIndex

    merged: list[int] = []
    merge = VectorIndex.merge

    def counted(self, shard):  # the driver only merges shards a Ray task filled
        merged.append(len(shard))
        merge(self, shard)

    monkeypatch.setattr(VectorIndex, "merge", counted)
    with Workspace(library.with_(ray="auto")) as ws:
        assert ws.reindex(FACTORY)["items"] == FACTORY
    on_ray = _index_state(library, queries)
    assert len(here[0]) > 3 * 7 and sum(merged) == len(here[0]) and len(merged) == -(-len(here[0]) // 7)
    for a, b in zip(on_ray, here, strict=True):
        assert np.array_equal(a, b)


def test_dupes_searched_on_ray_equal_dupes_here(local_ray, library, monkeypatch):
    import lookalike.search.candidates as candidates

    monkeypatch.setattr(candidates, "CHUNK", 5)  # several chunks in flight on two actors
    with Workspace(library) as ws:
        ws.reindex("IVF4,Flat")
        here = ws.duplicates(similar_threshold=0.2)

    def not_here(index):
        raise AssertionError("dupes --ray searched here")

    monkeypatch.setattr(candidates, "search_here", not_here)
    with Workspace(library.with_(ray="auto", ray_actors=2)) as ws:
        on_ray = ws.duplicates(similar_threshold=0.2)
    assert any(g.kind.value == "duplicates" for g in here) and any(g.kind.value == "similar" for g in here)
    assert on_ray == here


def test_more_actors_than_free_cpus_are_as_many_as_there_are(local_ray, library):
    """Asking for more search actors than the cluster has CPUs waited for ever: as many start as fit."""
    with Workspace(library) as ws:
        here = ws.duplicates()
    with Workspace(library.with_(ray="auto", ray_actors=5)) as ws:
        assert ws.duplicates() == here


def test_an_actor_that_cannot_read_the_index_file_names_it(local_ray, tmp_path):
    from lookalike.indexer.engines.ray_index import ray_chunk_search

    missing = tmp_path / "elsewhere" / "items.faiss"
    with (
        pytest.raises(ClusterError, match=r"cannot read the index file .*elsewhere/items\.faiss"),
        ray_chunk_search("auto", missing, "Flat", actors=1) as search,
    ):
        list(search([np.zeros((1, 8), np.float32)], 1, None))


@pytest.mark.parametrize("command", [["index", "MEDIA"], ["dupes"], ["reindex"]])
def test_a_cluster_nobody_answers_at_is_one_line_at_once(command, library, ray_media):
    """``ray.init`` retries an address nobody answers at for ever, logging every few seconds: each command says so
    in one line before it plans or reads anything (a fresh process: this module's Ray is already joined)."""
    import subprocess
    import sys
    import time

    args = [str(ray_media) if a == "MEDIA" else a for a in command]
    start = time.monotonic()
    cli = [sys.executable, "-m", "lookalike.cli.main", "--home", str(library.home), "--db", library.database_url]
    done = subprocess.run(
        [*cli, *args, "--ray", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **worker_env()},
    )
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: cannot join the Ray cluster at 127.0.0.1:1: nothing answers at 127.0.0.1:1 (Connection refused)"
    ]
    assert time.monotonic() - start < 60
