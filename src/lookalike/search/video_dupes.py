"""Video copies: whole copies grouped around their best copy, and pairs of videos that share part of their footage.

A pair of videos is aligned on its segment vectors (:func:`~lookalike.search.alignment.align`, ranges refined to
the frame grid) and shares footage when the aligned score reaches the threshold over enough informative segments
(:meth:`_Matcher.match`). It is

* a **copy** when the match covers at least :data:`COVERAGE` (80%) of both videos, in duration and in informative
  footage (segment weight): copies are grouped as stars (:func:`~lookalike.search.groups.star_groups`) around the
  copy the others match best (the highest summed score against them: the original of a family of edited
  copies; then longest, then largest frame, then largest file, then path), every member aligned against the
  representative itself, never chained through another member; each member carries its own range and the
  representative's;
* an **overlap** otherwise: two-video groups of kind OVERLAP between two works (a copy group, or a video in none),
  one for each video of the smaller work with its best match in the other, never merged with anything.

Footage that many otherwise unrelated videos share (a channel intro, a logo, black or fading frames, shots of one
stock photo) is no evidence that two videos are copies: each segment gets a weight from its document frequency in
the library (:func:`segment_weights`), a match needs :data:`MIN_EVIDENCE` segments' worth of weight, and a copy
must cover most of both videos' weight, not only their duration.

Only stored vectors are read (the catalog) and only ``search`` is asked of the FAISS index, so every index type
(Flat, IVF, HNSW) gives the same groups as long as its search finds the same neighbours.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lookalike.search.alignment import MATCH_FLOOR, SHORT_RUN, VideoMatch, VideoVectors, align, trusted
from lookalike.search.candidates import LOSSY_FETCH, rescored
from lookalike.search.groups import DuplicateGroup, GroupItem, GroupKind, Relation, star_groups
from lookalike.storage.library import CollectionStore
from lookalike.storage.vectors import Neighbours
from lookalike.types import Level, MediaKind, MediaStatus

VIDEO_NEIGHBOURS = 32  # nearest segments looked up per video segment (candidates, and document frequencies)
COVERAGE = 0.8  # a copy's matched range covers at least this share of both videos' durations
MIN_EVIDENCE = 1.5  # weighted segments a match needs (half of it when a video has a single segment)...
SHORT_PENALTY = 0.5  # ...or more score per segment short of that (down to half of it)
COMMON_FLOOR = 0.6  # neighbours below this similarity never count in a segment's document frequency
COMMON_MARGIN = 0.15  # a neighbour within this of the closest other video counts, even below the threshold
FREE_FREQUENCY = 3  # footage in up to this many unrelated other videos keeps its full weight
USUAL_TIMING = 0.05  # |log| of a member's duration over its group's median duration for the group's usual timing
SAME_MATERIAL = 0.8  # videos aligned over this share of each one's segments count once in frequencies


@dataclass(frozen=True)
class _Video:
    """An indexed video: its segments, and its rank as a copy (lower is better: longest, largest frame, largest
    file, path), which breaks ties of the representative's summed score and orders overlaps."""

    media_id: int
    path: str
    segments: VideoVectors
    rank: tuple[float, int, int, str]


def load_videos(store: CollectionStore) -> dict[int, _Video]:
    """Every indexed video of the collection with its stored segment vectors (read from the catalog, never
    reconstructed from the index, which IVF and HNSW indexes cannot do), by media id."""
    catalog, cid = store.catalog, store.info.id
    step = 1.0 / float(store.info.pooling.get("frame_rate", 1.0))
    videos = {}
    for path, known in catalog.known_media(cid).items():
        if known.kind != MediaKind.VIDEO.value or known.status != MediaStatus.OK.value:
            continue
        records = catalog.vectors_of(cid, known.id, store.dim)
        if not any(r.level == Level.SEGMENT.value for r in records):
            continue
        segments = VideoVectors.from_records(records, frame_step=step)
        media = catalog.media(cid, known.id)
        pixels = (media.width or 0) * (media.height or 0) if media else 0
        # durations within half a second are equal: a re-encode's few frames less must not beat a larger frame
        rank = (-round(segments.duration), -pixels, -known.size, path)
        videos[known.id] = _Video(known.id, path, segments, rank)
    return videos


@dataclass(frozen=True)
class _Neighbourhood:
    """What the segment search found: pairs of videos worth aligning, and for each video's segments the other
    videos holding a near-identical segment (for document frequencies)."""

    pairs: set[tuple[int, int]]
    near: dict[int, list[dict[int, float]]]


