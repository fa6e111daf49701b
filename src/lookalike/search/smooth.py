"""Verification without keypoints, for pictures too smooth for them: the smaller picture placed inside the larger by
correlation over sizes and refined by ECC (:func:`dense_match`); the right angle a smooth copy may be turned by
(:func:`likely_turn`); and the hue check every verdict makes (:func:`hue_shift`). The aligned-overlap checks
themselves are :mod:`lookalike.search.verify`'s.
"""

from __future__ import annotations

import numpy as np

from lookalike.search.features import Features, mirrored
from lookalike.search.overlap import FAINT_STD, aligned_agreement
from lookalike.search.verify import Match, _assemble

DENSE_SIDE = 96  # the dense matcher compares the pictures at this long side
DENSE_SCALES = 12  # sizes tried for the smaller picture inside the larger, from DENSE_MIN_SCALE of its width to all
DENSE_MIN_SCALE = 0.3


def _dense_place(template: np.ndarray, image: np.ndarray) -> tuple[float, np.ndarray] | None:
    """Where ``template`` (scaled to some share of ``image``'s width, aspect kept) best correlates with ``image``:
    the normalised correlation and the 3x3 map from ``template``'s pixels to ``image``'s."""
    import cv2

    ih, iw = image.shape
    th, tw = template.shape
    best: tuple[float, float, tuple[int, int]] | None = None
    for s in np.geomspace(DENSE_MIN_SCALE, 1.0, DENSE_SCALES):
        k = min(iw * s / tw, ih / th)  # the template's scale: a share of the width, never taller than the image
        w, h = max(8, round(tw * k)), max(8, round(th * k))
        if w > iw or h > ih:
            continue
        t = cv2.resize(template, (w, h), interpolation=cv2.INTER_AREA)
        if float(t.std()) < 1.0:
            continue
        _, score, _, (x, y) = cv2.minMaxLoc(cv2.matchTemplate(image, t, cv2.TM_CCOEFF_NORMED))
        if best is None or score > best[0]:
            best = (float(score), k, (x, y))
    if best is None:
        return None
    score, k, (x, y) = best
    return score, np.array([[k, 0, x], [0, k, y], [0, 0, 1.0]])


