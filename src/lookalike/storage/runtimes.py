"""A collection's runtime record: which inference runtimes computed its vectors, and within what cosine of torch's.

Stored as JSON in ``collections.runtime`` (migration 0005): ``{"runtimes": [...], "tolerance": float}``.
"""

from __future__ import annotations

from typing import Any

# what a collection's runtime column says before any vector was written; NULL (a row migration 0005 did not fill)
# means the vectors came from torch, the only runtime before it
NO_RUNTIME: dict[str, Any] = {"runtimes": [], "tolerance": 1.0}
TORCH_RUNTIME: dict[str, Any] = {"runtimes": ["torch"], "tolerance": 1.0}


def read_runtime(stored: dict[str, Any] | None) -> dict[str, Any]:
    """The record as a detached copy, NULL read as torch's."""
    value = stored if stored is not None else TORCH_RUNTIME
    return {**value, "runtimes": list(value.get("runtimes", []))}


def with_runtime(stored: dict[str, Any] | None, runtime: str, tolerance: float) -> dict[str, Any]:
    """The record once ``runtime`` computed vectors within cosine ``tolerance`` of torch's: listed once, in the
    order first seen, with the loosest tolerance."""
    old = read_runtime(stored)
    runs = old["runtimes"] if runtime in old["runtimes"] else [*old["runtimes"], runtime]
    return {"runtimes": runs, "tolerance": min(float(old["tolerance"]), tolerance)}
