"""JPEG photos decoded and preprocessed in batches on the model's GPU (nvJPEG through torchvision).

The decode workers only read a JPEG's bytes and header (:func:`lookalike.indexer.decode.peek_jpeg`) and send them as
:class:`~lookalike.indexer.file_decoding.EncodedImage`; here a background thread decodes a batch of them with one
``torchvision.io.decode_jpeg(list, device="cuda")`` call, on a CUDA stream of its own, while the model runs the
previous batch. Each picture is then reduced, turned upright, trimmed and resized as the CPU path does it (Pillow's
draft scaling as block means, its resampling weights as matrices, 8-bit rounding between passes): the model's input
differs from the CPU path's by a fraction of a grey level on average, a few levels at most where libjpeg's scaled
IDCT and block means part (the vectors: cosine >= 0.995, ``tests/indexer/test_device_jpeg.py``), except where the
uniform-border box of a grainy, nearly plain photo parts between the paths (that level, and the borders looked for
on a copy resized by torch, not Pillow: 58-70 of 4,000 photos on an H200): hence off by default
(``Settings.gpu_jpeg``). A JPEG nvJPEG refuses goes to the supervised CPU decoders. Everything here runs on
any torch device; the CPU is what CI tests.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.indexer.decode import ImageMeta
from lookalike.indexer.describe import MediaDescriptor, box_in_probe, probe_size
from lookalike.indexer.file_decoding import EncodedImage, Message, Task
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


def content_box_on_device(image: torch.Tensor) -> tuple[int, int, int, int] | None:
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
RESAMPLED = frozenset(_FILTERS)  # the Preprocess filters this module emulates (others keep JPEGs on the CPU)


def resample_matrix(size: int, start: float, stop: float, out: int, interpolation: str) -> np.ndarray:
    """The (out, size) weights Pillow's ``Image.resize(..., box=)`` gives each source pixel of the span
    ``[start, stop)`` along one axis (its ``precompute_coeffs``: the filter stretched when shrinking, each row's
    weights normalised), so that a matrix product on the device resamples as Pillow does on the CPU."""
    kernel, support = _FILTERS[interpolation]  # KeyError for a filter not emulated: see RESAMPLED
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


AHEAD = 2  # batches decoded on the device ahead of the model
MAX_BATCH_PIXELS = 200_000_000  # a batch's decoded pictures at most (600 MB on the device as RGB)

Fallback = Callable[[list[Task]], Iterable[Message]]


class DeviceJpegDecoder:
    """Turns a stream of decode messages into one where JPEGs arrive as :class:`DeviceImages` batches.

    The stream itself (the supervised decode pool) is read in the caller's thread, so stopping early stops it at
    once; each batch of JPEGs is decoded and prepared by one background thread, at most :data:`AHEAD` batches ahead.

    Args:
        pre: the model's preprocessing.
        descriptor: the collection's picture rules (uniform borders trimmed or not).
        device: where to decode (the model's device).
        batch: JPEGs per ``decode_jpeg`` call (fewer when their pixels pass :data:`MAX_BATCH_PIXELS`).
        fallback: decodes the files the device refuses, as any other file is decoded (the supervised CPU workers),
            so each still ends in a picture or its one error code.
    """

    def __init__(
        self, pre: Preprocess, descriptor: MediaDescriptor, device: torch.device, batch: int, fallback: Fallback
    ) -> None:
        self.pre = pre
        self.descriptor = descriptor
        self.device = device
        self.batch = max(1, batch)
        self.fallback = fallback

    def __call__(self, messages: Iterable[Message]) -> Iterator[Message | DeviceImages]:
        """The messages as they come, but JPEGs, which come back decoded in batches (in their order)."""
        import torch

        stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        inflight: deque[Future[list[Message | DeviceImages]]] = deque()
        pending: list[EncodedImage] = []
        pixels = 0
        with ThreadPoolExecutor(1, thread_name_prefix="lookalike-device-jpeg") as worker:
            try:
                for message in messages:
                    if isinstance(message, EncodedImage):
                        pending.append(message)
                        pixels += message.meta.width * message.meta.height
                        if len(pending) >= self.batch or pixels >= MAX_BATCH_PIXELS:
                            inflight.append(worker.submit(self._batch, pending, stream))
                            pending, pixels = [], 0
                    else:
                        yield message
                    while inflight and (len(inflight) > AHEAD or inflight[0].done()):
                        yield from inflight.popleft().result()
                if pending:
                    inflight.append(worker.submit(self._batch, pending, stream))
                while inflight:
                    yield from inflight.popleft().result()
            finally:
                for future in inflight:
                    future.cancel()

    def _batch(self, items: list[EncodedImage], stream: Any) -> list[Message | DeviceImages]:
        import torch

        if stream is None:
            return list(self._decoded(items, None))
        with torch.cuda.stream(stream):
            event = torch.cuda.Event()
            out = list(self._decoded(items, event))
            event.record(stream)
        return out

    def _decoded(self, items: list[EncodedImage], event: Any) -> Iterator[Message | DeviceImages]:
        import torch

        data = [torch.frombuffer(bytearray(m.data), dtype=torch.uint8) for m in items]
        try:
            pictures: list[torch.Tensor | None] = list(_decode(data, self.device))
        except RuntimeError:  # one bad file (or too little memory) fails the whole call: decode them one by one
            pictures = [self._one(d) for d in data]
        done: list[tuple[EncodedImage, torch.Tensor]] = []
        refused: list[EncodedImage] = []
        for i, item in enumerate(items):
            picture, pictures[i] = pictures[i], None  # each full-size picture freed once prepared
            prepared = None if picture is None else self._prepared(picture, item.orientation)
            if prepared is None:
                refused.append(item)
            else:
                done.append((item, prepared))
        if done:
            metas = [m.meta for m, _ in done]
            yield DeviceImages([m.job for m, _ in done], metas, torch.stack([p for _, p in done]), event)
        if refused:
            yield from self.fallback([Task(m.job, m.path, MediaKind.IMAGE) for m in refused])

    def _one(self, data: torch.Tensor) -> torch.Tensor | None:
        try:
            return _decode([data], self.device)[0]
        except RuntimeError:  # nvJPEG refuses it (or it does not fit): the CPU decoders take it
            return None

    def _prepared(self, picture: torch.Tensor, orientation: int) -> torch.Tensor | None:
        import torch

        try:
            h, w = picture.shape[-2:]
            picture = upright(drafted(picture, draft_factor(w, h, self.pre.resize)), orientation)
            if self.descriptor.trim_images and (box := content_box_on_device(picture)) is not None:
                left, top, right, bottom = box
                picture = picture[:, top:bottom, left:right]
            return model_input(picture, self.pre)
        except torch.OutOfMemoryError:  # a picture too big for the device's free memory: the CPU decoders take it
            return None


def jpeg_vectors(
    images: DeviceImages, embed: Callable[[torch.Tensor], np.ndarray]
) -> list[tuple[int, ImageMeta, np.ndarray]]:
    """Each photo of a batch with its vector: ``embed`` takes the device pixels once the decoding stream's work is
    done (the consumer's stream waits on its event, and the pixels are marked as used there)."""
    import torch

    if images.ready is not None:
        current = torch.cuda.current_stream(images.pixels.device)
        current.wait_event(images.ready)
        images.pixels.record_stream(current)
    vectors = embed(images.pixels)
    return [(job, meta, vectors[i]) for i, (job, meta) in enumerate(zip(images.jobs, images.metas, strict=True))]
