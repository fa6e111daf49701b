"""Indexing speed on a CUDA GPU: `lookalike index` end to end with JPEGs decoded on the GPU (nvJPEG,
LOOKALIKE_GPU_JPEG=1) and on the CPU decode workers (the default), the forward-only ceiling per precision, and the
GPU's utilisation, for the default model and open_clip:ViT-B-32 (random weights: timing only).

  * corpus      COUNT distinct JPEG photos, long side 1600 px (package photos, cropped and re-encoded each time)
  * forward     images/s of forward passes alone on device-resident batches: fp16 autocast (what indexing runs),
                bf16 autocast and fp32; the cosine of fp16 and bf16 vectors with fp32 ones on real photos
  * end to end  `lookalike --device cuda index CORPUS` in a fresh process and library (start-up, walk, hash, decode,
                embed, SQL + FAISS writes), LOOKALIKE_GPU_JPEG=1 vs 0; the GPU's mean utilisation while it ran
                (NVML, sampled every 50 ms), and the cosine of the two runs' vectors

Without CUDA it says so and measures nothing (CI never has a GPU).

    python -m benchmarks.gpu_throughput [--work DIR] [--count 4000] [--models efficientnet_lite0 open_clip:ViT-B-32]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from benchmarks.machine import describe

LONG_SIDE = 1600


def _one_photo(args: tuple[int, Path]) -> None:
    from PIL import Image

    from benchmarks.corpus import package_images

    i, root = args
    images = _one_photo.__dict__.setdefault("images", list(package_images().values()))
    rng = np.random.default_rng(i)
    im = images[i % len(images)].convert("RGB")
    w, h = im.size
    f = rng.uniform(0.75, 1.0)  # a different crop and quality each time: every file's bytes differ
    left, top = rng.uniform(0, 1 - f) * w, rng.uniform(0, 1 - f) * h
    im = im.crop((int(left), int(top), int(left + f * w), int(top + f * h)))
    scale = LONG_SIDE / max(im.size)
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BICUBIC)
    im.save(root / f"photo_{i:05d}.jpg", quality=int(rng.integers(80, 95)))


def corpus(root: Path, count: int) -> Path:
    """COUNT distinct 1600 px JPEG photos (made once per work folder)."""
    if root.exists() and len(list(root.glob("*.jpg"))) == count:
        return root
    root.mkdir(parents=True, exist_ok=True)
    with Pool(os.cpu_count()) as pool:
        pool.map(_one_photo, [(i, root) for i in range(count)], chunksize=16)
    return root


class GpuSampler:
    """The GPU's utilisation (%) sampled by NVML in a background thread; None where NVML is missing."""

    def __init__(self, period: float = 0.05) -> None:
        self.period = period
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuSampler:
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:
            return self

        def sample() -> None:
            while not self._stop.is_set():
                self.samples.append(int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu))
                time.sleep(self.period)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.samples)) if self.samples else None


def _weights(spec: str) -> str | None:
    return None if spec == "efficientnet_lite0" else "random"


