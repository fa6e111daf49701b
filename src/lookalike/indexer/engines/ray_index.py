"""FAISS work on a Ray cluster: an index's shards filled by Ray tasks (``reindex --ray``), and duplicate candidates
searched by actors that map the saved index file (``dupes --ray``).

The driver reads the stored vectors in chunks and sends them out with a bounded window of tasks in flight, so
neither it nor the object store ever holds all of them; results come back in the chunks' order, so what the
driver builds equals what it would have built alone (``tests/indexer/test_ray_index.py``). Actors read the index
file by path: it must live on storage every node mounts at the same path, like the media (README, "Scaling out").
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import ClusterError, LookalikeError
from lookalike.indexer.engines.ray import joined, task_cause
from lookalike.storage.index_files import SHARD_VECTORS, ShardEncoder
from lookalike.storage.vectors import Neighbours, VectorIndex

IN_FLIGHT_PER_CPU = 2  # chunks sent out per cluster CPU before the driver waits for the oldest
IN_FLIGHT_BYTES = 1 << 30  # and at most this much of them (chunks of 50,000 1280-d vectors are 256 MB)
ACTOR_GRACE_SECONDS = 10.0  # the search uses the actors started by then (at least one) ...
ACTOR_START_SECONDS = 120.0  # ... waiting this long for the first (no free CPU on the cluster) before it stops


def _window(ray: Any, chunk_bytes: int) -> int:
    """Chunks in flight: two per cluster CPU, within :data:`IN_FLIGHT_BYTES` (at least 2)."""
    per_cpu = IN_FLIGHT_PER_CPU * int(ray.cluster_resources().get("CPU", 1))
    return max(2, min(per_cpu, IN_FLIGHT_BYTES // max(1, chunk_bytes)))


def _failed(what: str, error: BaseException) -> LookalikeError:
    """The lookalike error a task raised, or a ClusterError saying what failed and why (the cause's own message,
    not Ray's task header)."""
    cause = task_cause(error)
    if cause is not None:
        return cause
    inner = getattr(error, "cause", None)
    reason = str(inner if isinstance(inner, BaseException) else error).strip()
    reason = re.sub(r"\x1b\[[0-9;]*m", "", reason).splitlines()[-1] if reason else type(error).__name__
    return ClusterError(f"{what} failed on the Ray cluster: {reason}")


def _in_order(ray: Any, submitted: Iterable[Any], window: int) -> Iterator[Any]:
    """The results of the tasks ``submitted`` (object refs, submitted as the iterable is read), in order, with at
    most ``window`` of them in flight: the next is submitted only once the oldest came back."""
    pending: deque[Any] = deque()
    for ref in submitted:
        pending.append(ref)
        if len(pending) >= window:
            yield ray.get(pending.popleft())
    while pending:
        yield ray.get(pending.popleft())


def _fill(blob: np.ndarray, factory: str, ids: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """A Ray task: a copy of the trained empty index ``blob`` filled with one chunk, serialized."""
    shard = VectorIndex.from_bytes(blob, factory)
    shard.add(ids, vectors)
    return shard.to_bytes()


@contextmanager
def ray_shard_encoder(address: str) -> Iterator[ShardEncoder]:
    """A shard encoder (:data:`~lookalike.storage.index_files.ShardEncoder`) whose shards are filled by Ray tasks
    (one CPU each), on the cluster at ``address`` (``auto``, ``local`` or an address) for the ``with`` block.

    Raises:
        ClusterError: the cluster cannot be joined, or a task failed.
    """
    with joined(address) as ray:
        fill = ray.remote(num_cpus=1, max_retries=3)(_fill)
        yield partial(_encode, ray, fill)


def _encode(
    ray: Any, fill: Any, empty: VectorIndex, chunks: Iterable[tuple[np.ndarray, np.ndarray]]
) -> Iterator[VectorIndex]:
    """Copies of the trained ``empty`` index filled by the Ray task ``fill``, one per chunk, in order."""
    blob = ray.put(empty.to_bytes())
    submitted = (fill.remote(blob, empty.factory, ids, vectors) for ids, vectors in chunks)
    try:
        for filled in _in_order(ray, submitted, _window(ray, SHARD_VECTORS * empty.dim * 4)):
            yield VectorIndex.from_bytes(filled, empty.factory)
    except ray.exceptions.RayError as e:
        raise _failed("filling an index shard", e) from None


class _IndexReader:
    """A Ray actor: one saved index file, memory-mapped read-only, answering searches for chunks of queries (a file
    it cannot read is said by its searches: an error in an actor's constructor reaches the driver without its
    message)."""

    def __init__(self, path: str, factory: str) -> None:
        self.index: VectorIndex | None = None
        self.error: LookalikeError | None = None
        try:
            if not Path(path).is_file():
                raise FileNotFoundError("no such file")
            self.index = VectorIndex.load(Path(path), factory, mmap=True)
        except (OSError, RuntimeError) as e:
            reason = str(e).strip().splitlines()[0].rsplit(": ", 1)[-1] or type(e).__name__
            self.error = ClusterError(
                f"a Ray node cannot read the index file {path} ({reason}): is the library home on storage every "
                "node mounts at the same path?"
            )

    def ready(self) -> bool:
        return True

    def search(self, vectors: np.ndarray, k: int, nprobe: int | None) -> tuple[np.ndarray, np.ndarray]:
        if self.index is None:
            assert self.error is not None
            raise self.error
        found = self.index.search(vectors, k, nprobe=nprobe)
        return found.scores, found.ids


class RayChunkSearch:
    """Searches chunks of query vectors against a saved index file on Ray actors, in order, a bounded window of
    chunks in flight (a :data:`~lookalike.search.candidates.ChunkSearch`)."""

    def __init__(self, ray: Any, actors: list[Any]) -> None:
        self._ray = ray
        self._actors = actors

    def __call__(self, chunks: Iterable[np.ndarray], k: int, nprobe: int | None) -> Iterator[Neighbours]:
        """The neighbours of each chunk, in the chunks' order.

        Raises:
            ClusterError: an actor could not read the index file, or a search failed.
        """
        ray, actors = self._ray, self._actors
        submitted = (actors[i % len(actors)].search.remote(vectors, k, nprobe) for i, vectors in enumerate(chunks))
        try:
            for scores, ids in _in_order(ray, submitted, IN_FLIGHT_PER_CPU * len(actors)):
                yield Neighbours(scores, ids)
        except ray.exceptions.RayError as e:
            raise _failed("searching the index", e) from None


@contextmanager
def ray_chunk_search(address: str, path: Path, factory: str, actors: int | None = None) -> Iterator[RayChunkSearch]:
    """Actors (one CPU each; ``actors`` of them, at most and by default one per CPU of the cluster) that map the
    index file at ``path``, on the cluster at ``address``, for the ``with`` block; those that could not start
    (CPUs busy) are left out.

    Raises:
        ClusterError: the cluster cannot be joined, or no actor started.
    """
    with joined(address) as ray:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        count = min(actors or cpus, cpus)
        if count < 1:
            raise ClusterError(f"the Ray cluster at {address} has no CPU for the search actors")
        reader = ray.remote(num_cpus=1, max_restarts=3, max_task_retries=3)(_IndexReader)
        pool = [reader.remote(str(path), factory) for _ in range(count)]
        try:
            # the actors that start (a busy cluster may not place them all): at least one, within the time-out
            started_refs = {a.ready.remote(): a for a in pool}
            ready, _ = ray.wait(list(started_refs), num_returns=count, timeout=ACTOR_GRACE_SECONDS)
            if not ready:
                ready, _ = ray.wait(list(started_refs), num_returns=1, timeout=ACTOR_START_SECONDS)
            if not ready:
                raise ClusterError(
                    f"no search actor started within {ACTOR_START_SECONDS:.0f} s on the Ray cluster at {address} "
                    "(its CPUs are busy)"
                )
            yield RayChunkSearch(ray, [started_refs[r] for r in ready])
        finally:
            for actor in pool:
                ray.kill(actor)
