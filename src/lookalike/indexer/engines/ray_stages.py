"""The stages of the Ray engine: videos cut into parts (on the driver), decode and embed (on the nodes).

Rows between stages hold one pickled payload each (tasks, messages, vectors): paths that are not UTF-8, pixel
blocks of any shape and per-file errors travel alike. Nothing here imports Ray; the driver (``engines/ray.py``)
composes these into a Ray Data pipeline.
"""

from __future__ import annotations

import math
import os
import pickle
import socket
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.config import Settings
from lookalike.errors import DecodeError, SharedStorageError
from lookalike.indexer.decode_pool import DecodeFn, DecodeSession
from lookalike.indexer.describe import MediaDescriptor, fold_mirrors, with_mirrors
from lookalike.indexer.file_decoding import DecodeLimits, FrameChunk, ImageItem, Task, decode_job
from lookalike.indexer.video_decode import video_meta
from lookalike.types import MediaKind

Batch = dict[str, np.ndarray]


def pack(values: list[Any]) -> Batch:
    """A batch of one ``payload`` column of pickled values."""
    column = np.empty(len(values), dtype=object)
    column[:] = [pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL) for v in values]
    return {"payload": column}


def unpack(batch: Batch) -> list[Any]:
    """The values of a batch made by :func:`pack`."""
    return [pickle.loads(p) for p in batch["payload"]]


def video_duration(path: os.PathLike[str] | str) -> float | None:
    """A video's length from its header, or None when it cannot be read (run in a supervised process)."""
    try:
        return video_meta(Path(path)).duration
    except (DecodeError, OSError):
        return None


def video_parts(tasks: Sequence[Task], part_seconds: float, timeout: float = 60.0) -> list[tuple[int, int, Task]]:
    """Each video as parts of ``part_seconds`` (so one long video does not hold one decoder for its whole length),
    as (part, parts, task) rows; an image is one part of one. A header that cannot be read leaves the video whole:
    its decoder then reports why.

    The headers are read on the driver, which has just read every file whole to hash it (a header read is little
    beside that, and it spares the cluster a stage of its own), but in spawned processes (pebble's pool): a header
    that crashes FFmpeg or hangs it past ``timeout`` seconds leaves its video whole, never stops the driver."""
    import multiprocessing as mp

    from pebble import ProcessPool

    durations: dict[int, float | None] = {}
    videos = [t for t in tasks if t.kind == MediaKind.VIDEO]
    if videos:
        with ProcessPool(max_workers=min(4, len(videos)), context=mp.get_context("spawn")) as pool:
            futures = {t.index: pool.schedule(video_duration, args=(str(t.path),), timeout=timeout) for t in videos}
            for index, future in futures.items():
                try:
                    durations[index] = future.result()
                except Exception:  # the probe crashed or hung: the video goes whole to a supervised decoder
                    durations[index] = None
    out: list[tuple[int, int, Task]] = []
    for task in tasks:
        duration = durations.get(task.index)
        parts = max(1, math.ceil(duration / part_seconds)) if duration else 1
        for k in range(parts):
            end = (k + 1) * part_seconds if k < parts - 1 else None
            out.append((k, parts, replace(task, start=k * part_seconds, end=end) if parts > 1 else task))
    return out


def input_blocks(rows: list[tuple[int, int, Task]], files: int) -> list[list[tuple[int, int, Task]]]:
    """The decode stage's input blocks: each video part alone (parts of one video go to different decode actors),
    first, as the longest work; then the images, ``files`` to a block (one actor call decodes a block)."""
    parts = [row for row in rows if row[2].kind == MediaKind.VIDEO]
    images = [row for row in rows if row[2].kind != MediaKind.VIDEO]
    return [[row] for row in parts] + [images[i : i + files] for i in range(0, len(images), files)]


class DecodeStage:
    """A decode actor: one supervised decode process (:class:`DecodeSession`), the local workers' limits."""

    def __init__(self, settings: Settings, pre: Any, video: MediaDescriptor, decode: DecodeFn = decode_job) -> None:
        limits = DecodeLimits(settings.max_image_pixels, settings.max_image_bytes, settings.batch_size, video)
        memory = settings.decode_memory_mb * 2**20 if settings.decode_memory_mb else None
        self.session = DecodeSession(pre, limits, settings.decode_timeout, memory, decode)

    def __call__(self, batch: Batch) -> Iterator[Batch]:
        """Stream each part's messages as (part, parts, message) rows, one file after another."""
        for part, parts, task in unpack(batch):
            readable(task)
            for message in self.session.decode(task):
                yield pack([(part, parts, message)])

    def __del__(self) -> None:
        self.session.close()


def readable(task: Task) -> None:
    """Fail the run, naming the file and the node, when the file's folder is not on this node (the collection's
    storage is not mounted here at the same path). A file gone from a folder that is there fails alone
    (``vanished``), as in a local run.

    Raises:
        SharedStorageError: this node cannot see the file's folder.
    """
    if not os.path.isdir(task.path.parent):
        raise SharedStorageError(
            f"node {socket.gethostname()} cannot read {task.path}: its folder is not there; mount the shared "
            "storage at the same path on every node of the cluster"
        )


class EmbedStage:
    """An embed actor: the collection's embedder (on a GPU where the actor has one), batches of decoded pixels in,
    vectors out (pixels are dropped: only vectors travel back to the driver)."""

    def __init__(self, settings: Settings, video: MediaDescriptor, device: str | None) -> None:
        from lookalike.indexer.device import tune_cpu_allocator
        from lookalike.indexer.embedders.registry import create_embedder

        s = settings
        self.embedder = create_embedder(s.model, s.weights, device, s.backend, s.models_dir, s.inference_threads)
        if self.embedder.device_type == "cpu":
            tune_cpu_allocator()
        self.batch_size = settings.batch_size
        self.mirror = video.mirror

    def __call__(self, batch: Batch) -> Batch:
        """(part, parts, message) rows in, (part, parts, message without pixels, vectors, runtime) rows out."""
        rows = unpack(batch)
        blocks = [self._pixels(m) for _, _, m in rows]
        stacked = [b for b in blocks if b is not None]
        vectors = self._embed(np.concatenate(stacked)) if stacked else np.zeros((0, 0), np.float32)
        runtime = (self.embedder.runtime, self.embedder.tolerance) if stacked else None
        out, row = [], 0
        for (part, parts, message), block in zip(rows, blocks, strict=True):
            vecs = None
            if block is not None:
                vecs, row = vectors[row : row + len(block)], row + len(block)
                if isinstance(message, FrameChunk) and self.mirror:
                    vecs = fold_mirrors(vecs)
                message = replace(message, pixels=np.zeros((0,), np.uint8))
            out.append((part, parts, message, vecs, runtime))
        return pack(out)

    def _pixels(self, message: Any) -> np.ndarray | None:
        if isinstance(message, ImageItem):
            return message.pixels
        if isinstance(message, FrameChunk):
            return with_mirrors(message.pixels) if self.mirror else message.pixels
        return None

    def _embed(self, pixels: np.ndarray) -> np.ndarray:
        step = self.batch_size
        return np.vstack([self.embedder.embed_batch(pixels[i : i + step]) for i in range(0, len(pixels), step)])
