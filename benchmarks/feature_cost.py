"""What extracting one picture's local features costs: the product's keypoints shared out over the picture's quarters
(``search/features.py``: every keypoint described, the kept rows taken) against the 1,000 strongest overall, as
OpenCV's ``nfeatures=1000`` keeps them (the extraction before), on the pictures of a ``dupes_quality`` half.

Both are timed on the same grey pictures (decoded and scaled to the 640 px the product extracts at, outside the
timing), OpenCV on one thread, alternating rounds so that a busy machine weighs on both alike; also how many
keypoints each kept in the quarter of the picture that had the fewest.

    python -m benchmarks.feature_cost --work DIR [--half dev] [--count 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.machine import describe
from lookalike.search import features


def _grey(path: Path) -> np.ndarray:
    """The picture in grey levels at the long side the product extracts at."""
    with Image.open(path) as im:
        small = im.convert("L")
    k = max(1.0, max(small.size) / features.MAX_SIDE)
    if k > 1.0:
        small = small.resize((round(small.width / k), round(small.height / k)), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.uint8)


def _strongest(gray: np.ndarray) -> tuple[Any, np.ndarray | None]:
    """The extraction before: the 1,000 strongest keypoints overall."""
    return features._sift().detectAndCompute(gray, None)


def _fewest_in_a_quarter(keypoints: Any, gray: np.ndarray) -> int:
    """Keypoints kept in the quarter of the picture that holds the fewest."""
    if not len(keypoints):
        return 0
    h, w = gray.shape
    pts = np.array([k.pt for k in keypoints])
    cells = np.minimum((pts[:, 1] * 2 // h), 1) * 2 + np.minimum((pts[:, 0] * 2 // w), 1)
    return int(np.bincount(cells.astype(int), minlength=4).min())


def main(argv: list[str] | None = None) -> None:
    import cv2

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--half", default="dev")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    print(describe(), flush=True)
    cv2.setNumThreads(1)
    half = args.work / args.half
    files = sorted(json.loads((half / "media.json").read_text())["files"])
    step = max(1, len(files) // args.count)
    grays = [_grey(half / "media" / rel) for rel in files[::step][: args.count]]
    ways: dict[str, Callable[[np.ndarray], tuple[Any, np.ndarray | None]]] = {
        "1,000 strongest overall (before)": _strongest,
        "shared out over the quarters (product)": features._detect,
    }
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, way in ways.items():
            start = time.perf_counter()
            for g in grays:
                way(g)
            seconds[name].append((time.perf_counter() - start) / len(grays))
    found = [len(features._sift(limit=0).detect(g, None)) for g in grays]
    print(
        f"\n{args.half}: {len(grays)} pictures at {features.MAX_SIDE} px, OpenCV on one thread, {args.rounds} rounds; "
        f"keypoints found: median {int(np.median(found))}, {sum(n > features.N_FEATURES for n in found)} pictures "
        f"with more than {features.N_FEATURES}\n"
    )
    print("| extraction | ms a picture (median round) | fewest kept in a quarter, median over pictures |")
    print("|---|---|---|")
    for name, way in ways.items():
        fewest = statistics.median(_fewest_in_a_quarter(way(g)[0], g) for g in grays)
        print(f"| {name} | {1000 * statistics.median(seconds[name]):.1f} | {fewest:g} |")


if __name__ == "__main__":
    main()
