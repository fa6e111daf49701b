"""How a picture becomes a model input (resize, centre crop, uint8); no torch, so decode workers stay light."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

_INTERPOLATION = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class Preprocess:
    """How a picture becomes a model input; saved with the index so queries are treated the same way.

    Attributes:
        size: side of the square model input.
        resize: the short side is resized to this before the centre crop.
        interpolation: ``bicubic``, ``bilinear``, ``nearest`` or ``lanczos``.
        mean: per-channel mean subtracted from pixels in [0, 1].
        std: per-channel divisor after the mean.
    """

    size: int = 224
    resize: int = 256
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for manifests and the catalog."""
        return asdict(self)

    def __call__(self, image: Image.Image) -> np.ndarray:
        """An RGB picture resized and centre-cropped, as a uint8 (3, size, size) array.

        Pictures travel from decode workers as uint8 (4x less to copy than float); ``embedders.base.normalise_pixels``
        finishes the job on the model's device.
        """
        w, h = image.size
        scale = self.resize / min(w, h)
        # The centre crop of the resized picture, computed in source coordinates so that only the pixels
        # that survive the crop are resampled (same result as resize-then-crop, less work).
        side = self.size / scale  # the crop's side in source pixels
        left, top = (w - min(side, w)) / 2, (h - min(side, h)) / 2
        box = (left, top, left + min(side, w), top + min(side, h))
        crop = image.resize((self.size, self.size), _INTERPOLATION[self.interpolation], box=box, reducing_gap=3.0)
        return np.ascontiguousarray(np.asarray(crop, dtype=np.uint8).transpose(2, 0, 1))
