"""Local-feature verification against synthetic transforms of real photos, with known answers."""

from __future__ import annotations

import dataclasses
import io
import itertools

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from lookalike.search.features import Features, extract, mirrored
from lookalike.search.image_dupes import (
    VerifyRule,
    judge,
    verify,
    verify_in_order,
)
from lookalike.search.verify import _scaled, framed_by_trim, match, plain_surround, thin_mat, whole_frame

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


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


def _jpeg_copy(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def _grid_of_photos(images, target: str, n: int = 3, cell: tuple[int, int] = (300, 200)) -> Image.Image:
    """An n x n grid of textured photos with ``target`` in the lower right cell."""
    w, h = cell
    fillers = ["text", "page", "coins", "immunohistochemistry", "hubble_deep_field", "retina", "brick", "grass"]
    out = Image.new("RGB", (w * n, h * n))
    for i in range(n * n - 1):
        out.paste(images[fillers[i % len(fillers)]].convert("RGB").resize((w, h)), ((i % n) * w, (i // n) * h))
    out.paste(images[target].convert("RGB").resize((w, h)), ((n - 1) * w, (n - 1) * h))
    return out


@pytest.mark.parametrize("target", ["rocket", "coffee"])
def test_each_quarter_of_a_picture_keeps_its_share_of_the_keypoints(images, monkeypatch, target):
    """A photo in one quarter of a 2 x 2 grid of textured photos keeps the strongest keypoints of its quarter, up
    to a quarter of the budget, though the textured quarters hold stronger ones: enough to match its original
    without a second look (the strongest 1,000 overall left the rocket 36 and the coffee 93)."""
    import cv2

    from lookalike.search import features as features_module
    from lookalike.search import verify as verify_module

    grid = extract(_grid_of_photos(images, target, n=2))  # 600 x 400: the target fills x >= 300, y >= 200
    share = features_module.N_FEATURES // features_module.BALANCE_GRID**2
    found = cv2.SIFT_create(nfeatures=0, contrastThreshold=features_module.CONTRAST).detect(grid.gray, None)
    in_quarter = sum(1 for k in found if k.pt[0] >= 300 and k.pt[1] >= 200)
    assert len(found) > features_module.N_FEATURES and len(grid) == features_module.N_FEATURES
    kept = int(((grid.points[:, 0] >= 300) & (grid.points[:, 1] >= 200)).sum())
    assert kept == min(share, in_quarter)
    strongest = features_module._sift().detect(grid.gray, None)  # the 1,000 strongest overall
    assert 2 * sum(1 for k in strongest if k.pt[0] >= 300 and k.pt[1] >= 200) < kept
    monkeypatch.setattr(verify_module, "ZOOM_INLIERS", (0, 0))  # no second look
    m = match(grid, extract(images[target]))
    assert m is not None and m.inliers >= 50
    _close(m.region_a, (300, 200, 600, 400), tol=6)


def test_a_photo_in_a_small_part_of_a_grid_is_matched_with_keypoints_looked_for_in_that_part(images, monkeypatch):
    """The rocket fills a sixteenth of a grid of textured photos: of the grid's 1,000 keypoints few fall in its
    cell, and the first fit has under 15 inliers; looked for again in that cell alone (enlarged), the keypoints give
    a fit with several times as many, and the pair verifies as the photo contained in the grid."""
    from lookalike.search import verify as verify_module

    grid, rocket = extract(_grid_of_photos(images, "rocket", n=4)), extract(images["rocket"])
    monkeypatch.setattr(verify_module, "ZOOM_INLIERS", (0, 0))  # no second look
    first = match(grid, rocket)
    assert first is not None and 5 <= first.inliers < 15
    assert not verify(grid, rocket, 0.3, VerifyRule()).duplicate
    monkeypatch.undo()
    zoomed = match(grid, rocket)
    assert zoomed is not None and zoomed.inliers >= 3 * first.inliers
    _close(zoomed.region_a, (900, 600, 1200, 800), tol=6)
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


def _same_verdict(got, want) -> None:
    """Every field of two verdicts, and of their matches, equal."""
    assert (got.duplicate, got.method, got.score, got.colour) == (want.duplicate, want.method, want.score, want.colour)
    assert (got.match is None) == (want.match is None)
    if got.match is not None:
        for field in dataclasses.fields(got.match):
            x, y = getattr(got.match, field.name), getattr(want.match, field.name)
            assert np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y, field.name


def test_a_run_verifies_two_contents_once_however_many_byte_identical_files_each_has(images, monkeypatch):
    """A library of photos each kept twice (a backup folder) gave every pair of different photos four verifications,
    one per pair of files; the run's memo verifies each pair of contents once, whichever way round and whichever
    of the twins its files are, and gives each pair of files the verdict it would get alone: the pair matched from
    the file whose content key sorts first, the match then seen from the first file."""
    from lookalike.search import image_dupes

    rule = VerifyRule()
    edits = _family_of_edits(images["china"])
    twins = {k: (extract(v), extract(v)) for k, v in edits.items()}  # two files of each content, read apart
    keys = {k: f"china-{k}" for k in edits}
    calls = []
    monkeypatch.setattr(image_dupes, "verify", lambda *args: calls.append(1) or verify(*args))
    memo: dict = {}
    for a, b in itertools.permutations(edits, 2):
        for fa, fb in itertools.product(twins[a], twins[b]):
            got = verify_in_order(fa, fb, 0.9, rule, (keys[a], keys[b]), memo)
            if keys[a] < keys[b]:
                want = verify(fa, fb, 0.9, rule)
            else:
                want = verify(fb, fa, 0.9, rule)
                want = want if want.match is None else dataclasses.replace(want, match=want.match.swapped())
            _same_verdict(got, want)
    assert len(calls) == 21  # 7 contents: 21 pairs, each verified once for its 8 pairs of files (4 each way round)


def test_a_match_inside_trimmed_borders_is_framed_and_one_over_them_is_not():
    """A copy is framed by its trim when plain borders were found and the match covers only what they hold (give or
    take 1.5% of a side); a picture whose trim cut into what the match covers (its own plain-ish edges) is not. The
    thin mat is told against the other picture: framed where that one is not."""
    empty = np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32)
    gray = np.zeros((100, 200), np.uint8)  # a 400 x 300 picture, scaled by 2 across and 3 down
    matted = Features(*empty, gray, 2.0, (400, 300), content=(10, 5, 190, 95))  # inner: (20, 15, 380, 285)
    assert matted.framed
    assert framed_by_trim(matted, (20, 15, 380, 285))
    assert framed_by_trim(matted, (14, 10.5, 386, 289.5))  # 1.5% of 400 and of 300 beyond each side
    assert not framed_by_trim(matted, (13, 15, 380, 285)) and not framed_by_trim(matted, (20, 10, 380, 285))
    assert not framed_by_trim(matted, (0, 0, 400, 300))  # the match covers what the trim cut
    whole = Features(*empty, gray, 2.0, (400, 300))
    assert not whole.framed and not framed_by_trim(whole, (20, 15, 380, 285))
    assert thin_mat(matted, (20, 15, 380, 285), whole, (0, 0, 400, 300))
    assert not thin_mat(whole, (0, 0, 400, 300), matted, (20, 15, 380, 285))  # the other way round: cropped
    assert not thin_mat(matted, (20, 15, 380, 285), matted, (20, 15, 380, 285))  # two copies on one mat
