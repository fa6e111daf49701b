"""Cleaning before embedding: black bars come off video frames, uniform borders off pictures; whole frames stay."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from lookalike.indexer.colour import AlphaRule
from lookalike.indexer.describe import MediaDescriptor, content_box, trim_borders, trim_uniform_borders

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out

CELL_BOXES = 59  # of the 60 cell crops, this many are trimmed (of their grainy background around the cell)


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


def _jpeg_cell_crops(images: dict, count: int) -> list[bytes]:
    """Crops of scikit-image's cell (a grainy grey microscope picture, nearly plain around a bright cell), made as
    1600 px JPEG photos."""
    cell, out = images["cell"].convert("RGB"), []
    for i in range(count):
        rng = np.random.default_rng(i)
        f = rng.uniform(0.75, 1.0)
        left, top = rng.uniform(0, 1 - f) * cell.width, rng.uniform(0, 1 - f) * cell.height
        crop = cell.crop((int(left), int(top), int(left + f * cell.width), int(top + f * cell.height)))
        scale = 1600 / max(crop.size)
        crop = crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        crop.save(buf, "JPEG", quality=int(rng.integers(80, 95)))
        out.append(buf.getvalue())
    return out


def test_a_grainy_background_keeps_its_box_whichever_decoder_ran(images):
    """nvJPEG's and Pillow's decodes of a photo differ by a grey level at most; the boxes of cell crops found on the
    two were 200 px apart (their vectors at cosine 0.38). On the CPU the other decoder is libjpeg-turbo's full
    decode reduced by block means (what the GPU path does after nvJPEG) against Pillow's draft mode: no box may
    move by more than a tenth of the picture's side (5 of 60 did when the first line just over the 2% mark started
    the content), and the crops keep their boxes (the trim still happens)."""
    from benchmarks.border_trim import box_of, decoded, decoded_otherwise, moved

    boxes = [(box_of(decoded(data)), box_of(decoded_otherwise(data))) for data in _jpeg_cell_crops(images, 60)]
    assert sum(moved(a, b) > 0.1 for a, b in boxes) == 0
    assert sum(a is not None for a, _ in boxes) == CELL_BOXES


def test_a_dark_sparse_picture_gets_the_same_box_with_or_without_a_letterbox(images):
    """A line's share of pixels off the colour counts the mat beside the picture too: stars on black, with black
    bars added, must not lose the faint bands between them that the plain picture keeps (hysteresis alone, with no
    bridging of gaps, cut 200 px off it)."""
    sky = ImageEnhance.Brightness(images["hubble_deep_field"]).enhance(0.3)  # 1000 x 872
    plain = content_box(sky)
    boxed = Image.new("RGB", (sky.width, sky.height + 2 * 105))
    boxed.paste(sky, (0, 105))
    found = content_box(boxed)
    assert plain is not None and found is not None
    shifted = (found[0], found[1] - 105, found[2], found[3] - 105)
    assert all(abs(a - b) <= 50 for a, b in zip(shifted, plain, strict=True)), (plain, shifted)  # 5% of a side


def test_a_speck_in_a_corner_or_a_stray_line_in_a_mat_does_not_undo_the_trim(images):
    """The border colour is the median of corner squares (3 px of the 256 px probe: a speck up to about 2 probe
    pixels, here 6 of 1000 px, is outvoted), and a line of the mat with a few pixels off, plain lines between it and
    the photo (a scratch), does not start the content: the box is the photo's."""
    cat = images["chelsea"]  # 451 x 300
    canvas = Image.new("RGB", (1000, 700), (120, 160, 200))
    canvas.paste(cat, (300, 250))
    canvas.paste((250, 20, 20), (0, 0, 6, 6))  # a speck of another colour in one corner
    for x in range(0, 1000, 200):  # a dotted scratch across the mat above the photo: a few % of those lines
        canvas.paste((0, 0, 0), (x, 118, x + 6, 124))
    box = content_box(canvas)
    assert box is not None
    assert all(abs(a - b) <= 5 for a, b in zip(box, (300, 250, 751, 550), strict=True)), box
