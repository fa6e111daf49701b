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

CHUNK = 512  # images per range search: bounds memory when big clusters give each query many neighbours
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


class _Forest:
    """Union-find over ``n`` nodes that keeps each component's weakest edge; edges are added in vectorised batches.

    Memory is O(n) whatever the number of edges, so a library with big clusters of near-duplicates (bursts of
    photos: millions of pairs above the threshold) is grouped without holding its pairs.
    """

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)
        self.weakest = np.full(n, np.inf, np.float32)
        self.linked = np.zeros(n, bool)

    def roots(self, x: np.ndarray) -> np.ndarray:
        """The component root of each node in ``x``."""
        r = self.parent[x]
        while True:
            up = self.parent[r]
            if np.array_equal(up, r):
                return r
            r = up

    def add(self, a: np.ndarray, b: np.ndarray, sims: np.ndarray) -> None:
        """Join ``a[i]`` and ``b[i]`` by an edge of similarity ``sims[i]``."""
        if not len(a):
            return
        ra, rb = self.roots(a), self.roots(b)
        nodes = np.unique(np.concatenate([ra, rb]))
        ia, ib = np.searchsorted(nodes, ra), np.searchsorted(nodes, rb)
        graph = coo_matrix((np.ones(len(ia)), (ia, ib)), shape=(len(nodes), len(nodes)))
        count, labels = connected_components(graph, directed=False)
        rep = np.full(count, len(self.parent), np.int64)
        np.minimum.at(rep, labels, nodes)  # each merged component's new root: its smallest old root
        weakest = np.full(count, np.inf, np.float32)
        np.minimum.at(weakest, labels, self.weakest[nodes])
        np.minimum.at(weakest, labels[ia], sims.astype(np.float32))
        self.parent[nodes] = rep[labels]
        self.weakest[rep] = weakest
        self.linked[a] = True
        self.linked[b] = True
        self.parent = self.roots(np.arange(len(self.parent)))  # flatten: every node points at its root

    def components(self) -> list[tuple[np.ndarray, float]]:
        """Each component of two or more nodes: its nodes and its weakest edge."""
        linked = np.flatnonzero(self.linked)
        roots = self.parent[linked]
        return [(linked[roots == r], float(self.weakest[r])) for r in np.unique(roots)]


def _image_groups(store: CollectionStore, threshold: float) -> list[DuplicateGroup]:
    """Images joined by similarities at or above ``threshold`` (two vectors of one file never pair)."""
    index = store.index("items")
    ids = index.ids()
    stored = store.catalog.hydrate(store.info.id, ids.tolist())
    wanted = np.array(sorted(int(i) for i in ids if int(i) in stored and stored[int(i)].level == Level.IMAGE.value))
    if len(wanted) < 2:
        return []
    media = np.array([stored[int(i)].media_id for i in wanted], np.int64)
    forest = _Forest(len(wanted))
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        lims, scores, found = index.range_search(index.reconstruct(chunk), threshold)
        q = np.repeat(np.arange(start, start + len(chunk)), np.diff(lims).astype(np.int64))
        o = np.minimum(np.searchsorted(wanted, found), len(wanted) - 1)
        keep = (wanted[o] == found) & (o > q)  # an image vector, and each pair once
        q, o, sims = q[keep], o[keep], scores[keep]
        keep = media[q] != media[o]
        forest.add(q[keep], o[keep], sims[keep])
    groups = []
    for members, score in forest.components():
        items = sorted(
            (GroupItem(stored[int(v)].media_id, stored[int(v)].path, stored[int(v)].kind) for v in wanted[members]),
            key=lambda it: it.path,
        )
        groups.append(DuplicateGroup(score, items))
    return groups


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


def find_duplicates(
    store: CollectionStore, threshold: float, video_threshold: float | None = None
) -> list[DuplicateGroup]:
    """Groups of near-duplicate images, and groups of videos sharing footage (:func:`find_video_copies`).

    Args:
        store: the collection.
        threshold: cosine similarity at or above which two images are duplicates.
        video_threshold: aligned segment score at or above which two videos are copies (default: ``threshold``).
    """
    groups = _image_groups(store, threshold)
    groups.extend(find_video_copies(store, threshold if video_threshold is None else video_threshold))
    groups.sort(key=lambda g: (-len(g.items), -g.score, g.items[0].path))
    return groups
