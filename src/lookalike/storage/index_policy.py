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
# Bytes of code per vector in a compressed index (40x smaller than 1280 float32). At 1M real-manifold 1280-d
# vectors, IVF4096 (benchmarks/index_scale.py): PQ64 gave recall@10 0.800 as searched (re-ranked), PQ128 0.968;
# OPQ64, tried by hand, trained ~3x longer and kept fewer true neighbours for re-ranking than PQ64.
PQ_BYTES = 128
LOSSY_CODES = re.compile(r"PQ|SQ|LSH|RQ|LSQ|RaBitQ|PCA")  # codes or a projection: scores are estimates


class _Sized(Protocol):
    factory: str

    def __len__(self) -> int: ...


def choose_factory(n: int, dim: int = 0) -> str:
    """The FAISS factory string for ``n`` vectors of dimension ``dim``: exact ``Flat`` up to 100k, else IVF with
    k ≈ 4·sqrt(n) lists (a power of two, the usual autofaiss-style rule) holding the vectors (``IVF<k>,Flat``) or,
    past :data:`COMPRESS_ABOVE_BYTES` of them, 128-byte product-quantized codes (``IVF<k>,PQ128``; fewer where 128
    does not divide ``dim``), which searches re-rank by the stored vectors (see :func:`lossy`)."""
    if n <= FLAT_LIMIT:
        return DEFAULT_FACTORY
    lists = 1 << round(math.log2(4 * math.sqrt(n)))
    if n * dim * 4 > COMPRESS_ABOVE_BYTES:
        return f"IVF{lists},PQ{max(m for m in range(1, PQ_BYTES + 1) if dim % m == 0)}"  # m must divide dim
    return f"IVF{lists},Flat"


def lossy(factory: str) -> bool:
    """Whether an index of ``factory`` keeps approximate codes instead of the vectors (its scores are estimates)."""
    return bool(LOSSY_CODES.search(factory))


def training_size(factory: str) -> int:
    """How many sample vectors training ``factory`` needs (0: no training); product quantizers want ~39 per
    centroid of their 256."""
    lists = _lists(factory) * TRAIN_PER_LIST
    return max(lists, 256 * TRAIN_PER_LIST) if lossy(factory) else lists


def _lists(factory: str) -> int:
    """The IVF list count a factory string names (0: no IVF)."""
    m = re.search(r"IVF(\d+)", factory)
    return int(m.group(1)) if m else 0


def outgrown(factory: str, n: int, dim: int) -> bool:
    """Whether an index of ``factory`` holding ``n`` vectors should be rebuilt by size when saved. Only the shapes
    :func:`choose_factory` makes are: an exact ``Flat`` past :data:`FLAT_LIMIT`; an ``IVF<k>,Flat`` or
    ``IVF<k>,PQ<m>`` with a quarter or less of the lists :func:`choose_factory` gives ``n`` (the collection grew
    16x since); an ``IVF<k>,Flat`` holding the vectors past :data:`COMPRESS_ABOVE_BYTES`. Other types (HNSW, SQ,
    OPQ ...) stay as `reindex --factory` made them."""
    if factory == DEFAULT_FACTORY:
        return n > FLAT_LIMIT
    m = re.fullmatch(r"IVF(\d+),(Flat|PQ\d+)", factory)
    if m is None:
        return False  # HNSW, SQ8, PQ behind OPQ ...: a type `reindex --factory` asked for stays
    wanted = choose_factory(n, dim)
    grown = _lists(wanted) >= 4 * int(m.group(1))
    return grown or (m.group(2) == "Flat" and lossy(wanted))


def rebuild_factories(indexes: Mapping[str, _Sized], stale: bool, dim: int = 0) -> dict[str, str] | None:
    """Before saving: None when the indexes can be saved as they are; else the factories to rebuild them with
    (those left out are chosen by size again).

    An index that outgrew its factory (:func:`outgrown`: Flat past 100k, IVF with too few lists or holding too many
    vectors) is rebuilt by size; an index that could not remove replaced vectors (``stale``: HNSW) is rebuilt with
    its own factory.
    """
    grown = {n for n, i in indexes.items() if outgrown(i.factory, len(i), dim)}
    if not (stale or grown):
        return None
    return {n: i.factory for n, i in indexes.items() if n not in grown}
