"""Apply a journaled run, finish one a killed process left, undo one, empty the trash.

Each file: its journal row is committed (``planned``) before it is touched; it is checked against what the catalog
knew (size, mtime, device and inode, SHA-256) and skipped with the reason when anything differs; it is moved into
``<home>/trash/<run>/<its absolute path>`` (a rename; across filesystems a copy that is complete before the original
is removed); for a link action the link to the keeper takes its place; the catalog follows; the row is marked
``done``. A process killed at any point leaves every file in place or in the trash with its row, and the next
command finishes the run from the rows: whatever it finds done on disk it records, the rest it does.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lookalike.indexer.plan import key_path
from lookalike.storage.journal import Journal
from lookalike.storage.library import CollectionStore
from lookalike.storage.records import JournalRecord, MediaRecord
from lookalike.types import MediaStatus

TRASH = "trash"


@dataclass
class RunReport:
    """What a run (or an undo) did: files done, and files left alone with why."""

    run: int | None
    done: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def trash_path(home: Path, run_id: int, path: str) -> str:
    """Where a file of run ``run_id`` goes: ``<home>/trash/<run>/<its absolute path>`` (a catalog key)."""
    real = os.fsencode(key_path(path))
    return os.fsdecode(os.path.join(os.fsencode(home / TRASH / str(run_id)), real.lstrip(b"/")))


def _sha256(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


def changed(path: Path, e: JournalRecord) -> str | None:
    """Why the file at ``path`` is not the one catalogued (None when it is): it must be the same regular file, of the
    same size, mtime and content."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "gone before it was moved"
    except OSError as err:
        return f"cannot be read: {err.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return "no longer a regular file"
    if (st.st_size, st.st_mtime_ns) != (e.size, e.mtime_ns):
        return "changed since it was indexed (size or modification time): index again, then resolve"
    if e.inode is not None and (st.st_dev, st.st_ino) != (e.device, e.inode):
        return "replaced by another file since it was indexed: index again, then resolve"
    if e.sha256 is not None and _sha256(path) != e.sha256:
        return "changed since it was indexed (content): index again, then resolve"
    return None


