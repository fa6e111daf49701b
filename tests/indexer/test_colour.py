"""Transparency is content: the background transparent pixels land on, and float samples as 8-bit levels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from skimage import data

from lookalike.indexer.colour import BLACK, WHITE, AlphaRule, background, floats_to_8bit, to_rgb

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


def _silhouette(colour: tuple[int, int, int]) -> Image.Image:
    """scikit-image's logo (real RGBA artwork) as a one-colour shape on a transparent canvas."""
    logo = data.logo()
    shape = Image.new("RGBA", (logo.shape[1], logo.shape[0]), (*colour, 255))
    shape.putalpha(Image.fromarray(logo[..., 3]))
    return shape


def test_a_white_shape_lands_on_black_and_a_dark_one_on_white():
    assert background(_silhouette(WHITE), AlphaRule.CONTRAST) == BLACK
    assert background(_silhouette(BLACK), AlphaRule.CONTRAST) == WHITE
    assert background(_silhouette((117, 117, 117)), AlphaRule.CONTRAST) == WHITE  # a grey icon
    assert background(Image.fromarray(data.logo()), AlphaRule.CONTRAST) == BLACK  # the light coloured logo (196)
    assert background(Image.new("RGBA", (8, 8), (255, 255, 255, 0)), AlphaRule.CONTRAST) == WHITE  # nothing shows


def test_a_photo_with_a_transparent_surround_lands_on_white(images):
    photo = images["chelsea"].convert("RGBA")
    mask = Image.new("L", photo.size, 0)
    ImageDraw.Draw(mask).ellipse((40, 20, 410, 280), fill=255)
    photo.putalpha(mask)
    assert background(photo, AlphaRule.CONTRAST) == WHITE


def test_the_white_rule_of_old_collections_is_kept():
    shape = _silhouette(WHITE)
    assert background(shape, AlphaRule.WHITE) == WHITE
    assert np.asarray(to_rgb(shape, AlphaRule.WHITE)).min() == 255  # white on white: the blank picture of old


def test_the_shape_survives_compositing():
    shape = _silhouette(WHITE)
    rgb = np.asarray(to_rgb(shape, AlphaRule.CONTRAST))
    alpha = np.asarray(shape.getchannel("A"))
    assert (rgb[alpha == 255] == 255).all() and (rgb[alpha == 0] == 0).all()


def test_an_opaque_picture_is_unchanged_by_either_rule(images):
    rgba = images["coffee"].convert("RGBA")
    for rule in AlphaRule:
        assert np.array_equal(np.asarray(to_rgb(rgba, rule)), np.asarray(images["coffee"]))


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([0.0, 0.5, 1.0], [0, 128, 255]),  # [0, 1]: scaled by 255
        ([0.0, 100.4, 255.0], [0, 100, 255]),  # [0, 255]: kept
        ([-1.0, 0.0, 1.0], [0, 128, 255]),  # anything else: stretched
        ([10.0, 20.0, 1010.0], [0, 3, 255]),
        ([np.nan, 0.25, np.inf, -np.inf, 0.75], [64, 64, 191, 64, 191]),  # non-finite: ends of the finite range
        ([np.nan, np.nan], [0, 0]),
    ],
)
def test_float_samples_map_onto_8_bits(samples, expected):
    assert floats_to_8bit(np.array(samples)).tolist() == expected
