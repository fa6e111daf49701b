"""The local engine: supervised decode processes on this machine, batched inference in this process."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from lookalike.config import Settings
from lookalike.indexer.describe import MediaDescriptor
from lookalike.indexer.embed import Embedded, embed_jobs
from lookalike.indexer.embedders.base import Embedder
from lookalike.indexer.engines import Engine
from lookalike.indexer.plan import Job


class LocalEngine(Engine):
    """Runs :func:`~lookalike.indexer.embed.embed_jobs` with the collection's embedder."""

    def __init__(self, settings: Settings, embedder: Callable[[], Embedder]) -> None:
        super().__init__()
        self.settings = settings
        self._embedder = embedder

    def embed(self, jobs: Sequence[Job], video: MediaDescriptor) -> Iterator[Embedded]:
        """Decode and embed ``jobs`` here (see :func:`~lookalike.indexer.embed.embed_jobs`)."""
        embedder = self._embedder()
        for done in embed_jobs(jobs, embedder, self.settings, video):
            if done.vectors:  # the embedder ran, so its runtime is settled (verified or not)
                self.runtimes.add((embedder.runtime, embedder.tolerance))
            yield done
