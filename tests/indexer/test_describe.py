"""Cleaning before embedding: black bars come off video frames, uniform borders off pictures; whole frames stay."""

from __future__ import annotations

import pytest
from PIL import Image, ImageEnhance

from lookalike.indexer.colour import AlphaRule
from lookalike.indexer.describe import MediaDescriptor, content_box, trim_borders, trim_uniform_borders

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


def _pad(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    canvas = Image.new("RGB", size, (16, 16, 16))  # video black is 16, not 0
    canvas.paste(im, ((size[0] - im.width) // 2, (size[1] - im.height) // 2))
    return canvas


def test_letterbox_and_pillarbox_bars_are_trimmed(images):
    frame = images["chelsea"].resize((320, 180))
    assert trim_borders(_pad(frame, (320, 240))).size == (320, 180)
    assert trim_borders(_pad(frame, (420, 180))).size == (320, 180)
    assert trim_borders(_pad(frame, (400, 240))).size == (320, 180)  # windowboxed: both


def test_frames_without_bars_and_dark_scenes_are_left_alone(images):
    frame = images["coffee"].resize((320, 180))
    assert trim_borders(frame).size == frame.size
    night = ImageEnhance.Brightness(frame).enhance(0.05)  # almost black everywhere: not a bar
    assert trim_borders(night).size == night.size


def test_descriptor_round_trips_and_old_collections_keep_their_behaviour():
    d = MediaDescriptor(frame_rate=2.0, segment_seconds=1.0, trim_borders=True, mirror=False, grayscale=True)
    assert MediaDescriptor.from_pooling(d.to_pooling()) == d
    assert d.to_pooling()["alpha"] == "contrast" and d.to_pooling()["animation_frames"] == 8  # new collections
    old = MediaDescriptor.from_pooling({"frame_rate": 1.0, "segment_seconds": 2.0, "method": "mean"})
    assert not old.trim_borders and not old.mirror and not old.grayscale
    assert old.alpha == AlphaRule.WHITE and old.animation_frames == 1  # as they were built


@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255), (120, 160, 200)])
def test_uniform_borders_of_any_colour_are_trimmed(images, colour):
    cat = images["chelsea"]  # 451 x 300
    canvas = Image.new("RGB", (1000, 700), colour)
    canvas.paste(cat, (300, 250))  # a photo shown small on a plain canvas, off centre
    box = content_box(canvas)
    assert box is not None
    assert all(abs(a - b) <= 5 for a, b in zip(box, (300, 250, 751, 550), strict=True)), box
    assert trim_uniform_borders(canvas).size == (box[2] - box[0], box[3] - box[1])


def test_a_photo_without_a_frame_is_left_whole(images):
    for name in ("chelsea", "coffee", "astronaut", "rocket", "china", "camera", "moon", "hubble_deep_field"):
        assert content_box(images[name]) is None, name


@pytest.mark.parametrize("brightness", [0.25, 0.3, 0.5])
@pytest.mark.parametrize("bars", [50, 105, 200, 250])
@pytest.mark.parametrize("axis", ["letterbox", "pillarbox"])
def test_a_dark_sparse_picture_gets_the_same_box_with_or_without_black_bars(images, brightness, bars, axis):
    """A line's share of pixels off the border colour counts the bars beside the picture too: stars on black, with
    black bars added, keep the box the plain picture gets, within 3% of a side (a rule tried in c2e4ad0/fa7c6e1,
    content starting only at lines over 10% off, moved it by 55 to 380 px)."""
    sky = ImageEnhance.Brightness(images["hubble_deep_field"]).enhance(brightness)  # 1000 x 872
    plain = content_box(sky) or (0, 0, *sky.size)
    dx, dy = (0, bars) if axis == "letterbox" else (bars, 0)
    boxed = Image.new("RGB", (sky.width + 2 * dx, sky.height + 2 * dy))
    boxed.paste(sky, (dx, dy))
    found = content_box(boxed)
    assert found is not None
    shifted = (found[0] - dx, found[1] - dy, found[2] - dx, found[3] - dy)
    assert all(abs(a - b) <= 30 for a, b in zip(shifted, plain, strict=True)), (plain, shifted)
