"""Verification of a duplicate candidate with local features: RootSIFT matches, a MAGSAC homography, and the
agreement of the two pictures in their aligned overlap.

A global CNN vector finds candidates but cannot tell "the same picture, edited" from "another photo of the same
scene". Local features can: an edited copy shares dozens of keypoints that one geometric transform explains (the
crop, resize, rotation or the place of the picture inside a collage), and once aligned its pixels agree with the
original's except where the edit painted over them. Pure functions on arrays; the caller decodes the files.

The features themselves (RootSIFT, the scaled grey picture, mirrored features without a second extraction) are
made in :mod:`lookalike.search.features`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lookalike.search.features import Features, mirrored, zoomed
from lookalike.search.groups import Box
from lookalike.search.overlap import FAINT_STD, aligned_agreement, region

RATIO = 0.8  # Lowe's ratio test
RANSAC_PX = 5.0  # inlier reprojection error, in pixels of the scaled pictures
MIN_MATCHES = 8  # fewer ratio-test matches cannot support a homography worth checking
ZOOM_INLIERS = (5, 20)  # a fit with this many inliers (from, below) that places one picture in a small part of the
# other is fitted again with keypoints looked for in that part alone (:func:`_zoomed_fit`)
ZOOM_COVER = 0.5  # ... a part covering less than this share of the other picture
SPREAD_GRID = 4  # the overlap is cut into this many cells a side to see where the inliers are


@dataclass(frozen=True)
class Match:
    """How picture ``a`` maps onto picture ``b``.

    Attributes:
        inliers: ratio-test matches consistent with the homography.
        matches: ratio-test matches tried.
        homography: 3x3 map from ``a``'s original pixels to ``b``'s original pixels.
        region_a: the box of ``a`` that shows what ``b`` shows (original pixels of ``a``).
        region_b: the box of ``b`` that shows what ``a`` shows.
        coverage_a: the share of ``a``'s area inside the overlap.
        coverage_b: the share of ``b``'s area inside the overlap.
        agreement: the share of structured patches of the aligned overlap whose grey levels correlate
            (normalised cross-correlation >= 0.5): an edited copy agrees nearly everywhere but where it was
            painted over; another moment of the same scene disagrees wherever something moved.
        moved: the share of structured patches that agree only when shifted a little: content that moved
            between two moments of a scene (0 for a copy).
        spread: the share of the overlap's cells holding keypoints of both pictures that also hold an inlier:
            low when only a shared part matches (the same app window around two different pictures, a shared caption).
        rotation: degrees ``a`` is turned by to land on ``b``, from the homography, in pixel coordinates (y down):
            positive is clockwise as seen on screen (a copy turned a quarter counter-clockwise reports -90).
        flipped: ``b`` is a mirror image of ``a``.
        pairs: (inliers, 4) matched keypoints ``x_a, y_a, x_b, y_b`` in original pixels (for pictures).
        block: the largest 4-connected block of structured patches that disagree, as a share of the overlap's
            patches (they overlap by half, so a block is a little larger than the area it covers): an edit
            paints thin strokes (text, a watermark) or changes everything a little, while a picture pasted over
            another (a picture-in-picture against a collage holding its background, two screenshots of one app
            around different pictures, a subject that moved) leaves one solid block of disagreement.
        structure: the share of the overlap's patches that have structure (the others are flat in both pictures
            and say nothing): two plain pictures (a clear sky, a blank wall) agree on what little they have.
    """

    inliers: int
    matches: int
    homography: np.ndarray
    region_a: Box
    region_b: Box
    coverage_a: float
    coverage_b: float
    agreement: float
    moved: float
    spread: float
    rotation: float
    flipped: bool
    pairs: np.ndarray | None = None
    block: float = 0.0
    structure: float = 1.0

    def swapped(self) -> Match:
        """The same match seen from ``b``: ``b`` onto ``a``."""
        inverse = np.linalg.inv(self.homography)
        return Match(
            self.inliers,
            self.matches,
            inverse,
            self.region_b,
            self.region_a,
            self.coverage_b,
            self.coverage_a,
            self.agreement,
            self.moved,
            self.spread,
            -self.rotation if not self.flipped else self.rotation,
            self.flipped,
            None if self.pairs is None else self.pairs[:, [2, 3, 0, 1]],
            self.block,
            self.structure,
        )


def _ratio_matches(a: Features, b: Features) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``a`` and ``b`` of the ratio-test matches, each keypoint of ``b`` used once.

    RootSIFT descriptors have unit L2 norm, so squared distances are ``2 - 2 a.b``: one matrix product gives every
    distance (several times faster than OpenCV's brute-force matcher here).
    """
    if len(a) < 2 or len(b) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    sims = a.descriptors @ b.descriptors.T
    rows = np.arange(len(sims))
    best = sims.argmax(axis=1)
    s1 = sims[rows, best]
    sims[rows, best] = -np.inf
    s2 = sims.max(axis=1)
    d1 = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * s1))
    d2 = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * s2))
    keep = d1 < RATIO * d2
    if not keep.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ia, ib = rows[keep], best[keep]
    # one keypoint of b may be the best of several in a (repeated texture): keep the closest only
    closest = np.lexsort((d1[keep], ib))
    first = np.r_[True, ib[closest][1:] != ib[closest][:-1]]
    return ia[closest][first], ib[closest][first]


