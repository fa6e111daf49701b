"""FAISS vector store: results match numpy brute force; ids, removal and atomic save behave."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import DimensionMismatchError
from lookalike.indexer.pooling import unit_rows
from lookalike.storage.vectors import VectorIndex

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


def _data(n: int = 500, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # clustered, not uniform: a few centres with small spread, like real embeddings
    centres = rng.normal(size=(10, dim))
    vecs = unit_rows(centres[rng.integers(0, 10, n)] + 0.3 * rng.normal(size=(n, dim)))
    ids = rng.choice(10_000_000, size=n, replace=False).astype(np.int64)
    return ids, vecs


def test_search_matches_brute_force():
    ids, vecs = _data()
    index = VectorIndex.create(vecs.shape[1])
    index.add(ids, vecs)
    queries = vecs[:20] + 0.05
    found = index.search(queries, 10)
    sims = queries @ vecs.T
    expected = ids[np.argsort(-sims, axis=1)[:, :10]]
    assert np.array_equal(found.ids, expected)
    assert np.allclose(found.scores, np.sort(sims, axis=1)[:, ::-1][:, :10], atol=1e-5)


def test_memory_mapped_index_answers_like_the_loaded_one_and_survives_replacement(tmp_path):
    ids, vecs = _data(2000)
    index = VectorIndex.create(vecs.shape[1])
    index.add(ids, vecs)
    index.save(tmp_path / "v.faiss")
    mapped = VectorIndex.load(tmp_path / "v.faiss", mmap=True)
    expected = index.search(vecs[:30], 10)
    index.remove(ids[:1000])
    index.save(tmp_path / "v.faiss")  # a writer replaces the file while a reader has it mapped
    assert np.array_equal(mapped.search(vecs[:30], 10).ids, expected.ids)
    assert len(VectorIndex.load(tmp_path / "v.faiss", mmap=True)) == 1000


def test_without_a_faiss_gpu_search_stays_on_the_cpu():
    from lookalike.storage.vectors import gpu_count

    if gpu_count():
        pytest.skip("faiss sees a GPU; tests/indexer/test_gpu.py covers it")
    ids, vecs = _data(300)
    index = VectorIndex.create(vecs.shape[1])
    index.add(ids, vecs)
    assert index.to_gpu() is False and not index.on_gpu
    assert np.array_equal(index.search(vecs[:5], 3).ids[:, 0], ids[:5])


def test_remove_and_ids():
    ids, vecs = _data(100)
    index = VectorIndex.create(vecs.shape[1])
    index.add(ids, vecs)
    assert index.remove(ids[:10]) == 10
    assert len(index) == 90
    assert set(index.ids().tolist()) == set(ids[10:].tolist())
    found = index.search(vecs[:10], 1)
    assert not set(found.ids.ravel().tolist()) & set(ids[:10].tolist())


def test_range_search_matches_brute_force():
    ids, vecs = _data(300)
    index = VectorIndex.create(vecs.shape[1])
    index.add(ids, vecs)
    lims, scores, found = index.range_search(vecs[:5], 0.8)
    sims = vecs[:5] @ vecs.T
    for q in range(5):
        assert set(found[lims[q] : lims[q + 1]].tolist()) == set(ids[sims[q] > 0.8].tolist())
        assert (scores[lims[q] : lims[q + 1]] > 0.8).all()


def test_save_load_roundtrip_leaves_no_temp_files(tmp_path):
    ids, vecs = _data(50)
    index = VectorIndex.create(vecs.shape[1])
    index.add(ids, vecs)
    path = tmp_path / "items.faiss"
    index.save(path)
    index.save(path)  # replacing an existing file
    loaded = VectorIndex.load(path)
    assert np.array_equal(loaded.ids(), index.ids())
    assert np.allclose(loaded.reconstruct(ids[:3]), vecs[:3])
    assert [p.name for p in tmp_path.iterdir()] == ["items.faiss"]


def test_wrong_dimension_is_a_clear_error():
    index = VectorIndex.create(8)
    with pytest.raises(DimensionMismatchError, match="dimension 8"):
        index.add(np.array([1]), np.ones((1, 9), np.float32))


def test_factory_is_chosen_by_size():
    from lookalike.storage.index_policy import choose_factory, training_size

    assert choose_factory(100_000) == "Flat"
    assert choose_factory(1_000_000) == "IVF4096,Flat"
    assert training_size("IVF4096,Flat") == 4096 * 40 and training_size("Flat") == 0
    # past 8 GiB of float32 vectors: product-quantized codes (2M x 1280-d is 9.5 GiB; 2M x 512-d is 3.8 GiB)
    assert choose_factory(1_000_000, 1280) == "IVF4096,Flat"
    assert choose_factory(2_000_000, 1280) == "IVF4096,PQ128"
    assert choose_factory(2_000_000, 512) == "IVF4096,Flat"
    assert choose_factory(20_000_000, 512) == "IVF16384,PQ128"
    assert choose_factory(20_000_000, 1000) == "IVF16384,PQ125"  # 128 does not divide 1000
    assert training_size("IVF16,PQ64") == 256 * 40 and training_size("IVF8192,PQ64") == 8192 * 40


def test_an_index_that_outgrew_its_factory_is_rebuilt_by_size():
    from lookalike.storage.index_policy import outgrown, rebuild_factories

    assert outgrown("Flat", 100_001, 1280) and not outgrown("Flat", 100_000, 1280)
    assert not outgrown("IVF4,Flat", 5_000, 1280)  # what reindex --factory asked for, at a size Flat would be
    assert not outgrown("IVF1024,Flat", 500_000, 1280)  # 2048 lists wanted
    assert outgrown("IVF1024,Flat", 1_000_000, 1280)  # 4096 lists wanted: 4x, rebuilt
    assert outgrown("IVF4096,Flat", 1_700_000, 1280)  # past 8 GiB of float32: PQ codes
    assert not outgrown("IVF4096,PQ128", 4_000_000, 1280) and outgrown("IVF1024,PQ128", 16_000_000, 1280)
    assert not outgrown("HNSW32", 50_000_000, 1280)

    class Sized:
        def __init__(self, factory: str, n: int) -> None:
            self.factory, self.n = factory, n

        def __len__(self) -> int:
            return self.n

    grown = {"items": Sized("IVF4096,Flat", 1_700_000), "videos": Sized("Flat", 10)}
    assert rebuild_factories(grown, stale=False, dim=1280) == {"videos": "Flat"}  # items chosen by size again
    assert rebuild_factories({"items": Sized("IVF4096,Flat", 1_000_000)}, stale=False, dim=1280) is None
    assert rebuild_factories({"items": Sized("HNSW32", 10)}, stale=True, dim=1280) == {"items": "HNSW32"}


def test_which_factories_hold_estimates():
    from lookalike.storage.index_policy import lossy

    factories = ("Flat", "IVF1024,Flat", "HNSW32", "IVF1024,PQ64", "IVF64,SQ8", "OPQ16,IVF8,PQ16", "PCA64,IVF8,Flat")
    assert [lossy(f) for f in factories] == [False, False, False, True, True, True, True]
    assert VectorIndex.create(32, "IVF4,PQ8x4").lossy and not VectorIndex.create(32).lossy


@pytest.mark.parametrize("factory", ["IVF16,Flat", "IVF16,PQ8x4", "IVF16,SQ8"])
def test_shards_filled_apart_and_merged_equal_one_index_filled_here(factory, tmp_path):
    """What ``reindex --ray`` does: copies of the trained empty index, sent as bytes, each filled with a chunk,
    merged in order; the result answers exactly like the index filled here, and stays writable."""
    ids, vecs = _data(3000, dim=32, seed=7)
    here = VectorIndex.create(32, factory)
    here.train(vecs)
    empty = VectorIndex.from_bytes(here.to_bytes(), factory)
    here.add(ids, vecs)
    merged = VectorIndex.from_bytes(empty.to_bytes(), factory)
    for start in range(0, 3000, 700):
        shard = VectorIndex.from_bytes(empty.to_bytes(), factory)
        shard.add(ids[start : start + 700], vecs[start : start + 700])
        merged.merge(VectorIndex.from_bytes(shard.to_bytes(), factory))
    assert len(merged) == 3000 and np.array_equal(np.sort(merged.ids()), np.sort(ids))
    queries = vecs[:50] + 0.02
    want, got = here.search(queries, 10, nprobe=4), merged.search(queries, 10, nprobe=4)
    assert np.array_equal(got.ids, want.ids) and np.array_equal(got.scores, want.scores)
    # the merged index removes, adds, saves and loads like any other (brute force: test_removal_...)
    assert merged.remove(ids[:5]) == 5 and here.remove(ids[:5]) == 5
    merged.add(ids[:2], vecs[:2])
    here.add(ids[:2], vecs[:2])
    merged.save(tmp_path / "m.faiss")
    loaded = VectorIndex.load(tmp_path / "m.faiss", factory)
    assert np.array_equal(loaded.search(queries, 10, nprobe=4).ids, here.search(queries, 10, nprobe=4).ids)


@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat", "PCA32,IVF16,Flat"])
def test_after_removals_and_adds_every_vector_still_answers_as_its_own_id(factory, tmp_path):
    """Brute force, not another index: ``IndexIDMap2`` over IVF compacted its id map on removal while the lists
    kept old positions, and 97% of the vectors then answered under another vector's id."""
    ids, vecs = _data(3000, dim=32, seed=11)
    index = VectorIndex.create(32, factory)
    if not index.is_trained:
        index.train(vecs)
    index.add(ids, vecs)
    assert index.remove(ids[100:200]) == 100
    index.add(ids[150:160], vecs[150:160])  # put back: new positions after the removal
    kept = np.r_[0:100, 150:160, 200:3000]
    for idx in (index, _saved_and_mapped(index, tmp_path)):
        top = idx.search(vecs[kept], 1, nprobe=16)
        assert np.array_equal(top.ids[:, 0], ids[kept])
        assert idx.lossy or np.allclose(top.scores[:, 0], 1.0, atol=1e-4)  # PCA centres: scores are estimates
        assert sorted(idx.ids().tolist()) == sorted(ids[kept].tolist())


