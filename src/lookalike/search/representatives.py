"""Which file of a duplicate group is its representative: the best copy, and the hub its edits verify against.

Groups are stars (:func:`lookalike.search.groups.star_groups`): the best file not yet placed becomes a
representative and takes every file verified against it. A representative that most of its duplicates do not
verify against splits its family in two: the original's edits that fail against it (a watermark's letters over
what a crop kept, a blur that took its keypoints) go to another star. So the rank first puts aside files that are
not hubs, then prefers the best copy among hubs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Protocol

import numpy as np

from lookalike.search.features import Features
from lookalike.search.verify import Match
from lookalike.storage.records import MediaRecord

LOSSLESS = {".png", ".tif", ".tiff", ".bmp", ".ppm", ".pgm"}
PIXEL_STEP = 1.25  # representatives are ranked by their picture's pixels in steps of this ratio
TILTED = 2.0  # degrees off a quarter turn beyond which a picture is turned against its duplicates
GREY_CHROMA = 2.0  # mean CIELAB a*b* magnitude under which a picture has no colour
RECOLOURED = 3.0  # CIELAB a*b* units a file may be further in colour from its duplicates than the nearest of them
COMPRESSED = 50  # a JPEG quantized as hard as libjpeg's quality under this is compressed hard (blocks show)
WHOLE_SHARE = 0.95  # a picture its duplicates show this share of is shown whole (no added borders or corners)
HUB = 0.5  # a file verified against fewer than this share of its best-linked duplicate's duplicates is no hub


class _Verdict(Protocol):
    """What the rank reads of a verdict (:class:`lookalike.search.image_dupes.Verdict`)."""

    @property
    def duplicate(self) -> bool: ...

    @property
    def match(self) -> Match | None: ...

    @property
    def colour(self) -> float | None: ...

    @property
    def method(self) -> str: ...


Verdicts = Mapping[tuple[int, int], _Verdict]


def tilt(verdicts: Verdicts) -> dict[int, float]:
    """Per picture, the median angle (degrees, off the nearest quarter turn) its verified duplicates are turned
    by against it: high for a copy rotated a few degrees, whose duplicates are all turned against it."""
    angles: dict[int, list[float]] = {}
    for (a, b), v in verdicts.items():
        if v.duplicate:
            off = 0.0 if v.match is None else abs((v.match.rotation + 45.0) % 90.0 - 45.0)
            angles.setdefault(a, []).append(off)
            angles.setdefault(b, []).append(off)
    return {k: float(np.median(s)) for k, s in angles.items()}


def turned(verdicts: Verdicts) -> dict[int, float]:
    """Per picture, the share of its verified duplicates that are turned by a quarter or a half turn, or mirrored,
    against it: most of them, for a copy someone turned or flipped (the others agree with one another, not with
    it)."""
    turns: dict[int, list[bool]] = {}
    for (a, b), v in verdicts.items():
        if v.duplicate:
            m = v.match
            quarter = m is not None and (m.flipped or abs((m.rotation + 180.0) % 360.0 - 180.0) > 45.0)
            turns.setdefault(a, []).append(quarter)
            turns.setdefault(b, []).append(quarter)
    return {k: float(np.mean(t)) for k, t in turns.items()}


def departure(verdicts: Verdicts) -> dict[int, float]:
    """Per picture, the median distance in colour (CIELAB a*b*, :func:`~lookalike.search.smooth.colour_difference`)
    to its verified duplicates where they overlap (0 to a file with the same bytes): a copy edited in colour
    (saturation, grey levels, a dark re-shoot) is far from all of them, the original only as far as each copy's
    own edit. Pictures none of whose pairs has a distance (no colour map) have none."""
    distances: dict[int, list[float]] = {}
    for (a, b), v in verdicts.items():
        if v.duplicate and (v.colour is not None or v.method == "identical"):
            d = 0.0 if v.colour is None else v.colour
            distances.setdefault(a, []).append(d)
            distances.setdefault(b, []).append(d)
    return {k: float(np.median(d)) for k, d in distances.items()}


def recoloured(departures: dict[int, float], links: dict[int, dict[int, bool]]) -> set[int]:
    """Files further in colour from their duplicates (:func:`departure`) than the nearest of their own duplicates
    is, by more than :data:`RECOLOURED`: a saturated, grey-level or darkened copy. The copies that keep the colours
    (resized, cropped, blurred, re-encoded) and the original lie within a unit or two of each other, and which of
    them is nearest is chance: they are not told apart by this (a file without a distance never is)."""
    out = set()
    for m, near in links.items():
        if m in departures:
            nearest = min(departures[n] for n in (m, *near) if n in departures)
            if departures[m] - nearest > RECOLOURED:
                out.add(m)
    return out


def grey(f: Features | None) -> bool:
    """Whether a picture has no colour (a grey-level copy, or a black-and-white photo)."""
    return f is not None and f.chroma is not None and float(np.abs(f.chroma).mean()) < GREY_CHROMA


def compressed(f: Features | None) -> bool:
    """Whether a picture is a JPEG saved at a quality under :data:`COMPRESSED` (a copy squeezed for sending, or a
    re-shoot), beside which any file of its duplicates saved with less loss is the better copy."""
    return f is not None and f.quality is not None and f.quality < COMPRESSED


def own_coverage(verdicts: Verdicts) -> dict[int, float]:
    """Per picture, the median share of it that its verified duplicates show: low for collages and screenshots."""
    shares: dict[int, list[float]] = {}
    for (a, b), v in verdicts.items():
        if v.duplicate:
            m = v.match
            shares.setdefault(a, []).append(1.0 if m is None else m.coverage_a)
            shares.setdefault(b, []).append(1.0 if m is None else m.coverage_b)
    return {k: float(np.median(s)) for k, s in shares.items()}


def hubs(links: dict[int, dict[int, bool]], share: float = HUB) -> set[int]:
    """Files verified against at least ``share`` as many files as the best-linked of their own duplicates: the
    original its edits were made from is; a copy that only a few of them verify against (an upscaled letterbox,
    a thumbnail, a copy turned a few degrees) is not."""
    return {m for m, near in links.items() if len(near) >= share * max(len(links[n]) for n in near)}


def _lossless(path: str) -> bool:
    return PurePath(path).suffix.lower() in LOSSLESS


def representative_rank(
    verdicts: Verdicts,
    records: dict[int, MediaRecord],
    features: Callable[[int], Features | None],
    links: dict[int, dict[int, bool]],
) -> Callable[[int], tuple]:
    """The order in which files become representatives (lower first), from the verified pairs ``verdicts``, the
    catalog ``records``, each picture's local ``features`` and ``links`` (who verified against whom).

    Never first a picture mostly made of other things (collage, screenshot); then hubs before files few of their
    family verify against (:func:`hubs`); then not one turned a few degrees against most of its duplicates (its
    corners are filler; where the duplicates are turned every which way against each other, no file is told apart
    by this), nor one most of its duplicates are turned a quarter or half turn against, or mirrored against
    (someone turned or flipped it); then the most pixels of the shared picture (pixels times the share its
    duplicates show, in 25% steps: resampling, a few degrees of rotation or a re-encode add none); then not one
    edited in colour (:func:`recoloured`: further in colour from its duplicates than the nearest of them by more
    than :data:`RECOLOURED`; a copy edited in colour is far from all of them, the original as far as each copy's
    own edit); then in colour before grey levels; then not a JPEG compressed hard (:func:`compressed`: a copy
    squeezed for sending, of the original's size, was verified against more files than its original by chance on
    the benchmark); then the one most files verified against (among copies of one size the original is the hub
    its edits were made from: they verify against it best); then not blurred (its keypoints, in steps of 2x: a
    blurred copy keeps a fraction of its original's; after the links, because letters painted over a copy add
    keypoints too); then one its duplicates show whole before one with added borders or corners; then lossless,
    larger file, path. (An original with crops among its duplicates shows only part of itself in those links: the
    share weighs its pixels, it does not rank it after its own crops.)
    """
    coverage = own_coverage(verdicts)
    tilts = tilt(verdicts)
    turns = turned(verdicts)
    central = hubs(links)
    edited = recoloured(departure(verdicts), links)

    def rank(media_id: int) -> tuple:
        rec = records[media_id]
        share = coverage[media_id]
        pixels = max(1.0, (rec.width or 0) * (rec.height or 0) * share)
        feats = features(media_id)
        return (
            share < 0.5,
            media_id not in central,
            tilts[media_id] > TILTED or turns[media_id] > 0.5,
            -round(math.log(pixels, PIXEL_STEP)),
            media_id in edited,
            grey(feats),
            compressed(feats),
            -len(links[media_id]),
            -int(math.log2(1 + len(feats))) if feats is not None else 0,
            share < WHOLE_SHARE,
            not _lossless(rec.path),
            -rec.size,
            rec.path,
        )

    return rank
