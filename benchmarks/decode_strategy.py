"""Where decoding runs while the model embeds: images/s of the product's ``embed_jobs`` alone, per decode strategy.

The corpus is ``throughput``'s 500 real photos and edited copies; the jobs are the product's plan of it
(``make_plan``: byte-identical files are copies, not jobs). Only ``embed_jobs`` is timed (decode, preprocess,
forward passes, pooling): no walk, hash or writes. The model is loaded once and warmed up; the strategies then run
in turn, ``--rounds`` times, and the table gives each one's median and best round.

  * supervised decode process   the default on a 2-core CPU: ``Settings.workers=1`` (``DecodePool``: one spawned
                                process, crash, hang and memory limits)
  * background thread           ``Settings.workers=0``: the product's ``ThreadedStream`` over ``decode_all``
  * inline in the main thread   ``workers=0`` with ``ThreadedStream`` replaced by the bare stream: each file is
                                decoded between forward passes
  * one DataLoader worker       ``workers=0`` with the stream read through ``torch.utils.data.DataLoader`` with one
                                worker process (forked, the default) instead of the thread: how indexing decoded
                                before its supervised processes

The last two swap only the loader ``embed_jobs`` iterates (by patching the ``ThreadedStream`` name it looks up), so
the decoding, batching, embedding and pooling measured are the product's.

    python -m benchmarks.decode_strategy [--work DIR] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.machine import describe, load_average

STRATEGIES = ("supervised decode process", "background thread", "inline in the main thread", "one DataLoader worker")


def _first(batch: list[Any]) -> Any:
    return batch[0]


def _data_loader(stream: Iterator[Any]) -> Any:
    """``decode_all``'s stream (not started yet) read in one forked DataLoader worker process."""
    from torch.utils.data import DataLoader, IterableDataset

    class Messages(IterableDataset):
        def __iter__(self) -> Iterator[Any]:
            return iter(stream)

    return DataLoader(Messages(), batch_size=1, num_workers=1, collate_fn=_first)


@contextlib.contextmanager
def _loader(strategy: str) -> Iterator[int]:
    """The ``workers`` setting for ``strategy``, with ``embed_jobs``' loader swapped while inside."""
    import lookalike.indexer.embed as embed

    if strategy == "supervised decode process":
        yield 1
        return
    if strategy == "background thread":
        yield 0
        return
    saved = embed.ThreadedStream
    embed.ThreadedStream = iter if strategy == "inline in the main thread" else _data_loader
    try:
        yield 0
    finally:
        embed.ThreadedStream = saved


def main() -> None:
    """Run the strategies in turn and print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=None, help="the corpus is made here (reused when present)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(describe(), flush=True)
    from benchmarks.throughput import photo_corpus
    from lookalike.config import Settings
    from lookalike.indexer.discover import walk
    from lookalike.indexer.embed import embed_jobs
    from lookalike.indexer.embedders.registry import create_embedder
    from lookalike.indexer.plan import make_plan

    work = args.work or Path(tempfile.mkdtemp(prefix="lookalike-decode-"))
    corpus = photo_corpus(work / "images500", count=500)
    jobs = make_plan(walk(corpus), {}).jobs
    embedder = create_embedder(Settings().model, device="cpu")
    list(embed_jobs(jobs[:64], embedder, Settings(workers=0)))  # model load and first passes
    rates: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    loads = []
    for _ in range(args.rounds):
        for strategy in STRATEGIES:
            with _loader(strategy) as workers:
                start = time.perf_counter()
                done = list(embed_jobs(jobs, embedder, Settings(workers=workers)))
                rates[strategy].append(len(done) / (time.perf_counter() - start))
            assert all(d.record.status == "ok" for d in done), strategy
        loads.append(f"{os.getloadavg()[0]:.2f}")
    print(f"{len(jobs)} images decoded and embedded per round (batch {Settings().batch_size}), {args.rounds} rounds\n")
    print("| decode strategy | images/s, median | best | rounds |\n|---|---|---|---|")
    for strategy, r in rates.items():
        rounds = ", ".join(f"{x:.1f}" for x in r)
        print(f"| {strategy} | {statistics.median(r):.1f} | {max(r):.1f} | {rounds} |")
    print(f"\n1-minute load average after each round: {', '.join(loads)}; {load_average()} at end")


if __name__ == "__main__":
    main()
