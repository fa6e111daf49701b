"""The candidate stage of ``lookalike dupes`` at scale: wall time, pairs, recall of planted copies, peak memory.

Vectors as in ``index_scale``: 2,000 real embeddings (cached in the work folder as ``real_embeddings.npy``)
expanded to N by blending random pairs. About 1% of them are then replaced by planted near-duplicates: clusters of
one vector and 1-3 small-noise copies of it (cosine 0.96-0.999), every pair inside a cluster a true pair.

Each size becomes a real library (SQLite, the default), written through the storage API in batches
(``CollectionStore.write``) and indexed with ``store.rebuild``: with the factory ``choose_factory`` picks (IVF past
100k vectors) and, at 100k and below, also with ``IVF1024,Flat``. That build is timed apart. The candidate stage is
then the product's own ``image_candidates`` with ``VerifyRule``'s ``k`` and ``floor``, in a fresh process that
opens the library as ``Workspace.store()`` does (``load(repair=False, mmap=True)``). Its memory is read in that
process: ``VmHWM`` from ``/proc/self/status`` at the end (peak RSS, which counts the pages of the memory-mapped
index file it touched) and, sampled every 0.1 s from ``/proc/self/status``, the peak of ``RssAnon`` (the process's
own memory, without the shared, reclaimable mapped file). Calls into the catalog (SQL read) and ``index.search``
(FAISS) are timed on the way, the rest of the stage is the pair bookkeeping; the stage's CPU seconds over all
threads are printed too (this VM is shared: wall time swings with the load beside it, CPU time much less).

Exact search is the ceiling: where blends crowd, a planted copy can have more than ``k`` closer neighbours and no
index makes it a candidate. For 1,000 sampled planted pairs, numpy brute force over the stored vectors says which
exact search finds; the last column is the share of those the index found.

Libraries stay in ``--work`` and are reused (with their recorded build times) when a run finds them complete.

    python -m benchmarks.dupes_scale [--sizes 100000 1000000] [--work .bench/dupes_scale]
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.machine import describe

if TYPE_CHECKING:
    from lookalike.storage.library import CollectionStore

WORK = Path(".bench/dupes_scale")
COLLECTION = "bench"
SHARE = 0.01  # of the vectors are planted copies
GENERATE = 50_000  # vectors made (and planted into) at a time
BATCH = 5_000  # files per CollectionStore.write


def base_embeddings(work: Path) -> np.ndarray:
    """The 2,000 real embeddings of ``index_scale``, computed once and kept in ``work``."""
    path = work / "real_embeddings.npy"
    if path.exists():
        return np.load(path)
    from benchmarks.index_scale import real_embeddings

    base = real_embeddings()
    work.mkdir(parents=True, exist_ok=True)
    np.save(path, base)
    return base


def plant(vectors: np.ndarray, rng: np.random.Generator, share: float = SHARE) -> np.ndarray:
    """Overwrite about ``share`` of the rows with small-noise copies of other rows, in place.

    Clusters are one source row and 1-3 copies of it; each copy is the source plus Gaussian noise of norm
    0.05-0.3 (cosine 0.96-0.999 to the source, 0.92 and up between copies), renormalised.

    Returns:
        every pair of rows inside a cluster, ``(n, 2)`` with the smaller row first.
    """
    n, dim = vectors.shape
    order = rng.permutation(n)
    pairs: list[tuple[int, int]] = []
    copies, pos = 0, 0
    while copies < share * n and pos + 4 <= n:
        size = int(rng.integers(2, 5))
        cluster = order[pos : pos + size]
        pos += size
        noise = rng.normal(size=(size - 1, dim)).astype(np.float32)
        noise *= rng.uniform(0.05, 0.3, size=(size - 1, 1)).astype(np.float32) / np.linalg.norm(noise, axis=1)[:, None]
        copy = vectors[cluster[0]] + noise
        vectors[cluster[1:]] = copy / np.linalg.norm(copy, axis=1, keepdims=True)
        copies += size - 1
        pairs += [(min(a, b), max(a, b)) for i, a in enumerate(cluster) for b in cluster[i + 1 :]]
    return np.array(pairs, np.int64).reshape(-1, 2)


def write_vectors(store: CollectionStore, base: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Write ``n`` blended image vectors with planted copies as fake files; returns the planted vector-id pairs."""
    from benchmarks.index_scale import expand
    from lookalike.storage.records import MediaRecord, VectorRecord

    rng = np.random.default_rng(seed)
    planted = []
    for start in range(0, n, GENERATE):
        vectors = expand(base, min(GENERATE, n - start), rng)
        pairs = plant(vectors, rng)
        ids = []
        for lo in range(0, len(vectors), BATCH):
            batch = [
                (
                    MediaRecord(
                        path=f"/bench/img_{start + lo + i:07d}.jpg", kind="image", size=1, mtime_ns=0, status="ok"
                    ),
                    [VectorRecord("image", vec)],
                )
                for i, vec in enumerate(vectors[lo : lo + BATCH])
            ]
            ids.append(store.write(batch).added_ids)
        planted.append(np.concatenate(ids)[pairs])
    return np.vstack(planted)


