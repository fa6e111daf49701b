"""Duplicate groups: pairs above a similarity threshold, joined into connected components."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lookalike.storage.catalog import StoredVector
from lookalike.storage.library import CollectionStore
from lookalike.types import Level

CHUNK = 4096


@dataclass(frozen=True)
class GroupItem:
    """One member of a duplicate group."""

    media_id: int
    path: str
    kind: str
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class DuplicateGroup:
    """Files that are near-duplicates of each other; ``score`` is the weakest link that joins them."""

    score: float
    items: list[GroupItem]


def _pairs(
    store: CollectionStore, index_name: str, level: str, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, StoredVector]]:
    """All (a, b, similarity) pairs with a < b above ``threshold`` among vectors of one level."""
    index = store.index(index_name)
    ids = index.ids()
    stored = store.catalog.hydrate(store.info.id, ids.tolist())
    wanted = np.array([i for i in ids if i in stored and stored[int(i)].level == level], np.int64)
    rows, cols, sims = [], [], []
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        lims, scores, found = index.range_search(index.reconstruct(chunk), threshold)
        for q, qid in enumerate(chunk):
            for s, other in zip(scores[lims[q] : lims[q + 1]], found[lims[q] : lims[q + 1]], strict=True):
                sv = stored.get(int(other))
                if sv is None or sv.level != level or int(other) <= int(qid):
                    continue
                if sv.media_id == stored[int(qid)].media_id:
                    continue
                rows.append(int(qid))
                cols.append(int(other))
                sims.append(float(s))
    return np.array(rows, np.int64), np.array(cols, np.int64), np.array(sims, np.float32), stored


def _components(
    rows: np.ndarray, cols: np.ndarray, sims: np.ndarray, stored: dict[int, StoredVector]
) -> list[DuplicateGroup]:
    if len(rows) == 0:
        return []
    nodes = np.unique(np.concatenate([rows, cols]))
    pos = {int(n): i for i, n in enumerate(nodes)}
    r = np.array([pos[int(x)] for x in rows])
    c = np.array([pos[int(x)] for x in cols])
    graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(len(nodes), len(nodes)))
    _, labels = connected_components(graph, directed=False)
    groups = []
    for label in np.unique(labels):
        members = nodes[labels == label]
        edge_mask = labels[r] == label
        score = float(sims[edge_mask].min())
        items = sorted(
            (GroupItem(stored[int(m)].media_id, stored[int(m)].path, stored[int(m)].kind) for m in members),
            key=lambda it: it.path,
        )
        groups.append(DuplicateGroup(score, items))
    groups.sort(key=lambda g: (-len(g.items), -g.score, g.items[0].path))
    return groups


def find_duplicates(store: CollectionStore, threshold: float) -> list[DuplicateGroup]:
    """Groups of near-duplicate images, and groups of near-duplicate videos (whole-video vectors).

    Args:
        store: the collection.
        threshold: cosine similarity at or above which two files are duplicates.
    """
    groups = []
    for index_name, level in (("items", Level.IMAGE.value), ("videos", Level.VIDEO.value)):
        rows, cols, sims, stored = _pairs(store, index_name, level, threshold)
        groups.extend(_components(rows, cols, sims, stored))
    groups.sort(key=lambda g: (-len(g.items), -g.score, g.items[0].path))
    return groups
