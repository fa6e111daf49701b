"""End to end on real media with the real default model: copies are found, distinct items never grouped,
results equal a numpy brute-force search, re-indexing is incremental, bad files are reported by name."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.corpus import EDITS
from lookalike.indexer.decode import load_image
from lookalike.indexer.embedders.registry import collection_name
from lookalike.types import MediaKind
from lookalike.workspace import Workspace
from tests.conftest import DISTRACTORS, SOURCES

# Edits a global CNN descriptor is expected to see through at the top of the list.
K = 15  # 11 copies + the original itself fit in the top 15


def _source_of(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1]
    for s in SOURCES:
        if name.startswith(f"{s}__") or name.startswith(f"{s}."):
            return s
    return None


def test_first_run_indexes_everything(indexed, corpus):
    _, report = indexed
    n_images = len(corpus.originals) + len(corpus.copies) + len(corpus.distractors)
    assert report.images + report.copied == n_images and report.videos == 4
    assert report.failed == [] and report.new == n_images + 4
    assert report.frames > 20


@pytest.mark.parametrize("source", SOURCES)
def test_every_edited_copy_ranks_above_every_unrelated_image(indexed, corpus, source):
    settings, _ = indexed
    with Workspace(settings) as ws:
        hits = ws.search_files([corpus.originals[source]], k=K)[0].hits
    ranked = [h.path for h in hits if h.kind.value == "image"]
    copies = {str(corpus.copies[(source, e.name)]) for e in EDITS}
    found = copies & set(ranked[:12])
    assert len(found) >= 10, f"{source}: only {sorted(found)} in the top 12"
    assert ranked[0] == str(corpus.originals[source])


def test_search_equals_numpy_brute_force(indexed, corpus):
    settings, _ = indexed
    with Workspace(settings) as ws:
        store = ws.store()
        ids, vecs = zip(*store.catalog.iter_vectors(store.info.id, ["image", "segment"], store.dim), strict=True)
        ids, vecs = np.concatenate(ids), np.vstack(vecs)
        query = corpus.distractors["coins"]
        searcher = ws.searcher()
        image, _ = load_image(query, draft=searcher.embedder.preprocess.resize)
        qvec = searcher.embedder.embed_images([image])[0]
        found = store.index("items").search(qvec[None, :], 20)
    expected = ids[np.argsort(-(vecs @ qvec))[:20]]
    assert np.array_equal(found.ids[0], expected)
    assert np.allclose(found.scores[0], np.sort(vecs @ qvec)[::-1][:20], atol=1e-5)


def test_duplicate_groups_never_mix_sources(indexed):
    settings, _ = indexed
    with Workspace(settings) as ws:
        groups = ws.duplicates()
    assert groups, "no duplicate groups found"
    grouped_copies = 0
    video_groups = [sorted(it.path.rsplit("/", 1)[-1] for it in g.items) for g in groups if g.items[0].kind == "video"]
    assert video_groups == [["bikes.mp4", "bikes_small.mp4"]]
    for g in (g for g in groups if g.items[0].kind == "image"):
        sources = {_source_of(it.path) for it in g.items}
        assert len(sources) == 1 and None not in sources, [it.path for it in g.items]
        grouped_copies += len(g.items) - 1
    assert grouped_copies >= 0.6 * len(SOURCES) * len(EDITS)
    for g in groups:
        assert not any(name in it.path for it in g.items for name in DISTRACTORS)


def test_video_copy_and_excerpt_are_found_with_time_ranges(indexed, corpus):
    settings, _ = indexed
    with Workspace(settings) as ws:
        whole, excerpt = ws.search_files([corpus.videos["bikes"], corpus.videos["bikes_excerpt"]], k=5)
    assert {h.path for h in whole.hits[:2]} == {str(corpus.videos["bikes"]), str(corpus.videos["bikes_small"])}
    top = excerpt.hits[0]
    assert top.path in {str(corpus.videos["bikes"]), str(corpus.videos["bikes_small"])}
    inter = max(0.0, min(top.end, 8.0) - max(top.start, 4.0))
    union = max(top.end, 8.0) - min(top.start, 4.0)
    assert inter / union >= 0.5, (top.start, top.end)
    assert top.query_start == pytest.approx(0.0, abs=0.6) and top.query_end == pytest.approx(4.0, abs=1.1)


def test_an_image_query_finds_the_video_moment(indexed, corpus):
    from benchmarks.corpus import frame_at

    settings, _ = indexed
    still = corpus.root.parent / "still.png"
    frame_at(corpus.videos["bunny"], 3.0).save(still)
    with Workspace(settings) as ws:
        hit = ws.search_files([still], k=3)[0].hits[0]
    assert hit.path == str(corpus.videos["bunny"]) and hit.start <= 3.0 <= hit.end


def test_a_verified_search_says_which_hits_it_compared(indexed, corpus):
    """Video hits are not compared with an image query (``unverified``); image hits that are not copies of it are
    compared and turned down (``not_duplicate``)."""
    from benchmarks.corpus import frame_at

    settings, _ = indexed
    still = corpus.root.parent / "still_verified.png"
    frame_at(corpus.videos["bunny"], 3.0).save(still)
    with Workspace(settings) as ws:
        hits = ws.search_files([still], k=8, verify=True)[0].hits
    videos = [h.relation for h in hits if h.kind == MediaKind.VIDEO]
    pictures = [h.relation for h in hits if h.kind == MediaKind.IMAGE]
    assert videos and set(videos) == {"unverified"}
    assert pictures and set(pictures) == {"not_duplicate"}


def test_search_by_id_leaves_out_the_item_itself(indexed, corpus):
    settings, _ = indexed
    with Workspace(settings) as ws:
        media_id = ws.store().catalog.media_id(ws.store().info.id, str(corpus.originals["coffee"]))
        result = ws.search_media(media_id, k=5)
    assert all(h.media_id != media_id for h in result.hits)
    assert all(_source_of(h.path) == "coffee" for h in result.hits)


def test_incremental_reindex(corpus, settings_factory, tmp_path):
    import shutil

    root = tmp_path / "lib"
    shutil.copytree(corpus.root / "originals", root / "a")
    settings = settings_factory()
    with Workspace(settings) as ws:
        first = ws.index([root])
        assert first.new == len(SOURCES)
        again = ws.index([root])
        assert (again.new, again.updated, again.unchanged) == (0, 0, len(SOURCES))
        # byte-identical copy: vectors reused, nothing decoded
        shutil.copy(root / "a" / "coffee.png", root / "a" / "coffee_copy.png")
        # touched but unchanged
        (root / "a" / "rocket.png").touch()
        # changed content
        shutil.copy(corpus.copies[("chelsea", "flip")], root / "a" / "chelsea.png")
        (root / "a" / "camera.png").unlink()
        third = ws.index([root], prune=True)
        assert third.copied == 1 and third.updated == 1 and third.new == 1 and third.pruned == 1
        assert third.images == 1  # only the changed file was decoded and embedded
        store = ws.store()
        store.load()
        assert store.check()["ok"]
        assert ws.info()["collections"][0]["images_ok"] == len(SOURCES)


def test_bad_files_are_reported_and_nothing_indexed_is_lost(corpus, settings_factory, tmp_path, images):
    import shutil

    root = tmp_path / "mixed"
    shutil.copytree(corpus.root / "originals", root)
    settings = settings_factory()
    with Workspace(settings) as ws:
        ws.index([root])
        (root / "empty.jpg").write_bytes(b"")
        good = corpus.copies[("coffee", "jpeg_quality")].read_bytes()
        (root / "cut.jpg").write_bytes(good[: len(good) // 2])
        (root / "fake.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 1000)
        (root / "notes.txt").write_text("not media")
        report = ws.index([root])
        codes = {f.path.rsplit("/", 1)[-1]: f.code for f in report.failed}
        assert codes == {"empty.jpg": "unidentified_format", "cut.jpg": "truncated", "fake.mp4": "corrupt"}
        assert report.unchanged == len(SOURCES)
        failures = {p.rsplit("/", 1)[-1]: c for p, c, _ in ws.failures()}
        assert failures == codes
        hits = ws.search_files([corpus.originals["coffee"]], k=1)[0].hits
        assert hits[0].path == str(root / "coffee.png") and hits[0].score > 0.999


def test_model_used_for_search_is_the_one_that_built_the_index(indexed, corpus):
    settings, _ = indexed
    with Workspace(settings.with_(model="timm:resnet18", weights="random")) as ws:
        from lookalike.errors import NotIndexedError

        with pytest.raises(NotIndexedError, match="timm:resnet18"):
            ws.search_files([corpus.originals["coffee"]])
    with Workspace(settings) as ws:  # the model not given: the default model's collection
        assert ws.store().info.name == collection_name(settings.model, None)
        assert ws.search_files([corpus.originals["coffee"]], k=1)[0].hits[0].path == str(corpus.originals["coffee"])


@pytest.mark.parametrize("factory", ["IVF8,Flat", "HNSW16"])
def test_reindex_to_another_index_type_keeps_search_and_updates_working(corpus, settings_factory, tmp_path, factory):
    import shutil

    from lookalike.storage.manifest import Manifest

    root = tmp_path / "lib"
    shutil.copytree(corpus.root / "copies", root)
    settings = settings_factory()
    with Workspace(settings) as ws:
        ws.index([root])
        assert ws.reindex(factory) == {"items": factory, "videos": "Flat"}
    with Workspace(settings) as ws:  # reopened from the files
        store = ws.store()
        assert Manifest.load(store.directory).factories["items"] == factory
        assert store.index("items").factory == factory
        hit = ws.search_files([corpus.originals["rocket"]], k=1)[0].hits[0]
        assert _source_of(hit.path) == "rocket"
        # a changed file replaces its vectors (HNSW cannot remove: rebuilt on save) and a deleted one is pruned
        shutil.copy(corpus.originals["coffee"], root / "rocket__crop.jpg")
        (root / "rocket__text.jpg").unlink()
        report = ws.index([root], prune=True)
        assert (report.updated, report.pruned) == (1, 1)
        store = ws.store()
        store.load()
        assert store.check()["ok"] and store.index("items").factory == factory
        top = ws.search_files([corpus.originals["coffee"]], k=1)[0].hits[0]
        assert top.score > 0.99


def test_a_compressed_index_answers_like_the_exact_one(corpus, indexed):
    """Product-quantized codes give estimates: search re-ranks what they fetch by the stored vectors, so a library
    reindexed with PQ codes answers with the exact index's files, order and cosines (on this corpus the fetched
    neighbours hold the exact top 5)."""
    settings, _ = indexed
    queries = [corpus.originals[name] for name in ("rocket", "coffee", "chelsea")]

    def answers(ws: Workspace) -> list[list[tuple[str, float]]]:
        return [[(h.path, round(h.score, 5)) for h in r.hits] for r in ws.search_files(queries, k=5)]

    with Workspace(settings) as ws:
        exact = answers(ws)
        assert ws.reindex("IVF4,PQ16x4") == {"items": "IVF4,PQ16x4", "videos": "Flat"}
    try:
        with Workspace(settings) as ws:
            assert ws.store().index("items").lossy
            assert answers(ws) == exact
    finally:
        with Workspace(settings) as ws:
            ws.reindex("Flat")


def test_ivf_files_of_the_old_id_map_layout_are_rebuilt_when_loaded(corpus, indexed):
    """IVF indexes used to be saved inside ``IndexIDMap2``, which answers wrongly once a vector is removed: such a
    file (current generation, right counts) is rebuilt from the catalog on load, and searches answer right."""
    import faiss

    from lookalike.storage.vectors import VectorIndex

    settings, _ = indexed
    with Workspace(settings) as ws:
        ws.reindex("IVF4,Flat")
        store = ws.store()
        want = [[h.path for h in r.hits] for r in ws.search_files([corpus.originals["rocket"]], k=3)]
        path = store.directory / "items.faiss"
        trained = faiss.read_index(str(path))
        trained.reset()  # the trained centroids, no vectors
        old = faiss.IndexIDMap2(trained)
        for ids, vectors in ws.library.catalog.iter_vectors(store.info.id, ["image", "segment"], store.dim):
            old.add_with_ids(vectors, ids)
        old.remove_ids(faiss.IDSelectorBatch(ids[:1]))  # what made the layout answer wrongly
        old.add_with_ids(vectors[:1], ids[:1])
        faiss.write_index(old, str(path))
        assert VectorIndex.load(path, "IVF4,Flat").legacy
    try:
        with Workspace(settings) as ws:
            assert not ws.store().index("items").legacy
            assert [[h.path for h in r.hits] for r in ws.search_files([corpus.originals["rocket"]], k=3)] == want
        assert not VectorIndex.load(path, "IVF4,Flat").legacy  # the writer-free reader repaired the file
    finally:
        with Workspace(settings) as ws:
            ws.reindex("Flat")


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_damaged_index_file_is_rebuilt_from_the_catalog(corpus, indexed, damage):
    """A FAISS file cut short (or emptied) made every command end in a faiss traceback, ``reindex`` included: it is
    rebuilt from the catalog instead, and searches answer as before."""
    settings, _ = indexed
    query = [corpus.originals["rocket"]]
    with Workspace(settings) as ws:
        want = [[(h.path, round(h.score, 5)) for h in r.hits] for r in ws.search_files(query, k=3)]
        path = ws.store().directory / "items.faiss"
    path.write_bytes(path.read_bytes()[:1000] if damage == "truncated" else b"")
    with Workspace(settings) as ws:
        assert [[(h.path, round(h.score, 5)) for h in r.hits] for r in ws.search_files(query, k=3)] == want
    path.write_bytes(b"")
    with Workspace(settings) as ws:
        assert ws.reindex() == {"items": "Flat", "videos": "Flat"}
        assert ws.store().check()["ok"]


def test_a_factory_asked_for_is_kept_though_the_size_rule_would_choose_another(indexed, monkeypatch):
    """``reindex --factory`` is not overridden by the size check of the save that follows it (nor by the next
    index run's: an IVF of a shape the size rule does not make stays)."""
    import lookalike.storage.index_policy as policy

    settings, _ = indexed
    monkeypatch.setattr(policy, "FLAT_LIMIT", 10)  # the corpus then wants IVF32,Flat: IVF2,Flat has 1/16 of it
    assert policy.outgrown("IVF2,Flat", 100, 1280)
    try:
        with Workspace(settings) as ws:
            assert ws.reindex("IVF2,Flat")["items"] == "IVF2,Flat"
        with Workspace(settings) as ws:
            assert ws.store().index("items").factory == "IVF2,Flat"
            assert ws.reindex("IVF2,SQ8")["items"] == "IVF2,SQ8"
            ws.store().save()  # a later save: SQ8 is no shape of the size rule, it stays
            assert ws.store().index("items").factory == "IVF2,SQ8"
    finally:
        monkeypatch.undo()
        with Workspace(settings) as ws:
            ws.reindex("Flat")


def test_a_repair_of_an_ivf_with_more_lists_than_vectors_chooses_by_size(indexed):
    """A library that shrank below its IVF's list count could not be loaded once its file needed a rebuild: the
    repair chooses by size; asked for (``reindex``), it is the clear error it was."""
    from lookalike.errors import IndexTypeError

    settings, _ = indexed
    with Workspace(settings) as ws:
        store = ws.store()
        store.rebuild(save=False, factories={"items": "IVF65536,Flat"})
        assert store.index("items").factory == "Flat"
        with pytest.raises(IndexTypeError, match="needs at least 65,536 vectors"):
            store.rebuild(save=False, factories={"items": "IVF65536,Flat"}, strict=True)
        store.rebuild(save=False)


def test_an_unknown_factory_is_a_clear_error(indexed):
    from lookalike.errors import LookalikeError

    settings, _ = indexed
    with Workspace(settings) as ws, pytest.raises(LookalikeError, match="FAISS cannot build"):
        ws.reindex("NotAnIndex")


def test_a_copy_of_a_file_changed_in_the_same_run_keeps_the_old_content(corpus, settings_factory, tmp_path):
    """``cp a.png c.png``, then change ``a.png``, then index: the copy holds a's old content, which no row holds
    any more once a's row is rewritten; it is decoded (it was stored failed ``duplicate_of_failed`` forever)."""
    import shutil

    root = tmp_path / "lib"
    root.mkdir()
    shutil.copy(corpus.originals["coffee"], root / "a.png")
    settings = settings_factory()
    with Workspace(settings) as ws:
        assert ws.index([root]).new == 1
        shutil.copy(root / "a.png", root / "c.png")
        shutil.copy(corpus.originals["rocket"], root / "a.png")
        report = ws.index([root])
        assert not report.failed and (report.new, report.updated, report.copied) == (1, 1, 0)
        for name, source in (("a.png", "rocket"), ("c.png", "coffee")):
            hit = ws.search_files([corpus.originals[source]], k=1)[0].hits[0]
            assert hit.path == str(root / name) and hit.score > 0.99