def build_library(home: Path, n: int, factory: str, base: np.ndarray) -> dict[str, float]:
    """Write the library at ``home`` and build its ``items`` index with ``factory`` (run in a child process).

    Returns:
        seconds spent writing the rows and building plus saving the index.
    """
    from lookalike.storage.library import Library
    from lookalike.storage.locks import writer_lock

    shutil.rmtree(home, ignore_errors=True)
    start = time.perf_counter()
    with Library(home, f"sqlite:///{home / 'lookalike.db'}") as lib, writer_lock(home):
        store = lib.create_collection(COLLECTION, "efficientnet_lite0", "bench", base.shape[1], {}, {})
        planted = write_vectors(store, base, n)
        written = time.perf_counter()
        del store  # its in-memory Flat mirror of every vector: free it before the IVF index is built
        gc.collect()
        store = lib.open_collection(COLLECTION)
        store.rebuild(factories={"items": factory})
        del store
    np.save(home / "planted.npy", planted)
    end = time.perf_counter()
    times = {"write": written - start, "index": end - written, "total": end - start}
    (home / "build.json").write_text(json.dumps({"vectors": n, "factory": factory, **times}))
    return times


class _PeakAnon:
    """Samples ``RssAnon`` of this process from ``/proc/self/status`` on a thread; ``peak`` in MB."""

    def __init__(self, every: float = 0.1) -> None:
        self.every = every
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _status_mb("RssAnon"))
            self._stop.wait(self.every)

    def __enter__(self) -> _PeakAnon:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_mb("RssAnon"))


def _status_mb(field: str) -> float:
    """A memory field of ``/proc/self/status`` in MB (``VmHWM``: peak RSS since this process image started; unlike
    ``ru_maxrss`` it does not carry over the RSS of the parent that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _timed_iter(gen: Callable[..., Iterator[Any]], spent: dict[str, float], key: str) -> Callable[..., Iterator[Any]]:
    """``gen`` with the time spent inside it added to ``spent[key]``."""

    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        it = gen(*args, **kwargs)
        while True:
            t = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                spent[key] += time.perf_counter() - t
                return
            spent[key] += time.perf_counter() - t
            yield item

    return wrapper


def _timed(fn: Callable[..., Any], spent: dict[str, float], key: str) -> Callable[..., Any]:
    """``fn`` with the time spent inside it added to ``spent[key]``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - t

    return wrapper


