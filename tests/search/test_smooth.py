"""Verification of pictures too smooth for keypoints (whole frames, dense placement, quarter turns) and the colour
checks every verdict makes, against synthetic edits of real photos, with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from lookalike.search.features import extract
from lookalike.search.groups import Relation
from lookalike.search.image_dupes import (
    VerifyRule,
    _smooth_duplicate,
    relation,
    smooth_match,
    verify,
    verify_in_order,
)
from lookalike.search.overlap import FAINT_STD, MIN_PATCH_STD, aligned_agreement
from lookalike.search.smooth import dense_match, hue_shift, likely_turn
from lookalike.search.verify import _scaled, match, whole_frame
from tests.search.test_verify import _close, _jpeg_copy

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


@pytest.fixture(scope="module")
def cat(images) -> Image.Image:
    return images["chelsea"]  # 451 x 300


def _smooth(images, name: str, radius: float) -> Image.Image:
    """A real photo blurred until it has too few keypoints to verify by them (like gradients and pastel art)."""
    return images[name].convert("RGB").resize((600, 400)).filter(ImageFilter.GaussianBlur(radius))


@pytest.mark.parametrize(("name", "radius"), [("coffee", 8), ("rocket", 6)])
def test_smooth_pictures_are_verified_without_keypoints_through_crops_insets_and_turns(images, name, radius):
    rule = VerifyRule()
    im = _smooth(images, name, radius)
    fa = extract(im)
    assert len(fa) < rule.smooth_keypoints
    crop = im.crop((90, 60, 510, 340)).resize((315, 210))
    inset = Image.new("RGB", (900, 700), (240, 240, 240))
    inset.paste(im.resize((300, 200)), (420, 300))
    turned = im.rotate(7, resample=Image.Resampling.BICUBIC, expand=True)
    for copy in (crop, inset, turned):
        v = verify(fa, extract(copy), 0.8, rule)
        assert v.duplicate and v.match is not None
    v = verify(fa, extract(crop), 0.8, rule)
    assert v.method == "smooth"
    _close(v.match.region_a, (90, 60, 510, 340), tol=8)  # the crop is located in the original
    m = dense_match(fa, extract(turned))
    assert m is not None and m.rotation == pytest.approx(-7, abs=0.5) and m.agreement > 0.95
    # below the cosine at which pictures are compared without keypoints, nothing is decided that way
    assert not verify(fa, extract(crop), rule.smooth_cosine - 0.01, rule).duplicate
    # another smooth picture is not a copy
    assert not verify(fa, extract(_smooth(images, "chelsea", 10)), 0.8, rule).duplicate


def _faint(images, name: str, radius: float, contrast: float) -> Image.Image:
    """A smooth picture whose structure is faint: a blurred photo at a fraction of its contrast (pastel art)."""
    return ImageEnhance.Contrast(_smooth(images, name, radius)).enhance(contrast)


@pytest.mark.parametrize(
    ("name", "radius", "contrast", "edit"),
    [("rocket", 6, 0.4, "colour"), ("camera", 10, 0.4, "jpeg_q12"), ("immunohistochemistry", 10, 0.25, "jpeg_q12")],
)
def test_a_faint_smooth_picture_is_verified_through_compression_and_colour_edits(images, name, radius, contrast, edit):
    """A copy's compression or colour edit leaves some of a faint gradient's patches a little flatter than the
    threshold of structure while the original's are a little above it; they are compared, not counted as
    disagreement (each of these copies failed before: the camera's JPEG copy now passes by the dense placement, its
    whole frame still short), and a faint picture of something else still is no copy."""
    rule = VerifyRule()
    im = _faint(images, name, radius, contrast)
    fa = extract(im)
    copy = extract(
        _jpeg_copy(im, 12).convert("RGB")
        if edit == "jpeg_q12"
        else ImageEnhance.Color(ImageEnhance.Brightness(im).enhance(1.15)).enhance(1.6)
    )
    assert len(fa) < rule.smooth_keypoints
    v = verify(fa, copy, 0.8, rule)
    assert v.duplicate and v.method == "smooth" and v.match is not None and not v.match.flipped
    assert v.match.agreement >= rule.smooth_agreement
    h_small = np.linalg.inv(_scaled(copy)) @ v.match.homography @ _scaled(fa)
    assert aligned_agreement(fa, copy, h_small, faint=MIN_PATCH_STD)[0] < rule.smooth_agreement  # the old count
    for other in ("coffee", "chelsea"):
        assert not verify(fa, extract(_faint(images, other, radius, contrast)), 0.8, rule).duplicate


@pytest.mark.parametrize(("name", "radius", "contrast"), [("camera", 10, 0.4), ("immunohistochemistry", 10, 0.25)])
def test_faint_patches_are_compared_only_where_a_copy_left_them_a_little_flatter(images, name, radius, contrast):
    """At 3/4 of the contrast a faint picture's copy agrees once its slightly flatter patches are compared (it did
    not before); at 2/5 (the grey levels of a darker variant of a design) those patches are not compared at all:
    the agreement is exactly what it was without faint comparisons."""
    rule = VerifyRule()
    im = _faint(images, name, radius, contrast)
    fa = extract(im)
    for factor, verified in ((0.75, True), (0.4, False)):
        fb = extract(ImageEnhance.Contrast(im).enhance(factor))
        whole = whole_frame(fa, fb)
        h_small = np.linalg.inv(_scaled(fb)) @ whole.homography @ _scaled(fa)
        strict = aligned_agreement(fa, fb, h_small, faint=MIN_PATCH_STD)[0]
        faint = aligned_agreement(fa, fb, h_small, faint=FAINT_STD)[0]
        assert faint == whole.agreement
        if verified:
            assert strict < rule.smooth_agreement <= faint
        else:
            assert faint == strict < rule.smooth_agreement
        assert verify(fa, fb, 0.9, rule).duplicate is verified


@pytest.mark.parametrize(
    ("transpose", "quarter", "angle"),
    [
        (Image.Transpose.ROTATE_90, 1, -90.0),  # angles as keypoint matches report them (y down)
        (Image.Transpose.ROTATE_180, 2, 180.0),
        (Image.Transpose.ROTATE_270, 3, 90.0),
    ],
)
def test_a_smooth_picture_turned_by_a_right_angle_is_verified_and_named_rotated(images, transpose, quarter, angle):
    rule = VerifyRule()
    im = _smooth(images, "coffee", 20)
    fa = extract(im)
    turned = im.transpose(transpose)
    fb = extract(turned.resize((turned.width // 2, turned.height // 2)))
    on_canvas = Image.new("RGB", (turned.width + 140, turned.height + 60), (20, 20, 20))  # dark borders round it
    on_canvas.paste(turned, (100, 20))
    fc = extract(on_canvas)
    assert max(len(fa), len(fb), len(fc)) < rule.smooth_keypoints
    for copy in (fb, fc):
        assert likely_turn(fa, copy) == quarter and likely_turn(copy, fa) == (4 - quarter) % 4
        for keys in (("a", "b"), ("b", "a")):  # one verdict whichever way round the pair is matched
            v = verify_in_order(fa, copy, 0.8, rule, keys)
            assert v.duplicate and v.method == "smooth", keys
    m = smooth_match(fa, fb, 0.8, rule)  # the comparison without keypoints alone
    assert m is not None and _smooth_duplicate(fa, fb, m, rule) and m.agreement > 0.95
    assert abs((m.rotation - angle + 180) % 360 - 180) < 0.5
    assert relation(fa, fb, m) is Relation.ROTATED
    corner = np.array([600.0, 0.0, 1.0]) @ m.homography.T  # the original's top-right corner lands ...
    want = {1: (0, 0), 2: (0, 200), 3: (200, 300)}[quarter]  # ... top-left, bottom-left, bottom-right of the copy
    assert tuple(np.round(corner[:2] / corner[2]).astype(int)) == want
    m = smooth_match(fa, fc, 0.8, rule)
    assert m is not None
    _close(m.region_b, (100, 20, 100 + turned.width, 20 + turned.height), tol=2)  # the picture, not its borders
    # a picture unlike it in every orientation points to no turn, and is no copy
    other = extract(_smooth(images, "chelsea", 10))
    assert likely_turn(fa, other) == 0 and not verify(fa, other, 0.8, rule).duplicate


def test_a_recoloured_variant_is_told_from_a_colour_edit_by_its_hues(images):
    rule = VerifyRule()
    im = _smooth(images, "rocket", 6)
    fa = extract(im)
    hsv = np.asarray(im.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(int) + 50) % 256  # the same grey levels in other hues (a design's variant)
    variant = extract(Image.fromarray(hsv, "HSV").convert("RGB"))
    saturated = extract(ImageEnhance.Color(im).enhance(1.6))  # a colour edit keeps the hues
    grey = extract(ImageOps.grayscale(im))  # no hue to compare: no evidence either way
    assert not verify(fa, variant, 0.8, rule).duplicate
    for copy in (saturated, grey):
        v = verify(fa, copy, 0.8, rule)
        assert v.duplicate and v.match is not None and hue_shift(fa, copy, v.match) < 6
    m = match(fa, variant)
    assert m is not None and m.agreement > 0.9 and hue_shift(fa, variant, m) > 35  # the grey levels agree


def test_colour_distance_is_an_edits_own_colour_change(images):
    """Copies that keep the colours (half size, blurred, cropped, mirrored) are within 1 a*b* unit of the photo
    and of each other, whichever way round the pair is taken (a mirror image aligned a colour cell off, pixel edges
    taken for pixel centres, measured 1.9); a saturated copy is 15 or more from each of them, a grey-level copy 35
    or more: the original is the copy nearest in colour to the others. A wide strip and its half-size JPEG copy,
    whose overlap covers few whole blocks, still have a distance. Pairs that are not duplicates carry none."""
    im = images["coffee"].convert("RGB")
    w, h = im.size
    keep = {
        "half": im.resize((w // 2, h // 2)),
        "blurred": im.filter(ImageFilter.GaussianBlur(3)),
        "cropped": im.crop((w // 5, h // 5, w, h)),
        "mirrored": ImageOps.mirror(im),
    }
    fa, rule = extract(im), VerifyRule()
    kept = [extract(c) for c in keep.values()]
    saturated = extract(ImageEnhance.Color(im).enhance(1.6))
    grey = extract(ImageOps.grayscale(im).convert("RGB"))
    for f in kept:
        v, back = verify(fa, f, 0.9, rule), verify(f, fa, 0.9, rule)
        assert v.duplicate and v.colour is not None and back.colour is not None
        assert v.colour < 1 and abs(v.colour - back.colour) < 0.1
        assert verify(f, saturated, 0.9, rule).colour >= 15 and verify(f, grey, 0.9, rule).colour >= 35
    assert verify(fa, saturated, 0.9, rule).colour >= 15 and verify(fa, grey, 0.9, rule).colour >= 35
    assert verify(kept[0], kept[1], 0.9, rule).colour < 1
    strip = images["china"].convert("RGB").resize((640, 80))
    small = _jpeg_copy(strip.resize((320, 40)), 60)
    v = verify(extract(strip), extract(small), 0.9, rule)
    assert v.duplicate and v.colour is not None and v.colour < 1
    other = verify(fa, extract(images["chelsea"]), 0.2, rule)
    assert not other.duplicate and other.colour is None


def test_hues_are_compared_where_the_pictures_overlap_not_as_one_mean(images):
    """Each half of the photo turned about 40 degrees, one half each way: the mean hue barely moves (the turns
    cancel), yet every part of the picture has other colours; a flipped, saturated copy keeps every part's hue."""
    im = images["chelsea"]
    hsv = np.asarray(im.convert("HSV")).astype(int)
    half = hsv.shape[1] // 2
    hsv[:, :half, 0] += 28  # 28 of 256 steps
    hsv[:, half:, 0] -= 28
    variant = Image.fromarray((hsv % 256).astype(np.uint8), "HSV").convert("RGB")
    fa, fv = extract(im), extract(variant)
    m = match(fa, fv)
    assert m is not None and m.agreement > 0.9  # the grey levels agree
    assert hue_shift(fa, fv, m) > 35
    assert not verify(fa, fv, 0.9, VerifyRule()).duplicate
    flipped = extract(ImageOps.mirror(ImageEnhance.Color(im).enhance(1.6)))
    mf = match(fa, flipped, mirror=True)
    assert mf is not None and mf.flipped and hue_shift(fa, flipped, mf) < 8


def test_a_smooth_mirror_image_is_boxed_whole_as_keypoint_matches_box_it(images, cat):
    """Boxes are (left, top, right, bottom) with the right and bottom edges excluded: a whole W x H picture is
    (0, 0, W, H), as keypoint matches and the whole-frame comparison report it. The dense placement of a mirror
    image mirrors pixel edges (W - x), not keypoint positions (W - 1 - x), so it loses no column either."""
    im = _smooth(images, "rocket", 8)  # 600 x 400, too smooth for keypoints
    fa, fb = extract(im), extract(ImageOps.mirror(im))
    assert whole_frame(fa, extract(im)).region_b == (0, 0, 600, 400)
    v = verify(fa, fb, 0.9, VerifyRule())
    assert v.duplicate and v.method == "smooth" and v.match is not None and v.match.flipped
    assert (v.match.region_a, v.match.region_b) == ((0, 0, 600, 400), (0, 0, 600, 400))
    assert v.match.coverage_a == v.match.coverage_b == 1.0
    m = match(extract(cat), extract(ImageOps.mirror(cat)))
    assert m is not None and m.flipped and (m.region_a, m.region_b) == ((0, 0, 451, 300), (0, 0, 451, 300))
