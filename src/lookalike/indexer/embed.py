"""Decode in supervised worker processes and embed in batches: jobs in, finished files (record + vectors) out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from lookalike.config import Settings
from lookalike.indexer.decode import ImageMeta
from lookalike.indexer.decode_pool import DecodePool
from lookalike.indexer.describe import MediaDescriptor, describe_video, fold_mirrors, pool_pictures, with_mirrors
from lookalike.indexer.device import decode_workers, tune_cpu_allocator
from lookalike.indexer.device_jpeg import RESAMPLED, DeviceImages, DeviceJpegDecoder, jpeg_vectors
from lookalike.indexer.embedders.base import Embedder, TorchEmbedder
from lookalike.indexer.exif import record_fields
from lookalike.indexer.file_decoding import (
    DecodeLimits,
    Failed,
    FrameChunk,
    ImageItem,
    Message,
    Task,
    ThreadedStream,
    VideoEnd,
    decode_all,
)
from lookalike.indexer.plan import Job, make_record
from lookalike.indexer.video_decode import VideoMeta
from lookalike.storage.records import MediaRecord, PhotoMetadata, VectorRecord
from lookalike.types import Level, MediaStatus


@dataclass
class _VideoBuffer:
    times: list[np.ndarray] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    pending: int = 0  # frames sent to the batcher whose vectors have not come back yet
    end: VideoEnd | None = None


class _Batcher:
    """Batches pixels from many files into forward passes and routes the vectors back."""

    def __init__(self, embedder: Embedder, batch_size: int) -> None:
        self.embedder = embedder
        self.batch_size = batch_size
        self.pixels: list[np.ndarray] = []
        self.owners: list[tuple[int, int]] = []  # (job, rows)

    def add(self, job: int, pixels: np.ndarray) -> bool:
        """Queue a uint8 (n, 3, H, W) block; True when a forward pass is due."""
        self.pixels.append(pixels)
        self.owners.append((job, pixels.shape[0]))
        return sum(n for _, n in self.owners) >= self.batch_size

    def flush(self) -> Iterator[tuple[int, np.ndarray]]:
        """Run the queued pixels through the model; yields (job, vectors) blocks in queue order."""
        if not self.pixels:
            return
        vectors = self.embedder.embed_batch(np.concatenate(self.pixels))
        owners, self.pixels, self.owners = self.owners, [], []
        row = 0
        for job, n in owners:
            yield job, vectors[row : row + n]
            row += n


@dataclass(frozen=True)
class Embedded:
    """One finished file: its catalog record, its vectors, and how many frames were sampled (videos)."""

    job: Job
    record: MediaRecord
    vectors: list[VectorRecord]
    frames: int = 0


def failed(job: Job, message: Failed) -> Embedded:
    """A file that could not be decoded: its error row."""
    return Embedded(job, make_record(job, MediaStatus.FAILED, error_code=message.code, error=message.message), [])


def image_done(job: Job, meta: ImageMeta, vectors: np.ndarray) -> Embedded:
    """An embedded image: its record, and one vector pooled from its pictures' (an animation's frames)."""
    record = make_record(
        job, MediaStatus.OK, width=meta.width, height=meta.height, n_frames=meta.n_frames, **record_fields(meta.photo)
    )
    return Embedded(job, record, [VectorRecord(Level.IMAGE.value, pool_pictures(vectors))])


def video_done(
    job: Job, meta: VideoMeta, frames: int, times: np.ndarray, vectors: np.ndarray, video: MediaDescriptor
) -> Embedded:
    """An embedded video: its record, and its segment and whole-video vectors from its frames' (in time order)."""
    record = make_record(
        job,
        MediaStatus.OK,
        width=meta.width,
        height=meta.height,
        duration=meta.duration,
        fps=meta.fps,
        n_frames=meta.n_frames or frames,
        **record_fields(PhotoMetadata()),  # a video's container dates are not read (yet)
    )
    described = describe_video(times, vectors, meta.duration, video)
    out = [VectorRecord(Level.SEGMENT.value, s.vector, s.start, s.end) for s in described.segments]
    out.append(VectorRecord(Level.VIDEO.value, described.vector, 0.0, described.end))
    return Embedded(job, record, out, frames)


