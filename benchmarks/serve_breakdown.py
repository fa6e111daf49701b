"""Where one search request's time goes, in-process, on the library ``serve_load`` builds (100,000 vectors).

The process is tuned as ``lookalike serve`` tunes itself (``workspace.serve_threads``, called by ``api.app.run``:
one torch thread, one FAISS thread per request). The queries are ``serve_load``'s uploads (real photos, <= 640 px
JPEG), written to files as the upload route writes them. Each step of an upload query is timed with the product's
own functions, once per upload per round (``--rounds``), and the table gives the median over all of them:

  * decode + border trim  ``MediaDescriptor.pictures`` (Pillow, JPEG draft mode, border trim) as the searcher calls it
  * preprocess            ``Preprocess.__call__`` (centre crop resampled to 224 px, uint8)
  * forward pass          ``Embedder.embed_pixels`` of that one picture (EfficientNet-Lite0 on the CPU)
  * FAISS search          ``VectorIndex.search`` of the memory-mapped ``items`` index, k = 10 x ``OVERFETCH``
  * hydrate               ``Catalog.hydrate`` of the ids found (files and time ranges from SQL)

then whole requests through the service object the HTTP app shares (``api.service.Service``), without HTTP:
``search_upload`` with uploads decoded in this process (``Settings.workers=0``) and in the default supervised
worker processes, and ``search_media`` (a search by id, the ``/api/search/similar`` route). CPU ms is
this process's CPU time (``time.process_time``): a worker process's decoding is not in it.

    python -m benchmarks.serve_breakdown [--vectors 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import describe, load_average


def timed(fn: Callable[[], Any], out: dict[str, list[float]], key: str) -> Any:
    """Call ``fn``, append its wall and CPU milliseconds to ``out[key]`` and ``out[key + ' cpu']``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    out.setdefault(key, []).append(1000 * (time.perf_counter() - wall))
    out.setdefault(key + " cpu", []).append(1000 * (time.process_time() - cpu))
    return result


def steps(service: Any, files: list[Path], rounds: int) -> dict[str, list[float]]:
    """The upload query's steps, each timed on its own."""
    from lookalike.search.searcher import OVERFETCH

    searcher = service.workspace.searcher()
    store, pre, s = searcher.store, searcher.embedder.preprocess, service.settings
    index = store.index("items")
    out: dict[str, list[float]] = {}
    for _ in range(rounds):
        for path in files:
            pictures, _ = timed(
                lambda path=path: searcher.video.pictures(
                    path, max_pixels=s.max_image_pixels, max_bytes=s.max_image_bytes, draft=pre.resize
                ),
                out,
                "decode + border trim",
            )
            pixels = timed(lambda pictures=pictures: np.stack([pre(p) for p in pictures]), out, "preprocess")
            vector = timed(lambda pixels=pixels: searcher.embedder.embed_pixels(pixels), out, "forward pass")[0]
            found = timed(lambda vector=vector: index.search(vector[None, :], 10 * OVERFETCH), out, "FAISS search")
            timed(lambda found=found: store.catalog.hydrate(store.info.id, found.ids[0].tolist()), out, "hydrate")
    return out


def requests(home: Path, files: list[Path], ids: list[int], rounds: int) -> dict[str, list[float]]:
    """Whole queries through ``Service``: uploads decoded in this process and in worker processes, by id."""
    from lookalike.api.service import Service
    from lookalike.config import Settings
    from lookalike.types import MediaKind

    out: dict[str, list[float]] = {}
    for workers, label in ((0, "upload, decoded in this process"), (None, "upload, decoded in a worker process")):
        service = Service(Settings(home=home, workers=workers))
        try:
            service.warm_up()
            service.search_upload(files[0], MediaKind.IMAGE, "warm-up", 10)
            for _ in range(rounds):
                for path in files:
                    result = timed(
                        lambda p=path, svc=service: svc.search_upload(p, MediaKind.IMAGE, p.name, 10), out, label
                    )
                    assert result.error is None and len(result.hits) == 10, result.error
            if workers == 0:
                for _ in range(rounds):
                    for media_id in ids:
                        result = timed(lambda m=media_id, svc=service: svc.search_media(m, 10), out, "search by id")
                        assert len(result.hits) == 10
        finally:
            service.close()
    return out


def main() -> None:
    """Time the steps and whole requests, print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vectors", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from benchmarks.serve_load import build_library, upload_queries
    from lookalike.api.service import Service
    from lookalike.config import Settings
    from lookalike.workspace import for_serving, serve_threads

    serve_threads()  # what `lookalike serve` does (api.app.run)
    print(describe(), flush=True)
    home = build_library(args.vectors)
    with tempfile.TemporaryDirectory(prefix="lookalike-breakdown-") as tmp:
        files = []
        for n, data in enumerate(upload_queries()):
            files.append(Path(tmp) / f"query{n:02d}.jpg")
            files[-1].write_bytes(data)
        service = Service(for_serving(Settings(home=home, workers=0)))
        try:
            service.warm_up()
            store = service.workspace.searcher().store
            ok = [m.id for m in store.catalog.known_media(store.info.id).values() if m.status == "ok"]
            ids = [int(i) for i in np.random.default_rng(0).choice(ok, len(files), replace=False)]
            times = steps(service, files, args.rounds)
            vectors, factory = len(store.index("items")), store.index("items").factory
        finally:
            service.close()
        times |= requests(home, files, ids, args.rounds)
    print(
        f"library {home}: {vectors:,} vectors in `items` ({factory}, memory-mapped); {len(files)} uploads x "
        f"{args.rounds} rounds; one torch and one FAISS thread (as `lookalike serve`)\n"
    )
    print("| step of one query | wall ms, median | CPU ms, median | wall ms, p90 |\n|---|---|---|---|")
    for key, values in times.items():
        if key.endswith(" cpu"):
            continue
        cpu = statistics.median(times[key + " cpu"])
        print(f"| {key} | {statistics.median(values):.1f} | {cpu:.1f} | {np.percentile(values, 90):.1f} |")
    print(f"\n{load_average()} at end")


if __name__ == "__main__":
    main()
