"""Duplicate groups: a representative and members each verified against it, never a chain of weak links."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

Box = tuple[int, int, int, int]  # (left, top, right, bottom) in pixels of the file itself


class GroupKind(StrEnum):
    """How sure a group is."""

    DUPLICATES = "duplicates"  # verified: the same picture or footage, edited
    SIMILAR = "similar"  # semantic neighbours by the global vectors only, not verified
    OVERLAP = "overlap"  # two videos sharing part of their footage (a link, never merged further)


class Relation(StrEnum):
    """What a group member is to the group's representative."""

    REPRESENTATIVE = "representative"
    IDENTICAL = "identical"  # the same bytes
    HARDLINK = "hardlink"  # another path of a file already in the group: removing it frees nothing
    RESIZED = "resized"  # the whole picture at another size (perhaps also re-encoded or edited)
    CROPPED = "cropped"  # a part of the representative (``rep_region`` says which)
    ROTATED = "rotated"  # turned (a quarter or half turn, or a few degrees)
    FLIPPED = "flipped"  # a mirror image (perhaps also turned)
    FRAMED = "framed"  # the whole picture with plain borders added around it (letterbox, mat, canvas)
    EDITED = "edited"  # the whole picture at the same size: re-encoded, colour, grey, blur, overlay, borders ...
    CONTAINS = "contains"  # this file holds the representative inside a larger picture (collage, screenshot ...)
    SIMILAR = "similar"  # a semantic neighbour, not verified
    COPY = "copy"  # a video: a whole copy
    PARTIAL = "partial"  # a video sharing part of its footage


@dataclass(frozen=True)
class GroupItem:
    """One member of a duplicate group, and the evidence that ties it to the representative.

    Attributes:
        media_id: the file's id in the catalog.
        path: where the file is.
        kind: ``image`` or ``video``.
        start: videos: where the matched footage starts in this file (seconds).
        end: videos: where it ends.
        relation: what this file is to the representative.
        score: the verification score against the representative (1.0 for the representative itself).
        inliers: local-feature matches consistent with one geometric transform (images; None when not verified
            by local features).
        region: images: the box of this file that matches the representative, in this file's pixels.
        rep_region: images: the box of the representative that matches this file, in its pixels.
        rep_start: videos: the representative's matched range start.
        rep_end: videos: the representative's matched range end.
        method: what decided the match: ``identical``, ``local``, ``global`` or ``aligned`` (videos).
    """

    media_id: int
    path: str
    kind: str
    start: float | None = None
    end: float | None = None
    relation: Relation = Relation.REPRESENTATIVE
    score: float = 1.0
    inliers: int | None = None
    region: Box | None = None
    rep_region: Box | None = None
    rep_start: float | None = None
    rep_end: float | None = None
    method: str | None = None


@dataclass(frozen=True)
class DuplicateGroup:
    """Files that are the same picture or footage: ``items[0]`` is the representative (the best copy), every other
    item was checked against it. ``score`` is the weakest member's verification score."""

    score: float
    items: list[GroupItem]
    kind: GroupKind = GroupKind.DUPLICATES

    @property
    def representative(self) -> GroupItem:
        """The best copy, which every other member was verified against."""
        return self.items[0]


def star_groups(
    links: dict[int, dict[int, bool]],
    rank: Callable[[int], tuple],
    confirm: Callable[[int, int], bool] | None = None,
    nearby: dict[int, set[int]] | None = None,
) -> list[list[int]]:
    """Partition files into stars: each group is a representative and files each verified against it directly.

    Files are taken best first (``rank``, lower is better); the best file not yet placed becomes a representative
    and takes every unplaced file verified against it. ``links[a][b]`` is whether ``a`` may represent ``b`` (a
    collage may hold a photo but never represents it: the photo's group is the photo's). A file linked only to a
    member, not to the representative, or a candidate ``nearby`` a member (its nearest vectors) that was never
    compared with the representative, is checked against the representative with ``confirm`` (when given) and left
    out otherwise: groups cannot chain.

    Returns:
        groups of two or more files, each with its representative first.
    """
    nearby = nearby or {}
    order = sorted(links, key=rank)
    placed: set[int] = set()
    groups = []
    for rep in order:
        if rep in placed:
            continue
        members = [m for m in sorted(links[rep], key=rank) if links[rep][m] and m not in placed]
        if confirm is not None:
            near = {n for m in members for n in (*links.get(m, {}), *nearby.get(m, ()))}
            near -= placed | set(members) | set(links[rep]) | {rep}
            members += [
                n for n in sorted(near, key=lambda n: (n not in links, rank(n) if n in links else n)) if confirm(rep, n)
            ]
        if members:  # a file that represents nobody stays free to join a later representative's group
            placed.update([rep, *members])
            groups.append([rep, *members])
    return groups
