"""Engines turn planned files into finished ones (record and vectors, or an error row); the driver alone commits.

``local`` decodes in supervised processes of this machine and embeds here; ``ray`` runs the same stages on a Ray
cluster. Nothing but :func:`make_engine` knows which one ran.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from lookalike.config import Settings
from lookalike.errors import UsageError

RAY_INSTALL_HINT = "--ray needs Ray: pip install 'lookalike[ray]'"

if TYPE_CHECKING:
    from lookalike.indexer.describe import MediaDescriptor
    from lookalike.indexer.embed import Embedded
    from lookalike.indexer.embedders.base import Embedder
    from lookalike.indexer.plan import Job


class Engine(ABC):
    """Decodes and embeds planned files.

    Attributes:
        runtimes: the runtimes (name, tolerance) that computed the vectors yielded so far; the driver records them
            with the collection before it commits those vectors.
    """

    def __init__(self) -> None:
        self.runtimes: set[tuple[str, float]] = set()

    @abstractmethod
    def embed(self, jobs: Sequence[Job], video: MediaDescriptor) -> Iterator[Embedded]:
        """Yield each file's record and vectors as it completes (a file that fails yields its error row)."""


def make_engine(settings: Settings, embedder: Callable[[], Embedder]) -> Engine:
    """The engine the settings ask for: Ray when ``settings.ray`` names a cluster (or ``local``), else local.

    Args:
        settings: the run's settings.
        embedder: builds (and checks) the collection's embedder; the local engine runs it, the Ray engine builds
            the same one on its actors.

    Raises:
        UsageError: Ray is asked for and not installed.
    """
    if settings.ray is None:
        from lookalike.indexer.engines.local import LocalEngine

        return LocalEngine(settings, embedder)
    from lookalike.indexer.engines.ray import RayEngine

    return RayEngine(settings, embedder)


def require_ray() -> None:
    """Check that Ray is installed, without importing it.

    Raises:
        UsageError: it is not (the message says how to install it).
    """
    if importlib.util.find_spec("ray") is None:
        raise UsageError(RAY_INSTALL_HINT)
