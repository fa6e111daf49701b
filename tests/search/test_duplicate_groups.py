"""Duplicate groups: stars that never chain, relations of each member to its representative, every index type."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageOps

from lookalike.errors import DecodeError
from lookalike.search import searcher as searcher_module
from lookalike.search.features import Features
from lookalike.search.groups import GroupKind, Relation, star_groups
from lookalike.search.image_dupes import Verdict
from lookalike.search.representatives import TILTED, hubs, representative_rank, tilt
from lookalike.search.verify import Match
from lookalike.storage.records import MediaRecord
from lookalike.workspace import Workspace

NOT_VERIFIED = {"not_duplicate", "unverified"}  # a verified search's hits that are not copies of the query


def _chain(n: int) -> dict[int, dict[int, bool]]:
    links: dict[int, dict[int, bool]] = {i: {} for i in range(n)}
    for i in range(n - 1):
        links[i][i + 1] = links[i + 1][i] = True
    return links


def test_a_chain_of_links_never_becomes_one_group():
    """Ten files each linked to the next only (the ring whose ends are opposites): stars of direct links."""
    groups = star_groups(_chain(10), rank=lambda m: m)
    assert groups == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    links = _chain(10)
    for g in groups:
        assert all(links[g[0]].get(m) for m in g[1:])  # every member linked to its representative


def test_members_join_the_best_representative_they_are_linked_to():
    links = {0: {1: True, 2: True}, 1: {0: True, 3: True}, 2: {0: True}, 3: {1: True}}
    assert star_groups(links, rank=lambda m: m) == [[0, 1, 2]]  # 3 is linked to member 1 only: left alone
    confirmed = star_groups(links, rank=lambda m: m, confirm=lambda rep, m: (rep, m) == (0, 3))
    assert confirmed == [[0, 1, 2, 3]]  # ... unless verified against the representative itself


def test_a_candidate_never_compared_with_the_representative_is_checked_against_it():
    """3 was a candidate of member 1 only (its nearest vectors were 1's siblings), never linked to anything."""
    links = {0: {1: True}, 1: {0: True}}
    asked = []

    def confirm(rep: int, m: int) -> bool:
        asked.append((rep, m))
        return m == 3

    groups = star_groups(links, rank=lambda m: m, confirm=confirm, nearby={1: {3, 4}, 3: {1}, 4: {1}})
    assert groups == [[0, 1, 3]]
    assert sorted(asked) == [(0, 3), (0, 4)]  # checked against the representative, never against member 1


def test_the_representative_is_the_hub_its_edits_verify_against():
    """The original (0) verifies against its six edits; a watermarked copy (1) has more keypoints (its letters) and
    verifies against three; an upscaled letterbox (2) has the most pixels and verifies against two. The original
    represents the family, so every edit is in its group; ranked by keypoints or by pixels first, the watermark or
    the letterbox would take the centre and leave out the edits that fail against it."""
    ident = np.eye(3)
    m = Match(40, 50, ident, (0, 0, 99, 99), (0, 0, 99, 99), 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, False)
    pairs = [(0, k) for k in range(1, 7)] + [(1, 3), (1, 4), (2, 5)]
    verdicts = {p: Verdict(True, "local", 1.0, m) for p in pairs}
    links: dict[int, dict[int, bool]] = {}
    for a, b in pairs:
        links.setdefault(a, {})[b] = links.setdefault(b, {})[a] = True
    size = {0: (1000, 750), 1: (1000, 750), 2: (1600, 1200)}
    records = {
        k: MediaRecord(f"/m/{k}.jpg", "image", 100_000, 0, "ok", f"{k}", *size.get(k, (1000, 750))) for k in range(7)
    }
    keypoints = {0: 300, 1: 900}

    def features(k: int) -> Features:
        n = keypoints.get(k, 300)
        points, descriptors = np.zeros((n, 2), np.float32), np.zeros((n, 128), np.float32)
        return Features(points, descriptors, np.zeros((8, 8), np.uint8), 1.0, size.get(k, (1000, 750)))

    assert hubs(links) == {0, 1}  # 1 verifies against 3 files, half the original's 6; the others against 1 or 2
    rank = representative_rank(verdicts, records, features, links)
    assert sorted(links, key=rank)[0] == 0
    assert star_groups(links, rank) == [[0, 1, 2, 3, 4, 5, 6]]


def _family(
    colour: dict[tuple[int, int], float | None],
    flipped: set[tuple[int, int]] = frozenset(),
    quality: dict[int, int] | None = None,
):
    """Verdicts, records, features and links of a family of one size: pairs of ``colour`` are verified duplicates
    with that colour distance (those in ``flipped`` mirrored); file 4 is a lossless PNG with the largest file, the
    others JPEGs of ``quality`` (90 where not given)."""
    ident = np.eye(3)
    verdicts = {}
    for pair, c in colour.items():
        m = Match(40, 50, ident, (0, 0, 99, 99), (0, 0, 99, 99), 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, pair in flipped)
        verdicts[pair] = Verdict(True, "local", 1.0, m, c)
    links: dict[int, dict[int, bool]] = {}
    for a, b in colour:
        links.setdefault(a, {})[b] = links.setdefault(b, {})[a] = True
    ext = {4: "png"}
    records = {
        k: MediaRecord(
            f"/m/{k}.{ext.get(k, 'jpg')}", "image", 900_000 if k == 4 else 100_000, 0, "ok", f"{k}", 1000, 750
        )
        for k in links
    }

    def features(k: int) -> Features:
        points, descriptors = np.zeros((300, 2), np.float32), np.zeros((300, 128), np.float32)
        q = None if k == 4 else (quality or {}).get(k, 90)
        return Features(points, descriptors, np.zeros((8, 8), np.uint8), 1.0, (1000, 750), quality=q)

    return verdicts, records, features, links


def test_a_copy_edited_in_colour_does_not_represent_its_original():
    """The original (0), a resized-in-place re-encode (2), a blurred copy (3) and a colour-saturated copy (1) from
    which one more copy was made (5: verified against 1 only, its colours being 1's). The saturated copy is
    verified against more files than the original, but it is far in colour from all but its own copy, the
    original only as far as each copy's own edit: the original represents the family. Without the colour
    evidence the most-linked copy would."""
    far, near = 20.0, 0.5
    colour = {(0, 1): far, (0, 2): near, (0, 3): near, (1, 2): far, (1, 3): far, (2, 3): near, (1, 5): near}
    verdicts, records, features, links = _family(colour)
    rank = representative_rank(verdicts, records, features, links)
    assert sorted(links, key=rank)[0] == 0
    blind = {k: Verdict(v.duplicate, v.method, v.score, v.match, None) for k, v in verdicts.items()}
    assert sorted(links, key=representative_rank(blind, records, features, links))[0] == 1


def test_copies_that_keep_the_colours_are_not_told_apart_by_chance_differences_in_colour():
    """The original (0) verified against five files, a letterbox (2) against three: both keep the colours, and
    the original's median distance (0.7) is a little larger than the letterbox's (0.45) by chance. That says
    nothing: the original, the hub, still represents the family (ranked by the distance in 1-unit steps, the
    letterbox did)."""
    colour = {(0, 1): 0.7, (0, 2): 0.7, (0, 3): 0.7, (0, 5): 0.9, (0, 6): 0.6, (2, 3): 0.45, (2, 5): 0.4}
    verdicts, records, features, links = _family(colour)
    assert sorted(links, key=representative_rank(verdicts, records, features, links))[0] == 0


def test_a_copy_compressed_hard_does_not_represent_its_original():
    """A copy of the original's size saved at JPEG quality 12 (1) that, by chance, more files verified against
    than the original (0, quality 90): the original represents the family. Read as quality 90, the copy would."""
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (1, 5), (2, 3)]
    verdicts, records, features, links = _family({p: 0.5 for p in pairs}, quality={1: 12})
    assert sorted(links, key=representative_rank(verdicts, records, features, links))[0] == 0
    _, _, unread, _ = _family({p: 0.5 for p in pairs})
    assert sorted(links, key=representative_rank(verdicts, records, unread, links))[0] == 1


