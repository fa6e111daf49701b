"""Local features of a picture for duplicate verification: RootSIFT keypoints on the picture scaled to a bounded
size (a bounded number, shared out over its quarters: :func:`_balanced`), the scaled grey picture for the checks
in an aligned overlap, and the box inside its plain borders.

Flipped copies need no second extraction: a SIFT descriptor of a mirrored image is the original descriptor with
its 4x4 cells mirrored across the keypoint's orientation axis and its 8 orientation bins reversed
(:func:`mirrored`), so one extraction per picture serves both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from lookalike.indexer.describe import content_box
from lookalike.search.groups import Box

MAX_SIDE = 640  # pictures are scaled to this long side before extraction (cost and scale both bounded)
N_FEATURES = 1000
CONTRAST = 0.02  # half OpenCV's default: smooth artwork (gradients, pastel hills) keeps enough keypoints
MAX_ZOOM = 3.0  # a part of a picture is enlarged at most this much to find more keypoints in it (:func:`zoomed`)
BALANCE_GRID = 2  # the keypoint budget is shared out over this many cells a side (:func:`_balanced`)
CHROMA_SIDE = 64  # the colour (CIELAB a*, b*) of the picture is kept at this long side, for the hue check


@dataclass(frozen=True)
class Features:
    """Local features of one picture.

    Attributes:
        points: (n, 2) keypoint positions in pixels of the scaled picture.
        descriptors: (n, 128) RootSIFT descriptors (float32).
        gray: the scaled picture in grey levels (uint8), for the check in the aligned overlap.
        scale: original pixels per scaled pixel.
        size: the original picture's (width, height).
        content: the box of the scaled picture inside plain borders (letterbox, mat, canvas); the whole picture
            when it has none (or when not given).
        chroma: the picture's CIELAB a*, b* (float32, 0 = grey) at :data:`CHROMA_SIDE`: does a copy keep the
            hues of its original (a recoloured variant of a design does not)? None when not extracted.
        quality: the file's JPEG quality setting (:func:`~lookalike.indexer.jpeg_quality.jpeg_quality`): which
            copy was compressed hardest? None for other formats, or when not read from a file.
    """

    points: np.ndarray
    descriptors: np.ndarray
    gray: np.ndarray
    scale: float
    size: tuple[int, int]
    content: Box | None = None
    chroma: np.ndarray | None = None
    quality: int | None = None

    @property
    def inner(self) -> Box:
        """The box inside plain borders, in scaled pixels."""
        return self.content or (0, 0, self.gray.shape[1], self.gray.shape[0])

    @property
    def framed(self) -> bool:
        """Whether plain borders were found round the picture (its :attr:`inner` box is not the whole of it)."""
        return tuple(self.inner) != (0, 0, self.gray.shape[1], self.gray.shape[0])

    def __len__(self) -> int:
        return len(self.points)


def _sift(limit: int = N_FEATURES) -> Any:
    import cv2  # heavy import, only when verifying

    return cv2.SIFT_create(nfeatures=limit, contrastThreshold=CONTRAST)  # type: ignore[attr-defined]


def _balanced(keypoints: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Which of ``keypoints`` to keep (their indices, in detection order), at most :data:`N_FEATURES`: the
    strongest of each cell of a :data:`BALANCE_GRID` x :data:`BALANCE_GRID` grid over the picture (an equal share
    of the budget each), then the strongest of the rest up to the budget.

    The strongest keypoints overall, as SIFT keeps them, all lie in the busiest parts: a photo in one quarter of a
    collage, or pasted small over a busy photo, kept few or none of its own, too few to match its original
    (``benchmarks/RESULTS.md``, "Keypoints shared out over the picture's quarters")."""
    h, w = shape[:2]
    points = np.array([k.pt for k in keypoints], np.float64)
    response = np.array([k.response for k in keypoints])
    cx = np.minimum((points[:, 0] * BALANCE_GRID / w).astype(int), BALANCE_GRID - 1)
    cy = np.minimum((points[:, 1] * BALANCE_GRID / h).astype(int), BALANCE_GRID - 1)
    cell = cy * BALANCE_GRID + cx
    quota = N_FEATURES // (BALANCE_GRID * BALANCE_GRID)
    order = np.lexsort((-response, cell))  # by cell, strongest first within each
    rank = np.arange(len(order)) - np.searchsorted(cell[order], cell[order])  # rank within its cell
    chosen = order[rank < quota]
    rest = order[rank >= quota]
    rest = rest[np.argsort(-response[rest], kind="stable")][: max(0, N_FEATURES - len(chosen))]
    return np.sort(np.r_[chosen, rest])