def _saved_and_mapped(index: VectorIndex, tmp_path) -> VectorIndex:
    index.save(tmp_path / "r.faiss")
    return VectorIndex.load(tmp_path / "r.faiss", index.factory, mmap=True)


def test_an_ivf_index_in_the_old_id_map_layout_is_told_apart():
    import faiss

    ivf = faiss.index_factory(32, "IVF4,Flat", faiss.METRIC_INNER_PRODUCT)
    assert VectorIndex(faiss.IndexIDMap2(ivf), "IVF4,Flat").legacy
    assert not VectorIndex.create(32, "IVF4,Flat").legacy and not VectorIndex.create(32).legacy
    assert VectorIndex.create(32, "IVF4,Flat").shardable and not VectorIndex.create(32, "HNSW8").shardable


def test_a_shard_of_another_index_type_is_refused():
    a = VectorIndex.create(32, "IVF4,Flat")
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(VectorIndex.create(32, "IVF4,PQ8x4"))
    with pytest.raises(ValueError, match="cannot merge"):
        VectorIndex.create(32, "PQ8").merge(VectorIndex.create(32, "PQ8"))


def _exact_and_ivf(factory: str) -> tuple[np.ndarray, VectorIndex, VectorIndex]:
    """3,000 clustered vectors in a flat index and in an IVF index of ``factory``; returns (vectors, flat, ivf)."""
    ids, vecs = _data(3000, dim=32, seed=5)
    exact = VectorIndex.create(32)
    exact.add(ids, vecs)
    ivf = VectorIndex.create(32, factory)
    ivf.train(vecs)
    ivf.add(ids, vecs)
    return vecs, exact, ivf


def _recall(got: np.ndarray, want: np.ndarray) -> float:
    """The share of the exact neighbours found, over all queries (10 a query)."""
    return float(np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want, strict=True)]))


def test_ivf_recall_against_exact_search():
    vecs, exact, ivf = _exact_and_ivf("IVF16,Flat")
    q = vecs[:100]
    assert _recall(ivf.search(q, 10).ids, exact.search(q, 10).ids) >= 0.95


def test_nprobe_per_call_scans_as_many_lists_as_asked():
    vecs, exact, ivf = _exact_and_ivf("IVF64,Flat")
    q = vecs[:200] + 0.2 * _data(200, dim=32, seed=6)[1]
    want = exact.search(q, 10).ids
    assert np.array_equal(ivf.search(q, 10, nprobe=64).ids, want)  # every list: exact
    one = _recall(ivf.search(q, 10, nprobe=1).ids, want)
    assert one < _recall(ivf.search(q, 10).ids, want)  # the index's own setting (32) scans more
    assert np.array_equal(exact.search(q, 10, nprobe=1).ids, want)  # a flat index has no lists to choose
    with pytest.raises(ValueError, match="nprobe must be at least 1"):
        ivf.search(q, 10, nprobe=0)
