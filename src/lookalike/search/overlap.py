"""Where two aligned pictures overlap, and whether they agree there: the region one picture's frame covers in the
other through a homography, and the patch-by-patch comparison of the aligned overlap that tells an edited copy
(agrees but where an edit painted over it) from another moment of the same scene (content moved). Used by the
keypoint verification (:mod:`lookalike.search.verify`) and the comparison of smooth pictures
(:mod:`lookalike.search.smooth`)."""

from __future__ import annotations

import numpy as np

from lookalike.search.features import Features
from lookalike.search.groups import Box

CHECK_SIDE = 96  # the photometric check compares the aligned overlap on this grid
PATCH = 12  # ... in patches of this many grid cells a side
MIN_PATCH_STD = 2.0  # patches flatter than this (grey levels) say nothing about structure
FAINT_STD = 1.5  # comparisons of smooth pictures: a patch structured in one picture and at least this in the other is
# compared by correlation instead of counting as disagreeing outright (see :func:`aligned_agreement`) ...
FAINT_RATIO = 0.5  # ... when its spread there is at least this share of the other's (a little flatter, not flattened)
CONTRAST_FLOOR = 0.3  # keypoint matches: a picture of lower contrast than the other (darkened, faded) has its patch
# spreads compared as if at the other's contrast, up to 1 / this times larger (see :func:`aligned_agreement`)
MIN_GAIN_PATCHES = 8  # ... measured on at least this many patches clearly structured in both pictures
COARSER = 2.0  # the check moves to the other picture's grid when the overlap has this many times fewer pixels there
SHIFT = 4  # grid pixels a disagreeing patch is searched around for content that moved


def _frame(w: float, h: float) -> np.ndarray:
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)