def candidate_stage(home: Path) -> dict[str, Any]:
    """Open the library as a reader and run the product's ``image_candidates`` (run in a child process).

    Returns:
        seconds (load, stage, its CPU time over all threads, SQL read, FAISS search), pairs, planted pairs, which
        of them were found (``hit``) and how many, peak RSS and peak anonymous RSS in MB.
    """
    from lookalike.search.candidates import image_candidates
    from lookalike.search.image_dupes import VerifyRule
    from lookalike.storage.library import Library

    rule = VerifyRule()
    spent = {"sql": 0.0, "search": 0.0}
    with _PeakAnon() as anon, Library(home, f"sqlite:///{home / 'lookalike.db'}") as lib:
        start = time.perf_counter()
        store = lib.open_collection(COLLECTION)
        store.load(repair=False, mmap=True)  # as Workspace.store() does
        loaded = time.perf_counter()
        catalog = store.catalog
        catalog.iter_vectors = _timed_iter(catalog.iter_vectors, spent, "sql")  # type: ignore[method-assign]
        catalog.vector_ids = _timed(catalog.vector_ids, spent, "sql")  # type: ignore[method-assign]
        index = store.index("items")
        index.search = _timed(index.search, spent, "search")  # type: ignore[method-assign]
        cpu_loaded = time.process_time()
        cands = image_candidates(store, k=rule.k, floor=rule.floor, nprobe=rule.nprobe)
        end, cpu_end = time.perf_counter(), time.process_time()
        factory = index.factory
    planted = np.load(home / "planted.npy")
    top = int(cands.ids.max()) + 1 if len(cands.ids) else 1
    found = cands.ids[cands.a] * top + cands.ids[cands.b]
    hit = np.isin(planted[:, 0] * top + planted[:, 1], found)
    return {
        "factory": factory,
        "load": loaded - start,
        "stage": end - loaded,
        "cpu": cpu_end - cpu_loaded,
        "sql": spent["sql"],
        "search": spent["search"],
        "pairs": len(cands),
        "planted": len(planted),
        "found": int(hit.sum()),
        "hit": hit,
        "peak_rss_mb": _status_mb("VmHWM"),
        "peak_anon_mb": anon.peak,
    }


def exact_ceiling(home: Path, sample: int = 1000) -> dict[str, np.ndarray]:
    """Which of a sample of planted pairs exact search would make candidates (run in a child process).

    A pair is a candidate when one member is among the other's ``k`` nearest images (itself left out) at cosine
    >= ``floor``. Blends crowd some regions, where a planted copy can have more than ``k`` closer neighbours, so
    even exact search misses those: this is the ceiling the index is compared with. The stored vectors are streamed
    from the catalog and scored against both members of each sampled pair with numpy.

    Returns:
        ``pick``: the sampled rows of ``planted.npy``; ``exact``: whether exact search makes each a candidate.
    """
    from lookalike.search.image_dupes import VerifyRule
    from lookalike.storage.library import Library
    from lookalike.types import Level

    rule = VerifyRule()
    planted = np.load(home / "planted.npy")
    pick = np.random.default_rng(1).choice(len(planted), min(sample, len(planted)), replace=False)
    members = np.unique(planted[pick])
    with Library(home, f"sqlite:///{home / 'lookalike.db'}") as lib:
        store = lib.open_collection(COLLECTION)

        def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            return store.catalog.iter_vectors(store.info.id, [Level.IMAGE.value], store.dim)

        queries = np.zeros((len(members), store.dim), np.float32)
        for ids, mat in chunks():
            mine = np.isin(ids, members)
            queries[np.searchsorted(members, ids[mine])] = mat[mine]
        best = np.full((len(members), rule.k), -np.inf, np.float32)
        best_ids = np.full((len(members), rule.k), -1, np.int64)
        for ids, mat in chunks():
            scores = queries @ mat.T
            scores[members[:, None] == ids[None, :]] = -np.inf  # not the query itself
            scores = np.hstack([best, scores])
            cand_ids = np.hstack([best_ids, np.broadcast_to(ids, (len(members), len(ids)))])
            top = np.argpartition(-scores, rule.k - 1, axis=1)[:, : rule.k]
            best, best_ids = np.take_along_axis(scores, top, 1), np.take_along_axis(cand_ids, top, 1)
    near = {int(m): set(best_ids[i][best[i] >= rule.floor].tolist()) for i, m in enumerate(members)}
    exact = np.array([int(b) in near[int(a)] or int(a) in near[int(b)] for a, b in planted[pick]])
    return {"pick": pick, "exact": exact}


