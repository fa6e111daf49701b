"""Decoding and preprocessing one photo: ms per photo of each step the decode workers run, and of the resize the
preprocessing avoids.

The corpus is ``throughput``'s 500 real photos and edited copies (JPEG/WebP, 256-1411 px). Timed per photo, in
this process, one thread, each step over the whole corpus ``--repeats`` times (best pass kept):

  * decode                  ``load_image(path, draft=256)``: Pillow, JPEG draft mode, EXIF orientation, RGB
  * border trim             ``MediaDescriptor.clean_image`` (uniform borders cut, as new collections do)
  * preprocess (product)    ``Preprocess.__call__``: ``Image.resize(box=...)`` resamples only the centre-crop box
                            straight to 224 x 224, then a uint8 CHW array
  * resize, then crop       the same result made the plain way: resize the whole picture so its short side is
                            256, crop the centre 224 x 224, the same array (not product code: the alternative)

The last line compares the two preprocessing results (mean absolute difference in 8-bit levels).

    python -m benchmarks.preprocess_speed [--work DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import describe, load_average


def resize_then_crop(image: Any, size: int, resize: int) -> np.ndarray:
    """Resize the whole picture (short side ``resize``, bicubic), crop the centre ``size`` square: uint8 CHW."""
    from PIL import Image

    w, h = image.size
    scale = resize / min(w, h)
    full = image.resize((round(w * scale), round(h * scale)), Image.Resampling.BICUBIC, reducing_gap=3.0)
    left, top = (full.width - size) // 2, (full.height - size) // 2
    crop = full.crop((left, top, left + size, top + size))
    return np.ascontiguousarray(np.asarray(crop, dtype=np.uint8).transpose(2, 0, 1))


def best_ms(fn: Callable[[Any], Any], items: list[Any], repeats: int) -> float:
    """Milliseconds per item of the fastest of ``repeats`` passes of ``fn`` over ``items``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return 1000 * best / len(items)


def main() -> None:
    """Time each step and print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=None, help="the corpus is made here (reused when present)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(describe(), flush=True)
    from benchmarks.throughput import photo_corpus
    from lookalike.config import Settings
    from lookalike.indexer.decode import load_image
    from lookalike.indexer.describe import MediaDescriptor
    from lookalike.indexer.embedders.registry import create_embedder

    work = args.work or Path(tempfile.mkdtemp(prefix="lookalike-preprocess-"))
    files = sorted(photo_corpus(work / "images500", count=500).iterdir())
    pre = create_embedder(Settings().model, device="cpu").preprocess
    descriptor = MediaDescriptor.from_settings(Settings())
    decoded = [load_image(p, draft=pre.resize)[0] for p in files]
    trimmed = [descriptor.clean_image(im) for im in decoded]
    rows = [
        (
            "decode (`load_image`, JPEG draft mode)",
            best_ms(lambda p: load_image(p, draft=pre.resize), files, args.repeats),
        ),
        ("border trim (`MediaDescriptor.clean_image`)", best_ms(descriptor.clean_image, decoded, args.repeats)),
        ("preprocess (product): `Image.resize(box=...)` of the crop box", best_ms(pre, trimmed, args.repeats)),
        (
            "resize the whole picture, then crop (the alternative)",
            best_ms(lambda im: resize_then_crop(im, pre.size, pre.resize), trimmed, args.repeats),
        ),
    ]
    diff = np.mean(
        [np.abs(pre(im).astype(np.int16) - resize_then_crop(im, pre.size, pre.resize)).mean() for im in trimmed]
    )
    sizes = [min(im.size) for im in decoded]
    print(
        f"{len(files)} files; decoded short side {min(sizes)}-{max(sizes)} px; model input {pre.size} px "
        f"(short side to {pre.resize}, {pre.interpolation}); best of {args.repeats} passes\n"
    )
    print("| step | ms per photo |\n|---|---|")
    for label, ms in rows:
        print(f"| {label} | {ms:.2f} |")
    print(f"\nthe two preprocessing results differ by {diff:.2f} of 255 levels on average")
    print(f"\n{load_average()} at end")


if __name__ == "__main__":
    main()
