"""FAISS vector stores keyed by SQL row ids (IndexIDMap2), saved atomically."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.errors import DimensionMismatchError, LookalikeError
from lookalike.storage.files import atomic_write

if TYPE_CHECKING:
    import faiss

DEFAULT_FACTORY = "Flat"
FLAT_LIMIT = 100_000  # exact search up to here; beyond, an IVF index trained on a sample
DEFAULT_NPROBE = 32
TRAIN_PER_LIST = 40  # FAISS wants ~39 training points per IVF list


def choose_factory(n: int) -> str:
    """The FAISS factory string for ``n`` vectors: exact ``Flat`` up to 100k, else ``IVF<k>,Flat`` with
    k ≈ 4·sqrt(n) lists (a power of two), the usual autofaiss-style rule."""
    if n <= FLAT_LIMIT:
        return DEFAULT_FACTORY
    return f"IVF{1 << round(math.log2(4 * math.sqrt(n)))},Flat"


def training_size(factory: str) -> int:
    """How many sample vectors training ``factory`` needs (0: no training)."""
    m = re.match(r"IVF(\d+)", factory)
    return int(m.group(1)) * TRAIN_PER_LIST if m else 0


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
    def load(cls, path: Path, factory: str = DEFAULT_FACTORY) -> VectorIndex:
        """The index stored at ``path``."""
        return cls(_faiss().read_index(str(path)), factory)

    def save(self, path: Path) -> None:
        """Write the index atomically to ``path`` (the old file stays until the new one is complete)."""
        faiss = _faiss()
        atomic_write(path, lambda tmp: faiss.write_index(self._index, str(tmp)))

    @property
    def is_trained(self) -> bool:
        """Whether vectors can be added (IVF indexes need :meth:`train` first)."""
        return bool(self._index.is_trained)

    def train(self, sample: np.ndarray) -> None:
        """Train the index (IVF centroids) on a sample of the vectors it will hold."""
        self._index.train(as_matrix(sample, self.dim))

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

    def remove(self, ids: np.ndarray | list[int]) -> int:
        """Remove ``ids``; returns how many were present.

        Raises:
            RuntimeError: the index type cannot remove (HNSW); the caller rebuilds it instead.
        """
        arr = np.asarray(ids, dtype=np.int64)
        if arr.size == 0:
            return 0
        return int(self._index.remove_ids(_faiss().IDSelectorBatch(arr)))

    def search(self, queries: np.ndarray, k: int) -> Neighbours:
        """The ``k`` nearest ids of each query by inner product, best first."""
        q = as_matrix(queries, self.dim)
        if len(self) == 0 or k <= 0:
            n = q.shape[0]
            return Neighbours(np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64))
        scores, ids = self._index.search(q, min(k, len(self)))
        return Neighbours(scores, ids)

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
