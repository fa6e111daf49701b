"""Decoding in DataLoader workers: files in, preprocessed pixel tensors (or per-file errors) out."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from lookalike.errors import DecodeError
from lookalike.indexer.decode import ImageMeta, VideoMeta, load_image, sample_frames
from lookalike.indexer.embedders.base import Preprocess
from lookalike.indexer.plan import Job
from lookalike.types import MediaKind


@dataclass(frozen=True)
class DecodeLimits:
    """Per-file limits and sampling settings the workers apply."""

    max_image_pixels: int
    max_image_bytes: int
    frame_rate: float
    chunk: int


@dataclass(frozen=True)
class ImageItem:
    """A decoded image."""

    job: int
    pixels: torch.Tensor
    meta: ImageMeta


@dataclass(frozen=True)
class FrameChunk:
    """Some consecutive sampled frames of a video."""

    job: int
    pixels: torch.Tensor
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


Message = ImageItem | FrameChunk | VideoEnd | Failed


def _image(job: Job, pre: Preprocess, limits: DecodeLimits) -> Iterator[Message]:
    image, meta = load_image(
        job.path, max_pixels=limits.max_image_pixels, max_bytes=limits.max_image_bytes, draft=pre.resize
    )
    yield ImageItem(job.index, pre(image), meta)


def _video(job: Job, pre: Preprocess, limits: DecodeLimits) -> Iterator[Message]:
    meta, frames = sample_frames(job.path, limits.frame_rate, short_side=pre.resize)
    pixels: list[torch.Tensor] = []
    times: list[float] = []
    total = 0
    for frame in frames:
        pixels.append(pre(frame.image))
        times.append(frame.time)
        if len(pixels) >= limits.chunk:
            yield FrameChunk(job.index, torch.stack(pixels), np.array(times))
            total += len(pixels)
            pixels, times = [], []
    if pixels:
        yield FrameChunk(job.index, torch.stack(pixels), np.array(times))
        total += len(pixels)
    yield VideoEnd(job.index, meta, total)


def decode_job(job: Job, pre: Preprocess, limits: DecodeLimits) -> Iterator[Message]:
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
        yield Failed(job.index, "too_many_pixels", "decoding needs more memory than is available")
    except Exception as e:
        yield Failed(job.index, "decoder_error", f"{type(e).__name__}: {e}")


class DecodeStream(IterableDataset):
    """Iterable dataset over jobs; each DataLoader worker decodes every n-th job."""

    def __init__(self, jobs: list[Job], preprocess: Preprocess, limits: DecodeLimits) -> None:
        super().__init__()
        self.jobs = jobs
        self.preprocess = preprocess
        self.limits = limits

    def __iter__(self) -> Iterator[Message]:
        info = get_worker_info()
        shard = self.jobs if info is None else self.jobs[info.id :: info.num_workers]
        for job in shard:
            yield from decode_job(job, self.preprocess, self.limits)


class ThreadedStream:
    """Iterate a stream in a background thread, a bounded queue ahead of the consumer.

    Pillow and FFmpeg release the GIL while they decode and resize, and torch releases it during the forward
    pass, so one decode thread overlaps inference without the copies and contention of a worker process.
    """

    _END = object()

    def __init__(self, stream: DecodeStream, ahead: int = 64) -> None:
        self.stream = stream
        self.ahead = ahead

    def __iter__(self) -> Iterator[Message]:
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
                yield item  # type: ignore[misc]
            if failure:
                raise failure[0]
        finally:
            stop.set()
            while thread.is_alive():  # unblock a producer waiting on a full queue
                with contextlib.suppress(queue.Empty):
                    out.get(timeout=0.1)
            thread.join()


def worker_init(_worker_id: int) -> None:
    """Keep each decode worker on one thread so it does not fight the model for cores."""
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


def passthrough(message: Message) -> Message:
    """Collate function: messages are already what the main loop wants."""
    return message
