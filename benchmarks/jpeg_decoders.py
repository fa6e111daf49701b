"""JPEG decoding for indexing on the CPU: Pillow's draft mode (what lookalike uses) against simplejpeg's DCT-domain
scaling, on the same files, one thread each, to the size the model's preprocessing asks for (short side >= 256).

Both scale in libjpeg-turbo's IDCT (a 1/2, 1/4 or 1/8 decode); the table gives each one's time per photo (best of
three passes, the two decoders alternating), the largest pixel difference from Pillow's picture, and the time
of the preprocessing that follows (resize and centre crop, the same code for both). PyTurboJPEG is not measured:
it needs the system's libturbojpeg, which lookalike does not otherwise depend on.

    python -m benchmarks.jpeg_decoders [--work DIR] [--count 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import describe, load_average

SHORT_SIDE = 256


def pillow(path: Path) -> np.ndarray:
    """The product's decode: ``load_image`` with draft mode (EXIF orientation, limits, format checks)."""
    from lookalike.indexer.decode import load_image

    image, _ = load_image(path, draft=SHORT_SIDE)
    return np.asarray(image)


def simplejpeg_decode(path: Path) -> np.ndarray:
    """simplejpeg with the same DCT scaling Pillow's draft picks (the smallest picture at least that large)."""
    import simplejpeg

    from lookalike.indexer.device_jpeg import draft_factor

    data = path.read_bytes()
    height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    factor = draft_factor(width, height, SHORT_SIDE)
    wanted = (-(-width // factor), -(-height // factor))
    return simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=wanted[0], min_height=wanted[1], min_factor=factor)


def timed(decode, paths: list[Path]) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    out = [decode(p) for p in paths]
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lookalike-jpeg-bench")
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    print(describe())
    import cv2

    cv2.setNumThreads(1)
    from benchmarks.gpu_throughput import LONG_SIDE, corpus
    from lookalike.indexer.preprocess import Preprocess

    photos = sorted(corpus(args.work / f"photos-{args.count}", args.count).glob("*.jpg"))
    print(f"{len(photos)} JPEG photos, long side {LONG_SIDE} px; decoded to a short side >= {SHORT_SIDE}")
    best = {"Pillow draft (lookalike)": float("inf"), "simplejpeg": float("inf")}
    pictures: dict[str, list[np.ndarray]] = {}
    for _ in range(3):
        for name, decode in (("Pillow draft (lookalike)", pillow), ("simplejpeg", simplejpeg_decode)):
            seconds, pictures[name] = timed(decode, photos)
            best[name] = min(best[name], seconds)
    pre = Preprocess()
    from PIL import Image

    start = time.perf_counter()
    for p in pictures["Pillow draft (lookalike)"]:
        pre(Image.fromarray(p))
    preprocess = (time.perf_counter() - start) / len(photos)
    reference = pictures["Pillow draft (lookalike)"]
    print(f"\n{'decoder':<26}{'ms/photo':>10}{'photos/s':>10}{'same size':>11}{'max |diff|':>12}")
    for name, seconds in best.items():
        got = pictures[name]
        same = sum(a.shape == b.shape for a, b in zip(got, reference, strict=True))
        diff = max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(got, reference, strict=True))
        ms = 1000 * seconds / len(photos)
        print(f"{name:<26}{ms:>10.2f}{1000 / ms:>10.0f}{same:>6}/{len(photos):<4}{diff:>12}")
    print(f"\nthen preprocessing (resize + centre crop, both): {1000 * preprocess:.2f} ms/photo")
    print(f"at the end: {load_average()}")


if __name__ == "__main__":
    main()