def _in_child(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a fresh (spawned) process: its memory is its own and is given back when it ends."""
    with mp.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(fn, args)


def factories(n: int) -> list[str]:
    """What ``lookalike`` picks for ``n`` vectors and, up to 100k where that is Flat, an IVF index as well."""
    from lookalike.storage.index_policy import FLAT_LIMIT, choose_factory

    return list(dict.fromkeys([choose_factory(n), *(["IVF1024,Flat"] if n <= FLAT_LIMIT else [])]))


def measure(work: Path, n: int, factory: str, base: np.ndarray) -> dict[str, Any]:
    """Build (or reuse) the library of ``n`` vectors indexed with ``factory``, then measure its candidate stage."""
    home = work / f"home_{n}_{factory.split(',')[0]}"
    built = home / "build.json"
    if built.exists() and json.loads(built.read_text()).get("factory") == factory:
        times = json.loads(built.read_text())
    else:
        times = _in_child(build_library, home, n, factory, base)
    stage = _in_child(candidate_stage, home)
    ceiling = _in_child(exact_ceiling, home)
    exact = ceiling["exact"]
    found = stage["hit"][ceiling["pick"]][exact]
    return {"n": n, "build": times, **stage, "sampled": len(exact), "exact": int(exact.sum()), "of_exact": found}


def main() -> None:
    """Build the libraries and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--work", type=Path, default=WORK, help="libraries are kept here and reused when complete")
    args = ap.parse_args()
    print(describe(), flush=True)
    from lookalike.search.image_dupes import VerifyRule

    rule = VerifyRule()
    base = base_embeddings(args.work)
    print(
        f"{len(base)} real embeddings (dim {base.shape[1]}); image_candidates(k={rule.k}, floor={rule.floor}, "
        f"nprobe={rule.nprobe}),"
    )
    print(
        "SQLite; FAISS threads as in the machine line; peak RSS counts the touched pages of the memory-mapped "
        "index, anon RSS does not\n"
    )
    print("| vectors | index | build library s | candidate stage s | pairs | planted pairs found | peak RSS MB |")
    print("|---|---|---|---|---|---|---|", flush=True)
    rows = []
    for n in args.sizes:
        for factory in factories(n):
            r = measure(args.work, n, factory, base)
            rows.append(r)
            found = f"{r['found']:,} / {r['planted']:,} ({r['found'] / max(r['planted'], 1):.3f})"
            print(
                f"| {n:,} | {factory} | {r['build']['total']:.0f} | {r['stage']:.0f} | {r['pairs']:,} | {found} "
                f"| {r['peak_rss_mb']:,.0f} |",
                flush=True,
            )
    print_details(rows)


def print_details(rows: list[dict[str, Any]]) -> None:
    """Where the time went, the stage's own memory, and recall against exact search on a sample."""
    print(
        "\n| vectors | index | rows written s | index built s | load s | SQL read s | FAISS search s | bookkeeping s "
        "| stage CPU s | peak anon RSS MB | sampled planted pairs exact search finds | of those found |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rest = r["stage"] - r["sql"] - r["search"]
        recall = f"{r['of_exact'].sum():,} ({r['of_exact'].mean() if r['exact'] else 1.0:.3f})"
        print(
            f"| {r['n']:,} | {r['factory']} | {r['build']['write']:.0f} | {r['build']['index']:.0f} | {r['load']:.1f} "
            f"| {r['sql']:.0f} | {r['search']:.0f} | {rest:.0f} | {r['cpu']:.0f} | {r['peak_anon_mb']:,.0f} "
            f"| {r['exact']:,} / {r['sampled']:,} | {recall} |"
        )


if __name__ == "__main__":
    main()