def forward(spec: str, photos: list[Path], batch: int, device: str, seconds: float = 5.0) -> list[dict]:
    """Forward-only images/s per precision on device-resident uint8 batches, and each precision's cosine with fp32
    on real photos."""
    import torch

    from lookalike.indexer.decode import load_image
    from lookalike.indexer.embedders.base import l2_normalise, normalise_pixels
    from lookalike.indexer.embedders.registry import create_embedder

    embedder = create_embedder(spec, weights=_weights(spec), device=device)
    kind = torch.device(device).type
    module = embedder.load()  # type: ignore[attr-defined]
    pre = embedder.preprocess
    real = np.stack([pre(load_image(p, draft=pre.resize)[0]) for p in photos[:batch]])
    noise = torch.randint(0, 256, (batch, 3, pre.size, pre.size), dtype=torch.uint8, device=device)

    def run(pixels: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
        x = normalise_pixels(pre, pixels).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if dtype is None:
                return embedder.forward(module, x)  # type: ignore[attr-defined]
            with torch.autocast(kind, dtype=dtype):
                return embedder.forward(module, x)  # type: ignore[attr-defined]

    def sync() -> None:
        if kind == "cuda":
            torch.cuda.synchronize()

    exact = l2_normalise(run(torch.from_numpy(real).to(device), None).flatten(1))
    rows = []
    for name, dtype in (("fp16 (indexing's)", torch.float16), ("bf16 autocast", torch.bfloat16), ("fp32", None)):
        for _ in range(3):
            run(noise, dtype)
        sync()
        n, start = 0, time.perf_counter()
        with GpuSampler() as gpu:
            while time.perf_counter() - start < seconds:
                run(noise, dtype)
                n += batch
            sync()
        rate = n / (time.perf_counter() - start)
        vectors = l2_normalise(run(torch.from_numpy(real).to(device), dtype).flatten(1))
        cosine = float(np.min(np.sum(vectors * exact, axis=1)))
        rows.append({"precision": name, "images_s": rate, "gpu_util": gpu.mean, "min_cos_fp32": cosine})
    return rows


def end_to_end(
    spec: str, photos: Path, work: Path, gpu_jpeg: bool, batch: int, device: str, timeout: float, workers: int | None
) -> dict:
    """`lookalike --device cuda index` in a fresh process and library; images/s over the whole run."""
    home = Path(tempfile.mkdtemp(dir=work, prefix="home-"))
    env = dict(os.environ, LOOKALIKE_GPU_JPEG="1" if gpu_jpeg else "0", LOOKALIKE_MODEL=spec)
    if _weights(spec):
        env["LOOKALIKE_WEIGHTS"] = _weights(spec) or ""
    cmd = [sys.executable, "-m", "lookalike.cli.main", "--home", str(home), "--device", device]
    cmd += ["index", str(photos), "--batch-size", str(batch)] + (
        ["--workers", str(workers)] if workers is not None else []
    )
    env["PYTHONFAULTHANDLER"] = "1"  # a run stopped at its time limit prints every thread's stack
    start = time.perf_counter()
    with GpuSampler() as gpu:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            out, err = proc.communicate()
            print(f"lookalike index stopped after {timeout:.0f} s; its threads:\n" + "\n".join(err.splitlines()[-80:]))
            return {"home": home, "wall_s": float("nan"), "images_s": float("nan"), "gpu_util": gpu.mean}
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"lookalike index failed:\n{out}\n{err}")
    print("   ", out.strip().splitlines()[-1] if out.strip() else "(no summary)", flush=True)
    count = len(list(photos.glob("*.jpg")))
    return {"home": home, "wall_s": wall, "images_s": count / wall, "gpu_util": gpu.mean}


def _vectors(home: Path) -> dict[str, np.ndarray]:
    """Each photo's stored image vector, by file name (read from the library's SQLite catalog)."""
    import sqlite3

    with sqlite3.connect(home / "lookalike.db") as db:
        rows = db.execute(
            "SELECT m.path, v.embedding FROM vectors v JOIN media m ON m.id = v.media_id WHERE v.level = 'image'"
        ).fetchall()
    return {Path(p).name: np.frombuffer(blob, dtype="<f4") for p, blob in rows}


