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


def _cell_crops(images: dict, count: int) -> list[Image.Image]:
    """Crops of scikit-image's cell (a grainy grey microscope picture, nearly plain around a bright cell), made and
    decoded as a 1600 px photo is made and indexed: JPEG, then Pillow in draft mode."""
    import io

    import numpy as np

    from lookalike.indexer.decode import load_image

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
        out.append(load_image(None, data=buf.getvalue(), draft=256)[0])  # type: ignore[arg-type]
    return out


def test_a_grainy_background_keeps_its_box_when_a_decoder_rounds_pixels_the_other_way(images):
    """nvJPEG and Pillow decode a photo to pixels within one level of each other; the boxes of cell crops found on
    the two were 200 px apart (their vectors at cosine 0.38). Each pixel moved by -1, 0 or +1 stands for the other
    decoder: a box that moves by a tenth of the picture's side or more is a different picture to the model."""
    import numpy as np

    def box(im: Image.Image) -> np.ndarray:
        b = content_box(im)
        return np.array(b or (0, 0, *im.size)) / np.array([*im.size, *im.size])

    far = 0
    for n, picture in enumerate(_cell_crops(images, 40)):
        arr = np.asarray(picture, dtype=np.int16)
        for seed in (1, 2, 3):
            noise = np.random.default_rng(100 * n + seed).integers(-1, 2, arr.shape)
            other = Image.fromarray((arr + noise).clip(0, 255).astype(np.uint8))
            far += np.abs(box(picture) - box(other)).max() > 0.1
    assert far <= 8  # of 120 (29 when the first line just over the 2% mark started the content)


def test_a_speck_in_a_corner_or_a_stray_line_in_a_mat_does_not_undo_the_trim(images):
    """The border colour is the median of corner squares, and a line of the mat with a few pixels off (a scratch,
    a speck of dust) does not start the content: the box is the photo's."""
    cat = images["chelsea"]  # 451 x 300
    canvas = Image.new("RGB", (1000, 700), (120, 160, 200))
    canvas.paste(cat, (300, 250))
    canvas.paste((250, 20, 20), (0, 0, 6, 6))  # a speck of another colour in one corner
    for x in range(0, 1000, 200):  # a dotted scratch across the mat above the photo: a few % of those lines
        canvas.paste((0, 0, 0), (x, 118, x + 6, 124))
    box = content_box(canvas)
    assert box is not None
    assert all(abs(a - b) <= 5 for a, b in zip(box, (300, 250, 751, 550), strict=True)), box
