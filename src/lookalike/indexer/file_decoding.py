"""Decoding one file into messages: preprocessed uint8 pixels (or one per-file error). No torch here: this runs in
the decode worker processes (``decode_pool``) or in a background thread of the indexing process."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
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


class ThreadedStream:
    """Iterate a stream in a background thread, a bounded queue ahead of the consumer.

    Pillow and FFmpeg release the GIL while they decode and resize, and torch releases it during the forward
    pass, so one decode thread overlaps inference without the copies and contention of a worker process.
    """

    _END = object()

    def __init__(self, stream: Iterable[Any], ahead: int = 64) -> None:
        self.stream = stream
        self.ahead = ahead

    def __iter__(self) -> Iterator[Any]:
        out: queue.Queue[object] = queue.Queue(maxsize=self.ahead)
        stop = threading.Event()
        failure: list[BaseException] = []

        def produce() -> None:
            try:
                for message in self.stream:
                    while not stop.is_set():
                        try:
                            out.put(message, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            except BaseException as e:  # handed to the consumer, which re-raises it
                failure.append(e)
            finally:
                out.put(self._END)

        thread = threading.Thread(target=produce, name="lookalike-decode", daemon=True)
        thread.start()
        try:
            while (item := out.get()) is not self._END:
                yield item
            if failure:
                raise failure[0]
        finally:
            stop.set()
            while thread.is_alive():  # unblock a producer waiting on a full queue
                with contextlib.suppress(queue.Empty):
                    out.get(timeout=0.1)
            thread.join()