def _scaled(f: Features) -> np.ndarray:
    """Scaled-picture pixels -> original pixels."""
    sy = f.size[1] / f.gray.shape[0]
    return np.diag([f.scale, sy, 1.0])


def _spread(a: Features, b: Features, h_small: np.ndarray, inliers_b: np.ndarray) -> float:
    """The share of the overlap's cells (in ``b``) where both pictures have structure that hold an inlier.

    A cell has structure in a picture when it holds two or more of that picture's keypoints (``a``'s mapped by
    ``h_small``). Counting ``b``'s keypoints alone made cells that only one picture has keypoints in, such as a
    hard-compressed copy's blocking or the small picture of a collage seen at another scale, count against a copy
    (``benchmarks/RESULTS.md``, "Spread where both pictures have structure")."""
    (x0, y0, x1, y1), _ = region(h_small, (a.gray.shape[1], a.gray.shape[0]), (b.gray.shape[1], b.gray.shape[0]))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return 0.0

    def cells(points: np.ndarray) -> np.ndarray:
        inside = (points[:, 0] >= x0) & (points[:, 0] < x1) & (points[:, 1] >= y0) & (points[:, 1] < y1)
        p = points[inside]
        cx = np.minimum(((p[:, 0] - x0) * SPREAD_GRID / (x1 - x0)).astype(int), SPREAD_GRID - 1)
        cy = np.minimum(((p[:, 1] - y0) * SPREAD_GRID / (y1 - y0)).astype(int), SPREAD_GRID - 1)
        return np.bincount(cy * SPREAD_GRID + cx, minlength=SPREAD_GRID * SPREAD_GRID)

    mapped = np.c_[a.points, np.ones(len(a.points))] @ (h_small.T * np.sign(h_small[2, 2] or 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        mapped_a = mapped[:, :2] / mapped[:, 2:3]
    mapped_a = mapped_a[np.isfinite(mapped_a).all(axis=1) & (mapped[:, 2] > 0)]
    busy = (cells(b.points) >= 2) & (cells(mapped_a) >= 2)
    return float(((cells(inliers_b) > 0) & busy).sum() / busy.sum()) if busy.any() else 0.0


def _rotation(h: np.ndarray, flipped: bool) -> float:
    """The rotation, in degrees, of the homography's linear part (after undoing a mirror)."""
    lin = h[:2, :2] / max(abs(h[2, 2]), 1e-9)
    if flipped:
        lin = lin @ np.diag([-1.0, 1.0])
    return float(np.degrees(np.arctan2(lin[1, 0] - lin[0, 1], lin[0, 0] + lin[1, 1])))


def _fit(a: Features, b: Features) -> tuple[np.ndarray, int, int, np.ndarray] | None:
    """The homography from ``a``'s scaled pixels to ``b``'s, its inlier count, the matches tried and the inlier
    pairs (scaled pixels)."""
    import cv2

    ia, ib = _ratio_matches(a, b)
    if len(ia) < MIN_MATCHES:
        return None
    h, mask = cv2.findHomography(a.points[ia], b.points[ib], cv2.USAC_MAGSAC, RANSAC_PX)
    if h is None or mask is None:
        return None
    keep = mask.ravel().astype(bool)
    return h, int(keep.sum()), len(ia), np.c_[a.points[ia[keep]], b.points[ib[keep]]]


def _zoomed_fit(
    a: Features, b: Features, fit: tuple[np.ndarray, int, int, np.ndarray]
) -> tuple[Features, Features, np.ndarray, int, int, np.ndarray]:
    """A weak fit of ``a`` onto ``b`` that places one picture in a small part of the other (a photo in a collage's
    quarter, a tight crop in its original) fitted again with the keypoints of that part looked for in it alone
    (:func:`~lookalike.search.features.zoomed`); the better of the two fits, with the features it was made from.
    The part is the box the fit maps the smaller picture's frame to, with a margin of a tenth of its sides."""
    h_small = fit[0]
    wa, ha, wb, hb = a.gray.shape[1], a.gray.shape[0], b.gray.shape[1], b.gray.shape[0]
    box_b, cover_b = region(h_small, (wa, ha), (wb, hb))
    zoom_b = cover_b < ZOOM_COVER
    if not zoom_b:
        try:
            box_a, cover_a = region(np.linalg.inv(h_small), (wb, hb), (wa, ha))
        except np.linalg.LinAlgError:
            return a, b, *fit
        if cover_a >= ZOOM_COVER or cover_a <= 0.0:
            return a, b, *fit
    elif cover_b <= 0.0:
        return a, b, *fit
    x0, y0, x1, y1 = box_b if zoom_b else box_a
    mx, my = (x1 - x0) / 10, (y1 - y0) / 10
    part = zoomed(b if zoom_b else a, (round(x0 - mx), round(y0 - my), round(x1 + mx), round(y1 + my)))
    if part is None:
        return a, b, *fit
    za, zb = (a, part) if zoom_b else (part, b)
    again = _fit(za, zb)
    if again is None or again[1] <= fit[1]:
        return a, b, *fit
    return za, zb, *again


def match(a: Features, b: Features, mirror: bool = True) -> Match | None:
    """The best geometric match of ``a`` onto ``b`` or (with ``mirror``) onto ``b``'s mirror image, or None when
    neither holds.

    The homography is fitted in the scaled pictures' pixels and reported in the originals'.
    """
    best: tuple[np.ndarray, int, int, np.ndarray, bool, Features] | None = None
    for flipped in (False, True) if mirror else (False,):
        target = mirrored(b) if flipped else b
        fit = _fit(a, target)
        if fit is not None and (best is None or fit[1] > best[1]):
            best = (*fit, flipped, target)
        if best is not None and not flipped and best[1] >= 4 * MIN_MATCHES:
            break  # a strong direct match: the mirror cannot be better
    if best is None:
        return None
    h_small, inliers, tried, pairs, flipped, target = best
    if ZOOM_INLIERS[0] <= inliers < ZOOM_INLIERS[1]:
        a, target, h_small, inliers, tried, pairs = _zoomed_fit(a, target, (h_small, inliers, tried, pairs))
    checks = aligned_agreement(a, target, h_small, coarser=True, contrast=True)
    spread = _spread(a, target, h_small, pairs[:, 2:])
    if flipped:  # b's mirrored keypoints -> b's
        pairs[:, 2] = b.gray.shape[1] - 1 - pairs[:, 2]
    pairs = pairs * np.r_[np.diag(_scaled(a))[:2], np.diag(_scaled(b))[:2]]
    return _assemble(a, b, h_small, flipped, checks, spread, inliers, tried, pairs)


def _assemble(
    a: Features,
    b: Features,
    h_small: np.ndarray,
    flipped: bool,
    checks: tuple[float, float, float, float],
    spread: float,
    inliers: int = 0,
    tried: int = 0,
    pairs: np.ndarray | None = None,
    edges: bool = False,
) -> Match | None:
    """The :class:`Match` of a map ``h_small`` from ``a``'s scaled pixels to (the mirror of, when ``flipped``)
    ``b``'s, with the aligned-overlap ``checks`` (agreement, moved, block, structure): reported in the originals'
    pixels. A map fitted to keypoints takes pixel centres (mirrored: ``W - 1 - x``, as
    :func:`~lookalike.search.features.mirrored` puts keypoints); one of frames (``edges``: the dense placement)
    takes pixel edges (mirrored: ``W - x``, so that a whole frame stays the box ``(0, 0, W, H)``)."""
    if flipped:  # b's mirrored pixels -> b's pixels
        h_small = np.array([[-1.0, 0, b.gray.shape[1] - (0 if edges else 1)], [0, 1, 0], [0, 0, 1]]) @ h_small
    h = _scaled(b) @ h_small @ np.linalg.inv(_scaled(a))
    region_b, coverage_b = region(h, a.size, b.size)
    try:
        inverse = np.linalg.inv(h)
    except np.linalg.LinAlgError:
        return None
    region_a, coverage_a = region(inverse, b.size, a.size)
    agreement, moved, block, structure = checks
    return Match(
        inliers,
        tried,
        h,
        region_a,
        region_b,
        coverage_a,
        coverage_b,
        agreement,
        moved,
        spread,
        _rotation(h, flipped),
        flipped,
        None if pairs is None else pairs.astype(np.float32),
        block,
        structure,
    )


def whole_frame(a: Features, b: Features, quarter: int = 0) -> Match:
    """``a``'s content, turned by ``quarter`` quarter turns counter-clockwise as seen on screen, stretched over
    ``b``'s (each inside its plain borders): the second verifier, for pictures too smooth for keypoints, where a
    resized, recoloured, blurred, letterboxed or quarter-turned copy still agrees with its original patch by
    patch."""
    quarter %= 4
    ax0, ay0, ax1, ay1 = _inside_borders(a) if quarter else a.inner
    bx0, by0, bx1, by1 = _inside_borders(b) if quarter else b.inner
    turn, (tw, th) = _quarter_turn(quarter, ax1 - ax0, ay1 - ay0)
    # a's scaled pixels -> b's: move a's content to the origin, turn it, stretch it over b's content, move it there
    h_small = (
        np.array([[1.0, 0, bx0], [0, 1, by0], [0, 0, 1]])
        @ np.diag([(bx1 - bx0) / max(1, tw), (by1 - by0) / max(1, th), 1.0])
        @ turn
        @ np.array([[1.0, 0, -ax0], [0, 1, -ay0], [0, 0, 1]])
    )
    h = _scaled(b) @ h_small @ np.linalg.inv(_scaled(a))
    region_a = _box_in(a, a.inner)
    region_b = _box_in(b, b.inner)
    if quarter:  # the warp samples at pixel centres: a turned map of edges is a pixel off there (x -> w - x)
        h_small = (
            np.array([[1.0, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
            @ h_small
            @ np.array([[1.0, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
        )
    agreement, moved, block, structure = aligned_agreement(a, b, h_small, faint=FAINT_STD)
    cover_a, cover_b = _share(a, a.inner), _share(b, b.inner)
    rotation = _rotation(h, False) if quarter else 0.0
    return Match(
        0, 0, h, region_a, region_b, cover_a, cover_b, agreement, moved, 1.0, rotation, False, None, block, structure
    )


def _inside_borders(f: Features) -> Box:
    """``f``'s box inside plain borders, a pixel further in on each side that has a border: the box is whole
    pixels, so a side can hold a sliver of border, which the grid of a turned comparison samples (a dark border
    read as disagreement in one order of the pair and not in the other)."""
    x0, y0, x1, y1 = f.inner
    h, w = f.gray.shape
    return (x0 + (x0 > 0), y0 + (y0 > 0), x1 - (x1 < w), y1 - (y1 < h))


def _quarter_turn(quarter: int, w: int, h: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The map turning a ``w`` x ``h`` box at the origin by ``quarter`` quarter turns counter-clockwise (as seen on
    screen, y down) back into a box at the origin, and that box's size (pixel edges: corners go to corners)."""
    turns = {
        0: (np.eye(3), (w, h)),
        1: (np.array([[0.0, 1, 0], [-1, 0, w], [0, 0, 1]]), (h, w)),  # (x, y) -> (y, w - x)
        2: (np.array([[-1.0, 0, w], [0, -1, h], [0, 0, 1]]), (w, h)),
        3: (np.array([[0.0, -1, h], [1, 0, 0], [0, 0, 1]]), (h, w)),  # (x, y) -> (h - y, x)
    }
    return turns[quarter]


def _box_in(f: Features, box: Box) -> Box:
    """A box of the scaled picture in the original's pixels."""
    sx, sy = f.size[0] / f.gray.shape[1], f.size[1] / f.gray.shape[0]
    return (round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy))


def _share(f: Features, box: Box) -> float:
    """The share of the scaled picture a box covers."""
    return (box[2] - box[0]) * (box[3] - box[1]) / max(1, f.gray.shape[0] * f.gray.shape[1])


PLAIN_STD = 6.0  # grey-level spread under which what surrounds a matched region is a plain border


def framed_by_trim(f: Features, box: Box, slack: float = 0.015) -> bool:
    """Whether plain borders were trimmed off the picture (:attr:`Features.framed`) and ``box`` (original pixels),
    the part of it a match covers, lies inside them give or take ``slack`` of a side (under the thinnest border
    the trim cuts, 2%): a mat too thin for the match to leave much of the picture uncovered. A picture whose trim
    cut into what a keypoint match covers (a dark or grainy one's own edges) is not framed; a smooth pair's
    whole-frame match covers the trimmed boxes by construction, so there the trim alone decides."""
    if not f.framed:
        return False
    x0, y0, x1, y1 = _box_in(f, f.inner)
    dx, dy = slack * f.size[0], slack * f.size[1]
    return box[0] >= x0 - dx and box[1] >= y0 - dy and box[2] <= x1 + dx and box[3] <= y1 + dy


def thin_mat(f: Features, box: Box, other: Features, other_box: Box) -> bool:
    """Whether ``f`` is framed by its trim (:func:`framed_by_trim`) where ``other``, matched over ``other_box``, is
    not: ``f`` is the other picture with a mat (or bars) thin enough to pass as a whole copy of it."""
    return framed_by_trim(f, box) and not framed_by_trim(other, other_box)


def plain_surround(f: Features, box: Box) -> bool:
    """Whether everything of the picture outside ``box`` (original pixels) is plain: a letterbox, a mat, a canvas."""
    sx, sy = f.size[0] / f.gray.shape[1], f.size[1] / f.gray.shape[0]
    x0, y0, x1, y1 = round(box[0] / sx), round(box[1] / sy), round(box[2] / sx), round(box[3] / sy)
    mask = np.ones(f.gray.shape, bool)
    mask[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = False
    outside = f.gray[mask]
    return len(outside) == 0 or float(outside.std()) < PLAIN_STD
