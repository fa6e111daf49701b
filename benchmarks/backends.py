"""The default model's forward pass on each runtime: speed, CPU cost and agreement with torch, on real photos.

Every runtime runs the same 500 pre-made model inputs (the throughput corpus: real photos and edited copies) in
batches of 32, each in a fresh process, best of 3 passes; vectors are compared with torch's picture by picture
(cosine). Runtimes: torch (channels-last, allocator tuned, what `--backend torch` runs), ONNX Runtime, OpenVINO at f32
and bf16 with its LATENCY and THROUGHPUT hints (the graph the product exports and caches), and int8 graphs quantized
statically (ONNX Runtime's QDQ quantizer, calibrated on the first 64 pictures) run by both.

    python -m benchmarks.backends [--work DIR] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import cpu_capabilities, describe, load_average

BATCH = 32
CALIBRATION = 64
PARTS = (
    "torch",
    "onnxruntime-f32",
    "openvino-f32-LATENCY",
    "openvino-f32-THROUGHPUT",
    "openvino-bf16-LATENCY",
    "openvino-bf16-THROUGHPUT",
    "onnxruntime-int8",
    "openvino-int8-LATENCY",
)


def pixels(work: Path) -> np.ndarray:
    """The corpus as uint8 model inputs, decoded once (the product's decoder and preprocessing)."""
    from benchmarks.throughput import photo_corpus
    from lookalike.indexer.decode import load_image
    from lookalike.indexer.embedders.efficientnet import LITE0_PREPROCESS

    cached = work / "pixels.npy"
    if not cached.exists():
        files = sorted(photo_corpus(work / "images500", count=500).iterdir())
        np.save(cached, np.stack([LITE0_PREPROCESS(load_image(p, draft=256)[0]) for p in files]))
    return np.load(cached)


def graph(work: Path) -> Path:
    """The default model's ONNX graph, as the product exports and caches it."""
    from lookalike.indexer.embedders.efficientnet import build_efficientnet_lite0
    from lookalike.indexer.embedders.graph_cache import GraphCache
    from lookalike.indexer.embedders.graph_embedder import export_onnx

    ref = build_efficientnet_lite0(device="cpu")
    return GraphCache(work / "models").get(ref.spec, ref.weights_tag, lambda p: export_onnx(ref, p)).graph


def int8_graph(work: Path, pix: np.ndarray) -> Path:
    """The graph quantized to int8 (QDQ, per-channel weights), calibrated on the first pictures."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from lookalike.indexer.embedders.efficientnet import LITE0_PREPROCESS
    from lookalike.indexer.embedders.graph_embedder import normalise_array

    out = work / "lite0-int8.onnx"
    if out.exists():
        return out
    pre = work / "lite0-pre.onnx"
    quant_pre_process(str(graph(work)), str(pre))
    batches = [normalise_array(LITE0_PREPROCESS.mean, LITE0_PREPROCESS.std, pix[i : i + 8]) for i in range(0, 64, 8)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.it, None)
            return None if batch is None else {"pixels": batch}

    quantize_static(
        str(pre),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return out


def run_part(part: str, work: Path, rounds: int) -> dict:
    """Embed every picture ``rounds`` times with one runtime; save its vectors, return the best pass."""
    from lookalike.indexer.device import tune_cpu_allocator
    from lookalike.indexer.embedders.efficientnet import LITE0_PREPROCESS, build_efficientnet_lite0
    from lookalike.indexer.embedders.graph_embedder import normalise_array, unit_rows
    from lookalike.indexer.embedders.graph_runtimes import OnnxRuntimeSession, OpenVinoSession

    pix = pixels(work)
    tune_cpu_allocator()
    if part == "torch":
        emb = build_efficientnet_lite0(device="cpu")
        embed = emb.embed_batch
    else:
        backend, precision, *hint = part.split("-")
        path = int8_graph(work, pix) if precision == "int8" else graph(work)
        session = (
            OnnxRuntimeSession(path)
            if backend == "onnxruntime"
            else OpenVinoSession(path, "f32" if precision == "int8" else precision, hint=hint[0])
        )

        def embed(batch: np.ndarray) -> np.ndarray:
            return unit_rows(session.run(normalise_array(LITE0_PREPROCESS.mean, LITE0_PREPROCESS.std, batch)))

    embed(pix[:BATCH])  # warm-up
    best, cpu = float("inf"), 0.0
    vectors = np.zeros(0)
    for _ in range(rounds):
        wall, used = time.perf_counter(), time.process_time()
        vectors = np.vstack([embed(pix[i : i + BATCH]) for i in range(0, len(pix), BATCH)])
        seconds = time.perf_counter() - wall
        if seconds < best:
            best, cpu = seconds, time.process_time() - used
    np.save(work / f"vectors-{part}.npy", vectors)
    return {"images": len(pix), "seconds": best, "cpu_seconds": cpu}


def main() -> None:
    """Run every runtime in its own process and print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--part", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="lookalike-backends-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.part:
        print(json.dumps(run_part(args.part, work, args.rounds)))
        return
    print(describe())
    print(cpu_capabilities())
    pix = pixels(work)
    graph(work)
    int8_graph(work, pix)
    print(f"{len(pix)} real photos and edited copies, efficientnet_lite0, batch {BATCH}, best of {args.rounds} passes")
    print()
    rows = {}
    command = [sys.executable, "-m", "benchmarks.backends", "--work", str(work), "--rounds", str(args.rounds)]
    for part in PARTS:
        out = subprocess.run(
            [*command, "--part", part],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows[part] = json.loads(out.strip().splitlines()[-1])
    ref = np.load(work / "vectors-torch.npy")
    torch_rate = rows["torch"]["images"] / rows["torch"]["seconds"]
    print("| runtime | images/s | x torch | CPU ms per image | cosine vs torch: min | 0.1% quantile | mean |")
    print("|---|---|---|---|---|---|---|")
    for part, r in rows.items():
        cos = np.sum(np.load(work / f"vectors-{part}.npy") * ref, axis=1)
        rate = r["images"] / r["seconds"]
        print(
            f"| {part} | {rate:.1f} | {rate / torch_rate:.2f} | {1000 * r['cpu_seconds'] / r['images']:.2f} | "
            f"{cos.min():.6f} | {np.quantile(cos, 0.001):.6f} | {cos.mean():.6f} |"
        )
    print(f"\n{load_average()} at end (os.cpu_count() {os.cpu_count()})")


if __name__ == "__main__":
    main()
