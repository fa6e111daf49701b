"""What `resolve` would do: per verified duplicate group one keeper, and for each other file an action and why.

Only whole copies are ever offered for removal: identical bytes, the whole picture resized, re-encoded, edited or
turned or mirrored, whole video copies. A crop, a framed copy (plain borders round the picture: a copy with borders
added and an original with plain margins beside its crop look the same), a collage that holds the picture, a video
sharing part of its footage, a second name of one file (hardlink), a group that is only ``similar``: kept, with the
reason. A person reviewing the plan may choose otherwise within a verified group (:func:`reviewed_plan`), never for
its last file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from lookalike.actions.rules import Candidate, KeepRule, choose_keeper
from lookalike.search.groups import DuplicateGroup, GroupItem, GroupKind, Relation
from lookalike.storage.records import MediaRecord
from lookalike.types import MediaStatus

WHOLE = frozenset(
    {
        Relation.REPRESENTATIVE,
        Relation.IDENTICAL,
        Relation.RESIZED,
        Relation.EDITED,
        Relation.ROTATED,
        Relation.FLIPPED,
        Relation.COPY,
    }
)
NEVER_KEPT = frozenset({Relation.ROTATED, Relation.FLIPPED})  # whole copies, but never kept in their original's place
ACTIONS = ("trash", "hardlink", "symlink")


@dataclass(frozen=True)
class PlannedAction:
    """One file of the plan: ``action`` is ``keep`` or the run's action (``trash``, ``hardlink``, ``symlink``)."""

    path: str
    action: str
    keeper: str
    reason: str
    media_id: int
    group: int
    record: MediaRecord
    relation: Relation = Relation.COPY


