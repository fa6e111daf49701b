"""Which FAISS index type a collection gets, and when an index must be rebuilt rather than saved as it is."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Protocol

DEFAULT_FACTORY = "Flat"
FLAT_LIMIT = 100_000  # exact search up to here; beyond, an IVF index trained on a sample
TRAIN_PER_LIST = 40  # FAISS wants ~39 training points per IVF list


class _Sized(Protocol):
    factory: str

    def __len__(self) -> int: ...


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
