"""Video copies: videos that share footage, whole or in part, with the matched time range of each side."""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lookalike.indexer.pooling import normalise
from lookalike.search.alignment import MATCH_FLOOR, QueryVideo, VideoMatch, align
from lookalike.search.groups import DuplicateGroup, GroupItem
from lookalike.storage.library import CollectionStore
from lookalike.storage.records import StoredVector
from lookalike.types import Level

VIDEO_NEIGHBOURS = 10  # nearest segments looked up per video segment when finding copies


def _connected(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Connected components of the graph with edges ``rows[i] - cols[i]``: the nodes (sorted), each node's
    component label, and each edge's label."""
    nodes = np.unique(np.concatenate([rows, cols]))
    r, c = np.searchsorted(nodes, rows), np.searchsorted(nodes, cols)
    graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(len(nodes), len(nodes)))
    _, labels = connected_components(graph, directed=False)
    return nodes, labels, labels[r]


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
        # the items index holds images too: a segment's neighbours that are not video segments are not candidates
        near = (
            owner.get(int(i)) for i, s in zip(hits.ids.ravel(), hits.scores.ravel(), strict=True) if s >= MATCH_FLOOR
        )
        others = {o for o in near if o is not None}
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
