"""Where a workspace's index work runs: here, or on the Ray cluster ``settings.ray`` names (``reindex --ray``,
``dupes --ray``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lookalike.config import Settings
from lookalike.errors import UsageError
from lookalike.indexer.engines import require_ray

if TYPE_CHECKING:
    from lookalike.search.candidates import ChunkSearch
    from lookalike.storage.index_files import ShardEncoder
    from lookalike.storage.library import CollectionStore


@contextmanager
def ray_session(settings: Settings) -> Iterator[None]:
    """Joined to the Ray cluster ``settings.ray`` names (if any) for the ``with`` block, which is entered before
    anything is locked, planned or read: a wrong address is said at once, not after the planning of a large
    collection. The engines and the helpers below use the session (they join only when none is open).

    Raises:
        UsageError: Ray is asked for and not installed.
        ClusterError: the cluster cannot be joined.
    """
    if settings.ray is None:
        yield
        return
    require_ray()
    from lookalike.indexer.engines.ray import joined

    with joined(settings.ray):
        yield


@contextmanager
def shard_encoder(settings: Settings) -> Iterator[ShardEncoder | None]:
    """Ray tasks that fill an index's shards when ``settings.ray`` is set; None (fill here) otherwise.

    Raises:
        UsageError: Ray is asked for and not installed.
        ClusterError: the cluster cannot be joined.
    """
    if settings.ray is None:
        yield None
        return
    require_ray()
    from lookalike.indexer.engines.ray_index import ray_shard_encoder

    with ray_shard_encoder(settings.ray) as encode:
        yield encode


@contextmanager
def candidate_search(settings: Settings, store: CollectionStore) -> Iterator[ChunkSearch | None]:
    """Ray actors that search the collection's saved ``items`` index file for the candidate stages when
    ``settings.ray`` is set (``settings.ray_actors`` of them, default one per cluster CPU); None (search here)
    otherwise.

    Raises:
        UsageError: Ray is asked for and not installed, or no index file is saved yet.
        ClusterError: the cluster cannot be joined.
    """
    if settings.ray is None:
        yield None
        return
    require_ray()
    from lookalike.indexer.engines.ray_index import ray_chunk_search

    path = (store.directory / "items.faiss").resolve()  # actors do not run in this process's folder
    if not path.is_file():
        raise UsageError(f"--ray searches the saved index files and {path} does not exist yet: run `lookalike index`")
    with ray_chunk_search(settings.ray, path, store.index("items").factory, settings.ray_actors) as search:
        yield search
