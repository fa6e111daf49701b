"""FAISS work on a Ray cluster: an index's shards filled by Ray tasks (``reindex --ray``), and duplicate candidates
searched by actors that map the saved index file (``dupes --ray``).

The driver reads the stored vectors in chunks and sends them out with a bounded window of tasks in flight, so
neither it nor the object store ever holds all of them; results come back in the chunks' order, so what the
driver builds equals what it would have built alone (``tests/indexer/test_ray_index.py``). Actors read the index
file by path: it must live on storage every node mounts at the same path, like the media (README, "Scaling out").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import ClusterError, LookalikeError
from lookalike.indexer.engines.ray import connect, import_ray
from lookalike.storage.index_files import ShardEncoder
from lookalike.storage.vectors import Neighbours, VectorIndex

IN_FLIGHT_PER_CPU = 2  # chunks sent out per cluster CPU before the driver waits for the oldest


def _window(ray: Any) -> int:
    return max(2, IN_FLIGHT_PER_CPU * int(ray.cluster_resources().get("CPU", 1)))


def _failed(ray: Any, what: str, error: BaseException) -> LookalikeError:
    """The lookalike error a task raised, or a ClusterError saying what failed."""
    inner = getattr(error, "cause", None)
    if isinstance(inner, LookalikeError):
        return inner
    return ClusterError(f"{what} failed on the Ray cluster: {str(error).strip().splitlines()[0]}")


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
    ray = import_ray()
    started = connect(address)
    fill = ray.remote(num_cpus=1, max_retries=3)(_fill)

    def encode(empty: VectorIndex, chunks: Iterable[tuple[np.ndarray, np.ndarray]]) -> Iterator[VectorIndex]:
        blob = ray.put(empty.to_bytes())
        pending: deque[Any] = deque()
        window = _window(ray)
        try:
            for ids, vectors in chunks:
                pending.append(fill.remote(blob, empty.factory, ids, vectors))
                if len(pending) >= window:
                    yield VectorIndex.from_bytes(ray.get(pending.popleft()), empty.factory)
            while pending:
                yield VectorIndex.from_bytes(ray.get(pending.popleft()), empty.factory)
        except ray.exceptions.RayError as e:
            raise _failed(ray, "filling an index shard", e) from None

    try:
        yield encode
    finally:
        if started:
            ray.shutdown()


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
        ray = self._ray
        pending: deque[Any] = deque()
        window = IN_FLIGHT_PER_CPU * len(self._actors)
        try:
            for i, vectors in enumerate(chunks):
                pending.append(self._actors[i % len(self._actors)].search.remote(vectors, k, nprobe))
                if len(pending) >= window:
                    yield Neighbours(*ray.get(pending.popleft()))
            while pending:
                yield Neighbours(*ray.get(pending.popleft()))
        except ray.exceptions.RayError as e:
            raise _failed(ray, "searching the index", e) from None


@contextmanager
def ray_chunk_search(address: str, path: Path, factory: str, actors: int | None = None) -> Iterator[RayChunkSearch]:
    """Actors (one CPU each; by default one per cluster CPU) that map the index file at ``path``, on the cluster
    at ``address``, for the ``with`` block.

    Raises:
        ClusterError: the cluster cannot be joined.
    """
    ray = import_ray()
    started = connect(address)
    try:
        count = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        reader = ray.remote(num_cpus=1, max_restarts=3, max_task_retries=3)(_IndexReader)
        pool = [reader.remote(str(path), factory) for _ in range(count)]
        try:
            yield RayChunkSearch(ray, pool)
        finally:
            for actor in pool:
                ray.kill(actor)
    finally:
        if started:
            ray.shutdown()
