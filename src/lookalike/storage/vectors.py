"""FAISS vector stores keyed by SQL row ids, saved atomically.

IVF indexes hold the ids in their inverted lists themselves; other types are wrapped in ``IndexIDMap2``. An IVF
index must not be wrapped: ``IndexIDMap2.remove_ids`` compacts its id map while the IVF lists keep the old
positions, so after a removal most vectors answered under another vector's id (checked on faiss 1.15: 97% of
3,000 vectors no longer found themselves after removing 100). Files saved that way (before 0.1's fix) are
rebuilt when loaded (:attr:`VectorIndex.legacy`).
"""

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
        faiss = _faiss()
        self._id_mapped = isinstance(index, faiss.IndexIDMap | faiss.IndexIDMap2)  # ids in an id map, not lists
        self._ivf: Any = faiss.try_extract_index_ivf(index)  # (also under an id map) None for Flat and HNSW
        if self._ivf is not None:
            self._ivf.nprobe = DEFAULT_NPROBE

    @classmethod
    def create(cls, dim: int, factory: str = DEFAULT_FACTORY) -> VectorIndex:
        """An empty index of dimension ``dim`` built from a FAISS factory string (IVF indexes keep the ids in their
        lists; other types are wrapped in ``IndexIDMap2``)."""
        faiss = _faiss()
        try:
            base = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as e:
            raise LookalikeError(f"FAISS cannot build an index from {factory!r}") from e
        return cls(base if faiss.try_extract_index_ivf(base) is not None else faiss.IndexIDMap2(base), factory)

    @property
    def legacy(self) -> bool:
        """Whether this is an IVF index wrapped in ``IndexIDMap2`` (saved before the fix in the module docstring):
        its answers after a removal are wrong, so it must be rebuilt."""
        return self._id_mapped and self._ivf is not None

    @property
    def lists(self) -> int:
        """The IVF list count (0 for other index types)."""
        return int(self._ivf.nlist) if self._ivf is not None else 0

    @property
    def shardable(self) -> bool:
        """Whether shards of this (trained, empty) index filled apart can be merged into it (IVF indexes)."""
        return self._ivf is not None and not self._id_mapped

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

        Raises:
            ValueError: the shard is of another type, or this index type cannot merge (not IVF).
        """
        if shard.dim != self.dim or shard.factory != self.factory or not (self.shardable and shard.shardable):
            raise ValueError(f"cannot merge a {shard.factory} ({shard.dim}-d) into a {self.factory} ({self.dim}-d)")
        self._index.merge_from(shard._index, 0)
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
        """All ids in the index (in insertion order; an IVF index's list by list)."""
        if self._id_mapped:
            return _faiss().vector_to_array(self._index.id_map).astype(np.int64)
        from faiss.contrib.inspect_tools import get_invlist

        lists = self._ivf.invlists
        parts = [get_invlist(lists, i)[0] for i in range(self._ivf.nlist) if lists.list_size(i)]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

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
        if nprobe is not None and not self.on_gpu and self._ivf is not None:
            faiss = _faiss()
            params = faiss.SearchParametersIVF(nprobe=int(nprobe))
            if isinstance(self._index, faiss.IndexPreTransform):  # OPQ / PCA before the IVF: parameters pass through
                params = faiss.SearchParametersPreTransform(index_params=params)
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
        """The stored vectors of ``ids`` (not IVF indexes: the catalog holds every vector).

        Raises:
            IndexTypeError: an IVF index (its lists are not addressed by id).
        """
        if not self._id_mapped:
            raise IndexTypeError(f"a {self.factory} index does not give vectors back by id; read them from the catalog")
        arr = np.asarray(ids, dtype=np.int64)
        if arr.size == 0:
            return np.zeros((0, self.dim), np.float32)
        return np.vstack([self._index.reconstruct(int(i)) for i in arr])