def _neighbourhood(store: CollectionStore, videos: dict[int, _Video], k: int) -> _Neighbourhood:
    """Each video's segments look up their ``k`` nearest vectors in the items index (search only)."""
    index = store.index("items")
    pairs: set[tuple[int, int]] = set()
    near: dict[int, list[dict[int, float]]] = {}
    if index.lossy:  # PQ codes give estimates: fetch more, keep the k best by the stored vectors' cosines
        found = {
            m: _top(rescored(store, v.segments.vectors, index.search(v.segments.vectors, k * LOSSY_FETCH)), k)
            for m, v in videos.items()
        }
    else:
        found = {m: index.search(v.segments.vectors, k) for m, v in videos.items()}
    ids = np.unique(np.concatenate([f.ids.ravel() for f in found.values()]))
    stored = store.catalog.hydrate(store.info.id, ids.tolist())
    # the items index holds images too: a segment's neighbours that are not video segments are not candidates
    owner = {i: sv.media_id for i, sv in stored.items() if sv.level == Level.SEGMENT.value and sv.media_id in videos}
    for m, hits in found.items():
        near[m] = []
        for row_ids, row_scores in zip(hits.ids, hits.scores, strict=True):
            others = [(owner.get(int(i)), float(s)) for i, s in zip(row_ids, row_scores, strict=True)]
            best: dict[int, float] = {}
            for o, s in others:
                if o is not None and o != m and s >= COMMON_FLOOR:
                    best[o] = max(s, best.get(o, -1.0))
            near[m].append(best)
            pairs.update((min(m, o), max(m, o)) for o, s in others if o is not None and o != m and s >= MATCH_FLOOR)
    return _Neighbourhood(pairs, near)


def _top(found: Neighbours, k: int) -> Neighbours:
    return Neighbours(found.scores[:, :k], found.ids[:, :k])


def _weight(frequency: int) -> float:
    """A segment's weight from how many unrelated other videos hold it: 1 up to :data:`FREE_FREQUENCY`, then
    falling with the square of the frequency (a 3-video clip is a clip; a 12-video intro is an intro)."""
    return 1.0 if frequency <= FREE_FREQUENCY else (FREE_FREQUENCY / frequency) ** 2


def _share(video: VideoVectors, start: float, end: float) -> float:
    """The share of a video's segment weight whose segments (by their centres) lie in ``[start, end]``."""
    centres = video.centres()
    weight = video.weight
    inside = (centres >= start - 1e-6) & (centres <= end + 1e-6)
    return float(weight[inside].sum() / weight.sum()) if weight.sum() > 1e-9 else 0.0


def _covers(match: VideoMatch, a: VideoVectors, b: VideoVectors) -> bool:
    """Whether a match (``a`` on its query side) covers at least :data:`COVERAGE` of both videos: of their
    durations, and of their informative footage (segment weight). The second keeps two videos that share only
    common footage around a little shared material (two clips of one source between shots of one stock photo)
    from being called copies."""
    return all(
        end - start >= COVERAGE * v.duration - 1e-6 and _share(v, start, end) >= COVERAGE - 1e-6
        for v, start, end in ((a, match.query_start, match.query_end), (b, match.ref_start, match.ref_end))
    )


def _same_material(a: VideoVectors, b: VideoVectors, threshold: float) -> bool:
    """Whether two videos are made of the same footage: aligned (unweighted, either way round) with a score at
    the threshold over :data:`SAME_MATERIAL` of each one's segments."""
    for x, y in ((a, b), (b, a)):
        match = align(x, y, refine=False)
        if match is None or match.score < threshold or match.pairs < SAME_MATERIAL * len(x.starts):
            return False
    return True


