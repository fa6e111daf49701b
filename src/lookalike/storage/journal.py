"""Runs of ``resolve --apply`` and their journal, and remembered decisions: the tables the actions room writes.

Every file a run moves has its row committed (``planned``) before it is touched and is marked ``done`` after, so
a run killed at any point is finished or undone from here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Engine, delete, func, select, update
from sqlalchemy.orm import sessionmaker

from lookalike.storage.orm import Decision, JournalEntry, Run, signed64, unsigned64
from lookalike.storage.records import DecisionRecord, JournalRecord, RunRecord

_ENTRY_FIELDS = tuple(f.name for f in fields(JournalRecord) if f.name != "id")


def _id64(value: int | None) -> int | None:
    return None if value is None else signed64(value)


def _record(row: JournalEntry) -> JournalRecord:
    values = {k: getattr(row, k) for k in _ENTRY_FIELDS}
    values["device"], values["inode"] = unsigned64(row.device), unsigned64(row.inode)
    return JournalRecord(id=row.id, **values)


class Journal:
    """Repository over the runs, journal and decisions tables; every method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)

    # -- runs ----------------------------------------------------------------------------------------
    def start_run(
        self,
        collection_id: int,
        action: str,
        entries: Sequence[JournalRecord],
        trash_path: Callable[[int, str], str],
    ) -> int:
        """Journal a whole run (state ``applying``, every file ``planned``, with where ``trash_path(run, path)``
        puts it) before any file is touched; returns the run's id."""
        with self._session.begin() as s:
            run = Run(collection_id=collection_id, action=action, state="applying")
            s.add(run)
            s.flush()
            for e in entries:
                values = {k: getattr(e, k) for k in _ENTRY_FIELDS}
                values["trash_path"] = trash_path(run.id, e.path)
                values["device"], values["inode"] = _id64(e.device), _id64(e.inode)
                s.add(JournalEntry(run_id=run.id, **values))
            return run.id

    def unfinished(self, collection_id: int) -> list[int]:
        """Runs a killed process left ``applying`` or ``undoing``, oldest first."""
        with self._session() as s:
            return list(
                s.scalars(
                    select(Run.id)
                    .where(Run.collection_id == collection_id, Run.state.in_(["applying", "undoing"]))
                    .order_by(Run.id)
                )
            )

    def run(self, run_id: int) -> RunRecord | None:
        """One run with its counts, if it exists."""
        found = self._runs(Run.id == run_id)
        return found[0] if found else None

    def runs(self, collection_id: int | None) -> list[RunRecord]:
        """Runs (of a collection, or all), newest first, with their files counted by state and their trash size."""
        return self._runs(None if collection_id is None else Run.collection_id == collection_id)

    def _runs(self, which: ColumnElement[bool] | None) -> list[RunRecord]:
        with self._session() as s:
            query = select(Run).order_by(Run.id.desc())
            if which is not None:
                query = query.where(which)
            rows = list(s.scalars(query))
            counts: dict[int, dict[str, int]] = {}
            trash: dict[int, int] = {}
            counted = (
                select(JournalEntry.run_id, JournalEntry.state, func.count(), func.sum(JournalEntry.size))
                .where(JournalEntry.run_id.in_([r.id for r in rows]))
                .group_by(JournalEntry.run_id, JournalEntry.state)
            )
            for run_id, state, n, size in s.execute(counted):
                counts.setdefault(run_id, {})[state] = int(n)
                if state == "done":
                    trash[run_id] = int(size or 0)
        return [
            RunRecord(r.id, r.action, r.state, r.created_at, counts.get(r.id, {}), trash.get(r.id, 0)) for r in rows
        ]

    def set_run(self, run_id: int, state: str) -> None:
        """Move a run to ``state`` (``done``, ``undoing``, ``undone`` ...)."""
        finished = datetime.now(UTC) if state in ("done", "undone") else None
        with self._session.begin() as s:
            s.execute(update(Run).where(Run.id == run_id).values(state=state, finished_at=finished))

    def entries(self, run_id: int, states: Iterable[str] | None = None) -> list[JournalRecord]:
        """A run's files in journal order (optionally only those in ``states``)."""
        with self._session() as s:
            query = select(JournalEntry).where(JournalEntry.run_id == run_id).order_by(JournalEntry.id)
            if states is not None:
                query = query.where(JournalEntry.state.in_(list(states)))
            return [_record(r) for r in s.scalars(query)]

    def set_entry(self, entry_id: int, state: str, reason: str | None = None) -> None:
        """Record how far one file's move got."""
        with self._session.begin() as s:
            s.execute(update(JournalEntry).where(JournalEntry.id == entry_id).values(state=state, reason=reason))

    # -- decisions -----------------------------------------------------------------------------------
    def add_distinct(self, collection_id: int, pairs: Sequence[tuple[str, str, str, str]]) -> int:
        """Remember ``(sha_a, path_a, sha_b, path_b)`` pairs as not duplicates; returns how many were new."""
        added = 0
        with self._session.begin() as s:
            known = {
                (d.sha_a, d.sha_b) for d in s.scalars(select(Decision).where(Decision.collection_id == collection_id))
            }
            for sha_a, path_a, sha_b, path_b in pairs:
                if sha_b < sha_a:
                    sha_a, path_a, sha_b, path_b = sha_b, path_b, sha_a, path_a
                if sha_a == sha_b or (sha_a, sha_b) in known:
                    continue
                known.add((sha_a, sha_b))
                s.add(Decision(collection_id=collection_id, sha_a=sha_a, sha_b=sha_b, path_a=path_a, path_b=path_b))
                added += 1
        return added

    def decisions(self, collection_id: int) -> list[DecisionRecord]:
        """Every remembered pair, oldest first."""
        with self._session() as s:
            rows = s.scalars(select(Decision).where(Decision.collection_id == collection_id).order_by(Decision.id))
            return [DecisionRecord(d.id, d.path_a, d.path_b, d.sha_a, d.sha_b) for d in rows]

    def forget(self, collection_id: int, ids: Sequence[int]) -> int:
        """Forget remembered pairs by id; returns how many there were."""
        with self._session.begin() as s:
            result = s.execute(delete(Decision).where(Decision.collection_id == collection_id, Decision.id.in_(ids)))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
