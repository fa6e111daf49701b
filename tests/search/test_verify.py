"""Local-feature verification against synthetic transforms of real photos, with known answers."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from lookalike.search.features import Features, extract, mirrored
from lookalike.search.groups import Relation
from lookalike.search.image_dupes import (
    VerifyRule,
    _smooth_duplicate,
    judge,
    relation,
    smooth_match,
    verify,
    verify_in_order,
)
from lookalike.search.smooth import dense_match, hue_shift, likely_turn
from lookalike.search.verify import _scaled, match, plain_surround, whole_frame


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


def test_spread_counts_the_cells_where_both_pictures_have_structure(cat, images):
    """Texture that only one picture has (here a photo where the other is flat grey; in practice a hard-compressed
    copy's blocking, or a collage's small picture seen at another scale) holds no inliers and does not count: the
    matched half is covered either way round. A shared window frame round two different pictures matches in the
    frame's cells only, while both pictures have structure inside it: its spread stays under the rule's (as under
    the measure before, which counted one picture's keypoints: this half guards that the change admits no such
    pair)."""
    flat, busy = cat.copy(), cat.copy()
    flat.paste((128, 128, 128), (226, 0, 451, 300))
    busy.paste(images["coins"].convert("RGB").resize((226, 300)).crop((0, 0, 225, 300)), (226, 0))
    fa, fb = extract(flat), extract(busy)
    spreads = [m.spread for m in (match(fa, fb), match(fb, fa)) if m is not None and m.inliers >= 100]
    assert len(spreads) == 2 and min(spreads) >= 0.9, spreads

    def window(picture: Image.Image) -> Image.Image:
        shot = Image.new("RGB", (900, 640), (235, 235, 235))
        draw = ImageDraw.Draw(shot)
        for i, text in enumerate(("File  Edit  View  Image  Help", "lookalike viewer 1.0 - zoom 100%")):
            draw.text((12, 8 + 600 * i), text * 2, fill=(20, 20, 20), font_size=20)
        shot.paste(picture.resize((860, 560)), (20, 40))
        return shot

    m = match(extract(window(cat)), extract(window(images["coffee"])))
    assert m is not None and m.inliers >= 15 and m.spread < VerifyRule().min_spread


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


def _jpeg_copy(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


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


def _grid_of_photos(images, target: str, n: int = 3, cell: tuple[int, int] = (300, 200)) -> Image.Image:
    """An n x n grid of textured photos with ``target`` in the lower right cell."""
    w, h = cell
    fillers = ["text", "page", "coins", "immunohistochemistry", "hubble_deep_field", "retina", "brick", "grass"]
    out = Image.new("RGB", (w * n, h * n))
    for i in range(n * n - 1):
        out.paste(images[fillers[i % len(fillers)]].convert("RGB").resize((w, h)), ((i % n) * w, (i // n) * h))
    out.paste(images[target].convert("RGB").resize((w, h)), ((n - 1) * w, (n - 1) * h))
    return out


def test_a_photo_in_a_small_part_of_a_grid_is_matched_with_keypoints_looked_for_in_that_part(images, monkeypatch):
    """The rocket fills a ninth of a grid of textured photos: of the grid's 1,000 keypoints few fall in its cell,
    and the first fit has under 15 inliers; looked for again in that cell alone (enlarged), the keypoints give a
    fit with several times as many, and the pair verifies as the photo contained in the grid."""
    from lookalike.search import verify as verify_module

    grid, rocket = extract(_grid_of_photos(images, "rocket")), extract(images["rocket"])
    monkeypatch.setattr(verify_module, "ZOOM_INLIERS", (0, 0))  # no second look
    first = match(grid, rocket)
    assert first is not None and 5 <= first.inliers < 15
    assert not verify(grid, rocket, 0.3, VerifyRule()).duplicate
    monkeypatch.undo()
    zoomed = match(grid, rocket)
    assert zoomed is not None and zoomed.inliers >= 3 * first.inliers
    _close(zoomed.region_a, (600, 400, 900, 600), tol=6)
    assert zoomed.coverage_b == pytest.approx(1.0, abs=0.02) and zoomed.agreement >= 0.95
    assert verify(grid, rocket, 0.3, VerifyRule()).duplicate


def test_the_aligned_check_is_made_where_the_overlap_has_fewer_pixels(images):
    """The rocket in a quarter of a 2 x 2 grid: compared on the grid over the whole rocket photo (the grid's
    quarter enlarged onto it), 2% of the patches seemed to have moved and the pair failed when the grid came
    first; the keypoint match now makes the check on the grid over the quarter (``coarser``), the same whichever
    picture is warped onto the other, and there nothing moved."""
    from lookalike.search.overlap import aligned_agreement

    grid, rocket = extract(_grid_of_photos(images, "rocket", n=2)), extract(images["rocket"])
    m = match(grid, rocket)
    assert m is not None and m.inliers >= 15
    h_small = np.linalg.inv(_scaled(grid)) @ np.linalg.inv(m.homography) @ _scaled(rocket)  # rocket -> grid
    one_way = aligned_agreement(rocket, grid, h_small, coarser=True)
    assert aligned_agreement(grid, rocket, np.linalg.inv(h_small), coarser=True) == pytest.approx(one_way, abs=0.02)
    agreement, moved, block, _ = one_way
    assert agreement >= 0.95 and moved == 0.0 and block <= 0.05
    assert verify(grid, rocket, 0.3, VerifyRule()).duplicate and verify(rocket, grid, 0.3, VerifyRule()).duplicate


def _family_of_edits(im: Image.Image) -> dict[str, Image.Image]:
    """A photo, a copy saved at JPEG quality 12, crops of each, a thumbnail of the q12 copy, a mirror image and a
    quarter turn: pairs among them whose keypoint matches differ with the way round they are matched."""
    im = im.convert("RGB")
    w, h = im.size
    q12 = _jpeg_copy(im, 12).convert("RGB")
    return {
        "original": im,
        "q12": q12,
        "crop": im.crop((0, 0, int(w * 0.8), int(h * 0.8))),
        "q12_crop": q12.crop((int(w * 0.1), int(h * 0.1), int(w * 0.85), int(h * 0.85))),
        "q12_small": q12.resize((w // 2, h // 2)),
        "mirror": ImageOps.mirror(im),
        "turned": im.transpose(Image.Transpose.ROTATE_90),
    }


def test_a_pair_gets_one_verdict_whichever_way_round_it_comes(images):
    """Matching is not symmetric (the ratio test looks from one picture, the overlap is checked on one picture's
    grid): of these pairs of real edits some get other keypoint counts matched one way round than the other (a
    new user's borderline crop was grouped in one library and not in another holding the same files, and
    ``explain`` contradicted ``dupes``). Verified in the order of the files' content keys, each pair gets one
    verdict, seen from whichever file comes first."""
    rule = VerifyRule()
    asymmetric = 0
    for name in ("china", "rocket"):
        feats = {k: extract(v) for k, v in _family_of_edits(images[name]).items()}
        keys = {k: f"{name}-{k}" for k in feats}  # stand-ins for SHA-256 digests: any strings that sort
        for a, b in itertools.combinations(feats, 2):
            fa, fb = feats[a], feats[b]
            one_way, other_way = verify(fa, fb, 0.9, rule), verify(fb, fa, 0.9, rule)
            inliers = [0 if v.match is None else v.match.inliers for v in (one_way, other_way)]
            asymmetric += inliers[0] != inliers[1] or one_way.duplicate != other_way.duplicate
            forward = verify_in_order(fa, fb, 0.9, rule, (keys[a], keys[b]))
            backward = verify_in_order(fb, fa, 0.9, rule, (keys[b], keys[a]))
            assert (forward.duplicate, forward.method, forward.score) == (
                backward.duplicate,
                backward.method,
                backward.score,
            ), (name, a, b)
            assert forward.duplicate == (one_way if keys[a] < keys[b] else other_way).duplicate
            if forward.match is not None:
                assert forward.match.inliers == backward.match.inliers
                assert forward.match.region_a == backward.match.region_b  # each seen from its first file
                assert forward.match.region_b == backward.match.region_a
        crop, whole = feats["crop"], feats["original"]  # a pixel-exact corner crop: frames sharing two edges
        assert verify(crop, whole, 0.9, rule).duplicate and verify(whole, crop, 0.9, rule).duplicate, name
    assert asymmetric >= 3  # the pairs do tell the two ways round apart
