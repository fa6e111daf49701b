"""Formats that used to be passed over or misread (issue 12, item 12), indexed with the real default model: a HEIC
photo, a float TIFF, animated GIF and WebP (any moment of an animation finds it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from lookalike.workspace import Workspace

PHOTOS = ("chelsea", "coffee", "rocket", "china", "flower", "motorcycle_left", "camera", "coins", "moon", "retina")


def _pan(images) -> list:
    """Twelve frames panning down scikit-image's astronaut: the first (helmet) and the last (suit) differ."""
    astronaut = images["astronaut"]
    return [astronaut.crop((150, i * 28, 350, i * 28 + 200)) for i in range(12)]


@pytest.fixture(scope="module")
def library(tmp_path_factory, settings_factory, images):
    import pillow_heif

    base = tmp_path_factory.mktemp("formats")
    root = base / "media"
    root.mkdir()
    for name in PHOTOS:
        images[name].convert("RGB").save(root / f"{name}.jpg", quality=90)
    pillow_heif.from_pillow(images["chelsea"]).save(root / "chelsea_phone.heic", quality=85)
    coffee = (np.asarray(images["coffee"]) / 255.0).astype(np.float32)
    tifffile.imwrite(root / "coffee_hdr.tif", coffee, photometric="rgb", compression="zlib")
    frames = _pan(images)
    frames[0].save(root / "pan.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    frames[0].save(root / "pan.webp", save_all=True, append_images=frames[1:], duration=100, loop=0, quality=85)
    frames[0].save(base / "first_frame.png")
    frames[-1].save(base / "last_frame.png")
    settings = settings_factory()
    with Workspace(settings) as ws:
        report = ws.index([root])
    return settings, root, base, report


def _nearest(settings, path: Path) -> str:
    """The name of the indexed file nearest to an indexed file (itself left out)."""
    with Workspace(settings) as ws:
        store = ws.store()
        media_id = store.catalog.media_id(store.info.id, str(path))
        assert media_id is not None, path
        return Path(ws.search_media(media_id, k=1).hits[0].path).name


def test_every_file_is_indexed(library):
    _, _, _, report = library
    assert report.failed == [] and report.skipped == []
    assert report.images == len(PHOTOS) + 4


def test_a_heic_photo_is_indexed_and_finds_its_jpeg(library):
    settings, root, _, _ = library
    assert _nearest(settings, root / "chelsea_phone.heic") == "chelsea.jpg"


def test_a_float_rgb_tiff_is_indexed_and_finds_its_jpeg(library):
    settings, root, _, _ = library
    assert _nearest(settings, root / "coffee_hdr.tif") == "coffee.jpg"


@pytest.mark.parametrize("frame", ["first_frame.png", "last_frame.png"])
def test_any_moment_of_an_animation_finds_it(library, frame):
    """Only the first frame used to be indexed: the last one found two unrelated photos before the GIF."""
    settings, _, base, _ = library
    with Workspace(settings) as ws:
        hits = ws.search_files([base / frame], k=3)[0].hits
    assert {Path(h.path).name for h in hits[:2]} == {"pan.gif", "pan.webp"}
    assert all(h.kind.value == "image" for h in hits[:2])