def _detect(gray: np.ndarray) -> tuple[Any, np.ndarray | None]:
    """SIFT keypoints of ``gray`` (at most :data:`N_FEATURES`, shared out by :func:`_balanced`) and their
    descriptors.

    Every keypoint is described in the one pass that finds them, and the kept rows are taken: describing only the
    kept ones afterwards (``compute``) builds the image pyramid again, and without the doubled first octave when
    no kept keypoint comes from it, which changed the descriptors of smooth pictures. A picture with no more
    keypoints than the budget gets exactly what ``nfeatures=N_FEATURES`` gave. Describing them all costs more
    than the strongest :data:`N_FEATURES` did on busy pictures (``benchmarks/RESULTS.md``, same section)."""
    keypoints, desc = _sift(limit=0).detectAndCompute(gray, None)
    if desc is None or len(keypoints) <= N_FEATURES:
        return keypoints, desc
    keep = _balanced(keypoints, gray.shape)
    return [keypoints[i] for i in keep], desc[keep]


def _root(desc: np.ndarray) -> np.ndarray:
    """RootSIFT: L1-normalise, then square-root (Hellinger distance becomes L2)."""
    d = desc / (np.abs(desc).sum(axis=1, keepdims=True) + 1e-7)
    return np.sqrt(d).astype(np.float32)


def extract(image: Image.Image, size: tuple[int, int] | None = None) -> Features:
    """Local features of a picture (any mode; alpha is dropped, EXIF orientation must already be applied).

    Args:
        image: the decoded picture, possibly decoded at a reduced scale (JPEG draft mode).
        size: the original file's (width, height), in which regions are reported; default: ``image.size``.
    """
    w, h = image.size
    shrink = max(1.0, max(w, h) / MAX_SIDE)
    small = image.convert("L")
    if shrink > 1.0:
        small = small.resize((max(1, round(w / shrink)), max(1, round(h / shrink))), Image.Resampling.BILINEAR)
    gray = np.asarray(small, dtype=np.uint8)
    size = size or (w, h)
    scale = size[0] / gray.shape[1]
    content = content_box(small, MAX_SIDE) or (0, 0, gray.shape[1], gray.shape[0])
    chroma = _chroma(image)
    keypoints, desc = _detect(gray)
    if desc is None or not keypoints:
        none = np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32)
        return Features(*none, gray, scale, size, content, chroma)
    points = np.array([k.pt for k in keypoints], np.float32)
    return Features(points, _root(desc), gray, scale, size, content, chroma)


def zoomed(f: Features, box: Box) -> Features | None:
    """``f`` with the keypoints found in one part of the picture only: ``box`` (scaled pixels) enlarged to
    :data:`MAX_SIDE` (at most :data:`MAX_ZOOM` times) and searched for up to :data:`N_FEATURES` keypoints there.

    A photo that fills a quarter of a collage gets about a quarter of the collage's keypoints, too few to match
    its original's; looked for in that quarter alone it gets as many as a picture of its own. None when the part
    is too small to look in or would not be enlarged."""
    import cv2

    x0, y0, x1, y1 = (int(v) for v in box)
    crop = f.gray[max(0, y0) : y1, max(0, x0) : x1]
    if min(crop.shape) < 16:
        return None
    k = min(MAX_ZOOM, MAX_SIDE / max(crop.shape))
    if k < 1.25:
        return None
    big = cv2.resize(crop, (round(crop.shape[1] * k), round(crop.shape[0] * k)), interpolation=cv2.INTER_CUBIC)
    keypoints, desc = _sift().detectAndCompute(big, None)
    if desc is None or not keypoints:
        return None
    # pixel centres: enlarged (i + 0.5) * k - 0.5 is scaled i
    points = (
        (np.array([kp.pt for kp in keypoints], np.float32) + 0.5) / k
        - 0.5
        + np.array([max(0, x0), max(0, y0)], np.float32)
    )
    return replace(f, points=points.astype(np.float32), descriptors=_root(desc))


def _chroma(image: Image.Image) -> np.ndarray:
    """CIELAB a*, b* of the picture at :data:`CHROMA_SIDE` (grey pictures: zeros)."""
    import cv2

    w, h = image.size
    k = CHROMA_SIDE / max(w, h)
    rgb = image.convert("RGB").resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.BILINEAR)
    lab = cv2.cvtColor(np.asarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2LAB)
    return lab[..., 1:].astype(np.float32) - 128.0


_MIRROR_BINS = (8 - np.arange(8)) % 8


def mirrored(f: Features) -> Features:
    """The features of the horizontal mirror image, derived without a second extraction."""
    # RootSIFT is elementwise after an L1 norm that a permutation keeps: permuting it permutes the raw descriptor
    desc = f.descriptors.reshape(-1, 4, 4, 8)[:, ::-1, :, :][..., _MIRROR_BINS].reshape(-1, 128)
    points = f.points.copy()
    points[:, 0] = f.gray.shape[1] - 1 - points[:, 0]
    x0, y0, x1, y1 = f.inner
    width = f.gray.shape[1]
    return Features(
        points,
        np.ascontiguousarray(desc),
        np.ascontiguousarray(f.gray[:, ::-1]),
        f.scale,
        f.size,
        (width - x1, y0, width - x0, y1),
        None if f.chroma is None else np.ascontiguousarray(f.chroma[:, ::-1]),
        f.quality,
    )
