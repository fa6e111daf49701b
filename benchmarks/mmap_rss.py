"""What a searcher process's memory grows by when it opens an index file memory-mapped vs read into memory.

An exact ``Flat`` index of N random unit vectors (default 500,000 x 256) is built and saved with the product's
``VectorIndex``. Then, for each way of loading it (``VectorIndex.load(path, mmap=True)``, what searchers do, and
``mmap=False``), a fresh spawned process reads its own ``/proc/self/status`` after importing FAISS, after loading
the file, and after one search (an exact search reads every vector). Printed: how much ``VmRSS`` grew, and of it
``RssAnon`` (memory the process owns) and ``RssFile`` (pages of the mapped file: the page cache, shared by every
process that maps the file and reclaimable by the kernel).

    python -m benchmarks.mmap_rss [--vectors 500000] [--dim 256] [--work DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.machine import describe

FIELDS = ("VmRSS", "RssAnon", "RssFile")


def status_mb() -> dict[str, float]:
    """This process's ``VmRSS``, ``RssAnon`` and ``RssFile`` in MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in FIELDS:
            out[key] = int(value.split()[0]) / 1024
    return out


def load_and_search(path: Path, mmap: bool) -> dict[str, dict[str, float]]:
    """In a fresh process: memory after import, after loading ``path``, after one search."""
    from lookalike.storage.vectors import VectorIndex

    VectorIndex.create(8)  # FAISS imported and initialised before the baseline
    before = status_mb()
    index = VectorIndex.load(path, mmap=mmap)
    loaded = status_mb()
    index.search(np.ones((1, index.dim), np.float32) / np.sqrt(index.dim), 10)
    searched = status_mb()
    return {
        "loaded": {k: loaded[k] - before[k] for k in FIELDS},
        "searched": {k: searched[k] - before[k] for k in FIELDS},
    }


def build(path: Path, n: int, dim: int) -> None:
    """A Flat index of ``n`` random unit vectors, saved at ``path``."""
    from lookalike.storage.vectors import VectorIndex

    rng = np.random.default_rng(0)
    index = VectorIndex.create(dim)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        v = rng.normal(size=(m, dim)).astype(np.float32)
        index.add(np.arange(start, start + m), v / np.linalg.norm(v, axis=1, keepdims=True))
    index.save(path)


def main() -> None:
    """Build the index, load it both ways in fresh processes, print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vectors", type=int, default=500_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--work", type=Path, default=None, help="where the index file is written (a temporary folder)")
    args = ap.parse_args()
    print(describe(), flush=True)
    with tempfile.TemporaryDirectory(dir=args.work, prefix="lookalike-mmap-") as tmp:
        path = Path(tmp) / "items.faiss"
        build(path, args.vectors, args.dim)
        size = path.stat().st_size / 2**20
        results = {}
        for mmap in (True, False):
            with mp.get_context("spawn").Pool(1) as pool:
                results[mmap] = pool.apply(load_and_search, (path, mmap))
    print(f"Flat index of {args.vectors:,} x {args.dim} float32: file {size:,.0f} MB; growth of the process's memory\n")
    print("| load | after load: RSS MB | of it anon / file | after one search: RSS MB | of it anon / file |")
    print("|---|---|---|---|---|")
    for mmap, r in results.items():
        label = "memory-mapped (`mmap=True`, searchers)" if mmap else "read into memory (`mmap=False`)"
        cells = " | ".join(
            f"{r[s]['VmRSS']:+,.0f} | {r[s]['RssAnon']:+,.0f} / {r[s]['RssFile']:+,.0f}" for s in ("loaded", "searched")
        )
        print(f"| {label} | {cells} |")


if __name__ == "__main__":
    main()
