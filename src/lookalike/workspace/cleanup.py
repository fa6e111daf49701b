"""The Workspace methods that clean up duplicates: the only ones that move user files (see lookalike.actions)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.errors import UsageError
from lookalike.storage.library import CollectionStore, Library
from lookalike.storage.locks import writer_lock

if TYPE_CHECKING:
    from datetime import timedelta

    from lookalike.actions.apply import RunReport
    from lookalike.actions.resolve import Resolution
    from lookalike.config import Settings
    from lookalike.storage.records import DecisionRecord, RunRecord


TRASHES = ("library", "desktop")  # where resolve puts files: <home>/trash, or the freedesktop.org trash


class CleanupMethods:
    """Part of :class:`lookalike.workspace.Workspace` (which provides the attributes and methods declared here)."""

    settings: Settings
    library: Library

    if TYPE_CHECKING:

        def store(self) -> CollectionStore: ...

        def _forget_store(self) -> None: ...

    def _writable(self) -> CollectionStore:
        """The collection of :meth:`store`, opened for writing (the caller holds the writer lock)."""
        store = self.library.open_collection(self.store().info.name)
        store.load()
        self._forget_store()  # readers reload what this writes
        return store

    def resolve(
        self,
        keep: str | None = None,
        apply: bool = False,
        action: str = "trash",
        choices: dict[str, str] | None = None,
        delete: bool = False,
        into: str = "library",
    ) -> Resolution:
        """Plan the clean-up of verified duplicate groups, and with ``apply`` carry it out (journaled, undoable).

        Args:
            keep: keep-best rules, comma-separated (see :data:`lookalike.actions.rules.RULES`); default: keep each
                group's representative.
            apply: move the files (a dry run, the default, changes nothing).
            action: ``trash`` (into ``<home>/trash/<run>/``), or ``hardlink``/``symlink`` to the keeper (identical
                copies only).
            choices: a reviewed plan: a file's path (as the plan names it) -> ``keep``, ``trash``, ``hardlink`` or
                ``symlink``; only chosen files are acted on, each group keeps a file (see
                :func:`lookalike.actions.plan.reviewed_plan`). ``action`` then names the run.
            delete: with ``apply`` and the ``trash`` action, delete the trashed files for good at the end of the
                run: it cannot be undone (front doors confirm first).
            into: where trashed files go: ``library`` (``<home>/trash/<run>/<absolute path>``) or ``desktop``
                (the freedesktop.org trash, ``$XDG_DATA_HOME/Trash``, which file managers list); either way
                :meth:`undo` puts them back.

        Raises:
            UsageError: an unknown rule, action or choice.
            LibraryLockedError: another process is writing to the library.
        """
        from lookalike.actions.plan import ACTIONS
        from lookalike.actions.resolve import resolve
        from lookalike.actions.rules import KeepRule, parse_rules

        if action not in ACTIONS:
            raise UsageError(f"unknown action {action!r}; use one of: {', '.join(ACTIONS)}")
        from lookalike.actions.desktop_trash import trash_dir
        from lookalike.actions.plan import CHOICES

        rules = parse_rules(keep) if keep else [KeepRule("representative")]
        for path, choice in (choices or {}).items():
            if choice not in CHOICES:
                raise UsageError(f"{path}: unknown choice {choice!r}; use one of: {', '.join(CHOICES)}")
        s, journal = self.settings, self.library.journal
        if into not in TRASHES:
            raise UsageError(f"unknown trash {into!r}; use one of: {', '.join(TRASHES)}")
        if delete and action != "trash":
            raise UsageError(f"--delete deletes what would go to the trash; it does not go with --action {action}")
        if not apply:  # a dry run reads (no lock, nothing written, not even index files)
            return resolve(self.store(), journal, s.home, rules, s.video_dupe_threshold, False, action, choices)
        with writer_lock(s.home, self.library.engine):
            store = self._writable()
            desktop = trash_dir() if into == "desktop" else None
            return resolve(
                store, journal, s.home, rules, s.video_dupe_threshold, True, action, choices, delete, desktop
            )

    def undo(self, run: int | None = None) -> RunReport:
        """Put back every file a run moved (default: the latest run), byte-identical, with the catalog."""
        from lookalike.actions.resolve import undo

        with writer_lock(self.settings.home, self.library.engine):
            return undo(self._writable(), self.library.journal, self.settings.home, run)

    def trash_runs(self) -> list[RunRecord]:
        """The runs of this collection, newest first, with their files by state and trash size."""
        return self.library.journal.runs(self.store().info.id)

    def empty_trash(self, older_than: timedelta) -> RunReport:
        """Delete for good the trashed files of runs older than ``older_than`` (they can no longer be undone)."""
        from lookalike.actions.apply import Runner

        with writer_lock(self.settings.home, self.library.engine):
            return Runner(self._writable(), self.library.journal, self.settings.home).empty(older_than)

    def distinct(self, paths: Sequence[Path]) -> int:
        """Remember that these files are not duplicates of one another; returns how many pairs were new."""
        from lookalike.actions.resolve import mark_distinct

        with writer_lock(self.settings.home, self.library.engine):
            return mark_distinct(self.store(), self.library.journal, paths)

    def decisions(self) -> list[DecisionRecord]:
        """The remembered "not duplicates" pairs."""
        return self.library.journal.decisions(self.store().info.id)

    def forget_decisions(self, ids: Sequence[int]) -> int:
        """Forget remembered pairs by id; returns how many there were.

        Raises:
            UsageError: an id that is no remembered decision (nothing is forgotten then).
        """
        with writer_lock(self.settings.home, self.library.engine):
            cid = self.store().info.id
            unknown = sorted(set(ids) - {d.id for d in self.library.journal.decisions(cid)})
            if unknown:
                listed = ", ".join(str(i) for i in unknown)
                raise UsageError(f"no decision {listed} (see `lookalike decisions list`); nothing was forgotten")
            return self.library.journal.forget(cid, ids)
