"""Duplicate groups: pairs above a similarity threshold, joined into connected components."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lookalike.indexer.pooling import normalise
from lookalike.search.alignment import MATCH_FLOOR, QueryVideo, VideoMatch, align
from lookalike.storage.library import CollectionStore
from lookalike.storage.records import StoredVector
from lookalike.types import Level

CHUNK = 4096
VIDEO_NEIGHBOURS = 10  # nearest segments looked up per video segment when finding copies


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


def _connected(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Connected components of the graph with edges ``rows[i] - cols[i]``: the nodes (sorted), each node's
    component label, and each edge's label."""
    nodes = np.unique(np.concatenate([rows, cols]))
    r, c = np.searchsorted(nodes, rows), np.searchsorted(nodes, cols)
    graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(len(nodes), len(nodes)))
    _, labels = connected_components(graph, directed=False)
    return nodes, labels, labels[r]


def _components(
    rows: np.ndarray, cols: np.ndarray, sims: np.ndarray, stored: dict[int, StoredVector]
) -> list[DuplicateGroup]:
    if len(rows) == 0:
        return []
    nodes, labels, edge_labels = _connected(rows, cols)
    groups = []
    for label in np.unique(labels):
        members = nodes[labels == label]
        score = float(sims[edge_labels == label].min())
        items = sorted(
            (GroupItem(stored[int(m)].media_id, stored[int(m)].path, stored[int(m)].kind) for m in members),
            key=lambda it: it.path,
        )
        groups.append(DuplicateGroup(score, items))
    groups.sort(key=lambda g: (-len(g.items), -g.score, g.items[0].path))
    return groups


def _video_segments(store: CollectionStore) -> dict[int, tuple[str, np.ndarray]]:
    """Segment vector ids of every indexed video, by media id, in time order."""
    index = store.index("items")
    stored = store.catalog.hydrate(store.info.id, index.ids().tolist())
    by_video: dict[int, list[StoredVector]] = {}
    for sv in stored.values():
        if sv.level == Level.SEGMENT.value:
            by_video.setdefault(sv.media_id, []).append(sv)
    return {
        m: (svs[0].path, np.array([s.vector_id for s in sorted(svs, key=lambda s: s.start or 0.0)], np.int64))
        for m, svs in by_video.items()
    }


def _query_video(store: CollectionStore, ids: np.ndarray, stored: dict[int, StoredVector]) -> QueryVideo:
    vectors = store.index("items").reconstruct(ids)
    starts = np.array([stored[int(i)].start or 0.0 for i in ids])
    ends = np.array([stored[int(i)].end or 0.0 for i in ids])
    return QueryVideo(starts, ends, vectors, normalise(vectors.mean(axis=0)))


def find_video_copies(store: CollectionStore, threshold: float, k: int = VIDEO_NEIGHBOURS) -> list[DuplicateGroup]:
    """Groups of videos that share footage, whole or in part, with the matched time range of each member.

    Each video's segments look up their ``k`` nearest segments; every pair of videos that meet there is aligned
    (:func:`~lookalike.search.alignment.align`), and pairs whose aligned score reaches ``threshold`` over at least
    two segments (one for single-segment videos) are joined into connected components.
    """
    videos = _video_segments(store)
    if len(videos) < 2:
        return []
    index = store.index("items")
    all_ids = np.concatenate([ids for _, ids in videos.values()])
    stored = store.catalog.hydrate(store.info.id, all_ids.tolist())
    owner = {int(i): m for m, (_, ids) in videos.items() for i in ids}
    queries = {m: _query_video(store, ids, stored) for m, (_, ids) in videos.items()}
    edges: dict[tuple[int, int], VideoMatch] = {}
    for m, q in queries.items():
        hits = index.search(q.vectors, k)
        others = {owner[int(i)] for i, s in zip(hits.ids.ravel(), hits.scores.ravel(), strict=True) if s >= MATCH_FLOOR}
        for other in others - {m}:
            pair = (min(m, other), max(m, other))
            if pair in edges:
                continue
            match = align(queries[pair[0]], queries[pair[1]])
            if match is not None and match.score >= threshold and match.pairs >= min(2, len(queries[pair[0]].starts)):
                edges[pair] = match
    if not edges:
        return []
    nodes, labels, _ = _connected(np.array([a for a, _ in edges]), np.array([b for _, b in edges]))
    groups = []
    for label in np.unique(labels):
        members = {int(n) for n in nodes[labels == label]}
        group_edges = [(pair, m) for pair, m in edges.items() if pair[0] in members]
        ranges: dict[int, tuple[float, float]] = {}
        for (a, b), match in group_edges:  # each member's matched range: the union over its links
            for node, lo, hi in ((a, match.query_start, match.query_end), (b, match.ref_start, match.ref_end)):
                old = ranges.get(node, (lo, hi))
                ranges[node] = (min(old[0], lo), max(old[1], hi))
        items = sorted(
            (GroupItem(n, videos[n][0], "video", ranges[n][0], ranges[n][1]) for n in members), key=lambda it: it.path
        )
        groups.append(DuplicateGroup(min(m.score for _, m in group_edges), items))
    return groups


def find_duplicates(
    store: CollectionStore, threshold: float, video_threshold: float | None = None
) -> list[DuplicateGroup]:
    """Groups of near-duplicate images, and groups of videos sharing footage (:func:`find_video_copies`).

    Args:
        store: the collection.
        threshold: cosine similarity at or above which two images are duplicates.
        video_threshold: aligned segment score at or above which two videos are copies (default: ``threshold``).
    """
    rows, cols, sims, stored = _pairs(store, "items", Level.IMAGE.value, threshold)
    groups = _components(rows, cols, sims, stored)
    groups.extend(find_video_copies(store, threshold if video_threshold is None else video_threshold))
    groups.sort(key=lambda g: (-len(g.items), -g.score, g.items[0].path))
    return groups