def embed_jobs(
    jobs: Sequence[Job],
    embedder: Embedder,
    settings: Settings,
    video: MediaDescriptor | None = None,
    device_jpeg: bool | None = None,
) -> Iterator[Embedded]:
    """Decode (in supervised worker processes, or in this process) and embed files in batches.

    Yields each file's record and vectors as it completes; a file that fails to decode yields its error record.
    Either way a background thread takes the decoded pictures up to two batches ahead of the model, so decoding
    goes on during forward passes (:class:`ThreadedStream`). With ``settings.workers == 0`` that thread decodes
    them itself, in this process: a decoder crash then ends the run (what was written stays; the next run
    resumes). JPEGs are decoded on the model's device when ``device_jpeg`` says so (None: on CUDA with
    ``settings.gpu_jpeg``; see ``device_jpeg.py``).
    """
    if embedder.device_type == "cpu":
        tune_cpu_allocator()
    pre = embedder.preprocess
    video = video or MediaDescriptor.from_settings(settings)
    if device_jpeg is None:
        device_jpeg = embedder.device_type == "cuda" and settings.gpu_jpeg
    device_jpeg = device_jpeg and isinstance(embedder, TorchEmbedder) and pre.interpolation in RESAMPLED
    cpu_limits = DecodeLimits(settings.max_image_pixels, settings.max_image_bytes, settings.batch_size, video)
    limits = replace(cpu_limits, encoded_jpeg=device_jpeg)
    workers = min(decode_workers(embedder.device_type, settings.workers), len(jobs))
    memory = settings.decode_memory_mb * 2**20 if settings.decode_memory_mb else None

    ahead = 2 * settings.batch_size  # pictures decoded ahead: the next batch is ready when a forward pass ends

    def decoded(tasks: list[Task], limits: DecodeLimits, workers: int) -> Iterable[Message]:
        """The decode messages, read in a background thread (also a pool's: see :class:`ThreadedStream`)."""
        if workers:
            return ThreadedStream(DecodePool(tasks, pre, limits, workers, settings.decode_timeout, memory), ahead)
        return ThreadedStream(decode_all(tasks, pre, limits), ahead)

    files: Iterable[Message] = decoded([Task(j.index, j.path, j.kind) for j in jobs], limits, workers)
    loader: Iterable[Message | DeviceImages] = files
    if device_jpeg:
        assert isinstance(embedder, TorchEmbedder)

        def refused(tasks: list[Task]) -> Iterable[Message]:
            """JPEGs the device refuses, decoded as any other file (one supervised worker, when supervised)."""
            return decoded(tasks, cpu_limits, min(1, workers))

        loader = DeviceJpegDecoder(pre, video, embedder.device, settings.batch_size, refused)(files)
    by_index = {j.index: j for j in jobs}
    batcher = _Batcher(embedder, settings.batch_size)
    images: dict[int, ImageItem] = {}
    videos: dict[int, _VideoBuffer] = {}

    def drain() -> Iterator[Embedded]:
        for idx, vecs in batcher.flush():
            job = by_index[idx]
            if idx not in images and idx not in videos:
                continue  # a video that failed after some of its frames were queued: its failure is reported
            if idx in images:
                yield image_done(job, images.pop(idx).meta, vecs)
                continue
            buf = videos[idx]
            if video.mirror:  # the block holds the frames, then their mirror images
                vecs = fold_mirrors(vecs)
            buf.vectors.append(vecs)
            buf.pending -= len(vecs)
            if buf.end is not None and buf.pending == 0:
                yield from finish_video(idx)

    def finish_video(idx: int) -> Iterator[Embedded]:
        buf = videos.pop(idx)
        end = buf.end
        if end is None:
            return
        times, vectors = np.concatenate(buf.times), np.vstack(buf.vectors)
        yield video_done(by_index[idx], end.meta, end.frames, times, vectors, video)

    message: Message | DeviceImages
    for message in loader:
        if isinstance(message, DeviceImages):
            assert isinstance(embedder, TorchEmbedder)
            for idx, meta, vector in jpeg_vectors(message, embedder.embed_device):
                fields = record_fields(meta.photo)
                record = make_record(
                    by_index[idx], MediaStatus.OK, width=meta.width, height=meta.height, n_frames=1, **fields
                )
                yield Embedded(by_index[idx], record, [VectorRecord(Level.IMAGE.value, vector)])
        elif isinstance(message, Failed):
            videos.pop(message.job, None)
            yield failed(by_index[message.job], message)
        elif isinstance(message, ImageItem):
            images[message.job] = message
            if batcher.add(message.job, message.pixels):
                yield from drain()
        elif isinstance(message, FrameChunk):
            buf = videos.setdefault(message.job, _VideoBuffer())
            buf.times.append(message.times)
            buf.pending += len(message.times)
            pixels = with_mirrors(message.pixels) if video.mirror else message.pixels
            if batcher.add(message.job, pixels):
                yield from drain()
        elif isinstance(message, VideoEnd):
            buf = videos.setdefault(message.job, _VideoBuffer())
            buf.end = message
            if buf.pending == 0:
                yield from finish_video(message.job)
        else:  # an undecoded JPEG with no device to decode it would be a file lost without a word
            raise TypeError(f"unexpected decode message {type(message).__name__}")
    yield from drain()
