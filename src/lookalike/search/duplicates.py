"""Duplicate groups of a collection: verified image duplicates, video copies and overlaps, and (on request)
similar images by their global vectors alone."""

from __future__ import annotations

from dataclasses import replace

from lookalike.search.candidates import ChunkSearch, image_candidates
from lookalike.search.groups import DuplicateGroup, GroupItem, GroupKind, Relation, star_groups
from lookalike.search.image_dupes import VerifyRule, find_image_duplicates
from lookalike.search.video_dupes import find_video_copies
from lookalike.storage.library import CollectionStore
from lookalike.storage.records import MediaRecord
from lookalike.types import MediaKind


def similar_images(
    store: CollectionStore,
    threshold: float,
    k: int = 10,
    grouped: dict[int, int] | None = None,
    search: ChunkSearch | None = None,
) -> list[DuplicateGroup]:
    """Stars of images whose global vectors reach ``threshold`` against the star's centre (not verified).

    A similar group says "each member is close to the centre", nothing about two members: so a pair of verified
    duplicates is never a centre and its member (``grouped``), but two files of one duplicate group may both be
    close to the centre of one similar group.

    Args:
        store: the collection.
        threshold: cosine at or above which two images are similar.
        k: nearest images per image looked at.
        grouped: the duplicate group (any key) of each file already in one: two files of one duplicate group are
            never linked as similar (they are already reported as the same picture), while a file may be similar to
            a file of another group or to a file in none.
        search: where the stored vectors are searched (default: here).
    """
    grouped = grouped or {}
    cands = image_candidates(store, k, threshold, search=search)
    if not len(cands):
        return []
    cid = store.info.id
    stored = store.catalog.hydrate(cid, cands.ids.tolist())
    links: dict[int, dict[int, bool]] = {}
    sims: dict[tuple[int, int], float] = {}
    for a, b, cos in zip(cands.a.tolist(), cands.b.tolist(), cands.cosine.tolist(), strict=True):
        va, vb = stored.get(int(cands.ids[a])), stored.get(int(cands.ids[b]))
        if va is None or vb is None or va.media_id == vb.media_id:
            continue
        if va.media_id in grouped and grouped[va.media_id] == grouped.get(vb.media_id):
            continue  # verified duplicates of each other: not re-reported as merely similar
        links.setdefault(va.media_id, {})[vb.media_id] = True
        links.setdefault(vb.media_id, {})[va.media_id] = True
        sims[(va.media_id, vb.media_id)] = sims[(vb.media_id, va.media_id)] = float(cos)
    paths = {sv.media_id: sv.path for sv in stored.values()}
    # the centre is the picture with the most neighbours, then the closest ones
    groups = []
    for members in star_groups(links, lambda m: (-len(links[m]), paths[m])):
        rep = members[0]
        items = [GroupItem(rep, paths[rep], MediaKind.IMAGE.value)]
        items += [
            GroupItem(
                m,
                paths[m],
                MediaKind.IMAGE.value,
                relation=Relation.SIMILAR,
                score=round(sims[(rep, m)], 4),
                method="global",
            )
            for m in members[1:]
        ]
        groups.append(DuplicateGroup(min(it.score for it in items), items, GroupKind.SIMILAR))
    return groups


def mark_hardlinks(groups: list[DuplicateGroup], records: dict[int, MediaRecord]) -> list[DuplicateGroup]:
    """Groups in which every path of a file already listed (a hardlink: the same device and inode) is marked
    ``hardlink``: one file at several names, which no clean-up may count as a removable copy."""
    out = []
    for g in groups:
        seen: set[tuple[int, int]] = set()
        items = []
        for it in g.items:
            rec = records.get(it.media_id)
            identity = None if rec is None or rec.inode is None or rec.device is None else (rec.device, rec.inode)
            if identity is not None and identity in seen:
                it = replace(it, relation=Relation.HARDLINK, method="hardlink")
            if identity is not None:
                seen.add(identity)
            items.append(it)
        out.append(replace(g, items=items))
    return out


def drop_distinct(
    groups: list[DuplicateGroup], records: dict[int, MediaRecord], distinct: set[tuple[str, str]]
) -> list[DuplicateGroup]:
    """Groups without the members remembered as not duplicates of their representative (by content: the
    decision survives renames and re-indexing); a group left with one file is dropped."""

    def sha(media_id: int) -> str:
        rec = records.get(media_id)
        return (rec.sha256 if rec else None) or ""

    out = []
    for g in groups:
        rep = sha(g.items[0].media_id)
        items = [g.items[0]] + [it for it in g.items[1:] if tuple(sorted((rep, sha(it.media_id)))) not in distinct]
        if len(items) > 1:
            out.append(replace(g, items=items, score=min(it.score for it in items)))
    return out


def find_duplicates(
    store: CollectionStore,
    video_threshold: float,
    similar_threshold: float | None = None,
    rule: VerifyRule | None = None,
    distinct: set[tuple[str, str]] | None = None,
    search: ChunkSearch | None = None,
) -> list[DuplicateGroup]:
    """Verified duplicate groups of images, video copies and overlaps, and with ``similar_threshold`` also groups of
    similar images (kind ``similar``: pairs of files in one duplicate group are not repeated there), largest groups
    first.

    Args:
        store: the collection.
        video_threshold: aligned segment score at or above which two videos share footage.
        similar_threshold: cosine at or above which images are similar (None: no similar groups).
        rule: how image candidates are found and verified (default: the calibrated rule).
        distinct: pairs of contents (sorted SHA-256 pairs) remembered as not duplicates: such a member leaves its
            representative's group.
        search: where the image candidate stages search the stored vectors (default: here; ``dupes --ray``: Ray
            actors, :mod:`lookalike.indexer.engines.ray_index`).
    """
    groups = find_image_duplicates(store, rule, search)
    groups.extend(find_video_copies(store, video_threshold))
    groups = _remembered(store, groups, distinct)
    if similar_threshold is not None:
        # the groups as reported (a member remembered as not a duplicate has left its group)
        grouped = {it.media_id: n for n, g in enumerate(groups) for it in g.items}
        similar = similar_images(store, similar_threshold, grouped=grouped, search=search)
        groups.extend(_remembered(store, similar, distinct))
    order = {GroupKind.DUPLICATES: 0, GroupKind.OVERLAP: 1, GroupKind.SIMILAR: 2}
    groups.sort(key=lambda g: (order[g.kind], -len(g.items), -g.score, g.items[0].path))
    return groups


def _remembered(
    store: CollectionStore, groups: list[DuplicateGroup], distinct: set[tuple[str, str]] | None
) -> list[DuplicateGroup]:
    """Groups with hardlinks marked and the remembered "not duplicates" decisions applied."""
    records = store.catalog.media_many(store.info.id, {it.media_id for g in groups for it in g.items})
    groups = mark_hardlinks(groups, records)
    return drop_distinct(groups, records, distinct) if distinct else groups
