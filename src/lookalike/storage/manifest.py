"""The manifest that ties a collection's FAISS files to its database state."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lookalike.storage.files import atomic_write_bytes

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Manifest:
    """What built a collection's indexes, and which database generation they reflect.

    Attributes:
        model: model spec that produced the vectors.
        weights_tag: identifies the weights (file digest, pretrained tag or ``random``).
        dim: vector dimension.
        metric: ``cosine`` (inner product of L2-normalised vectors).
        factories: FAISS factory string of each index file (``items``, ``videos``).
        generation: the collection's database generation when the files were written.
        counts: vectors per index file, for a cheap consistency check.
        preprocessing: the model's preprocessing configuration.
        pooling: how video frames were pooled.
        runtime: the runtimes that computed the vectors and the cosine tolerance they keep with torch's.
    """

    model: str
    weights_tag: str
    dim: int
    metric: str = "cosine"
    factories: dict[str, str] = field(default_factory=dict)
    generation: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    pooling: dict[str, Any] = field(default_factory=dict)
    runtime: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: Path) -> None:
        """Write the manifest atomically into ``directory``."""
        data = json.dumps(asdict(self), indent=2, sort_keys=True).encode()
        atomic_write_bytes(directory / MANIFEST_NAME, data)

    @classmethod
    def load(cls, directory: Path) -> Manifest | None:
        """The manifest in ``directory``, or None if there is none or it is unreadable."""
        path = directory / MANIFEST_NAME
        try:
            raw = json.loads(path.read_text())
            return cls(**raw)
        except (FileNotFoundError, ValueError, TypeError):
            return None
