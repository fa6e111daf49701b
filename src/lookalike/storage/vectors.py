"""FAISS vector stores keyed by SQL row ids (IndexIDMap2), saved atomically."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.errors import DimensionMismatchError, IndexTypeError, LookalikeError
from lookalike.storage.files import atomic_write
from lookalike.storage.index_policy import DEFAULT_FACTORY, TRAIN_PER_LIST, lossy

if TYPE_CHECKING:
    import faiss

DEFAULT_NPROBE = 32
GPU_MAX_K = 2048  # faiss-gpu's limit on k

log = logging.getLogger(__name__)


def set_search_threads(threads: int) -> None:
    """Threads one FAISS search may use (process-wide; a serving process runs requests side by side instead)."""
    _faiss().omp_set_num_threads(threads)


def gpu_count() -> int:
    """GPUs faiss can use: 0 with faiss-cpu or without CUDA."""
    faiss = _faiss()
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None and hasattr(faiss, "StandardGpuResources") else 0


def _faiss() -> Any:
    import faiss  # heavy import, only when an index is touched

    return faiss


def as_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    """``vectors`` as a C-contiguous float32 (n, dim) matrix.

    Raises:
        DimensionMismatchError: the vectors are not ``dim``-dimensional.
    """
    arr = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise DimensionMismatchError(f"expected vectors of dimension {dim}, got shape {arr.shape}")
    return arr


@dataclass(frozen=True)
class Neighbours:
    """kNN results: ``ids[i, j]`` is the j-th neighbour of query i (-1 where there are fewer than k)."""

    scores: np.ndarray
    ids: np.ndarray


class VectorIndex:
    """A FAISS inner-product index over L2-normalised vectors, addressed by 64-bit ids."""

    def __init__(self, index: faiss.Index, factory: str = DEFAULT_FACTORY) -> None:
        self._index: Any = index
        self._searcher: Any = index  # a GPU copy after :meth:`to_gpu`
        self._gpu_resources: Any = None
        self.factory = factory
        if factory.startswith("IVF"):
            _faiss().ParameterSpace().set_index_parameter(self._index, "nprobe", DEFAULT_NPROBE)

    @classmethod
    def create(cls, dim: int, factory: str = DEFAULT_FACTORY) -> VectorIndex:
        """An empty index of dimension ``dim`` built from a FAISS factory string."""
        faiss = _faiss()
        try:
            base = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as e:
            raise LookalikeError(f"FAISS cannot build an index from {factory!r}") from e
        return cls(faiss.IndexIDMap2(base), factory)

    @classmethod
    def load(cls, path: Path, factory: str = DEFAULT_FACTORY, mmap: bool = False) -> VectorIndex:
        """The index stored at ``path``.

        Args:
            mmap: map the vectors read-only from the file instead of reading them into memory (for searchers of
                large libraries: the page cache is shared between processes and RSS stays small). Such an index
                cannot be changed. Files are replaced, never rewritten in place, so a mapping stays valid while a
                writer saves a newer version beside it.
        """
        faiss = _faiss()
        flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
        return cls(faiss.read_index(str(path), flags), factory)

    def to_bytes(self) -> np.ndarray:
        """The index serialized (FAISS's own format), to send to another process."""
        return np.asarray(_faiss().serialize_index(self._index))

    @classmethod
    def from_bytes(cls, blob: np.ndarray, factory: str) -> VectorIndex:
        """An index serialized by :meth:`to_bytes`."""
        return cls(_faiss().deserialize_index(np.asarray(blob, dtype=np.uint8)), factory)

    @property
    def lossy(self) -> bool:
        """Whether the index holds approximate codes (PQ, SQ ...): its scores are estimates, not cosines."""
        return lossy(self.factory)

    def merge(self, shard: VectorIndex) -> None:
        """Move the vectors of ``shard`` (an index filled from a copy of this one's trained, empty state: the same
        IVF centroids and codebooks) into this one; ``shard`` is left empty.

        ``IndexIDMap2.merge_from`` is not used: it merges the inner index without offsetting its sequential ids,
        so the shard's vectors would answer as this index's first ones (checked on faiss 1.15).
        """
        faiss = _faiss()
        if shard.dim != self.dim or shard.factory != self.factory:
            raise ValueError(f"cannot merge a {shard.factory} ({shard.dim}-d) into a {self.factory} ({self.dim}-d)")
        ids = np.concatenate([self.ids(), shard.ids()])
        self._index.index.merge_from(shard._index.index, len(self))
        faiss.copy_array_to_vector(ids, self._index.id_map)
        self._index.ntotal = self._index.index.ntotal
        self._index.construct_rev_map()
        shard._index.id_map.clear()
        shard._index.ntotal = 0
        shard._index.construct_rev_map()
        self._drop_gpu()

    def save(self, path: Path) -> None:
        """Write the index atomically to ``path`` (the old file stays until the new one is complete)."""
        faiss = _faiss()
        atomic_write(path, lambda tmp: faiss.write_index(self._index, str(tmp)))

    def to_gpu(self, device: int = 0) -> bool:
        """Answer :meth:`search` from a copy of the index on a GPU (faiss-gpu's ``index_cpu_to_gpu``).

        Returns False, leaving search on the CPU, when FAISS was built without GPU support, sees no GPU, or
        cannot put this index type there (HNSW). Writes, removals and range searches stay on the CPU copy.
        """
        faiss = _faiss()
        if not gpu_count():
            return False
        try:
            resources = faiss.StandardGpuResources()
            self._searcher = faiss.index_cpu_to_gpu(resources, device, self._index)
        except (RuntimeError, AttributeError) as e:
            log.warning("FAISS index %s stays on the CPU: %s", self.factory, e)
            return False
        self._gpu_resources = resources  # must outlive the GPU index
        return True

    @property
    def on_gpu(self) -> bool:
        """Whether searches run on a GPU copy."""
        return self._searcher is not self._index

    @property
    def is_trained(self) -> bool:
        """Whether vectors can be added (IVF indexes need :meth:`train` first)."""
        return bool(self._index.is_trained)

    def train(self, sample: np.ndarray) -> None:
        """Train the index (IVF centroids) on a sample of the vectors it will hold.

        Raises:
            IndexTypeError: the sample is smaller than the index's list count.
        """
        x = as_matrix(sample, self.dim)
        ivf = _faiss().try_extract_index_ivf(self._index)
        if ivf is not None and len(x) < ivf.nlist:
            raise IndexTypeError(
                f"{self.factory} needs at least {ivf.nlist:,} vectors to train its {ivf.nlist:,} lists (about "
                f"{ivf.nlist * TRAIN_PER_LIST:,} for good ones); this collection has {len(x):,}: choose fewer lists "
                f"(IVF{max(1, len(x) // TRAIN_PER_LIST)},Flat) or Flat"
            )
        self._index.train(x)

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        """All ids in the index, in insertion order."""
        return _faiss().vector_to_array(self._index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` under ``ids``."""
        if len(ids) == 0:
            return
        self._index.add_with_ids(as_matrix(vectors, self.dim), np.asarray(ids, dtype=np.int64))
        self._drop_gpu()

    def remove(self, ids: np.ndarray | list[int]) -> int:
        """Remove ``ids``; returns how many were present.

        Raises:
            RuntimeError: the index type cannot remove (HNSW); the caller rebuilds it instead.
        """
        arr = np.asarray(ids, dtype=np.int64)
        if arr.size == 0:
            return 0
        removed = int(self._index.remove_ids(_faiss().IDSelectorBatch(arr)))
        self._drop_gpu()
        return removed

    def search(self, queries: np.ndarray, k: int, nprobe: int | None = None) -> Neighbours:
        """The ``k`` nearest ids of each query by inner product, best first.

        Args:
            nprobe: inverted lists an IVF index on the CPU scans for this call (default: its own setting, 32);
                fewer is faster and finds fewer of the farther neighbours. A GPU copy keeps its own setting.
        """
        q = as_matrix(queries, self.dim)
        if len(self) == 0 or k <= 0:
            n = q.shape[0]
            return Neighbours(np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64))
        k = min(k, len(self), GPU_MAX_K if self.on_gpu else k)
        if nprobe is not None and nprobe < 1:
            raise ValueError(f"nprobe must be at least 1, not {nprobe}")
        if nprobe is not None and not self.on_gpu and _faiss().try_extract_index_ivf(self._index) is not None:
            params = _faiss().SearchParametersIVF(nprobe=int(nprobe))
            scores, ids = self._searcher.search(q, k, params=params)
        else:
            scores, ids = self._searcher.search(q, k)
        return Neighbours(scores, ids)

    def _drop_gpu(self) -> None:
        """The CPU copy changed: search it until :meth:`to_gpu` is called again."""
        self._searcher, self._gpu_resources = self._index, None

    def range_search(self, queries: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All ids scoring above ``threshold`` per query, as FAISS ``(lims, scores, ids)``."""
        q = as_matrix(queries, self.dim)
        if len(self) == 0:
            return np.zeros(q.shape[0] + 1, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64)
        lims, scores, ids = self._index.range_search(q, float(threshold))
        return lims, scores, ids

    def reconstruct(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """The stored vectors of ``ids``."""
        arr = np.asarray(ids, dtype=np.int64)
        if arr.size == 0:
            return np.zeros((0, self.dim), np.float32)
        return np.vstack([self._index.reconstruct(int(i)) for i in arr])
