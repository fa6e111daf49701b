"""A JPEG's quality setting read back from its quantization tables (which copy of a duplicate group was compressed
hardest), on a real photo saved by Pillow (libjpeg)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.indexer.decode import load_image, peek_jpeg
from lookalike.indexer.jpeg_quality import jpeg_quality

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


@pytest.fixture(scope="module")
def photo(images) -> Image.Image:
    return images["chelsea"].convert("RGB")


def test_every_quality_libjpeg_writes_is_read_back_exactly(tmp_path, photo):
    read = {}
    for quality in range(1, 101):
        path = tmp_path / f"q{quality}.jpg"
        photo.save(path, "JPEG", quality=quality)
        read[quality] = load_image(path)[1].quality
    assert read == {q: q for q in range(1, 101)}
    assert peek_jpeg(tmp_path / "q37.jpg")[1].quality == 37  # the GPU decoder's path learns it too


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF", "BMP"])
def test_other_formats_have_no_jpeg_quality(tmp_path, photo, fmt):
    path = tmp_path / f"photo.{fmt.lower()}"
    photo.save(path, fmt)
    assert load_image(path)[1].quality is None


def test_a_table_of_another_maker_gets_the_nearest_quality(tmp_path, photo):
    """A camera's own table (libjpeg's quality 80 with a few entries off by one or two) reads as quality 80; the
    table's order (natural or zigzag) does not matter."""
    with Image.open(_saved(tmp_path / "q80.jpg", photo, quality=80)) as im:
        luma, chroma = (list(t) for t in im.quantization.values())
    rng = np.random.default_rng(7)
    own = [max(1, v + int(rng.integers(-2, 3))) if i % 5 == 0 else v for i, v in enumerate(luma)]
    assert own != luma
    with Image.open(_saved(tmp_path / "camera.jpg", photo, qtables=[own, chroma])) as im:
        assert jpeg_quality(im) == 80
    with Image.open(_saved(tmp_path / "reversed.jpg", photo, qtables=[own[::-1], chroma])) as im:
        assert jpeg_quality(im) == 80


def _saved(path, photo: Image.Image, **options):
    photo.save(path, "JPEG", **options)
    return path
