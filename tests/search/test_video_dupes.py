"""Video `dupes` on a library made to trip single-link grouping (real media, real model, real FAISS):

* twelve different videos that all open with the same channel intro (a fade from black into a title card), two of
  them copied: the intro must not make any two of the twelve copies or overlaps;
* a video made of the first half of X followed by the second half of Y (X and Y unrelated): two separate overlaps
  with the right ranges on both sides, never X and Y in one group, never one merged range;
* the same groups from IVF and HNSW indexes as from the exact one (stored vectors, never ``reconstruct``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from benchmarks.video_copies import FPS, SIZE, Clip, camera_shot, save_clip
from lookalike.search.groups import DuplicateGroup, GroupKind, Relation
from lookalike.workspace import Workspace

CHANNEL = ("chelsea", "coffee", "astronaut", "rocket", "china", "flower")
CHANNEL += ("motorcycle_left", "immunohistochemistry", "retina", "hubble_deep_field", "clock", "horse")
INTRO_SECONDS = 3.6
CUT = 5.5  # where the spliced video goes over from X to Y


def _intro(logo: Image.Image) -> list[Image.Image]:
    """A channel intro: a title card fading in from black while it zooms (3.6 s)."""
    n = int(INTRO_SECONDS * FPS)
    font = ImageFont.load_default(size=22)
    frames = []
    for i in range(n):
        t = i / (n - 1)
        card = Image.new("RGB", SIZE, (20, 30, 90))
        side = int(110 + 40 * t)
        card.paste(logo.resize((side, side)), (24, (SIZE[1] - side) // 2))
        ImageDraw.Draw(card).text((170, 80), "LOOKALIKE TV", fill=(255, 220, 0), font=font)
        frames.append(Image.blend(Image.new("RGB", SIZE), card, min(1.0, 2 * t)))
    return frames


def _key(groups: list[DuplicateGroup]) -> list[tuple[str, tuple[str, ...]]]:
    return sorted((g.kind.value, tuple(sorted(Path(it.path).name for it in g.items))) for g in groups)


@pytest.fixture(scope="module")
def library(images, settings_factory, tmp_path_factory):
    """The channel (12 intro videos and copies of two) and the spliced video with its two sources, indexed once on
    an exact index; returns (settings, root, video groups)."""
    root = tmp_path_factory.mktemp("video_dupes")
    rng = np.random.default_rng(11)
    intro = _intro(images["logo"].convert("RGB"))
    for name in CHANNEL:
        clip = Clip(intro + camera_shot(images[name], rng, 8.0))
        save_clip(clip, root / "channel" / f"{name}.mp4")
        if name in ("coffee", "rocket"):
            small = Clip([f.resize((SIZE[0] // 2, SIZE[1] // 2)) for f in clip.frames])
            save_clip(small, root / "channel" / f"{name}_copy.mp4", crf=34)
    x = camera_shot(images["camera"], rng, 11.0)
    y = camera_shot(images["brick"], rng, 11.0)
    cut = int(CUT * FPS)
    save_clip(Clip(x), root / "splice" / "x.mp4")
    save_clip(Clip(y), root / "splice" / "y.mp4")
    save_clip(Clip(x[:cut] + y[cut:]), root / "splice" / "x_then_y.mp4")
    settings = settings_factory()
    with Workspace(settings) as ws:
        report = ws.index([root])
        assert report.failed == [] and report.videos == 17
        groups = [g for g in ws.duplicates() if g.items[0].kind == "video"]
    return settings, root, groups


def test_a_shared_intro_makes_no_copies_and_no_overlaps(library) -> None:
    _, _, groups = library
    channel = [g for g in groups if "x_then_y.mp4" not in {Path(it.path).name for it in g.items}]
    assert _key(channel) == [
        ("duplicates", ("coffee.mp4", "coffee_copy.mp4")),
        ("duplicates", ("rocket.mp4", "rocket_copy.mp4")),
    ]
    for g in channel:
        rep, copy = g.items
        assert (Path(rep.path).name, rep.relation) == (
            Path(copy.path).name.replace("_copy", ""),
            Relation.REPRESENTATIVE,
        )
        assert copy.relation == Relation.COPY and copy.method == "aligned"
        # the whole videos, intro included, on both sides
        assert (copy.start, copy.rep_start) == (0.0, 0.0) and copy.end > 11.0 and copy.rep_end > 11.0


def test_a_splice_of_two_videos_gives_two_overlaps_with_their_own_ranges(library) -> None:
    _, _, groups = library
    splice = [g for g in groups if "x_then_y.mp4" in {Path(it.path).name for it in g.items}]
    assert _key(splice) == [("overlap", ("x.mp4", "x_then_y.mp4")), ("overlap", ("x_then_y.mp4", "y.mp4"))]
    ranges = {}
    for g in splice:
        assert g.kind == GroupKind.OVERLAP and len(g.items) == 2 and g.items[1].relation == Relation.PARTIAL
        items = {Path(it.path).name: it for it in g.items}
        source = next(n for n in items if n != "x_then_y.mp4")
        ranges[source] = (
            (items["x_then_y.mp4"].start, items["x_then_y.mp4"].end),
            (items[source].start, items[source].end),
        )
    duration = 11.0
    truth = {"x.mp4": (0.0, CUT), "y.mp4": (CUT, duration)}
    for source, (spliced, own) in ranges.items():
        for got in (spliced, own):  # the same time range in the spliced video and in its source
            assert got[0] == pytest.approx(truth[source][0], abs=0.5), (source, ranges)
            assert got[1] == pytest.approx(truth[source][1], abs=0.5), (source, ranges)


@pytest.mark.parametrize("factory", ["IVF16,Flat", "HNSW32", "IVF16,PQ1x2"])  # PQ4x2: coarse codes, re-ranked
def test_approximate_indexes_give_the_groups_of_the_exact_one(library, factory: str) -> None:
    settings, _, flat = library
    with Workspace(settings) as ws:
        assert ws.reindex(factory)["items"] == factory
    with Workspace(settings) as ws:
        groups = [g for g in ws.duplicates() if g.items[0].kind == "video"]
        ws.reindex("Flat")
    assert _key(groups) == _key(flat)
    for got, want in zip(sorted(groups, key=_sort), sorted(flat, key=_sort), strict=True):
        assert [(it.start, it.end, it.rep_start, it.rep_end) for it in got.items] == [
            (it.start, it.end, it.rep_start, it.rep_end) for it in want.items
        ]


def _sort(g: DuplicateGroup) -> tuple[str, ...]:
    return (g.kind.value, *sorted(Path(it.path).name for it in g.items))


def test_segment_neighbours_from_compressed_codes_carry_the_exact_cosines(library) -> None:
    """The segment search behind video copies compares cosines with its floors: on a PQ index (estimates) each
    neighbour is scored by the stored vectors, so every score it reports is the exact cosine of the segment with
    one of the other video's segments (which of several tied intro segments it finds may differ)."""
    from lookalike.search.video_dupes import _neighbourhood, load_videos

    settings, _, _ = library
    with Workspace(settings) as ws:
        ws.reindex("IVF16,PQ1x2")  # one 2-bit code a vector: every estimate is far off
    try:
        with Workspace(settings) as ws:
            store = ws.store()
            assert store.index("items").lossy
            videos = load_videos(store)
            got = _neighbourhood(store, videos, 8)
    finally:
        with Workspace(settings) as ws:
            ws.reindex("Flat")
    checked = 0
    for m, rows in got.near.items():
        for segment, best in zip(videos[m].segments.vectors, rows, strict=True):
            for other, score in best.items():
                exact = videos[other].segments.vectors @ segment
                assert np.abs(exact - score).min() < 1e-5, (m, other, score)
                checked += 1
    assert checked > 50 and len(got.pairs) >= 2