def _project(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.c_[points, np.ones(len(points))] @ h.T
    z = np.where(np.abs(p[:, 2:]) < 1e-9, 1e-9, p[:, 2:])
    return p[:, :2] / z


def _clipped(polygon: np.ndarray, w: float, h: float) -> np.ndarray:
    """The part of ``polygon`` (rows of x, y) inside the rectangle [0, w] x [0, h] (Sutherland-Hodgman, one edge of
    the rectangle after the other). Written here because OpenCV's ``intersectConvexConvex`` returned nothing, or a
    wrong area, for frames that share edges (a pixel-exact corner crop mapped onto its original by the identity)."""
    points = [tuple(p) for p in polygon.tolist()]
    for axis, bound, keep_below in ((0, 0.0, False), (0, w, True), (1, 0.0, False), (1, h, True)):
        kept: list[tuple[float, float]] = []
        for i, cur in enumerate(points):
            prev = points[i - 1]
            cur_in = cur[axis] <= bound if keep_below else cur[axis] >= bound
            prev_in = prev[axis] <= bound if keep_below else prev[axis] >= bound
            if cur_in != prev_in:  # the edge crosses the bound: keep where it does
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                kept.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            if cur_in:
                kept.append(cur)
        points = kept
        if not points:
            break
    return np.array(points, np.float64).reshape(-1, 2)


def region(homography: np.ndarray, src: tuple[float, float], dst: tuple[float, float]) -> tuple[Box, float]:
    """The box of ``dst`` covered by the frame of ``src`` mapped through ``homography``, and its share of ``dst``."""
    w, h = dst
    pts = _clipped(_project(homography, _frame(*src)), float(w), float(h))
    x, y = pts[:, 0], pts[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) if len(pts) >= 3 else 0.0
    if area <= 0:
        return (0, 0, 0, 0), 0.0
    x0, y0 = np.floor(pts.min(axis=0)).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
    box = (max(0, int(x0)), max(0, int(y0)), min(int(w), int(x1)), min(int(h), int(y1)))
    return box, float(area / max(1.0, w * h))


def _ncc(
    pa: np.ndarray, pb: np.ndarray, faint: float = MIN_PATCH_STD, contrast: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per patch (the last axis holds a patch's pixels): normalised cross-correlation (0 where not compared),
    structured in either, compared (:data:`MIN_PATCH_STD` or more in both, or, with ``faint`` below it, the flatter
    side ``faint`` or more and at least :data:`FAINT_RATIO` of the other's spread), :data:`MIN_PATCH_STD` or more
    in both. With ``contrast``, the spreads of the picture of lower contrast (:func:`_gain`) are measured against
    these thresholds as if at the other's (at most 1 / :data:`CONTRAST_FLOOR` times larger)."""
    sa, sb = pa.std(axis=-1), pb.std(axis=-1)
    gain = _gain(sa, sb) if contrast else 1.0
    ta = sa * min(gain, 1.0 / CONTRAST_FLOOR) if gain > 1.0 else sa
    tb = sb / max(gain, CONTRAST_FLOOR) if gain < 1.0 else sb
    structured = (ta >= MIN_PATCH_STD) | (tb >= MIN_PATCH_STD)  # flat in both: no evidence either way
    low, high = np.minimum(ta, tb), np.maximum(ta, tb)
    clear = low >= MIN_PATCH_STD
    both = clear | (structured & (low >= faint) & (low >= FAINT_RATIO * high))
    cov = ((pa - pa.mean(axis=-1, keepdims=True)) * (pb - pb.mean(axis=-1, keepdims=True))).mean(axis=-1)
    return np.where(both, cov / np.maximum(sa * sb, 1e-6), 0.0), structured, both, clear


def aligned_agreement(
    a: Features,
    b: Features,
    h_small: np.ndarray,
    coarser: bool = False,
    faint: float = MIN_PATCH_STD,
    contrast: bool = False,
) -> tuple[float, float, float, float]:
    """How ``a``, warped onto ``b``, agrees with ``b`` in their overlap: the share of structured patches that
    correlate (NCC >= 0.5), the share that correlate only once shifted by 2-4 grid pixels (NCC >= 0.8), the
    largest 4-connected block of structured patches that do not correlate (a share of the overlap's patches), and
    the share of the overlap's patches that have structure at all (the evidence the other three rest on).

    A copy agrees nearly everywhere but where an edit painted over it, and painted-over patches stay different
    however they are shifted; another moment of the same scene (a burst, the next frame) disagrees where something
    moved, and there the content is found again a little further on (where ``a`` itself does not look the same at
    that shift: a gradient or a stripe found again shifted is no motion). Both are compared on a :data:`CHECK_SIDE`
    grid over ``b``'s box of the overlap, or with ``coarser`` over ``a``'s when the overlap has :data:`COARSER`
    times fewer pixels in ``a`` (the finer picture is brought down to the coarser: a photo filling a quarter of a
    collage compared on the grid over its original disagreed in 5-13% of the patches and seemed to have moved,
    and agreed everywhere the other way round), lightly blurred so that resampling, compression and blur edits do
    not count as disagreement. The keypoint matches use ``coarser``; the comparisons of smooth pictures, whose
    values were chosen on the grid over ``b``, do not (on the dev half of ``benchmarks.dupes_quality``, turning
    it on for them too changed a few smooth families' groups either way; for pictures of about one size it
    changed nothing but which way a borderline pair was judged).

    A patch is structured when its grey levels spread by :data:`MIN_PATCH_STD` or more in either picture, and is
    compared by correlation when they spread by that much in the other too, or, with ``faint`` below it, by
    ``faint`` or more and at least :data:`FAINT_RATIO` of the first's spread; otherwise it counts as disagreeing.
    Motion is looked for only where both spread by :data:`MIN_PATCH_STD` or more (see ``contrast``). The
    comparisons of smooth pictures pass :data:`FAINT_STD`: their structure is faint gradients near the threshold,
    and a copy's JPEG or colour edit leaves some of it a little flatter (2.3 in one picture, 1.7 in the other),
    while a darker or lighter variant of a design flattens it to a third (the dev half of
    ``benchmarks.dupes_quality``, before and after: ``benchmarks/RESULTS.md``, "Faint patches of smooth pictures").

    With ``contrast`` (the keypoint matches), a picture of lower contrast than the other over the overlap (the
    median ratio of their patches' spreads where both are clearly structured, :func:`_gain`) has its patches'
    spreads measured against those thresholds as if at the other's contrast, up to 1 / :data:`CONTRAST_FLOOR`
    times, in deciding which patches are structured, compared, and searched for motion: a darkened or faded copy
    keeps its structure at a lower contrast, and its faint patches counted as disagreeing (a dark, noisy re-shoot
    of a photo agreed in 0.42-0.75 of the overlap). The comparisons of smooth pictures, which have no keypoints to
    tie them, keep absolute spreads: the darker variant of a design differs from it by its contrast.
    """
    if coarser:
        (hb, wb), (ha, wa) = b.gray.shape, a.gray.shape
        (bx0, by0, bx1, by1), _ = region(h_small, (wa, ha), (wb, hb))
        try:
            inverse = np.linalg.inv(h_small)
        except np.linalg.LinAlgError:
            return 0.0, 0.0, 0.0, 0.0
        (ax0, ay0, ax1, ay1), _ = region(inverse, (wb, hb), (wa, ha))
        if COARSER * (ax1 - ax0) * (ay1 - ay0) <= (bx1 - bx0) * (by1 - by0):  # far fewer pixels in a
            return _agreement(b, a, inverse, faint, contrast)
    return _agreement(a, b, h_small, faint, contrast)


def _agreement(
    a: Features, b: Features, h_small: np.ndarray, faint: float = MIN_PATCH_STD, contrast: bool = False
) -> tuple[float, float, float, float]:
    """:func:`aligned_agreement` on the grid over ``b``'s box of the overlap."""
    import cv2

    hb, wb = b.gray.shape
    box, _ = region(h_small, (a.gray.shape[1], a.gray.shape[0]), (wb, hb))
    x0, y0, x1, y1 = box
    if x1 - x0 < 8 or y1 - y0 < 8:
        return 0.0, 0.0, 0.0, 0.0
    side = float(max(x1 - x0, y1 - y0))
    size = (max(PATCH, round(CHECK_SIDE * (x1 - x0) / side)), max(PATCH, round(CHECK_SIDE * (y1 - y0) / side)))
    # grid pixel -> b pixel (crop + scale), then b -> a by the inverse homography
    to_b = np.array([[(x1 - x0) / size[0], 0, x0], [0, (y1 - y0) / size[1], y0], [0, 0, 1]])
    to_a = np.linalg.inv(h_small) @ to_b
    flags = cv2.INTER_AREA | cv2.WARP_INVERSE_MAP
    warped_a = cv2.warpPerspective(a.gray, to_a, size, flags=flags)
    valid = cv2.warpPerspective(np.full(a.gray.shape, 255, np.uint8), to_a, size, flags=flags) > 250
    crop_b = cv2.warpPerspective(b.gray, to_b, size, flags=flags)
    ga = cv2.GaussianBlur(warped_a.astype(np.float32), (0, 0), 1.0)
    gb = cv2.GaussianBlur(crop_b.astype(np.float32), (0, 0), 1.0)
    pa, pb, pv = (_patches(x) for x in (ga, gb, valid))
    inside: np.ndarray = np.asarray(pv.all(axis=1))
    pa, pb = pa[inside], pb[inside]
    ncc, structured, both, clear = _ncc(pa, pb, faint, contrast)
    n = int(structured.sum())
    if not n:
        return 0.0, 0.0, 0.0, 0.0
    # motion is looked for where both pictures have clear structure: a faint patch found again shifted is noise
    differ = clear & (ncc < 0.5)
    block = _largest_block(structured & ~(both & (ncc >= 0.5)), inside, _grid(ga.shape))
    moved = 0.0
    if differ.any():
        # each disagreeing patch of a against the patch at its place in a and in b shifted by 2-4 grid pixels
        # either way (with wrap-around): content found again a little further on counts as moved only where the
        # picture does not repeat itself at that shift (a smooth gradient or a stripe matches itself shifted: that
        # is no motion); a pixel off is misalignment, not motion
        at = np.flatnonzero(inside)[differ]
        corners = np.stack(np.divmod(at, _grid(ga.shape)[1]), axis=1) * (PATCH // 2)
        own = pa[differ]
        found = (_ncc(own, _shifted_patches(ga, corners))[0] < 0.8) & (
            _ncc(own, _shifted_patches(gb, corners))[0] >= 0.8
        )
        moved = float(found.any(axis=0).sum() / n)
    agree = float((both & (ncc >= 0.5)).sum() / n)
    return agree, moved, block, float(n / max(1, len(ncc)))


def _gain(sa: np.ndarray, sb: np.ndarray) -> float:
    """``b``'s contrast over ``a``'s from their patches' spreads: the median ratio where both are clearly
    structured (the median, so that a box or a caption pasted over one picture does not count as contrast); 1 with
    fewer than :data:`MIN_GAIN_PATCHES` such patches."""
    clear = (sa >= MIN_PATCH_STD) & (sb >= MIN_PATCH_STD)
    return float(np.median(sb[clear] / sa[clear])) if clear.sum() >= MIN_GAIN_PATCHES else 1.0


def _grid(shape: tuple[int, ...]) -> tuple[int, int]:
    """Rows and columns of :func:`_patches` over an array of ``shape``."""
    step = PATCH // 2
    return (shape[0] - PATCH) // step + 1, (shape[1] - PATCH) // step + 1


def _largest_block(bad: np.ndarray, inside: np.ndarray, grid: tuple[int, int]) -> float:
    """The largest 4-connected group of ``bad`` patches (given for the ``inside`` ones of a patch grid), as a share
    of the patches inside."""
    import cv2

    cells = np.zeros(grid[0] * grid[1], np.uint8)
    cells[np.flatnonzero(inside)[bad]] = 1
    n, _, stats, _ = cv2.connectedComponentsWithStats(cells.reshape(grid), connectivity=4)
    return float(stats[1:, cv2.CC_STAT_AREA].max() / inside.sum()) if n > 1 else 0.0


def _shifted_patches(img: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The ``PATCH``-square patches with top-left ``corners`` (rows of y, x) of ``img`` rolled by every shift of 2
    to :data:`SHIFT` pixels (Chebyshev distance), as ``np.roll`` would place them: shifts x corners x pixels."""
    shifts = np.array([(dy, dx) for dy in range(-SHIFT, SHIFT + 1) for dx in range(-SHIFT, SHIFT + 1)])
    shifts = shifts[np.abs(shifts).max(axis=1) >= 2]
    # rolled by (dy, dx), the patch at (y, x) is the one at (y - dy, x - dx) of img wrapped around its edges
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(img, SHIFT, mode="wrap"), (PATCH, PATCH))
    at = corners[None, :, :] - shifts[:, None, :] + SHIFT  # shifts x corners x (y, x)
    return windows[at[..., 0], at[..., 1]].reshape(len(shifts), len(corners), PATCH * PATCH).astype(np.float32)


def _patches(img: np.ndarray) -> np.ndarray:
    """Overlapping ``PATCH``-square patches (half a patch apart) of a 2-D array, one per row."""
    win = np.lib.stride_tricks.sliding_window_view(img, (PATCH, PATCH))[:: PATCH // 2, :: PATCH // 2]
    return win.reshape(-1, PATCH * PATCH).astype(np.float32)
