"""`resolve`, `undo`, `distinct`: the workflows over a writable collection (the caller holds the writer lock)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lookalike.actions.apply import DELETE, Runner, RunReport, trash_path
from lookalike.actions.desktop_trash import desktop_path
from lookalike.actions.plan import PlannedAction, plan_resolve, reviewed_plan
from lookalike.actions.rules import KeepRule
from lookalike.errors import NotIndexedError, UsageError
from lookalike.indexer.discover import canonical
from lookalike.indexer.plan import path_key
from lookalike.search.duplicates import find_duplicates
from lookalike.storage.journal import Journal
from lookalike.storage.library import CollectionStore
from lookalike.storage.records import JournalRecord
from lookalike.types import MediaStatus


@dataclass
class Resolution:
    """A resolve: the plan, and when applied the run that carried it out.

    Attributes:
        plan: every file of every verified group: kept (why) or acted on (how).
        run: the run's id (None for a dry run, or when there was nothing to do).
        report: what the run did (None for a dry run).
        recovered: runs a killed process had left unfinished, finished first.
        outside: files a review chose for which are in no verified duplicate group now (nothing done to them).
    """

    plan: list[PlannedAction]
    run: int | None = None
    report: RunReport | None = None
    recovered: list[RunReport] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    def outcome(self) -> list[dict[str, str | int]]:
        """Per file of the plan ``{"path", "action", "keeper", "reason", "group"}`` as it turned out: a file the
        run left alone has action ``keep`` and ``skipped: `` with why; groups are numbered from 1. (The JSON of
        ``resolve --json`` and of the web page's review.)"""
        skipped = dict(self.report.skipped) if self.report else {}
        return [
            {
                "path": p.path,
                "action": "keep" if p.path in skipped else p.action,
                "keeper": p.keeper,
                "reason": f"skipped: {skipped[p.path]}" if p.path in skipped else p.reason,
                "group": p.group + 1,
            }
            for p in self.plan
        ]


def recover(runner: Runner, journal: Journal, collection_id: int) -> list[RunReport]:
    """Finish what a killed run left: an ``applying`` run is applied to its end, an ``undoing`` one undone."""
    done = []
    for run in journal.unfinished(collection_id):
        record = journal.run(run)
        if record is not None and record.state == "undoing":
            done.append(runner.undo(run))
        else:
            done.append(runner.apply(run))
    return done


def resolve(
    store: CollectionStore,
    journal: Journal,
    home: Path,
    rules: Sequence[KeepRule],
    video_threshold: float,
    apply: bool = False,
    action: str = "trash",
    choices: dict[str, str] | None = None,
    delete: bool = False,
    desktop: Path | None = None,
) -> Resolution:
    """Plan (and with ``apply`` carry out) the clean-up of the collection's verified duplicate groups.

    A dry run changes nothing on disk or in the catalog. An applied run journals every file before touching it
    (see :mod:`lookalike.actions.apply`); runs a killed process left are finished first. With ``choices`` (a
    reviewed plan: catalog path -> ``keep`` or an action) only the chosen files are acted on, within the groups
    found now and with the same guards (see :func:`lookalike.actions.plan.reviewed_plan`). With ``delete`` the
    trashed files are deleted for good at the end of the run (the run cannot be undone; the caller confirms).
    With ``desktop`` (a freedesktop.org trash folder) files go there instead of ``<home>/trash``.
    """
    runner = Runner(store, journal, home)
    recovered = recover(runner, journal, store.info.id) if apply else []
    pairs = distinct_pairs(journal, store.info.id)
    groups = find_duplicates(store, video_threshold, None, distinct=pairs)
    ids = {it.media_id for g in groups for it in g.items}
    records = store.catalog.media_many(store.info.id, ids)
    plan = plan_resolve(groups, records, rules, action, pairs)
    outside: list[str] = []
    if choices is not None:
        plan, outside = reviewed_plan(plan, choices, pairs)
    if not apply:
        return Resolution(plan, recovered=recovered, outside=outside)
    moves = [p for p in plan if p.action != "keep"]
    if not moves:
        return Resolution(plan, recovered=recovered, outside=outside)
    entries = [
        JournalRecord(
            path=p.path,
            keeper=p.keeper,
            action=p.action,
            size=p.record.size,
            mtime_ns=p.record.mtime_ns,
            sha256=p.record.sha256,
            device=p.record.device,
            inode=p.record.inode,
            media_id=p.media_id,
        )
        for p in moves
    ]
    kind = DELETE if delete and action == "trash" else action
    nonce = uuid.uuid4().hex

    def where(run_id: int, path: str) -> str:
        return trash_path(home, run_id, path) if desktop is None else desktop_path(desktop, run_id, path, nonce)

    run = journal.start_run(store.info.id, kind, entries, where)
    return Resolution(plan, run, runner.apply(run), recovered, outside)


def undo(store: CollectionStore, journal: Journal, home: Path, run: int | None = None) -> RunReport:
    """Put back every file of a run (default: the latest one applied).

    Raises:
        UsageError: there is no such run, or nothing left to undo.
    """
    runner = Runner(store, journal, home)
    for unfinished in journal.unfinished(store.info.id):  # undo asked: an interrupted run is not finished first
        record = journal.run(unfinished)
        if record is not None and record.state == "undoing":
            runner.undo(unfinished)
        else:
            runner.abandon(unfinished)
    runs = journal.runs(store.info.id)
    if run is None:
        applied = [r for r in runs if r.state == "done" and r.counts.get("done")]
        if not applied:
            raise UsageError("nothing to undo: no applied run has files in the trash")
        run = applied[0].id
    found = [r for r in runs if r.id == run]
    if not found:
        raise UsageError(f"no run {run} (see `lookalike trash list`)")
    if not found[0].counts.get("done"):
        raise UsageError(f"run {run} has nothing to undo ({_counts(found[0].counts)})")
    return runner.undo(run)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no files"


def distinct_pairs(journal: Journal, collection_id: int) -> set[tuple[str, str]]:
    """The remembered "not duplicates" pairs as sorted ``(sha_a, sha_b)``."""
    return {(d.sha_a, d.sha_b) for d in journal.decisions(collection_id)}


def mark_distinct(store: CollectionStore, journal: Journal, paths: Sequence[Path]) -> int:
    """Remember that the files at ``paths`` are not duplicates of one another (every pair); returns how many pairs
    were new.

    Raises:
        UsageError: fewer than two files.
        NotIndexedError: a path is not an indexed file.
    """
    if len(paths) < 2:
        raise UsageError("name at least two files that are not duplicates")
    known = store.catalog.known_media(store.info.id)
    found: list[tuple[str, str]] = []
    for path in paths:
        key = path_key(canonical(path))
        media = known.get(key)
        if media is None or media.sha256 is None or media.status != MediaStatus.OK.value:
            raise NotIndexedError(f"{os.fsdecode(path)} is not an indexed file (index it first)")
        found.append((media.sha256, key))
    pairs = [(*found[i], *found[j]) for i in range(len(found)) for j in range(i + 1, len(found))]
    return journal.add_distinct(store.info.id, pairs)