def test_a_mirrored_copy_does_not_represent_its_original():
    """A mirror image saved losslessly (4: a PNG, the largest file) of a JPEG original (0): every other copy is
    mirrored against it, so it is not taken for the original, though it wins every tie after that."""
    pairs = [(0, 2), (0, 3), (2, 3), (0, 4), (2, 4), (3, 4)]
    verdicts, records, features, links = _family({p: 0.5 for p in pairs}, flipped={(0, 4), (2, 4), (3, 4)})
    assert sorted(links, key=representative_rank(verdicts, records, features, links))[0] == 0
    unflipped, *_ = _family({p: 0.5 for p in pairs})
    assert sorted(links, key=representative_rank(unflipped, records, features, links))[0] == 4


def test_a_copy_turned_a_few_degrees_against_the_others_is_told_apart():
    """The tilt of each picture: the median angle, off a quarter turn, its verified duplicates are turned by."""
    ident = np.eye(3)

    def verdict(degrees: float) -> Verdict:
        t = np.radians(degrees)
        h = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
        m = Match(40, 50, h @ ident, (0, 0, 9, 9), (0, 0, 9, 9), 1, 1, 1, 0, 1, degrees, False)
        return Verdict(True, "local", 1.0, m)

    # 0 the original, 1 a resized copy, 2 a quarter turn, 3 turned 7 degrees; 4 is linked by identical bytes
    verdicts = {(0, 1): verdict(0), (0, 2): verdict(90), (0, 3): verdict(7), (1, 3): verdict(-7.2)}
    verdicts[(2, 3)] = verdict(-83)
    verdicts[(0, 4)] = Verdict(True, "identical", 1.0)
    tilts = tilt(verdicts)
    assert tilts[3] == pytest.approx(7.0, abs=0.01)  # turned against all three others
    assert tilts[0] == 0.0 and tilts[1] == pytest.approx(3.6, abs=0.01) and tilts[4] == 0.0
    assert tilts[3] > TILTED >= tilts[0]


