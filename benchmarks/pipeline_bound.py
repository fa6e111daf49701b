"""The indexing pipeline's physical bound on this machine: cores / (decode core-seconds + inference core-seconds) per
image, each measured with the product's own functions and the process's CPU clock (all its threads).

Decoding is what a decode worker does per file (`file_decoding.decode_all`: read, decode, border trim, preprocess)
in one thread; inference is the embedder's forward passes over the pixels that decoding made, batch 32, on a given
backend. With every core busy all the time and nothing else to do, no pipeline indexes faster than the bound.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

BATCH = 32


def decode_cost(corpus: Path, passes: int = 2) -> tuple[float, np.ndarray]:
    """CPU seconds per image of decoding the corpus (best pass), and the model inputs it made."""
    from lookalike.config import Settings
    from lookalike.indexer.describe import MediaDescriptor
    from lookalike.indexer.discover import walk
    from lookalike.indexer.embedders.efficientnet import LITE0_PREPROCESS
    from lookalike.indexer.file_decoding import DecodeLimits, ImageItem, Task, decode_all
    from lookalike.indexer.plan import make_plan

    settings = Settings()
    limits = DecodeLimits(
        settings.max_image_pixels, settings.max_image_bytes, BATCH, MediaDescriptor.from_settings(settings)
    )
    tasks = [Task(j.index, j.path, j.kind) for j in make_plan(walk(corpus), {}).jobs]
    best, items = float("inf"), []
    for _ in range(passes):
        used = time.process_time()
        items = [m for m in decode_all(tasks, LITE0_PREPROCESS, limits) if isinstance(m, ImageItem)]
        best = min(best, time.process_time() - used)
    return best / len(items), np.concatenate([m.pixels for m in items])


def inference_cost(pixels: np.ndarray, backend: str, models: Path, passes: int = 3) -> tuple[float, float]:
    """CPU seconds per image of the default model's forward passes on ``backend`` (the pass with the best wall
    clock), and that pass's images per second."""
    from lookalike.indexer.device import tune_cpu_allocator
    from lookalike.indexer.embedders.registry import create_embedder

    tune_cpu_allocator()
    emb = create_embedder(device="cpu", backend=backend, models=models)
    emb.embed_pixels(pixels[:BATCH])  # load, verify, warm up
    best, cpu = float("inf"), 0.0
    for _ in range(passes):
        wall, used = time.perf_counter(), time.process_time()
        for i in range(0, len(pixels), BATCH):
            emb.embed_pixels(pixels[i : i + BATCH])
        seconds = time.perf_counter() - wall
        if seconds < best:
            best, cpu = seconds, time.process_time() - used
    return cpu / len(pixels), len(pixels) / best


def bound(corpus: Path, backend: str, models: Path) -> dict[str, float]:
    """Decode and inference CPU seconds per image on ``backend``, and the bound they give on this machine's cores."""
    decode, pixels = decode_cost(corpus)
    infer, rate = inference_cost(pixels, backend, models)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    bound = cores / (decode + infer)
    return {"decode": decode, "inference": infer, "forward_rate": rate, "cores": cores, "bound": bound}
