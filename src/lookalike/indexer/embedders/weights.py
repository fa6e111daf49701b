"""Which weights a model is built with: the default, a local checkpoint file, or random; and the tag that names
them in a collection. Imported by the registry and by every builder (neither imports the other's module)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lookalike.errors import UnknownModelError

RANDOM_WEIGHTS = "random"


def weights_tag_for_file(path: Path) -> str:
    """A short stable tag for a local checkpoint: its name and the start of its SHA-256."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return f"file:{path.name}:{digest.hexdigest()[:12]}"


def check_weights_file(weights: str | None) -> Path | None:
    """The local checkpoint path named by ``weights``, or None for default or random weights.

    Raises:
        UnknownModelError: ``weights`` names a file that does not exist.
    """
    if weights is None or weights == RANDOM_WEIGHTS:
        return None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UnknownModelError(f"weights file {weights!r} does not exist (or use --weights random)")
    return path
