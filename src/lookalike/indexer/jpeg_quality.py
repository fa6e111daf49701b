"""A JPEG file's quality setting, estimated from its luminance quantization table: which file of a duplicate group
was compressed hardest (:mod:`lookalike.search.representatives`).

Pillow reads the tables but has no estimate, and none of the project's dependencies gives one, so the inverse of
libjpeg's quality scaling (``jpeg_quality_scaling``; the IJG tables of ITU T.81 Annex K, which Pillow, libjpeg-turbo
and most software write) is written here: the quality 1-100 whose scaled table is nearest the file's. Tables of
other makers (some cameras, mozjpeg's defaults) get the libjpeg quality of about the same strength, which is what
the estimate measures: how hard the file was quantized, not the number typed into the encoder.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# ITU T.81 Annex K, table K.1 (luminance), row by row; compared sorted, as scaling keeps the order of the entries
# (Pillow gives tables in natural order, older versions gave them in zigzag order)
_LUMA = np.sort(np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29,
     51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121,
     120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    np.int64,
))  # fmt: skip


def _scaled(quality: np.ndarray) -> np.ndarray:
    """libjpeg's luminance tables at each of ``quality`` (rows), with baseline clamping to 1-255."""
    scale = np.where(quality < 50, 5000 // quality, 200 - 2 * quality)
    return np.clip((_LUMA[None, :] * scale[:, None] + 50) // 100, 1, 255)


_TABLES = _scaled(np.arange(1, 101))


def jpeg_quality(im: Image.Image) -> int | None:
    """The quality (1-100) a JPEG was saved at, estimated from its luminance table; None for other formats or a
    JPEG without one."""
    tables = getattr(im, "quantization", None)
    if im.format not in ("JPEG", "MPO") or not tables or len(tables.get(0, ())) != 64:
        return None
    luma = np.sort(np.asarray(tables[0], np.int64))
    return int(np.abs(_TABLES - luma[None, :]).sum(axis=1).argmin()) + 1
