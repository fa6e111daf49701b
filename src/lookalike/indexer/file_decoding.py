"""Decoding one file into messages: preprocessed uint8 pixels (or one per-file error). No torch here: this runs in
the decode worker processes (``decode_pool``) or in a background thread of the indexing process."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import DecodeError
from lookalike.indexer.decode import ImageMeta, peek_jpeg
from lookalike.indexer.describe import MediaDescriptor
from lookalike.indexer.preprocess import Preprocess
from lookalike.indexer.video_decode import VideoMeta, sample_frames
from lookalike.types import MediaKind

CHUNK_SECONDS = 2.0  # a video's sampled frames are sent at least this often, so a supervisor sees progress


@dataclass(frozen=True)
class DecodeLimits:
    """Per-file limits and sampling settings the workers apply."""

    max_image_pixels: int
    max_image_bytes: int
    chunk: int
    video: MediaDescriptor = field(
        default_factory=lambda: MediaDescriptor(trim_borders=False, mirror=False, trim_images=False)
    )
    encoded_jpeg: bool = False  # send still RGB/grey JPEGs undecoded (EncodedImage): the GPU decodes them


@dataclass(frozen=True)
class Task:
    """One file to decode: its job number, path and kind (small and cheap to send to a worker process); for a
    part of a video, the seconds [start, end) it covers (see :func:`~lookalike.indexer.video_decode.sample_frames`)."""

    index: int
    path: Path
    kind: MediaKind
    start: float = 0.0
    end: float | None = None


@dataclass(frozen=True)
class ImageItem:
    """A decoded image: its one picture, or the frames of an animation (their vectors are pooled)."""

    job: int
    pixels: np.ndarray  # uint8 (n, 3, size, size)
    meta: ImageMeta


@dataclass(frozen=True)
class EncodedImage:
    """A still JPEG read but not decoded, for the model's device to decode (``indexer.device_jpeg``)."""

    job: int
    path: Path
    data: bytes
    meta: ImageMeta
    orientation: int  # EXIF, 1-8


@dataclass(frozen=True)
class FrameChunk:
    """Some consecutive sampled frames of a video."""

    job: int
    pixels: np.ndarray  # uint8 (n, 3, size, size)
    times: np.ndarray


@dataclass(frozen=True)
class VideoEnd:
    """All frames of a video were sent."""

    job: int
    meta: VideoMeta
    frames: int


@dataclass(frozen=True)
class Failed:
    """A file that could not be decoded, with a stable reason code."""

    job: int
    code: str
    message: str


Message = ImageItem | EncodedImage | FrameChunk | VideoEnd | Failed


def _image(job: Task, pre: Preprocess, limits: DecodeLimits) -> Iterator[Message]:
    if limits.encoded_jpeg:
        peeked = peek_jpeg(job.path, max_pixels=limits.max_image_pixels, max_bytes=limits.max_image_bytes)
        if peeked is not None:
            data, meta, orientation = peeked
            yield EncodedImage(job.index, job.path, data, meta, orientation)
            return
    pictures, meta = limits.video.pictures(
        job.path, max_pixels=limits.max_image_pixels, max_bytes=limits.max_image_bytes, draft=pre.resize
    )
    yield ImageItem(job.index, np.stack([pre(p) for p in pictures]), meta)


def _video(job: Task, pre: Preprocess, limits: DecodeLimits) -> Iterator[Message]:
    meta, frames = sample_frames(job.path, limits.video.frame_rate, pre.resize, job.start, job.end)
    pixels: list[np.ndarray] = []
    times: list[float] = []
    total = 0
    sent = time.monotonic()
    for frame in frames:
        pixels.append(pre(limits.video.clean(frame.image)))
        times.append(frame.time)
        if len(pixels) >= limits.chunk or time.monotonic() - sent > CHUNK_SECONDS:
            yield FrameChunk(job.index, np.stack(pixels), np.array(times))
            total += len(pixels)
            pixels, times, sent = [], [], time.monotonic()
    if pixels:
        yield FrameChunk(job.index, np.stack(pixels), np.array(times))
        total += len(pixels)
    yield VideoEnd(job.index, meta, total)