def _refine(template: np.ndarray, image: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``h`` (template pixels -> image pixels) refined by ECC to an affine map (a copy turned a little lands)."""
    import cv2

    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 40, 1e-4)
    try:
        _, warp = cv2.findTransformECC(
            template.astype(np.float32),
            image.astype(np.float32),
            h[:2].astype(np.float32),
            cv2.MOTION_AFFINE,
            criteria,
            np.full(image.shape, 255, np.uint8),  # the valid pixels of image (all)
            3,
        )
    except cv2.error:
        return h  # kept as placed
    return np.r_[warp.astype(np.float64), [[0.0, 0.0, 1.0]]]


def dense_match(a: Features, b: Features, mirror: bool = True) -> Match | None:
    """The third verifier, for pictures too smooth for keypoints: the smaller content placed in the larger by
    correlation over sizes (and mirrored), refined by ECC, then judged by the same aligned-overlap checks as a
    keypoint match. Handles what :func:`whole_frame` cannot: crops, insets and small turns of smooth artwork."""
    import cv2

    def small(f: Features) -> tuple[np.ndarray, np.ndarray]:
        x0, y0, x1, y1 = f.inner
        g = f.gray[y0:y1, x0:x1]
        k = DENSE_SIDE / max(g.shape)
        size = (max(8, round(g.shape[1] * k)), max(8, round(g.shape[0] * k)))
        # small pixels -> scaled-picture pixels
        to_scaled = np.array([[(x1 - x0) / size[0], 0, x0], [0, (y1 - y0) / size[1], y0], [0, 0, 1.0]])
        return cv2.resize(g, size, interpolation=cv2.INTER_AREA), to_scaled

    ga, to_a = small(a)
    best: tuple[float, np.ndarray, bool, bool, np.ndarray] | None = None  # score, map, flipped, a inside b, gb
    for flipped in (False, True) if mirror else (False,):
        gb, _ = small(mirrored(b) if flipped else b)
        for a_inside in (True, False):
            placed = _dense_place(ga, gb) if a_inside else _dense_place(gb, ga)
            if placed is not None and (best is None or placed[0] > best[0]):
                best = (placed[0], placed[1], flipped, a_inside, gb)
    if best is None:
        return None
    _, placed_h, flipped, a_inside, gb = best
    a_to_b = _refine(ga, gb, placed_h) if a_inside else np.linalg.inv(_refine(gb, ga, placed_h))
    target = mirrored(b) if flipped else b
    h_small = small(target)[1] @ a_to_b @ np.linalg.inv(to_a)
    return _assemble(a, b, h_small, flipped, aligned_agreement(a, target, h_small, faint=FAINT_STD), 1.0, edges=True)


TURN_SIDE = 16  # :func:`likely_turn` compares the pictures' content at this many pixels a side
TURN_GATE = 0.6  # ... and points to a right angle whose correlation is at least this


def likely_turn(a: Features, b: Features, gate: float = TURN_GATE) -> int:
    """The quarter turns (1, 2 or 3, counter-clockwise as seen on screen) that bring ``a``'s content onto
    ``b``'s, judged on :data:`TURN_SIDE`-pixel thumbnails of each inside its plain borders; 0 unless the best
    turn correlates at least ``gate`` and better than none. A copy both mirrored and turned (transposed) is not
    looked for.

    A gate, not a verdict: the whole-frame comparison turned by the right angle it names decides. Trying every
    right angle on every smooth pair that fails cost a library of 200 smooth tiles four times its ``dupes`` time
    (``benchmarks/RESULTS.md``, "Smooth pictures turned by a right angle"); how many failing smooth pairs pass
    the gate, and which of them the turned comparison verifies, is printed by ``benchmarks/dupes_calibrate.py``
    ("Quarter turns of smooth pairs")."""
    import cv2

    def thumb(f: Features) -> np.ndarray:
        x0, y0, x1, y1 = f.inner
        g = cv2.resize(f.gray[y0:y1, x0:x1], (TURN_SIDE, TURN_SIDE), interpolation=cv2.INTER_AREA)
        g = g.astype(np.float32) - float(g.mean())
        return g / max(float(np.linalg.norm(g)), 1e-6)

    ta, tb = thumb(a), thumb(b)
    scores = [float((np.rot90(ta, quarter) * tb).sum()) for quarter in range(4)]  # rot90 turns as seen on screen
    best = 1 + int(np.argmax(scores[1:]))
    return best if scores[best] >= gate and scores[best] > scores[0] else 0


MIN_CHROMA = 4.0  # a cell whose colour is closer to grey than this (CIELAB a*b*) has no hue to compare
MIN_COLOURED = 0.1  # share of the overlap's cells that must have a hue in both pictures for the check to apply
COLOUR_BLOCK = 8  # colour maps are compared in blocks of this many cells a side (:func:`colour_difference`)


def hue_shift(a: Features, b: Features, m: Match) -> float:
    """Degrees the hues of the two pictures differ by where they overlap: the median, over the cells of ``a``'s
    colour map (CIELAB a*b* at :data:`~lookalike.search.features.CHROMA_SIDE`) that have a hue in both, of the
    angle between a cell's hue and the hue of ``b`` aligned onto it by the match (weighted by chroma); 0 when too
    little of the overlap has colour in both (a grey-level copy).

    Cell by cell, not the mean hue of each region: a copy keeps each part's hue through brightness, contrast,
    saturation and compression, while clipped saturation can turn the mean hue of a many-coloured picture, whose
    colours cancel in the mean; a recoloured variant of a design (blue to purple, to teal) turns every part, though
    its grey levels, all the other checks see, agree. (Dev half of the benchmark: ``benchmarks/dupes_ablation.py``.)
    """
    if a.chroma is None or b.chroma is None:
        return 0.0
    aligned, inside = _aligned_chroma(a, b, m)
    chroma_a, chroma_b = np.linalg.norm(a.chroma, axis=2), np.linalg.norm(aligned, axis=2)
    coloured = inside & (chroma_a >= MIN_CHROMA) & (chroma_b >= MIN_CHROMA)
    if coloured.sum() < max(8, MIN_COLOURED * inside.sum()):
        return 0.0
    turn = np.degrees(np.arctan2(a.chroma[..., 1], a.chroma[..., 0]) - np.arctan2(aligned[..., 1], aligned[..., 0]))
    shift = np.abs((turn + 180.0) % 360.0 - 180.0)[coloured]
    weight = np.minimum(chroma_a, chroma_b)[coloured]
    order = np.argsort(shift)
    cumulative = np.cumsum(weight[order])
    return float(shift[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def colour_difference(a: Features, b: Features, m: Match) -> float | None:
    """How far the colours of two pictures are apart where they overlap: the mean distance, in CIELAB a*b* units,
    between blocks of :data:`COLOUR_BLOCK` x :data:`COLOUR_BLOCK` cells of one picture's colour map and of the
    other's aligned onto it by the match, over the blocks the overlap covers at least half of, taken both ways
    round and averaged (the same for ``(a, b)`` as for ``(b, a)``); None when either has no colour map or the
    overlap covers no block.

    A copy made by a colour edit (more saturation, grey levels, a darkened re-shoot) is far from the original and
    from every other copy, while the original is as far from each copy as that copy's own edit: among copies of one
    size the original is one whose duplicates are nearest in colour (:mod:`lookalike.search.representatives`).
    Blocks, not cells: a blurred copy, whose colours bleed a cell or two, would otherwise be nearer to every copy
    than the sharp original is (an alignment a cell off costs sharp edges more).
    """
    if a.chroma is None or b.chroma is None:
        return None
    ways = [d for d in (_one_way(a, b, m), _one_way(b, a, m.swapped())) if d is not None]
    return float(np.mean(ways)) if ways else None


def _one_way(a: Features, b: Features, m: Match) -> float | None:
    """:func:`colour_difference` on ``a``'s blocks."""
    import cv2

    assert a.chroma is not None
    aligned, inside = _aligned_chroma(a, b, m)
    h, w = inside.shape
    blocks = (max(1, round(w / COLOUR_BLOCK)), max(1, round(h / COLOUR_BLOCK)))
    weight = inside.astype(np.float32)
    share = cv2.resize(weight, blocks, interpolation=cv2.INTER_AREA)
    covered = share >= 0.5
    if not covered.any():
        return None
    mean_a = cv2.resize(a.chroma * weight[..., None], blocks, interpolation=cv2.INTER_AREA)[covered]
    mean_b = cv2.resize(aligned * weight[..., None], blocks, interpolation=cv2.INTER_AREA)[covered]
    return float((np.linalg.norm(mean_a - mean_b, axis=1) / share[covered]).mean())


def _cells(f: Features) -> np.ndarray:
    """The map from ``f``'s original pixels to the cells of its colour map (pixel centres to cell centres: a cell
    ``k`` pixels wide has its centre at pixel ``(j + 0.5) / k - 0.5``)."""
    assert f.chroma is not None
    kx, ky = f.chroma.shape[1] / f.size[0], f.chroma.shape[0] / f.size[1]
    return np.array([[kx, 0.0, 0.5 * kx - 0.5], [0.0, ky, 0.5 * ky - 0.5], [0.0, 0.0, 1.0]])


def _aligned_chroma(a: Features, b: Features, m: Match) -> tuple[np.ndarray, np.ndarray]:
    """``b``'s colour map warped onto ``a``'s cells by the match, and the cells of ``a`` it covers."""
    import cv2

    assert a.chroma is not None and b.chroma is not None
    ha, wa = a.chroma.shape[:2]
    hb, wb = b.chroma.shape[:2]
    h = _cells(b) @ m.homography @ np.linalg.inv(_cells(a))  # a's cells -> b's
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    aligned = cv2.warpPerspective(np.ascontiguousarray(b.chroma), h, (wa, ha), flags=flags)
    inside = cv2.warpPerspective(np.ones((hb, wb), np.float32), h, (wa, ha), flags=flags) > 0.99
    return aligned, inside