def _boxes(path: Path, spec: str) -> str:
    """The uniform-border box each decoder's picture gets (Pillow in draft mode as the decode workers run it, and
    nvJPEG as the GPU path runs it), to tell a border trimmed by one decoder only from other differences."""
    import torch

    from lookalike.indexer.decode import load_image, peek_jpeg
    from lookalike.indexer.describe import content_box
    from lookalike.indexer.device_jpeg import _decode, content_box_on_device, draft_factor, drafted, upright
    from lookalike.indexer.embedders.registry import create_embedder

    short = create_embedder(spec).preprocess.resize
    cpu, _ = load_image(path, draft=short)
    peeked = peek_jpeg(path)
    if peeked is None:
        return "not a JPEG the GPU decodes"
    gpu = _decode([torch.frombuffer(bytearray(peeked[0]), dtype=torch.uint8)], torch.device("cuda"))[0]
    h, w = gpu.shape[-2:]
    gpu = upright(drafted(gpu, draft_factor(w, h, short)), peeked[2])
    if tuple(cpu.size) != (gpu.shape[-1], gpu.shape[-2]):
        return f"sizes differ: {cpu.size} on the CPU, {tuple(gpu.shape)} on the GPU"
    diff = np.abs(np.asarray(cpu, dtype=np.int16) - gpu.permute(1, 2, 0).cpu().numpy().astype(np.int16))
    return (
        f"{cpu.size[0]}x{cpu.size[1]}, box on the CPU {content_box(cpu)}, on the GPU {content_box_on_device(gpu)}; "
        f"pixels differ by {diff.mean():.2f} on average, {diff.max()} at most"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lookalike-gpu-bench")
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument(
        "--device", default="cuda", help="cpu only to check the script itself (the GPU JPEG path is off)"
    )
    parser.add_argument("--workers", type=int, default=None, help="`index --workers` (default: the machine's)")
    parser.add_argument("--no-forward", action="store_true", help="skip the forward-only table")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds each `lookalike index` may run")
    parser.add_argument("--seconds", type=float, default=5.0, help="each forward-only measurement's length")
    parser.add_argument("--models", nargs="+", default=["efficientnet_lite0", "open_clip:ViT-B-32"])
    args = parser.parse_args()
    print(describe())
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: nothing measured (the GPU figures in RESULTS.md stay 'not measured')")
        return
    args.work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    photos = corpus(args.work / f"photos-{args.count}", args.count)
    print(f"corpus: {args.count} JPEG photos, long side {LONG_SIDE} px ({time.perf_counter() - t:.1f} s to make)")
    files = sorted(photos.glob("*.jpg"))
    for n, spec in enumerate(args.models):
        print(f"\n## {spec} (batch {args.batch}{'' if spec == 'efficientnet_lite0' else ', random weights'})")
        print(f"{'forward only':<28}{'images/s':>10}{'GPU util %':>12}{'min cos vs fp32':>17}")
        for row in [] if args.no_forward else forward(spec, files, args.batch, args.device, args.seconds):
            util = f"{row['gpu_util']:.0f}" if row["gpu_util"] is not None else "n/a"
            print(f"{row['precision']:<28}{row['images_s']:>10.0f}{util:>12}{row['min_cos_fp32']:>17.5f}")
        print(f"{'end to end (index)':<28}{'images/s':>10}{'GPU util %':>12}{'wall s':>17}")
        runs = {}
        for gpu_jpeg in (False, True) if n % 2 == 0 else (True, False):  # which runs first (cold files) alternates
            row = end_to_end(spec, photos, args.work, gpu_jpeg, args.batch, args.device, args.timeout, args.workers)
            runs[gpu_jpeg] = row
            util = f"{row['gpu_util']:.0f}" if row["gpu_util"] is not None else "n/a"
            label = "JPEG decode on GPU" if gpu_jpeg else "JPEG decode on CPU workers"
            print(f"{label:<28}{row['images_s']:>10.0f}{util:>12}{row['wall_s']:>17.1f}", flush=True)
        if _weights(spec) or any(np.isnan(r["wall_s"]) for r in runs.values()):
            why = "random weights differ between the two runs" if _weights(spec) else "a run did not finish"
            print(f"GPU-decoded vs CPU-decoded vectors: not compared ({why})")
            continue
        a, b = _vectors(runs[True]["home"]), _vectors(runs[False]["home"])
        names = sorted(a.keys() & b.keys())
        cos = np.array([float(a[k] @ b[k]) for k in names])
        print(f"GPU-decoded vs CPU-decoded vectors: {len(cos)} photos, min cos {cos.min():.5f}, mean {cos.mean():.5f}")
        worst = [f"{names[i]} {cos[i]:.5f}" for i in np.argsort(cos)[:5] if cos[i] < 0.995]
        print(f"  under 0.995: {int(np.sum(cos < 0.995))} photos{'; the worst: ' + ', '.join(worst) if worst else ''}")
        for i in [i for i in np.argsort(cos)[:5] if cos[i] < 0.995]:
            print(f"    {names[i]}: {_boxes(photos / names[i], spec)}")
    print("\nfaiss-gpu: not measured (no faiss-gpu build for this machine's CUDA fits the device tool's 64 MiB)")


if __name__ == "__main__":
    main()
