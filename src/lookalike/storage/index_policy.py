"""Which FAISS index type a collection gets, and when an index must be rebuilt rather than saved as it is."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Protocol

DEFAULT_FACTORY = "Flat"
FLAT_LIMIT = 100_000  # exact search up to here; beyond, an IVF index trained on a sample
TRAIN_PER_LIST = 40  # FAISS wants ~39 training points per IVF list
# Past this much float32 vector data the index holds product-quantized codes instead of the vectors: a writer holds
# its index in memory, and IVF4096,Flat over 1M 1280-d vectors is a 4.9 GB file (benchmarks/RESULTS.md, "Index
# types"); 8 GiB is ~1.7M Lite0 vectors, ~4.2M of a 512-d CLIP model.
COMPRESS_ABOVE_BYTES = 8 << 30
PQ_BYTES = 64  # bytes of code per vector in a compressed index (80x smaller than 1280 float32)
LOSSY_CODES = re.compile(r"PQ|SQ|LSH|RQ|LSQ|RaBitQ|PCA")  # codes or a projection: scores are estimates


class _Sized(Protocol):
    factory: str

    def __len__(self) -> int: ...


def choose_factory(n: int, dim: int = 0) -> str:
    """The FAISS factory string for ``n`` vectors of dimension ``dim``: exact ``Flat`` up to 100k, else IVF with
    k ≈ 4·sqrt(n) lists (a power of two, the usual autofaiss-style rule) holding the vectors (``IVF<k>,Flat``) or,
    past :data:`COMPRESS_ABOVE_BYTES` of them, 64-byte product-quantized codes (``IVF<k>,PQ64``, which searches
    re-rank from the stored vectors: see :func:`lossy`)."""
    if n <= FLAT_LIMIT:
        return DEFAULT_FACTORY
    lists = 1 << round(math.log2(4 * math.sqrt(n)))
    if n * dim * 4 > COMPRESS_ABOVE_BYTES and dim % PQ_BYTES == 0:
        return f"IVF{lists},PQ{PQ_BYTES}"
    return f"IVF{lists},Flat"


def lossy(factory: str) -> bool:
    """Whether an index of ``factory`` keeps approximate codes instead of the vectors (its scores are estimates)."""
    return bool(LOSSY_CODES.search(factory))


def training_size(factory: str) -> int:
    """How many sample vectors training ``factory`` needs (0: no training); product quantizers want ~39 per
    centroid of their 256."""
    m = re.search(r"IVF(\d+)", factory)
    lists = int(m.group(1)) * TRAIN_PER_LIST if m else 0
    return max(lists, 256 * TRAIN_PER_LIST) if lossy(factory) else lists


def rebuild_factories(indexes: Mapping[str, _Sized], stale: bool) -> dict[str, str] | None:
    """Before saving: None when the indexes can be saved as they are; else the factories to rebuild them with
    (those left out are chosen by size again).

    An exact ``Flat`` index that outgrew ``FLAT_LIMIT`` is rebuilt by size (IVF); an index that could not remove
    replaced vectors (``stale``: HNSW) is rebuilt with its own factory.
    """
    outgrown = any(i.factory == DEFAULT_FACTORY and len(i) > FLAT_LIMIT for i in indexes.values())
    if not (stale or outgrown):
        return None
    return {n: i.factory for n, i in indexes.items() if not outgrown or i.factory != DEFAULT_FACTORY}