def segment_weights(videos: dict[int, _Video], hood: _Neighbourhood, threshold: float) -> dict[int, np.ndarray]:
    """Each video's segment weights from document frequency: how many other videos hold the segment (one of their
    segments found among its nearest matches it at the threshold, or within :data:`COMMON_MARGIN` of the closest
    other video). Videos made of the same footage (copies of one another, :func:`_same_material`) count once, and
    not at all for their own segments: a video with many copies keeps full weight, while an intro that many
    different videos share is down-weighted (:func:`_weight`)."""
    ids = sorted(videos)
    position = {m: i for i, m in enumerate(ids)}
    same = [
        (position[a], position[b])
        for a, b in sorted(hood.pairs)
        if _same_material(videos[a].segments, videos[b].segments, threshold)
    ]
    rows, cols = np.array([p for p, _ in same], np.int64), np.array([q for _, q in same], np.int64)
    graph = coo_matrix((np.ones(len(same)), (rows, cols)), shape=(len(ids), len(ids)))
    _, labels = connected_components(graph, directed=False)  # for counting only: never reported as groups
    group = {m: int(labels[position[m]]) for m in ids}

    def frequency(m: int, others: dict[int, float]) -> int:
        outside: dict[int, float] = {}
        for o, s in others.items():
            if group[o] != group[m]:
                outside[group[o]] = max(s, outside.get(group[o], -1.0))
        if not outside:
            return 0
        # held by another video: matching it at the threshold, or nearly as well as the closest other video does
        # (footage that looks about as alike in many videos, such as shots of one stock photo, is common too)
        level = min(max(outside.values()) - COMMON_MARGIN, threshold)
        return sum(1 for s in outside.values() if s >= level)

    return {m: np.array([_weight(frequency(m, others)) for others in hood.near[m]]) for m in videos}


class _Matcher:
    """Aligns pairs of weighted videos once each and judges them against the threshold."""

    def __init__(self, videos: dict[int, _Video], threshold: float) -> None:
        self.videos = videos
        self.threshold = threshold
        self._cache: dict[tuple[int, int], VideoMatch | None] = {}

    def match(self, a: int, b: int) -> VideoMatch | None:
        """The match of ``a`` (query side) with ``b``, when it reaches the threshold with enough evidence."""
        key = (min(a, b), max(a, b))
        if key not in self._cache:
            qa, qb = self.videos[key[0]].segments, self.videos[key[1]].segments
            # the score does not depend on the refined ends: only matches that pass are refined
            found = align(qa, qb, refine=False, strong=self.threshold)
            fine = None
            if found is not None and self._enough(found, qa, qb):
                fine = align(qa, qb, strong=self.threshold)
                if fine is not None and min(len(qa.starts), len(qb.starts)) < SHORT_RUN:
                    # a short video's refined ranges are kept only while their lengths agree with the line's speed
                    fine = trusted(qa, found, fine, overlap=False)
            self._cache[key] = fine
        found = self._cache[key]
        return found if found is None or a == key[0] else found.flipped()

    def _enough(self, match: VideoMatch, a: VideoVectors, b: VideoVectors) -> bool:
        """Whether a match is evidence of shared footage: its score reaches the threshold over
        :data:`MIN_EVIDENCE` weighted segments (half that for a single-segment video), and a shorter match down to
        :data:`MIN_EVIDENCE` / 2 needs :data:`SHORT_PENALTY` more score per missing segment (one informative
        segment alike is as likely chance as footage)."""
        needed = MIN_EVIDENCE if min(len(a.starts), len(b.starts)) >= 2 else MIN_EVIDENCE / 2
        missing = max(0.0, needed - match.evidence)
        return missing <= needed / 2 + 1e-6 and match.score >= self.threshold + SHORT_PENALTY * missing

    def is_copy(self, a: int, b: int) -> bool:
        """Whether ``a`` and ``b`` are whole copies of each other."""
        match = self.match(a, b)
        return match is not None and _covers(match, self.videos[a].segments, self.videos[b].segments)


def _item(video: _Video, match: VideoMatch | None, relation: Relation) -> GroupItem:
    """A group member; ``match`` has the member on its query side and the representative on its reference side."""
    if match is None:
        return GroupItem(video.media_id, video.path, MediaKind.VIDEO.value, relation=relation, method="aligned")
    return GroupItem(
        video.media_id,
        video.path,
        MediaKind.VIDEO.value,
        start=match.query_start,
        end=match.query_end,
        relation=relation,
        score=match.score,
        rep_start=match.ref_start,
        rep_end=match.ref_end,
        method="aligned",
    )


def _copy_group(videos: dict[int, _Video], matcher: _Matcher, members: list[int]) -> DuplicateGroup:
    """A star of whole copies: the representative, then each member with its range and the representative's."""
    rep, rest = members[0], members[1:]
    matches = [matcher.match(m, rep) for m in rest]
    assert all(m is not None for m in matches)
    starts = [m.ref_start for m in matches if m is not None]
    ends = [m.ref_end for m in matches if m is not None]
    head = replace(_item(videos[rep], None, Relation.REPRESENTATIVE), start=min(starts), end=max(ends))
    items = [head, *(_item(videos[m], match, Relation.COPY) for m, match in zip(rest, matches, strict=True))]
    return DuplicateGroup(min(it.score for it in items[1:]), items)