def decode_job(job: Task, pre: Preprocess, limits: DecodeLimits) -> Iterator[Message]:
    """Decode one file into messages; any failure becomes one :class:`Failed` message, never an exception."""
    try:
        if job.kind == MediaKind.IMAGE:
            yield from _image(job, pre, limits)
        else:
            yield from _video(job, pre, limits)
    except DecodeError as e:
        yield Failed(job.index, e.code, str(e.args[0]))
    except FileNotFoundError:
        yield Failed(job.index, "vanished", "the file disappeared before it was read")
    except PermissionError:
        yield Failed(job.index, "permission_denied", "the file cannot be read")
    except MemoryError:
        yield Failed(job.index, "out_of_memory", "decoding needs more memory than the decoder may use")
    except Exception as e:
        yield Failed(job.index, "decoder_error", f"{type(e).__name__}: {e}")


def decode_all(tasks: Iterable[Task], pre: Preprocess, limits: DecodeLimits) -> Iterator[Message]:
    """Decode files one after the other in this process."""
    for task in tasks:
        yield from decode_job(task, pre, limits)


PICTURE_BYTES = 3 * 224 * 224  # about one model input: what an undecoded JPEG's bytes are counted in


def pictures_in(message: Any) -> int:
    """How many pictures a decode message weighs ahead of the model, at least 1: its rows of pixels, or an
    undecoded JPEG's bytes in model inputs' worth (:data:`PICTURE_BYTES`)."""
    pixels = getattr(message, "pixels", None)
    if pixels is not None:
        return max(1, len(pixels))
    data = getattr(message, "data", None)
    return max(1, -(-len(data) // PICTURE_BYTES)) if isinstance(data, bytes) else 1


class ThreadedStream:
    """Iterate a stream in a background thread, up to ``ahead`` pictures ahead of the consumer.

    Pillow and FFmpeg release the GIL while they decode and resize, and the runtimes release it during the forward
    pass, so one decode thread overlaps inference without the copies and contention of a worker process. Around a
    :class:`~lookalike.indexer.decode_pool.DecodePool` the thread keeps reading the workers' pipes while the model
    runs: without it a worker blocks on its first message until the forward pass ends, and decoding and inference
    take turns. The budget counts pictures (:func:`pictures_in`), not messages, so a video's chunks of frames hold
    no more memory ahead than single photos do. When the consumer stops, a stream with a ``cancel()`` method (a
    pool) is told at once, and the stream is closed in its thread once its current item is done (a pool stops its
    workers, a busy one killed).
    """

    _END = object()

    def __init__(self, stream: Iterable[Any], ahead: int = 64) -> None:
        self.stream = stream
        self.ahead = ahead

    def __iter__(self) -> Iterator[Any]:
        items: deque[tuple[object, int]] = deque()
        held = 0  # pictures queued and not yet taken
        turn = threading.Condition()
        stop = threading.Event()
        failure: list[BaseException] = []

        def put(item: object, weight: int) -> bool:
            nonlocal held
            with turn:
                while held and held + weight > self.ahead and not stop.is_set():
                    turn.wait(0.1)
                if stop.is_set():
                    return False
                items.append((item, weight))
                held += weight
                turn.notify_all()
                return True

        def produce() -> None:
            source: Iterator[Any] | None = None
            try:
                source = iter(self.stream)
                for message in source:
                    if not put(message, pictures_in(message)):
                        return
            except BaseException as e:  # handed to the consumer, which re-raises it
                failure.append(e)
            finally:
                close = getattr(source, "close", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        close()
                with turn:
                    items.append((self._END, 0))
                    turn.notify_all()

        thread = threading.Thread(target=produce, name="lookalike-decode", daemon=True)
        thread.start()
        try:
            while True:
                with turn:
                    while not items:
                        turn.wait()
                    item, weight = items.popleft()
                    held -= weight
                    turn.notify_all()
                if item is self._END:
                    break
                yield item
            if failure:
                raise failure[0]
        finally:
            stop.set()
            cancel = getattr(self.stream, "cancel", None)
            if cancel is not None:
                cancel()
            with turn:
                turn.notify_all()
            thread.join()
