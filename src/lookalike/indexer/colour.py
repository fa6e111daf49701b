"""Decoded pictures of any mode or sample type as 8-bit RGB: deep and float samples scaled, transparency composited.

Transparency is content: a white logo on a transparent canvas flattened onto white is a blank picture, and every
such design then looks like every other one (issue 12, item 4). New collections composite onto black or white,
whichever contrasts more with the visible pixels (:attr:`AlphaRule.CONTRAST`); collections made before keep
compositing onto white (:attr:`AlphaRule.WHITE`) so that their queries are described as their files were. The
rule is stored with the collection (``indexer.describe.MediaDescriptor``).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
from PIL import Image, ImageChops, ImageStat

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


class AlphaRule(StrEnum):
    """What transparent pixels are composited onto."""

    WHITE = "white"  # collections made before the rule was stored
    CONTRAST = "contrast"  # black under light content, white under dark content


def background(rgba: Image.Image, rule: AlphaRule) -> tuple[int, int, int]:
    """The colour transparent pixels of an RGBA picture are composited onto.

    With :attr:`AlphaRule.CONTRAST` it is black when the visible pixels' mean luma (weighted by their opacity) is
    128 or more, white otherwise: a white shape lands on black, a black or coloured one on white, and a photo with
    a transparent surround usually on white, as it is shown on the web. Measured with the default model on eight
    designs (star, letter, dots, crescent, arrow, ring, text, a logo) drawn in white, in black and in two greys on
    transparency: no two different designs of one colour above cosine 0.74 (white compositing put every pair of
    white designs at 1.00), one design as PNG and as lossy WebP at 0.96 or more; photos with a transparent
    surround stay at 0.98-1.00 of their copy flattened onto white. A constant mid-grey also separates the designs
    but moves those photos to 0.93-0.97 and hides mid-grey artwork.
    """
    if rule == AlphaRule.WHITE:
        return WHITE
    alpha = rgba.getchannel("A")
    weight = ImageStat.Stat(alpha).sum[0]
    if weight == 0:
        return WHITE
    lit = ImageStat.Stat(ImageChops.multiply(rgba.convert("L"), alpha)).sum[0]  # sum of luma * alpha / 255
    return BLACK if lit * 255.0 / weight >= 127.5 else WHITE


def floats_to_8bit(arr: np.ndarray) -> np.ndarray:
    """Float samples as uint8: [0, 1] is scaled by 255, [0, 255] is kept, any other finite range is stretched
    onto 0..255; NaN and infinities take the ends of the finite range."""
    arr = np.asarray(arr, dtype=np.float64)
    finite = np.isfinite(arr)
    if not finite.any():
        return np.zeros(arr.shape, np.uint8)
    lo, hi = float(arr[finite].min()), float(arr[finite].max())
    arr = np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo)
    if lo >= 0.0 and hi <= 1.0:
        arr = arr * 255.0
    elif lo < 0.0 or hi > 255.0:
        arr = (arr - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def rgb_from_samples(arr: np.ndarray) -> Image.Image:
    """An (H, W) or (H, W, channels) array of float samples as an 8-bit RGB picture (channels past the third,
    such as a float alpha, are ignored)."""
    if arr.ndim == 3 and arr.shape[2] >= 3:
        return Image.fromarray(floats_to_8bit(arr[..., :3]), mode="RGB")
    grey = arr if arr.ndim == 2 else arr[..., 0]
    return Image.fromarray(floats_to_8bit(grey), mode="L").convert("RGB")


def _rgb_from_high_depth(im: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float greyscale to 8-bit RGB, keeping the full range visible."""
    if im.mode == "F":
        return rgb_from_samples(np.asarray(im, dtype=np.float64))
    arr = np.asarray(im, dtype=np.float64)
    if im.mode.startswith("I;16") or arr.max(initial=0) > 255:
        arr = arr / 257.0
    gray = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")
    return gray.convert("RGB")


def to_rgb(im: Image.Image, alpha: AlphaRule = AlphaRule.CONTRAST) -> Image.Image:
    """Any Pillow mode as 8-bit RGB; transparency is composited onto the background ``alpha`` chooses."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        return _rgb_from_high_depth(im)
    if im.mode in _ALPHA_MODES or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background(rgba, alpha), 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return im.convert("RGB")
