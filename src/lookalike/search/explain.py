"""Why two pictures are (or are not) duplicates: the verdict, its evidence, and a side-by-side picture of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lookalike.search.features import Features
from lookalike.search.groups import Box, Relation
from lookalike.search.image_dupes import (
    MIN_OVERLAP,
    Verdict,
    VerifyRule,
    failed_checks,
    relation,
    reversed_order,
    verify_in_order,
)
from lookalike.search.smooth import hue_shift
from lookalike.search.verify import Match

PANEL = 480  # height of each side of the picture
MAX_LINES = 80  # keypoint lines drawn (a sample of the inliers)
CAPTION = 24  # height of the caption under the pictures
MATCHED = (255, 200, 0)  # the boxes of a duplicate's matched regions
REJECTED = (230, 60, 60)  # the boxes of the closest fit of a pair that is not a duplicate


@dataclass(frozen=True)
class SmoothEvidence:
    """What the comparison without keypoints measured on a pair it did not verify (too smooth for keypoints, close
    vectors): the share of the aligned overlap's structured patches that agree, the share that agrees only once
    shifted, the largest solid block that disagrees, how far the hues turn, and the share of each picture inside
    the overlap (at least ``min_coverage`` of each picture, a threshold of its own)."""

    score: float
    moved: float
    block: float
    hue_shift: float
    coverage: tuple[float, float]
    min_coverage: float = MIN_OVERLAP


@dataclass(frozen=True)
class Explanation:
    """The decision on two pictures ``a`` and ``b`` and what it rests on.

    Attributes:
        path_a: the first file.
        path_b: the second file.
        duplicate: whether ``b`` is the same picture as ``a``, edited.
        relation: what ``b`` is to ``a`` (None when not duplicates).
        cosine: the similarity of their global vectors.
        method: what decided: ``identical`` (the same bytes), ``local`` (keypoints and geometry), ``smooth``
            (pictures too smooth for keypoints: close vectors, then the overlap aligned without keypoints, whole
            frame to whole frame or placed by correlation) or ``unreadable``.
        score: the share of the aligned overlap that agrees.
        inliers: keypoint matches one transform explains.
        keypoints: keypoints found in each picture.
        moved: the share of the overlap that agrees only once shifted (another moment of a scene).
        spread: the share of the overlap's cells with keypoints in both pictures that hold an inlier.
        block: the largest solid block of the overlap that disagrees (something pasted over a shared background).
        coverage: the share of ``a`` and of ``b`` inside the overlap (one of them must be shown whole).
        region_a: the box of ``a`` showing what ``b`` shows.
        region_b: the box of ``b`` showing what ``a`` shows.
        hue_shift: degrees the hues of the aligned regions differ by, cell by cell (median; a recoloured design
            turns them).
        rule: the thresholds the decision used.
        colour: for duplicates, how far their colours are apart where they overlap (CIELAB a*b*: a copy edited
            in colour is far; :func:`~lookalike.search.smooth.colour_difference`), which the choice of a group's
            representative weighs; None otherwise.
        failed: the keypoint rule's checks the pair fails (:func:`~lookalike.search.image_dupes.failed_checks`),
            as the decision measured them; empty for duplicates.
        smooth: for a pair that is not a duplicate, what the comparison without keypoints measured, when it was
            made (pictures too smooth for keypoints whose vectors are close); None otherwise.
    """

    path_a: str
    path_b: str
    duplicate: bool
    relation: Relation | None
    cosine: float
    method: str
    score: float
    inliers: int
    keypoints: tuple[int, int]
    moved: float
    spread: float
    block: float
    coverage: tuple[float, float]
    region_a: Box | None
    region_b: Box | None
    hue_shift: float
    rule: VerifyRule
    colour: float | None = None
    failed: tuple[str, ...] = ()
    smooth: SmoothEvidence | None = None

    @property
    def fitted(self) -> bool:
        """Whether one transform maps a part of each picture onto the other (unrelated pictures often have
        none: the overlap's figures are then zeros)."""
        return fitted(self.region_a, self.region_b)


def fitted(region_a: Box | None, region_b: Box | None) -> bool:
    """Whether both boxes of a fit hold some area (a transform that maps no part of one picture onto the other
    gives an empty box)."""
    return all(box is not None and box[2] > box[0] and box[3] > box[1] for box in (region_a, region_b))


def explain_images(
    path_a: Path,
    fa: Features,
    path_b: Path,
    fb: Features,
    cosine: float,
    rule: VerifyRule,
    identical: bool = False,
    keys: tuple[str, str] | None = None,
) -> tuple[Explanation, Match | None]:
    """Verify two pictures' features as ``dupes`` does and say why; also returns the match for drawing.

    Args:
        identical: the two files hold the same bytes (``dupes`` groups them without looking further).
        keys: the two files' content keys (SHA-256), which set the way round the pair is matched, as in ``dupes``
            (:func:`~lookalike.search.image_dupes.verify_in_order`); default: ``a`` onto ``b``.
    """
    keys = keys or ("a", "b")
    verdict = Verdict(True, "identical", 1.0) if identical else verify_in_order(fa, fb, cosine, rule, keys)
    m = verdict.match
    hue, failed = 0.0, ["inliers"]
    if m is not None:  # measured as the decision measured them: the pair's first picture matched onto the second
        first, second, seen = _as_decided(fa, fb, m, keys)
        hue, failed = hue_shift(first, second, seen), list(failed_checks(first, second, seen, rule))
        if not fitted(m.region_a, m.region_b):  # no overlap: its checks' zeros say nothing more
            failed = [name for name in failed if name == "inliers"] or failed
    smooth = None
    if not verdict.duplicate and verdict.smooth is not None:  # as the decision measured it, as for the match
        first, second, seen = _as_decided(fa, fb, verdict.smooth, keys)
        smooth = SmoothEvidence(
            round(seen.agreement, 4),
            round(seen.moved, 4),
            round(seen.block, 4),
            round(hue_shift(first, second, seen), 1),
            (round(verdict.smooth.coverage_a, 3), round(verdict.smooth.coverage_b, 3)),  # a's, then b's
        )
    if identical:
        rel: Relation | None = Relation.IDENTICAL
    else:
        rel = relation(fa, fb, m) if verdict.duplicate and m is not None else None
    return (
        Explanation(
            str(path_a),
            str(path_b),
            verdict.duplicate,
            rel,
            round(cosine, 4),
            verdict.method,
            round(verdict.score, 4),
            0 if m is None else m.inliers,
            (len(fa), len(fb)),
            0.0 if m is None else round(m.moved, 4),
            0.0 if m is None else round(m.spread, 4),
            0.0 if m is None else round(m.block, 4),
            (0.0, 0.0) if m is None else (round(m.coverage_a, 3), round(m.coverage_b, 3)),
            None if m is None else m.region_a,
            None if m is None else m.region_b,
            round(hue, 1),
            rule,
            None if verdict.colour is None else round(verdict.colour, 2),
            () if verdict.duplicate else tuple(failed),
            smooth,
        ),
        m,
    )


def _as_decided(fa: Features, fb: Features, m: Match, keys: tuple[str, str]) -> tuple[Features, Features, Match]:
    """The pair's pictures and ``m`` (``a`` onto ``b``) the way round the decision matched them (the first onto
    the second, :func:`~lookalike.search.image_dupes.reversed_order`)."""
    return (fb, fa, m.swapped()) if reversed_order(keys) else (fa, fb, m)


def _panel(image: Image.Image) -> tuple[Image.Image, float]:
    scale = PANEL / image.height
    return image.convert("RGB").resize((max(1, round(image.width * scale)), PANEL)), scale


def draw(
    image_a: Image.Image,
    image_b: Image.Image,
    m: Match | None,
    out: Path,
    *,
    duplicate: bool,
    features: bool = True,
) -> Path:
    """Write ``a`` and ``b`` side by side with the matched regions boxed and lines between matched keypoints, and a
    caption saying what they are: a duplicate's matched regions (:data:`MATCHED`), or for a pair that is not one,
    the closest fit found (:data:`REJECTED`, one that failed the checks), or that none was found (no box: a fit whose
    box in either picture is empty maps no part of one onto the other)."""
    left, sa = _panel(image_a)
    right, sb = _panel(image_b)
    canvas = Image.new("RGB", (left.width + 16 + right.width, PANEL + CAPTION), (32, 32, 32))
    canvas.paste(left, (0, 0))
    x_off = left.width + 16
    canvas.paste(right, (x_off, 0))
    pen = ImageDraw.Draw(canvas)
    colour, line = (MATCHED, (0, 220, 120)) if duplicate else (REJECTED, (150, 150, 150))
    shown = m is not None and fitted(m.region_a, m.region_b)
    lines = shown and features and m is not None and m.pairs is not None and len(m.pairs) > 0
    if m is not None and shown:
        for box, s, dx in ((m.region_a, sa, 0), (m.region_b, sb, x_off)):
            x0, y0, x1, y1 = (v * s for v in box)
            pen.rectangle((x0 + dx, y0, x1 + dx, y1), outline=colour, width=3)
        if lines and m.pairs is not None:
            pick = np.linspace(0, len(m.pairs) - 1, min(MAX_LINES, len(m.pairs))).astype(int)
            for xa, ya, xb, yb in m.pairs[pick]:
                pen.line((xa * sa, ya * sa, xb * sb + x_off, yb * sb), fill=line, width=1)
    if duplicate:
        caption = "duplicates: the same bytes" if m is None else "duplicates: the matched regions"
        caption += ", and lines between matched keypoints" if lines else ""
    elif shown:
        caption = "not duplicates: the closest fit found (it failed the checks)"
    else:
        caption = "not duplicates: no transform maps a part of one picture onto the other"
    pen.text((8, PANEL + 6), caption, fill=colour if shown or duplicate else (230, 230, 230))
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out