def plan_resolve(
    groups: Sequence[DuplicateGroup],
    records: dict[int, MediaRecord],
    rules: Sequence[KeepRule],
    action: str,
    distinct: set[tuple[str, str]] | None = None,
) -> list[PlannedAction]:
    """The plan over ``groups`` (see the module docstring).

    Args:
        groups: duplicate groups as ``dupes`` finds them.
        records: the catalog records of their files, by media id.
        rules: keep-best rules, in order (``representative`` alone keeps the group's representative).
        action: what happens to a removable copy: ``trash``, or ``hardlink``/``symlink`` to the keeper (identical
            bytes only: a link must show the same picture).
        distinct: content pairs (sorted SHA-256) remembered as not duplicates: a file so paired with the keeper, or
            with another file of its group, is kept, whatever its relation to the representative.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    out: list[PlannedAction] = []
    for g_index, group in enumerate(g for g in groups if g.kind == GroupKind.DUPLICATES):
        items = [it for it in group.items if it.media_id in records]
        items = [it for it in items if records[it.media_id].status == MediaStatus.OK.value]
        whole = [it for it in items if it.relation in WHOLE]
        if len(items) < 2 or not whole:
            continue
        # a turned or mirrored copy is removable, but no keep rule keeps it over the picture the right way round
        # (``--keep format`` kept a lossless mirror image and trashed its JPEG original)
        whole = [it for it in whole if it.relation not in NEVER_KEPT] or whole
        candidates = [
            Candidate(records[it.media_id], it.relation == Relation.REPRESENTATIVE, _picture_pixels(it, records))
            for it in whole
        ]
        best, rule = choose_keeper(candidates, rules)
        keeper = records[whole[best].media_id]
        keeper_is_rep = whole[best].relation == Relation.REPRESENTATIVE
        kept_parts: dict[str, MediaRecord] = {}  # kept files that are not whole copies (a crop), by content
        for it in items:
            rec = records[it.media_id]
            twin = kept_parts.get(rec.sha256 or "")
            if twin is not None and it.media_id != whole[best].media_id and action == "trash":
                # the same bytes as a part kept just above: removing this one loses nothing
                why = f"identical copy of {twin.path}, which is kept"
                out.append(PlannedAction(rec.path, "trash", twin.path, why, it.media_id, g_index, rec, it.relation))
                continue
            if it.media_id == whole[best].media_id:
                why = _keeper_reason(rule, keeper_is_rep, len(whole))
                out.append(PlannedAction(rec.path, "keep", rec.path, why, it.media_id, g_index, rec, it.relation))
                continue
            if distinct and _pair(rec, keeper) in distinct:
                why = "remembered as not a duplicate of the keeper (lookalike distinct)"
                out.append(PlannedAction(rec.path, "keep", keeper.path, why, it.media_id, g_index, rec, it.relation))
                continue
            others = [records[o.media_id] for o in items if o.media_id != it.media_id]
            apart = next((o for o in others if distinct and _pair(rec, o) in distinct), None)
            if apart is not None:  # the group says "copies of one picture", you said otherwise: yours to check
                why = f"remembered as not a duplicate of {apart.path} in this group: kept for you to check"
                out.append(PlannedAction(rec.path, "keep", keeper.path, why, it.media_id, g_index, rec, it.relation))
                continue
            chosen = f"{_copy_words(whole[best].relation)} of it, by rule {rule}"
            verb, why = _decide(it.relation, rec, keeper, action, keeper_is_rep, chosen)
            out.append(PlannedAction(rec.path, verb, keeper.path, why, it.media_id, g_index, rec, it.relation))
            if verb == "keep" and rec.sha256 and it.relation not in (Relation.HARDLINK,):
                kept_parts.setdefault(rec.sha256, rec)
    return out


def _copy_words(relation: Relation) -> str:
    """ "a resized copy", "an edited copy", "a whole copy" (a video's)."""
    if relation == Relation.COPY:
        return "a whole copy"
    return f"{'an' if relation.value[0] in 'aeiou' else 'a'} {relation.value} copy"


def _keeper_reason(rule: str, representative: bool, candidates: int) -> str:
    """Why the keeper was kept: the rule that set it apart from the other whole copies the right way round; that it
    is the representative (no rule did, or there was no other); the only one (the representative gone or failed
    to index, the others turned or mirrored); or, no rule telling the copies apart, the shorter path."""
    if representative and (rule == "representative" or candidates == 1):
        return "keeper: the representative"
    if candidates == 1:
        return "keeper: the only whole copy the right way round (the representative is gone or failed to index)"
    if rule != "representative":
        return f"keeper: by rule {rule}"
    return "keeper: no rule told the copies apart (the shorter path, then by name)"


def _picture_pixels(item: GroupItem, records: dict[int, MediaRecord]) -> int | None:
    """The pixels of the group's picture in a member: its matched box (a photo on a canvas counts the photo)."""
    if item.region is not None and item.relation != Relation.REPRESENTATIVE:
        x0, y0, x1, y1 = item.region
        return max(0, x1 - x0) * max(0, y1 - y0)
    rec = records[item.media_id]
    return None if rec.width is None or rec.height is None else rec.width * rec.height


def _decide(
    relation: Relation,
    rec: MediaRecord,
    keeper: MediaRecord,
    action: str,
    keeper_is_rep: bool = True,
    chosen: str = "chosen by the rules",
) -> tuple[str, str]:
    if relation == Relation.FRAMED:  # a copy with borders added, or an original with plain margins beside its crop
        return "keep", "framed: plain borders round the keeper's picture (added, or an original's margins): kept"
    if relation not in WHOLE and relation != Relation.HARDLINK:
        return "keep", f"{relation.value}: not a whole copy"
    problem = _refusal(relation, rec, keeper, action)
    if problem is not None:
        return "keep", problem
    if relation == Relation.REPRESENTATIVE:
        return action, f"the representative; the keeper is {chosen}"
    if not keeper_is_rep:
        return action, f"a whole copy ({relation.value} against the representative)"
    return action, "a whole copy of the keeper" if relation == Relation.COPY else f"{relation.value} copy of the keeper"


def _refusal(relation: Relation, rec: MediaRecord, keeper: MediaRecord, action: str) -> str | None:
    """Why ``action`` may not be done to ``rec`` with ``keeper`` kept, whatever chose it (None when it may): a second
    name of the keeper's file frees nothing, a link must show the same bytes, a hardlink cannot cross filesystems."""
    same_file = rec.inode is not None and (rec.device, rec.inode) == (keeper.device, keeper.inode)
    if relation == Relation.HARDLINK or same_file:
        return "another name of a file in the group (hardlink): removing it frees nothing"
    if action != "trash" and (rec.sha256 is None or rec.sha256 != keeper.sha256):
        return f"{relation.value}, not the same bytes as the keeper: only identical copies are linked"
    if action == "hardlink" and rec.device is not None and rec.device != keeper.device:
        return "on another filesystem than the keeper: a hardlink cannot cross it"
    return None


def _pair(a: MediaRecord, b: MediaRecord) -> tuple[str, str]:
    return (
        (a.sha256 or "", b.sha256 or "") if (a.sha256 or "") <= (b.sha256 or "") else (b.sha256 or "", a.sha256 or "")
    )


CHOICES = ("keep", *ACTIONS)


def reviewed_plan(
    plan: Sequence[PlannedAction], choices: dict[str, str], distinct: set[tuple[str, str]] | None = None
) -> tuple[list[PlannedAction], list[str]]:
    """The plan as a person reviewed it: ``choices`` maps a file's catalog path to ``keep`` or an action; a file
    without a choice is kept. Returns the reviewed plan and the chosen paths that are in no verified group now.

    A choice may remove any member of a verified duplicate group (a crop too: the person looked at it), but the
    group always keeps a whole copy of its picture: its planned keeper, or when that is chosen away the first whole
    copy chosen ``keep`` (not a crop, a collage, a second name of a file or a file remembered as not a duplicate of
    the planned keeper); without one the group is left untouched. A file remembered as not a duplicate of the
    keeper (``distinct``: sorted SHA-256 pairs) is kept, a second name of the keeper's file is never removed, links
    are made only to identical bytes on one filesystem.

    Raises:
        ValueError: a choice that is not one of :data:`CHOICES`.
    """
    for path, wanted in choices.items():
        if wanted not in CHOICES:
            raise ValueError(f"{path}: unknown choice {wanted!r}; use one of: {', '.join(CHOICES)}")
    distinct = distinct or set()
    in_plan = {p.path for p in plan}
    outside = sorted(path for path in choices if path not in in_plan)
    groups: dict[int, list[PlannedAction]] = {}
    for p in plan:
        groups.setdefault(p.group, []).append(p)
    out: list[PlannedAction] = []
    for members in groups.values():
        planned = next(p.record for p in members if p.path == p.keeper and p.action == "keep")
        keeper = planned
        if choices.get(planned.path, "keep") != "keep":
            whole = [
                p.record
                for p in members
                if choices.get(p.path) == "keep" and p.relation in WHOLE and _pair(p.record, planned) not in distinct
            ]
            if not whole:
                why = "the keeper was chosen away and no whole copy chosen to keep: the group is untouched"
                out.extend(dataclasses.replace(p, action="keep", reason=why) for p in members)
                continue
            keeper = whole[0]
        for p in members:
            choice = choices.get(p.path)
            if keeper is planned and (choice or "keep") == p.action:  # as the automatic plan has it: its reason
                out.append(p)
                continue
            if p.path == keeper.path:
                out.append(dataclasses.replace(p, action="keep", keeper=keeper.path, reason="keeper: reviewed"))
                continue
            if _pair(p.record, keeper) in distinct:
                verb, why = "keep", "remembered as not a duplicate of the keeper (lookalike distinct)"
            elif choice is None or choice == "keep":
                verb, why = "keep", "kept: reviewed" if choice == "keep" else "kept: not chosen in the review"
            else:
                problem = _refusal(p.relation, p.record, keeper, choice)
                verb, why = ("keep", problem) if problem else (choice, f"chosen {choice} in the review")
            out.append(dataclasses.replace(p, action=verb, keeper=keeper.path, reason=why))
    return out, outside