def _overlap_groups(
    videos: dict[int, _Video], matcher: _Matcher, partial: list[tuple[int, int]], stars: list[list[int]]
) -> list[DuplicateGroup]:
    """OVERLAP groups between works (copy groups, or videos in none) that share part of their footage: each video
    of the smaller work with its best match in the other, preferring members at their group's usual timing (a copy
    slowed down or sped up may lead its group, but an excerpt's speed against it is found less surely than against
    a copy that plays as the excerpt does)."""
    members = {star[0]: star for star in stars}
    work = {m: star[0] for star in stars for m in star}
    usual: dict[int, bool] = {}
    for star in stars:
        median = float(np.median([videos[m].segments.duration for m in star]))
        usual |= {m: abs(float(np.log(videos[m].segments.duration / median))) < USUAL_TIMING for m in star}
    pairs = {tuple(sorted((work.get(a, a), work.get(b, b)))) for a, b in partial}
    groups = []
    for wa, wb in sorted(p for p in pairs if p[0] != p[1]):
        small, large = sorted((members.get(wa, [wa]), members.get(wb, [wb])), key=lambda g: (len(g), videos[g[0]].rank))
        for m in small:
            found = [(usual.get(o, True), match.score, o, match) for o in large if (match := matcher.match(m, o))]
            if not found:
                continue
            *_, o, match = max(found, key=lambda f: (f[0], f[1], -f[2]))
            groups.append(_overlap(videos, m, o, match))
    return groups


def _overlap(videos: dict[int, _Video], a: int, b: int, match: VideoMatch) -> DuplicateGroup:
    """A two-video OVERLAP group; ``match`` has ``a`` on its query side. The better-ranked video comes first."""
    if videos[b].rank < videos[a].rank:
        a, b, match = b, a, match.flipped()
    head = GroupItem(
        a, videos[a].path, MediaKind.VIDEO.value, start=match.query_start, end=match.query_end, method="aligned"
    )
    return DuplicateGroup(match.score, [head, _item(videos[b], match.flipped(), Relation.PARTIAL)], GroupKind.OVERLAP)


def _centrality(matcher: _Matcher, links: dict[int, dict[int, bool]]) -> dict[int, float]:
    """Each linked video's summed score against the videos it is a whole copy of: the original of a family of
    copies matches each of them best (every copy is one edit away from it, two from another copy)."""
    total = {}
    for m, others in links.items():
        found = (matcher.match(m, o) for o in others)
        total[m] = sum(round(match.score, 4) for match in found if match is not None)  # steady across backends
    return total


def find_video_copies(store: CollectionStore, threshold: float, k: int = VIDEO_NEIGHBOURS) -> list[DuplicateGroup]:
    """Groups of whole video copies (kind DUPLICATES) and pairs of videos sharing part of their footage (kind
    OVERLAP), each member with its matched range and the representative's.

    Each video's segments look up their ``k`` nearest segments; pairs of videos that meet there are aligned with
    segment weights from document frequency (:func:`segment_weights`). Pairs whose weighted score reaches
    ``threshold`` over at least :data:`MIN_EVIDENCE` weighted segments are copies when the match covers
    :data:`COVERAGE` of both videos, overlaps otherwise (see the module's docstring).
    """
    videos = load_videos(store)
    if len(videos) < 2:
        return []
    hood = _neighbourhood(store, videos, k)
    weights = segment_weights(videos, hood, threshold)
    weighted = {m: replace(v, segments=replace(v.segments, weights=weights[m])) for m, v in videos.items()}
    matcher = _Matcher(weighted, threshold)
    links: dict[int, dict[int, bool]] = defaultdict(dict)
    partial = []
    for a, b in sorted(hood.pairs):
        if matcher.is_copy(a, b):
            links[a][b] = links[b][a] = True
        if matcher.match(a, b) is not None:
            partial.append((a, b))
    centre = _centrality(matcher, links)
    # the representative is the copy the others match best (a slowed copy, the longest, once led a group whose
    # other copies scored at the threshold against it; a padded copy, the largest frame, matches crops worse)
    stars = star_groups(dict(links), rank=lambda m: (-round(centre[m], 4), videos[m].rank), confirm=matcher.is_copy)
    # pairs that share footage across two groups (a partial copy; a copy left out of a star whose representative
    # it does not match) become overlaps between the groups; pairs inside one group are its members already
    groups = [_copy_group(weighted, matcher, star) for star in stars]
    groups += _overlap_groups(weighted, matcher, partial, stars)
    return groups
