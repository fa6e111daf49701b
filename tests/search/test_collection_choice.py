"""Which collection a search uses when a library holds several: by name (model and weights) first."""

from __future__ import annotations

import pytest

from lookalike.errors import NotIndexedError
from lookalike.indexer.embedders.registry import collection_name
from lookalike.workspace import Workspace


def test_two_collections_of_one_model_are_told_apart_by_their_weights(settings_factory, corpus):
    """The real weights' collection for a default search, the random one for ``--weights random`` (a default
    search used to take whichever came first; ``--weights random`` raised a mismatch though its collection
    existed)."""
    real = settings_factory()
    random = real.with_(weights="random")
    originals = corpus.root / "originals"
    with Workspace(random) as ws:  # the random collection is made first: the first one found
        ws.index([originals])
    with Workspace(real) as ws:
        ws.index([originals])
    with Workspace(real) as ws:
        assert ws.store().info.name == collection_name(real.model, None)
        hit = ws.search_files([corpus.originals["coffee"]], k=1)[0].hits[0]
        assert hit.path == str(corpus.originals["coffee"]) and hit.score > 0.99
    with Workspace(random) as ws:
        assert ws.store().info.name == collection_name(real.model, "random")
        # random weights are drawn afresh by each process: plumbing only, the search runs on its own collection
        assert len(ws.search_files([corpus.originals["coffee"]], k=3)[0].hits) == 3
    with Workspace(real.with_(model="timm:resnet18")) as ws, pytest.raises(NotIndexedError, match="no collection"):
        ws.store()