def _move(src: Path, dst: Path) -> None:
    """``src`` to ``dst``: a rename, or across filesystems a copy (complete and synced before it takes the name
    ``dst``) followed by removing ``src``. Modification times are kept either way."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(src, dst)
        return
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
    part = dst.with_name(dst.name + ".part")
    shutil.copy2(src, part)
    with open(part, "rb") as fh:
        os.fsync(fh.fileno())
    os.rename(part, dst)
    os.unlink(src)


def _is_our_link(src: Path, e: JournalRecord) -> bool:
    keeper = key_path(e.keeper)
    if e.action == "symlink":
        return src.is_symlink() and os.readlink(src) == str(keeper)
    if e.action == "hardlink":
        try:
            return not src.is_symlink() and os.path.samefile(src, keeper)
        except OSError:
            return False
    return False


def _link(src: Path, e: JournalRecord) -> None:
    keeper = key_path(e.keeper)
    if e.action == "symlink":
        os.symlink(keeper, src)
    elif e.action == "hardlink":
        os.link(keeper, src)


class Runner:
    """Moves the files of runs of one collection, keeping the journal and the catalog in step."""

    def __init__(self, store: CollectionStore, journal: Journal, home: Path) -> None:
        self.store = store
        self.journal = journal
        self.home = home

    # -- apply ---------------------------------------------------------------------------------------
    def apply(self, run_id: int, after_each: Callable[[], None] | None = None) -> RunReport:
        """Do every ``planned`` file of a run (a killed run resumes here), then mark the run done."""
        report = RunReport(run_id)
        for e in self.journal.entries(run_id, ["planned"]):
            why = self._apply_one(e)
            if why is None:
                self.journal.set_entry(e.id or 0, "done")
                report.done.append(e.path)
            else:
                self.journal.set_entry(e.id or 0, "skipped", why)
                report.skipped.append((e.path, why))
            if after_each is not None:
                after_each()
        self.journal.set_run(run_id, "done")
        self.store.sync_files()
        return report

    def _apply_one(self, e: JournalRecord) -> str | None:
        src, dst = key_path(e.path), key_path(e.trash_path or "")
        src_there, dst_there = os.path.lexists(src), os.path.lexists(dst)
        if dst_there and src_there and not _is_our_link(src, e):
            # a copy across filesystems completed but the original was not yet removed
            if _sha256(dst) != e.sha256 or changed(src, e) is not None:
                return "both the file and a trashed copy exist and differ: left for you to check"
            os.unlink(src)
            src_there = False
        if not dst_there:
            keeper = key_path(e.keeper)
            if not keeper.is_file():
                return f"its keeper {keeper} is gone: nothing was touched"
            why = changed(src, e)
            if why is not None:
                return why
            try:
                _move(src, dst)
            except OSError as err:
                return f"cannot be moved to the trash: {err.strerror}"
            src_there = False
        if e.action != "trash" and not src_there:
            try:
                _link(src, e)
            except OSError as err:
                return f"moved to the trash, but the {e.action} to its keeper failed: {err.strerror} (undo restores it)"
        self._catalog_after(e, src)
        return None

    def _catalog_after(self, e: JournalRecord, src: Path) -> None:
        if e.action == "hardlink":  # the same bytes, now the keeper's file: catalogued as its hardlink
            st = os.stat(src)
            self.store.catalog.touch(self.store.info.id, e.path, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)
        else:
            self.store.mark_absent([e.path], MediaStatus.TRASHED)

    # -- undo ----------------------------------------------------------------------------------------
    def undo(self, run_id: int) -> RunReport:
        """Put every moved file of a run back at its path (byte-identical, same mtime) and in the catalog."""
        self.journal.set_run(run_id, "undoing")
        report = RunReport(run_id)
        for e in reversed(self.journal.entries(run_id, ["done"])):
            why = self._undo_one(e)
            if why is None:
                self.journal.set_entry(e.id or 0, "undone")
                report.done.append(e.path)
            else:
                report.skipped.append((e.path, why))
        self.journal.set_run(run_id, "undone" if not report.skipped else "done")
        self.store.sync_files()
        return report

    def _undo_one(self, e: JournalRecord) -> str | None:
        src, dst = key_path(e.path), key_path(e.trash_path or "")
        if os.path.lexists(src) and _is_our_link(src, e):
            os.unlink(src)
        if os.path.lexists(dst):
            if os.path.lexists(src):
                return "another file is at its path now: the trashed one stays in the trash"
            try:
                _move(dst, src)
            except OSError as err:
                return f"cannot be moved back: {err.strerror}"
        elif not os.path.lexists(src):
            return "its trashed copy is gone (was the trash emptied?)"
        st = os.stat(src)
        record = MediaRecord(
            path=e.path,
            kind="",
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            status=MediaStatus.OK.value,
            device=st.st_dev,
            inode=st.st_ino,
        )
        if e.action == "hardlink":
            self.store.catalog.touch(self.store.info.id, e.path, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)
        else:
            self.store.restore([record])
        return None

    # -- the trash -----------------------------------------------------------------------------------
    def empty(self, older_than: timedelta, now: datetime | None = None) -> RunReport:
        """Delete the trashed files of finished runs older than ``older_than`` (they can no longer be undone) and
        forget their catalog rows."""
        now = now or datetime.now(UTC)
        report = RunReport(None)
        for run in self.journal.runs(self.store.info.id):
            created = run.created_at if run.created_at.tzinfo else run.created_at.replace(tzinfo=UTC)
            if run.state != "done" or now - created < older_than:
                continue
            gone: list[str] = []
            for e in self.journal.entries(run.id, ["done"]):
                dst = key_path(e.trash_path or "")
                try:
                    dst.unlink()
                except FileNotFoundError:
                    pass
                except OSError as err:
                    report.skipped.append((str(dst), f"cannot be deleted: {err.strerror}"))
                    continue
                self.journal.set_entry(e.id or 0, "emptied")
                report.done.append(str(dst))
                gone.append(e.path)
            self._forget_trashed(gone)
            shutil.rmtree(self.home / TRASH / str(run.id), ignore_errors=True)
        self.store.sync_files()
        return report

    def _forget_trashed(self, paths: list[str]) -> None:
        known = self.store.catalog.known_media(self.store.info.id)
        self.store.delete_paths([p for p in paths if p in known and known[p].status == MediaStatus.TRASHED.value])
