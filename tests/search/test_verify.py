"""Local-feature verification against synthetic transforms of real photos, with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from lookalike.search.features import Features, extract, mirrored
from lookalike.search.image_dupes import VerifyRule, judge
from lookalike.search.verify import match, plain_surround, whole_frame


@pytest.fixture(scope="module")
def cat(images) -> Image.Image:
    return images["chelsea"]  # 451 x 300


def _close(box, want, tol=4):
    assert all(abs(a - b) <= tol for a, b in zip(box, want, strict=True)), (box, want)


def test_a_crop_is_located_in_the_original(cat):
    crop = cat.crop((135, 90, 315, 210))  # a tight 40% crop
    m = match(extract(cat), extract(crop))
    assert m is not None and m.inliers >= 50
    _close(m.region_a, (135, 90, 315, 210))
    assert m.region_b == (0, 0, 180, 120)
    assert m.coverage_b == pytest.approx(1.0, abs=0.02)
    assert m.coverage_a == pytest.approx(0.16, abs=0.02)
    assert m.agreement > 0.9 and not m.flipped and abs(m.rotation) < 1


def test_regions_are_in_the_original_files_pixels_when_decoded_smaller(cat):
    big = cat.resize((1804, 1200))  # a large original, extracted at 640 px
    m = match(extract(big), extract(cat))
    assert m is not None
    _close(m.region_a, (0, 0, 1804, 1200), tol=12)
    # the same picture decoded at half size (JPEG draft) but reported in its full-size pixels
    half = extract(big.resize((902, 600)), size=(1804, 1200))
    m2 = match(half, extract(cat))
    assert m2 is not None
    _close(m2.region_a, (0, 0, 1804, 1200), tol=12)


def test_a_quarter_turn_is_found_with_its_angle(cat):
    m = match(extract(cat), extract(cat.rotate(90, expand=True)))
    assert m is not None and m.inliers >= 100
    assert abs(abs(m.rotation) - 90) < 1
    assert m.region_b == (0, 0, 300, 451)


def test_a_mirror_image_matches_through_permuted_descriptors(cat):
    fa = extract(cat)
    flipped = extract(ImageOps.mirror(cat))
    m = match(fa, flipped)
    assert m is not None and m.flipped and m.inliers >= 100
    assert match(fa, flipped, mirror=False) is None or match(fa, flipped, mirror=False).inliers < 30
    # the derived mirror features equal an extraction of the mirror image, keypoint for keypoint
    derived = mirrored(fa)
    assert len(derived) == len(fa)
    assert np.allclose(np.sort(derived.points[:, 0]), np.sort(cat.width - 1 - fa.points[:, 0]))


def test_a_photo_in_a_collage_is_contained(cat, images):
    w, h = cat.size
    collage = Image.new("RGB", (2 * w, 2 * h))
    for (x, y), other in zip(((0, 0), (w, 0), (0, h), (w, h)), ("coffee", "rocket", "astronaut", None), strict=True):
        collage.paste(cat if other is None else images[other].resize((w, h)), (x, y))
    m = match(extract(cat), extract(collage))
    assert m is not None and m.inliers >= 50
    _close(m.region_b, (w, h, 2 * w, 2 * h))
    assert m.coverage_a == pytest.approx(1.0, abs=0.02)
    assert m.coverage_b == pytest.approx(0.25, abs=0.02)


def test_different_photos_do_not_match(cat, images):
    fa = extract(cat)
    for other in ("coffee", "astronaut", "rocket", "china"):
        m = match(fa, extract(images[other]))
        assert m is None or m.inliers < 15 or m.agreement < 0.3, other


def test_whole_frame_agreement_separates_a_recoloured_copy_from_another_picture(cat, images):
    fa = extract(cat)
    assert whole_frame(fa, extract(ImageOps.grayscale(cat).resize((225, 150)))).agreement > 0.9
    assert whole_frame(fa, extract(images["coffee"])).agreement < 0.3


def test_a_picture_pasted_over_a_shared_background_leaves_a_solid_block(cat, images):
    """A picture-in-picture (the cat over a coffee photo) and a collage holding the coffee photo share the coffee:
    they agree around the pasted cat and disagree in one solid block; a watermark's strokes leave no such block."""
    w, h = 640, 427
    coffee = images["coffee"].resize((w, h))
    pip = coffee.copy()
    pip.paste(cat.resize((260, 173)), (w - 290, h - 203))
    collage = Image.new("RGB", (2 * w, 2 * h))
    for (x, y), other in zip(((0, 0), (w, 0), (0, h)), ("rocket", "astronaut", "coins"), strict=True):
        collage.paste(images[other].resize((w, h)), (x, y))
    collage.paste(coffee, (w, h))
    fp, fc = extract(pip), extract(collage)
    m = match(fp, fc)
    assert m is not None and m.inliers >= 15
    rule = VerifyRule()
    # every other check passes: the solid block alone tells the two apart
    assert m.agreement >= rule.min_agreement and m.moved <= rule.max_moved and m.spread >= rule.min_spread
    assert m.block > rule.max_block
    assert not judge(fp, fc, m, None, rule).duplicate
    marked = coffee.copy()
    ImageDraw.Draw(marked).text((40, 40), "lookalike " * 3, fill=(255, 255, 255), font_size=36)
    fm = extract(marked)
    clean = match(fm, fc)
    assert clean is not None and clean.block < 0.1 and clean.agreement > 0.8
    assert judge(fm, fc, clean, None, rule).duplicate


def test_whole_frame_compares_what_lies_inside_plain_borders(cat):
    """A picture shown small on a plain canvas is compared by its content box, not stretched over the canvas."""
    canvas = Image.new("RGB", (900, 500), (200, 190, 180))
    canvas.paste(cat, (100, 50))
    w = whole_frame(extract(cat), extract(canvas))
    _close(w.region_b, (100, 50, 551, 350), tol=3)
    assert w.agreement > 0.9 and w.moved < 0.01
    assert w.coverage_b == pytest.approx(451 * 300 / (900 * 500), abs=0.01)


def test_a_plain_border_is_told_from_other_content(cat):
    canvas = Image.new("RGB", (900, 500), (200, 190, 180))
    canvas.paste(cat, (100, 50))
    f = extract(canvas)
    assert plain_surround(f, (100, 50, 551, 350))
    assert not plain_surround(f, (0, 0, 300, 300))


def test_pictures_without_a_single_ratio_test_match_give_no_match(images):
    """Keypoints whose two nearest neighbours tie (repeated texture) all fail the ratio test: no match, no error."""
    grass = extract(images["grass"])
    same = np.tile(grass.descriptors[:1], (len(grass), 1))  # every descriptor alike: every match is ambiguous
    repeated = Features(grass.points, same, grass.gray, grass.scale, grass.size)
    assert match(repeated, repeated) is None
    flat = extract(Image.new("RGB", (200, 100), (90, 90, 90)))
    assert len(flat) == 0 and match(flat, grass) is None and match(grass, flat) is None
