"""JPEG photos decoded and preprocessed in batches on the model's GPU (nvJPEG through torchvision), beside the CPU
decoders.

The decode workers only read a JPEG's bytes and header (:func:`lookalike.indexer.decode.peek_jpeg`) and send them as
:class:`~lookalike.indexer.file_decoding.EncodedImage`; here a background thread decodes a batch of them with one
``torchvision.io.decode_jpeg(list, device="cuda")`` call on its own CUDA stream, turns each upright, trims uniform
borders and resizes/crops as :class:`~lookalike.indexer.preprocess.Preprocess` does, while the model runs the
previous batch on the default stream. A JPEG nvJPEG refuses is decoded on the CPU instead, with the usual error
codes. Everything here runs on any torch device; the CPU is what the tests use.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.indexer.decode import ImageMeta
from lookalike.indexer.describe import MediaDescriptor, box_in_probe, probe_size
from lookalike.indexer.file_decoding import DecodeLimits, EncodedImage, Message, Task, decode_job
from lookalike.indexer.preprocess import Preprocess
from lookalike.types import MediaKind

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DeviceImages:
    """A batch of JPEG photos decoded and preprocessed on the device: uint8 (n, 3, size, size) pixels there."""

    jobs: list[int]
    metas: list[ImageMeta]
    pixels: torch.Tensor
    ready: Any = None  # a CUDA event the consumer's stream waits on before reading ``pixels`` (None on the CPU)


def upright(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """A (C, H, W) picture turned as its EXIF orientation says, as ``PIL.ImageOps.exif_transpose`` turns it."""
    import torch

    if orientation == 2:
        return image.flip(-1)
    if orientation == 3:
        return image.flip(-1, -2)
    if orientation == 4:
        return image.flip(-2)
    if orientation == 5:
        return image.transpose(-1, -2)
    if orientation == 6:
        return torch.rot90(image, -1, (-2, -1))
    if orientation == 7:
        return image.transpose(-1, -2).flip(-1, -2)
    if orientation == 8:
        return torch.rot90(image, 1, (-2, -1))
    return image


def draft_factor(width: int, height: int, short_side: int) -> int:
    """The factor (1, 2, 4 or 8) Pillow's JPEG draft mode reduces a ``width`` x ``height`` JPEG by when the CPU
    decoder asks for ``short_side`` (as ``decode.load_frames`` asks): the DCT-domain scaling libjpeg does."""
    scale = max(1, min(width, height) // short_side)
    wanted = (max(1, width // scale), max(1, height // scale))
    fit = min(width // wanted[0], height // wanted[1])
    return next(f for f in (8, 4, 2, 1) if fit >= f)


def drafted(image: torch.Tensor, factor: int) -> torch.Tensor:
    """A decoded (3, H, W) JPEG reduced as the draft mode of the CPU decoder reduces it (block means, the sides
    rounded up), so the pictures that reach the model are the same whichever decoder ran."""
    import torch

    if factor == 1:
        return image
    small = torch.nn.functional.avg_pool2d(image[None].float(), factor, factor, ceil_mode=True)
    return small[0].round().clamp(0, 255).to(torch.uint8)


def content_box(image: torch.Tensor) -> tuple[int, int, int, int] | None:
    """The box of a uint8 (3, H, W) picture inside uniform borders, as :func:`describe.content_box` finds it (on a
    copy shrunk on the device; only that small copy comes back to the CPU)."""
    import torch

    h, w = image.shape[-2:]
    if w < 8 or h < 8:
        return None
    pw, ph = probe_size(w, h)
    small = torch.nn.functional.interpolate(image[None].float(), size=(ph, pw), mode="bilinear", antialias=True)
    arr = small[0].round().clamp(0, 255).to(torch.int16).permute(1, 2, 0).cpu().numpy()
    return box_in_probe(arr, w, h)


def _bicubic(x: np.ndarray) -> np.ndarray:
    a = -0.5  # Pillow's bicubic (torch's plain bicubic uses -0.75)
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


def _bilinear(x: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, 1.0 - np.abs(x))


_FILTERS = {"bicubic": (_bicubic, 2.0), "bilinear": (_bilinear, 1.0)}


def resample_matrix(size: int, start: float, stop: float, out: int, interpolation: str) -> np.ndarray:
    """The (out, size) weights Pillow's ``Image.resize(..., box=)`` gives each source pixel of the span
    ``[start, stop)`` along one axis (its ``precompute_coeffs``: the filter stretched when shrinking, each row's
    weights normalised), so that a matrix product on the device resamples as Pillow does on the CPU."""
    kernel, support = _FILTERS.get(interpolation, _FILTERS["bicubic"])
    scale = (stop - start) / out
    stretch = max(scale, 1.0)
    support *= stretch
    centre = start + (np.arange(out) + 0.5) * scale
    lo = np.maximum((centre - support + 0.5).astype(np.int64), 0)  # C's (int): towards zero, as Pillow
    hi = np.minimum((centre + support + 0.5).astype(np.int64), size)
    taps = lo[:, None] + np.arange(int(np.ceil(support)) * 2 + 1)[None, :]
    valid = taps < hi[:, None]
    w = np.where(valid, kernel((taps - centre[:, None] + 0.5) / stretch), 0.0)
    total = w.sum(axis=1, keepdims=True)
    w = np.divide(w, total, out=w, where=total != 0)
    weights = np.zeros((out, size), np.float64)
    rows = np.repeat(np.arange(out)[:, None], taps.shape[1], axis=1)
    weights[rows[valid], taps[valid]] = w[valid]
    return weights


def model_input(image: torch.Tensor, pre: Preprocess) -> torch.Tensor:
    """A uint8 (3, H, W) picture resized so its short side is ``pre.resize`` and centre-cropped to ``pre.size``, as
    :meth:`Preprocess.__call__` makes it: the same box in source pixels, the same filter, rows then columns rounded
    to 8 bits in between, as two matrix products."""
    import torch

    h, w = image.shape[-2:]
    side = pre.size * min(w, h) / pre.resize  # the crop's side in source pixels
    left, top = (w - min(side, w)) / 2, (h - min(side, h)) / 2
    cols = resample_matrix(w, left, left + min(side, w), pre.size, pre.interpolation)
    rows = resample_matrix(h, top, top + min(side, h), pre.size, pre.interpolation)
    wx = torch.from_numpy(cols.T.astype(np.float32)).to(image.device)
    wy = torch.from_numpy(rows.astype(np.float32)).to(image.device)
    across = (image.float() @ wx).round().clamp(0, 255)  # Pillow resamples each row first, to 8 bits
    return (wy @ across).round().clamp(0, 255).to(torch.uint8)


def _decode(data: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():  # torchvision 0.29 marks its image decoders deprecated (for TorchCodec)
        warnings.simplefilter("ignore")
        out = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    return out if isinstance(out, list) else [out]


class DeviceJpegDecoder:
    """Turns a stream of decode messages into one where JPEGs arrive as :class:`DeviceImages` batches.

    Args:
        pre: the model's preprocessing.
        descriptor: the collection's picture rules (uniform borders trimmed or not).
        limits: as the CPU decoders use them (a JPEG nvJPEG refuses is decoded on the CPU with these).
        device: where to decode (the model's device).
        batch: JPEGs per ``decode_jpeg`` call.
    """

    def __init__(
        self, pre: Preprocess, descriptor: MediaDescriptor, limits: DecodeLimits, device: torch.device, batch: int
    ) -> None:
        self.pre = pre
        self.descriptor = descriptor
        self.limits = limits
        self.device = device
        self.batch = max(1, batch)

    def __call__(self, messages: Iterable[Message]) -> Iterator[Message | DeviceImages]:
        """The messages in order, JPEGs gathered into batches (run it in a background thread: ThreadedStream)."""
        import torch

        stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        pending: list[EncodedImage] = []
        for message in messages:
            if not isinstance(message, EncodedImage):
                yield message
                continue
            pending.append(message)
            if len(pending) >= self.batch:
                yield from self._batch(pending, stream)
                pending = []
        if pending:
            yield from self._batch(pending, stream)

    def _batch(self, items: list[EncodedImage], stream: Any) -> Iterator[Message | DeviceImages]:
        import torch

        if stream is None:
            yield from self._decoded(items)
            return
        with torch.cuda.stream(stream):
            out = list(self._decoded(items))
            event = torch.cuda.Event()
            event.record(stream)
        for m in out:
            if isinstance(m, DeviceImages):
                m.pixels.record_stream(torch.cuda.current_stream(self.device))
                yield DeviceImages(m.jobs, m.metas, m.pixels, event)
            else:
                yield m

    def _decoded(self, items: list[EncodedImage]) -> Iterator[Message | DeviceImages]:
        import torch

        data = [torch.frombuffer(bytearray(m.data), dtype=torch.uint8) for m in items]
        try:
            pictures: list[torch.Tensor | None] = list(_decode(data, self.device))
        except RuntimeError:  # one bad file fails the whole call: decode them one by one
            pictures = [self._one(d) for d in data]
        done: list[tuple[EncodedImage, torch.Tensor]] = []
        for item, picture in zip(items, pictures, strict=True):
            if picture is None:
                yield from decode_job(Task(item.job, item.path, MediaKind.IMAGE), self.pre, self.limits)
            else:
                done.append((item, self._prepared(picture, item.orientation)))
        if done:
            yield DeviceImages([m.job for m, _ in done], [m.meta for m, _ in done], torch.stack([p for _, p in done]))

    def _one(self, data: torch.Tensor) -> torch.Tensor | None:
        try:
            return _decode([data], self.device)[0]
        except RuntimeError:
            return None

    def _prepared(self, picture: torch.Tensor, orientation: int) -> torch.Tensor:
        h, w = picture.shape[-2:]
        picture = upright(drafted(picture, draft_factor(w, h, self.pre.resize)), orientation)
        if self.descriptor.trim_images and (box := content_box(picture)) is not None:
            left, top, right, bottom = box
            picture = picture[:, top:bottom, left:right]
        return model_input(picture, self.pre)


def jpeg_vectors(images: DeviceImages, embed: Any) -> list[tuple[int, ImageMeta, np.ndarray]]:
    """Each photo of a batch with its vector: ``embed`` takes the device pixels (after the decode stream's event)."""
    import torch

    if images.ready is not None:
        torch.cuda.current_stream(images.pixels.device).wait_event(images.ready)
    vectors = embed(images.pixels)
    return [(job, meta, vectors[i]) for i, (job, meta) in enumerate(zip(images.jobs, images.metas, strict=True))]
