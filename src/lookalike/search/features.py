"""Local features of a picture for duplicate verification: RootSIFT keypoints on the picture scaled to a bounded
size, the scaled grey picture for the checks in an aligned overlap, and the box inside its plain borders.

Flipped copies need no second extraction: a SIFT descriptor of a mirrored image is the original descriptor with
its 4x4 cells mirrored across the keypoint's orientation axis and its 8 orientation bins reversed
(:func:`mirrored`), so one extraction per picture serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from lookalike.indexer.describe import content_box
from lookalike.search.groups import Box

MAX_SIDE = 640  # pictures are scaled to this long side before extraction (cost and scale both bounded)
N_FEATURES = 1000
CONTRAST = 0.02  # half OpenCV's default: smooth artwork (gradients, pastel hills) keeps enough keypoints


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
    """

    points: np.ndarray
    descriptors: np.ndarray
    gray: np.ndarray
    scale: float
    size: tuple[int, int]
    content: Box | None = None

    @property
    def inner(self) -> Box:
        """The box inside plain borders, in scaled pixels."""
        return self.content or (0, 0, self.gray.shape[1], self.gray.shape[0])

    def __len__(self) -> int:
        return len(self.points)


def _sift() -> Any:
    import cv2  # heavy import, only when verifying

    return cv2.SIFT_create(nfeatures=N_FEATURES, contrastThreshold=CONTRAST)  # type: ignore[attr-defined]


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
    keypoints, desc = _sift().detectAndCompute(gray, None)
    if desc is None or not keypoints:
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32), gray, scale, size, content)
    points = np.array([k.pt for k in keypoints], np.float32)
    return Features(points, _root(desc), gray, scale, size, content)


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
    )