def test_a_file_that_may_not_represent_another_waits_for_it():
    links = {0: {1: False}, 1: {0: True}}  # 0 (a collage, ranked first) may not represent 1 (the photo it holds)
    assert star_groups(links, rank=lambda m: m) == [[1, 0]]


def _collage(images: dict, names: list[str], w: int = 451, h: int = 300) -> Image.Image:
    """A 2 x 2 collage of the named photos, each resized to ``w`` x ``h``."""
    out = Image.new("RGB", (2 * w, 2 * h))
    for (x, y), name in zip(((0, 0), (w, 0), (0, h), (w, h)), names, strict=True):
        out.paste(images[name].resize((w, h)), (x, y))
    return out


def _save(im: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **kw)
    return path


@pytest.fixture(scope="module")
def relations_library(images, settings_factory, tmp_path_factory):
    """One photo and one copy per relation kind, a panorama cut into a chain of overlapping windows, a stereo pair
    (two views of one scene: similar, not duplicates) with a copy of one view, and unrelated photos; indexed once."""
    root = tmp_path_factory.mktemp("relations")
    cat = images["chelsea"]  # 451 x 300
    w, h = cat.size
    _save(cat, root / "cat.png")
    shutil.copy(root / "cat.png", root / "cat_identical.png")
    _save(cat.resize((w // 2, h // 2), Image.Resampling.LANCZOS), root / "cat_resized.jpg", quality=90)
    _save(cat.crop((90, 60, 361, 240)), root / "cat_cropped.jpg", quality=90)
    _save(cat.rotate(90, expand=True), root / "cat_rotated.jpg", quality=90)
    # turned 7 degrees on a larger canvas: more pixels than the photo, but its corners are filler
    _save(cat.rotate(7, expand=True, resample=Image.Resampling.BICUBIC), root / "cat_tilted.png")
    _save(ImageOps.mirror(cat), root / "cat_flipped.jpg", quality=90)
    _save(ImageOps.grayscale(cat).filter(ImageFilter.GaussianBlur(1)), root / "cat_edited.png")
    framed = Image.new("RGB", (w + 160, h + 100), (236, 232, 220))  # on a mat: more pixels, none of them the cat's
    framed.paste(cat, (80, 50))
    _save(framed, root / "cat_framed.jpg", quality=90)
    collage = Image.new("RGB", (2 * w, 2 * h))
    fillers = ("retina", "hubble_deep_field", "immunohistochemistry")  # never indexed on their own
    for (x, y), other in zip(((0, 0), (w, 0), (0, h)), fillers, strict=True):
        collage.paste(images[other].resize((w, h)), (x, y))
    collage.paste(cat, (w, h))
    _save(collage, root / "cat_in_collage.jpg", quality=90)
    # a chain: two unrelated photos, and a picture holding both side by side (linked to each, they share nothing)
    china, flower = images["china"], images["flower"]  # 640 x 427 each
    _save(china, root / "chain" / "china.png")
    _save(flower, root / "chain" / "flower.png")
    both = Image.new("RGB", (1280, 427))
    both.paste(china, (0, 0))
    both.paste(flower, (640, 0))
    _save(both, root / "chain" / "side_by_side.jpg", quality=90)
    left = images["motorcycle_left"]  # 741 x 500
    _save(left, root / "stereo" / "left.png")
    _save(left.resize((370, 250), Image.Resampling.LANCZOS), root / "stereo" / "left_small.jpg", quality=90)
    _save(images["motorcycle_right"], root / "stereo" / "right.png")
    for name in ("coffee", "rocket", "astronaut", "coins"):
        _save(images[name], root / "others" / f"{name}.png")
    settings = settings_factory()
    with Workspace(settings) as ws:
        ws.index([root])
    return settings, root


def _groups(settings, **kw):
    with Workspace(settings) as ws:
        return [g for g in ws.duplicates(**kw) if g.items[0].kind == "image"]


def test_each_relation_kind_is_named_against_the_representative(relations_library):
    settings, root = relations_library
    groups = _groups(settings)
    cat = next(g for g in groups if any(it.path.endswith("/cat.png") for it in g.items))
    assert cat.kind == GroupKind.DUPLICATES
    # the photo: as many pixels of the picture as the tilted copy and the rotated one, the most files verified
    # against it
    assert cat.representative.path == str(root / "cat.png")
    relations = {Path(it.path).name: it.relation for it in cat.items}
    assert relations == {
        "cat.png": Relation.REPRESENTATIVE,
        "cat_identical.png": Relation.IDENTICAL,
        "cat_resized.jpg": Relation.RESIZED,
        "cat_cropped.jpg": Relation.CROPPED,
        "cat_rotated.jpg": Relation.ROTATED,
        "cat_tilted.png": Relation.ROTATED,
        "cat_flipped.jpg": Relation.FLIPPED,
        "cat_edited.png": Relation.EDITED,
        "cat_framed.jpg": Relation.FRAMED,
        "cat_in_collage.jpg": Relation.CONTAINS,
    }
    by_name = {Path(it.path).name: it for it in cat.items}
    crop = by_name["cat_cropped.jpg"]
    assert all(abs(a - b) <= 4 for a, b in zip(crop.rep_region, (90, 60, 361, 240), strict=True)), crop.rep_region
    assert crop.region == (0, 0, 271, 180) and crop.inliers >= 50
    inside = by_name["cat_in_collage.jpg"]
    assert all(abs(a - b) <= 4 for a, b in zip(inside.region, (451, 300, 902, 600), strict=True)), inside.region
    assert by_name["cat_identical.png"].method == "identical"


def test_a_picture_holding_two_photos_never_joins_them(relations_library):
    """Single-link grouping would put both photos in one group through the picture that holds them; a star puts
    the composite with one of them, verified against it, and leaves the other alone."""
    settings, _ = relations_library
    chain = [g for g in _groups(settings) if "/chain/" in g.items[0].path]
    assert len(chain) == 1 and [Path(it.path).name for it in chain[0].items][1:] == ["side_by_side.jpg"]
    photo, composite = chain[0].items
    assert Path(photo.path).name in ("china.png", "flower.png")  # either photo may take it: never both
    assert composite.relation == Relation.CONTAINS
    left = Path(photo.path).name == "china.png"
    want = (0, 0, 640, 427) if left else (640, 0, 1280, 427)
    assert all(abs(a - b) <= 6 for a, b in zip(composite.region, want, strict=True)), composite.region


def test_unrelated_photos_are_in_no_group(relations_library):
    settings, _ = relations_library
    assert not [it.path for g in _groups(settings) for it in g.items if "/others/" in it.path]


@pytest.mark.parametrize("factory", ["IVF4,Flat", "HNSW32", "IVF4,PQ4x2"])
def test_dupes_give_the_same_groups_on_every_index_type(relations_library, factory):
    """(PQ codes give estimates: the candidate stage scores each pair by the stored vectors.)"""
    settings, _ = relations_library
    flat = _groups(settings)
    with Workspace(settings) as ws:
        ws.reindex(factory)
    try:
        with Workspace(settings) as ws:
            assert ws.store().index("items").factory == factory
        other = _groups(settings)
    finally:
        with Workspace(settings) as ws:
            ws.reindex("Flat")
    assert [[it.path for it in g.items] for g in other] == [[it.path for it in g.items] for g in flat]


def test_candidates_from_compressed_codes_carry_the_exact_cosines(relations_library):
    """PQ codes estimate cosines: the candidate stage scores each pair by the stored
    vectors, so the pairs and their cosines are the exact index's."""
    from lookalike.search.candidates import image_candidates

    def pairs(store) -> dict[tuple[int, int], float]:
        c = image_candidates(store, 10, 0.4)
        return {(int(c.ids[a]), int(c.ids[b])): float(s) for a, b, s in zip(c.a, c.b, c.cosine, strict=True)}

    settings, _ = relations_library
    with Workspace(settings) as ws:
        exact = pairs(ws.store())
        ws.reindex("IVF4,PQ4x2")  # 4 codes of 2 bits: coarse enough to move every cosine
    try:
        with Workspace(settings) as ws:
            assert ws.store().index("items").lossy
            got = pairs(ws.store())
    finally:
        with Workspace(settings) as ws:
            ws.reindex("Flat")
    assert len(exact) > 20 and sorted(got) == sorted(exact)
    assert max(abs(got[p] - exact[p]) for p in exact) < 1e-5


def test_similar_groups_come_only_when_asked_and_never_repeat_a_verified_pair(relations_library):
    """The two views of the stereo pair are similar (cosine 0.89), not duplicates; the left view and its resized
    copy (cosine 0.97) are verified duplicates, reported once as such and not again as merely similar."""
    settings, root = relations_library
    assert all(g.kind == GroupKind.DUPLICATES for g in _groups(settings))
    groups = _groups(settings, similar_threshold=0.85)
    name = {it.path: str(Path(it.path).relative_to(root)) for g in groups for it in g.items}
    duplicates = [g for g in groups if g.kind == GroupKind.DUPLICATES]
    assert [[name[it.path] for it in g.items] for g in duplicates if "/stereo/" in g.items[0].path] == [
        ["stereo/left.png", "stereo/left_small.jpg"]
    ]
    similar = [g for g in groups if g.kind == GroupKind.SIMILAR]
    # each member is similar to the centre: the centre is the right view, no member is paired with its duplicate
    assert [[(name[it.path], it.relation) for it in g.items] for g in similar] == [
        [
            ("stereo/right.png", Relation.REPRESENTATIVE),
            ("stereo/left.png", Relation.SIMILAR),
            ("stereo/left_small.jpg", Relation.SIMILAR),
        ]
    ]


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


def test_explain_names_the_file_it_cannot_read(relations_library, tmp_path):
    settings, root = relations_library
    cut = tmp_path / "cut.jpg"
    cut.write_bytes((root / "cat_cropped.jpg").read_bytes()[:2000])
    with Workspace(settings) as ws, pytest.raises(DecodeError, match=f"^truncated: {cut}: ") as e:
        ws.explain(root / "cat.png", cut)
    assert e.value.code == "truncated"


def test_explain_gives_the_decision_its_evidence_and_a_picture(relations_library, tmp_path):
    settings, root = relations_library
    picture, rejected = tmp_path / "why.png", tmp_path / "why_not.png"
    with Workspace(settings) as ws:
        crop = ws.explain(root / "cat.png", root / "cat_cropped.jpg", picture)
        other = ws.explain(root / "cat.png", root / "others" / "coffee.png", rejected)
    assert crop.duplicate and crop.relation == Relation.CROPPED and crop.method == "local"
    assert crop.inliers >= 50 and crop.score >= 0.9
    assert all(abs(a - b) <= 4 for a, b in zip(crop.region_a, (90, 60, 361, 240), strict=True)), crop.region_a
    with Image.open(picture) as im:
        assert im.height == 480 + 24 and im.width > 480 + 240  # both pictures side by side, a caption under them
        # the matched box is drawn in the first picture: its yellow outline crosses the box's top edge
        scale = 480 / 300
        assert im.getpixel((round(200 * scale), round(60 * scale))) == (255, 200, 0)
        colours = {c for _, c in im.getcolors(1 << 20)}
        assert (255, 200, 0) in colours and (230, 60, 60) not in colours
    assert not other.duplicate and other.relation is None and other.inliers < 15
    with Image.open(rejected) as im:  # a pair that is no match: its closest fit, if any, boxed in red, never yellow
        pictures = {c for _, c in im.crop((0, 0, im.width, 480)).getcolors(1 << 20)}
        caption = {c for _, c in im.crop((0, 480, im.width, im.height)).getcolors(1 << 20)}
        assert (255, 200, 0) not in pictures | caption
        assert ((230, 60, 60) in pictures) == other.fitted == ((230, 60, 60) in caption)


def test_verified_search_puts_verified_copies_first_with_their_relation(relations_library):
    settings, root = relations_library
    with Workspace(settings) as ws:
        hits = ws.search_files([root / "cat_cropped.jpg"], k=9, verify=True)[0].hits
    verified = [h for h in hits if h.relation not in NOT_VERIFIED]
    assert {Path(h.path).name for h in verified} >= {"cat.png", "cat_identical.png", "cat_resized.jpg"}
    assert hits[: len(verified)] == verified  # verified first
    # the query itself is a file of the library: the same bytes, not compared further
    assert [(Path(h.path).name, h.inliers) for h in verified if h.relation == "identical"] == [
        ("cat_cropped.jpg", None)
    ]
    assert all(h.inliers and h.inliers >= 15 for h in verified if h.relation != "identical")
    assert not any("/others/" in h.path for h in verified)


def test_verified_search_names_the_query_file_and_its_byte_twin_identical(relations_library):
    """The query is a file of the library: it and its byte-identical twin are ``identical`` (not compared further,
    as ``dupes`` groups identical bytes); every other copy has the relation ``dupes`` gives it against the photo."""
    settings, root = relations_library
    with Workspace(settings) as ws:
        hits = ws.search_files([root / "cat.png"], k=12, verify=True)[0].hits
    verified = {Path(h.path).name: (h.relation, h.inliers is None) for h in hits if h.relation not in NOT_VERIFIED}
    assert verified == {
        "cat.png": ("identical", True),
        "cat_identical.png": ("identical", True),
        "cat_resized.jpg": ("resized", False),
        "cat_cropped.jpg": ("cropped", False),
        "cat_rotated.jpg": ("rotated", False),
        "cat_tilted.png": ("rotated", False),
        "cat_flipped.jpg": ("flipped", False),
        "cat_edited.png": ("edited", False),
        "cat_framed.jpg": ("framed", False),
        "cat_in_collage.jpg": ("contains", False),
    }


def test_verified_search_finds_the_photo_in_a_collage_through_the_collage_windows(
    relations_library, images, monkeypatch, tmp_path
):
    """A collage (not in the library) of the cat and three other photos, with the pool of whole-query hits cut to
    the nearest one: that is the library's other collage (the cat in the same quadrant, other fillers), which is
    not a copy; the windows around the quadrants find the cat or a copy of it, verified; with no window
    candidates nothing is verified."""
    settings, _ = relations_library
    query = tmp_path / "collage.jpg"
    _save(_collage(images, ["coffee", "rocket", "astronaut", "chelsea"]), query, quality=90)
    monkeypatch.setattr(searcher_module, "VERIFY_POOL", 1)
    with Workspace(settings) as ws:
        found = ws.search_files([query], k=1, verify=True)[0].hits
        plain = {Path(h.path).name: h.score for h in ws.search_files([query], k=30)[0].hits}
        monkeypatch.setattr(searcher_module, "WINDOW_POOL", 0)
        alone = ws.search_files([query], k=1, verify=True)[0].hits
    assert [(Path(h.path).name, h.relation) for h in alone] == [("cat_in_collage.jpg", "not_duplicate")]
    assert len(found) == 1 and found[0].relation == Relation.CROPPED.value, found
    name = Path(found[0].path).name
    assert name.startswith("cat") and name != "cat_in_collage.jpg" and found[0].inliers >= 15
    # scored by the whole query's vector (as ``dupes`` scores a pair), not by the window's
    assert found[0].score == pytest.approx(plain[name], abs=1e-5)


def test_verified_search_still_answers_when_the_query_parts_cannot_be_cut(relations_library, monkeypatch, caplog):
    """Cutting the windows fails (the file changed after its first decode): the whole query's candidates are still
    verified, and the log says the parts were not searched."""
    settings, root = relations_library

    def fail(self, path, vector, known):
        raise DecodeError("truncated", f"{path}: image file is truncated")

    monkeypatch.setattr(searcher_module.Searcher, "_window_hits", fail)
    with Workspace(settings) as ws, caplog.at_level(logging.WARNING, logger="lookalike.search.searcher"):
        result = ws.search_files([root / "cat_cropped.jpg"], k=9, verify=True)[0]
    assert result.error is None
    assert {"cat.png", "cat_resized.jpg"} <= {Path(h.path).name for h in result.hits if h.relation not in NOT_VERIFIED}
    assert "cat_cropped.jpg: its parts are not searched: truncated" in caplog.text


def test_a_thin_mat_is_named_framed_like_a_thick_one(images, settings_factory, tmp_path):
    """A mat of 3% a side leaves the match covering nearly all of the copy, so it passed as a whole picture
    (``resized``, trashed by resolve) while a thick mat was ``framed`` (kept): the border the trim found names it."""
    photo = images["chelsea"]  # 451 x 300
    _save(photo, tmp_path / "chelsea.png")
    for name, pad in (("thin_mat.jpg", 14), ("thick_mat.jpg", 70)):
        mat = Image.new("RGB", (photo.width + 2 * pad, photo.height + 2 * pad), (255, 255, 255))
        mat.paste(photo, (pad, pad))
        _save(mat, tmp_path / name, quality=90)
    settings = settings_factory()
    with Workspace(settings) as ws:
        ws.index([tmp_path])
    (group,) = _groups(settings)
    assert {Path(it.path).name: it.relation for it in group.items} == {
        "chelsea.png": Relation.REPRESENTATIVE,
        "thin_mat.jpg": Relation.FRAMED,
        "thick_mat.jpg": Relation.FRAMED,
    }
