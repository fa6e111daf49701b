"""Apply a journaled run, finish one a killed process left, undo one, empty the trash.

Each file: its journal row is committed (``planned``) before it is touched; it is checked against what the catalog
knew (size, mtime, device and inode, SHA-256) and skipped with the reason when anything differs; it is moved into
``<home>/trash/<run>/<its absolute path>`` (a rename; across filesystems a copy that is complete before the original
is removed); for a link action the link to the keeper takes its place; the catalog follows; the row is marked
``done``. A process killed at any point leaves every file in place or in the trash with its row, and the next
command finishes the run from the rows: whatever it finds done on disk it records, the rest it does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lookalike.actions.desktop_trash import info_path, remove_info, write_info
from lookalike.indexer.plan import key_path, path_key, sha256_file
from lookalike.storage.journal import Journal
from lookalike.storage.library import CollectionStore
from lookalike.storage.records import JournalRecord, MediaRecord
from lookalike.types import MediaStatus

TRASH = "trash"
DELETE = "delete"  # a run whose files go through the trash and are then deleted for good (``resolve --delete``)


@dataclass
class RunReport:
    """What a run (or an undo) did: files done, and files left alone with why."""

    run: int | None
    done: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def trash_path(home: Path, run_id: int, path: str) -> str:
    """Where a file of run ``run_id`` goes: ``<home>/trash/<run>/<its absolute path>``, as a catalog key (a name that
    is not UTF-8 is kept as its bytes, see :func:`lookalike.indexer.plan.path_key`)."""
    real = os.fsencode(key_path(path))
    return path_key(Path(os.fsdecode(os.path.join(os.fsencode(home / TRASH / str(run_id)), real.lstrip(b"/")))))


def changed(
    path: Path, size: int, mtime_ns: int, device: int | None, inode: int | None, sha256: str | None
) -> str | None:
    """Why the file at ``path`` is not the one catalogued (None when it is): it must be the same regular file (not a
    link), of the same size, mtime and content."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "gone"
    except OSError as err:
        return f"cannot be read: {err.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return "no longer a regular file"
    if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
        return "changed since it was indexed (size or modification time): index again, then resolve"
    if inode is not None and (st.st_dev, st.st_ino) != (device, inode):
        return "replaced by another file since it was indexed: index again, then resolve"
    if sha256 is not None and sha256_file(path) != sha256:
        return "changed since it was indexed (content): index again, then resolve"
    return None


def _entry_changed(path: Path, e: JournalRecord) -> str | None:
    why = changed(path, e.size, e.mtime_ns, e.device, e.inode, e.sha256)
    return "gone before it was moved" if why == "gone" else why


def _move(src: Path, dst: Path) -> None:
    """``src`` to ``dst``: a rename, or across filesystems a copy into a fresh temp file beside ``dst`` (complete and
    synced before it takes the name ``dst``) followed by removing ``src``. Modification times are kept either way."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(src, dst)
        return
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
    fd, part = tempfile.mkstemp(prefix=".lookalike-", suffix=".part", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copy2(src, part)
        with open(part, "rb") as fh:
            os.fsync(fh.fileno())
        os.rename(part, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(part)
        raise
    os.unlink(src)


def _same_filesystem(path: Path, folder: Path) -> bool:
    """Whether ``path`` is on the filesystem of ``folder`` (made when missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    return os.lstat(path).st_dev == os.stat(folder).st_dev


def _link_path(src: Path, e: JournalRecord) -> Path:
    """Where the link to the keeper is made before it takes the file's place (hidden, beside it, one per entry)."""
    return src.parent / f".lookalike-link-{e.id}"


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


def _link(at: Path, e: JournalRecord) -> None:
    keeper = key_path(e.keeper)
    if e.action == "symlink":
        os.symlink(keeper, at)
    elif e.action == "hardlink":
        os.link(keeper, at, follow_symlinks=False)


class Runner:
    """Moves the files of runs of one collection, keeping the journal and the catalog in step."""

    def __init__(self, store: CollectionStore, journal: Journal, home: Path) -> None:
        self.store = store
        self.journal = journal
        self.home = home
        self._keepers: dict[str, tuple[str | None, str | None]] = {}  # keeper -> (why not to rely on it, its hash)

    # -- apply ---------------------------------------------------------------------------------------
    def apply(self, run_id: int) -> RunReport:
        """Do every ``planned`` file of a run (a killed run resumes here), then mark the run done."""
        report = RunReport(run_id)
        for e in self.journal.entries(run_id, ["planned"]):
            why = self._apply_one(e)
            if why is None:
                self.journal.set_entry(e.id or 0, "done")
                report.done.append(e.path)
            else:
                self._left_out(e)
                self.journal.set_entry(e.id or 0, "skipped", why)
                report.skipped.append((e.path, why))
        run = self.journal.run(run_id)
        if run is not None and run.action == DELETE:  # into the trash first, then deleted: a kill leaves it there
            self._delete_trashed(run_id, report)
        self.journal.set_run(run_id, "done")
        self.store.sync_files()
        return report

    def _apply_one(self, e: JournalRecord) -> str | None:
        """Do one entry, or finish it where a killed run left it; None when done, else why it was left alone.

        For a link action the link is made first, beside the file, so that a link that cannot be made (FAT, too
        many links, a keeper gone) leaves the file where it is; then the file moves to the trash and the link takes
        its name.
        """
        src, dst = key_path(e.path), key_path(e.trash_path or "")
        link = _link_path(src, e) if e.action != "trash" else None
        if os.path.lexists(dst):  # moved already: a killed run is finished here
            if _entry_changed(dst, dataclasses.replace(e, device=None, inode=None)) is not None:
                return "another file is already where the trash would put it: left for you to check"
            if os.path.lexists(src) and not _is_our_link(src, e):
                # across filesystems: the copy completed, the original was not yet removed
                if sha256_file(dst) != e.sha256 or _entry_changed(src, e) is not None:
                    return "both the file and a trashed copy exist and differ: left for you to check"
                os.unlink(src)
            if link is not None and not os.path.lexists(src):
                if not (os.path.lexists(link) and _is_our_link(link, e)):
                    try:
                        _link(link, e)
                    except OSError as err:
                        _move(dst, src)  # never left only in the trash because a link could not be made
                        return f"the {e.action} to its keeper cannot be made: {err.strerror}; left in place"
                os.replace(link, src)
            self._catalog_after(e, src)
            return None
        why = self._keeper_problem(e, src) or _entry_changed(src, e)
        if why is not None:
            return why
        if link is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)  # a stale one a killed run made
            try:
                _link(link, e)
            except OSError as err:
                return f"the {e.action} to its keeper cannot be made: {err.strerror}; nothing was touched"
        info = info_path(dst, self.home / TRASH)
        if info is not None and not _same_filesystem(src, info.parent.parent):
            return "on another filesystem than the desktop trash: left in place (the library's trash takes it)"
        try:
            if info is not None:  # the desktop trash: its info file first, as the specification asks
                write_info(info, src)
            _move(src, dst)
        except OSError as err:
            if link is not None:
                os.unlink(link)
            remove_info(info)
            return f"cannot be moved to the trash: {err.strerror}"
        if link is not None:
            os.replace(link, src)
        self._catalog_after(e, src)
        return None

    def _keeper_problem(self, e: JournalRecord, src: Path) -> str | None:
        """Why the keeper cannot be relied on (None when it can): it must still be the regular file catalogued (same
        size, mtime, device and inode, and for a link the same bytes as the file), and not the file itself under
        another name. Checked once per keeper a run."""
        keeper = key_path(e.keeper)
        try:
            if os.path.samefile(src, keeper):
                return f"it is its keeper {keeper} under another name: nothing was touched"
        except OSError:
            pass
        if e.keeper not in self._keepers:
            cid = self.store.info.id
            media_id = self.store.catalog.media_id(cid, e.keeper)
            rec = self.store.catalog.media(cid, media_id) if media_id is not None else None
            if rec is None or rec.status != MediaStatus.OK.value:
                self._keepers[e.keeper] = ("is no longer indexed", None)
            else:
                why = changed(keeper, rec.size, rec.mtime_ns, rec.device, rec.inode, rec.sha256)
                self._keepers[e.keeper] = (None if why is None else ("is gone" if why == "gone" else why), rec.sha256)
        why, sha = self._keepers[e.keeper]
        if why is None and e.action != "trash" and sha != e.sha256:
            why = "holds other bytes than the file"
        return None if why is None else f"its keeper {keeper} {why}: nothing was touched"

    def _catalog_after(self, e: JournalRecord, src: Path) -> None:
        if e.action == "hardlink":  # the same bytes, now the keeper's file: catalogued as its hardlink
            st = os.stat(src)
            self.store.catalog.touch(self.store.info.id, e.path, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)
        else:
            self.store.mark_absent([e.path], MediaStatus.TRASHED)

    def abandon(self, run_id: int) -> None:
        """Stop an interrupted run where it is: its files not yet moved are marked skipped (so that an undo asked
        instead of finishing it puts back only what moved); a file caught mid-move is finished first."""
        for e in self.journal.entries(run_id, ["planned"]):
            if os.path.lexists(key_path(e.trash_path or "")):  # it moved before the kill: record it as moved
                why = self._apply_one(e)
                self.journal.set_entry(e.id or 0, "done" if why is None else "skipped", why)
            else:
                self._left_out(e)
                self.journal.set_entry(e.id or 0, "skipped", "the run was interrupted, and undone before it finished")
        self.journal.set_run(run_id, "done")

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
        _remove_empty_folders(self.home / TRASH / str(run_id))
        self.store.sync_files()
        return report

    def _undo_one(self, e: JournalRecord) -> str | None:
        src, dst = key_path(e.path), key_path(e.trash_path or "")
        if os.path.lexists(src) and _is_our_link(src, e):
            os.unlink(src)
        link = _link_path(src, e)
        if os.path.lexists(link) and _is_our_link(link, e):
            os.unlink(link)
        if os.path.lexists(dst):
            if os.path.lexists(src):
                return "another file is at its path now: the trashed one stays in the trash"
            try:
                _move(dst, src)
            except OSError as err:
                return f"cannot be moved back: {err.strerror}"
        elif not os.path.lexists(src):
            return "its trashed copy is gone (was the trash emptied?)"
        elif changed(src, e.size, e.mtime_ns, None, None, e.sha256) is not None:
            return "its trashed copy is gone and another file is at its path: left as it is"
        remove_info(info_path(dst, self.home / TRASH))  # back in place (also when a killed undo moved it)
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
            report.done.extend(self._delete_trashed(run.id, report))
        self.store.sync_files()
        return report

    def _delete_trashed(self, run_id: int, report: RunReport) -> list[str]:
        """Delete the trashed files of a run for good (entries ``emptied``) and forget their catalog rows (also those
        of entries a killed run emptied); returns the trash paths deleted, as catalog keys. A file that cannot be
        deleted stays in the trash (it can still be undone) and is added to ``report.skipped`` by its own path."""
        deleted: list[str] = []
        for e in self.journal.entries(run_id, ["done"]):
            dst = key_path(e.trash_path or "")
            try:
                dst.unlink()
            except FileNotFoundError:
                pass
            except OSError as err:
                report.skipped.append((e.path, f"still in the trash, it cannot be deleted: {err.strerror}"))
                continue
            remove_info(info_path(dst, self.home / TRASH))
            self.journal.set_entry(e.id or 0, "emptied")
            deleted.append(e.trash_path or "")
        self._forget_trashed([e.path for e in self.journal.entries(run_id, ["emptied"])])
        _remove_empty_folders(self.home / TRASH / str(run_id))
        return deleted

    def _left_out(self, e: JournalRecord) -> None:
        """An entry that will not move: an info file a killed run wrote for it in the desktop trash goes."""
        dst = key_path(e.trash_path or "")
        if not os.path.lexists(dst):
            remove_info(info_path(dst, self.home / TRASH))

    def _forget_trashed(self, paths: list[str]) -> None:
        known = self.store.catalog.known_media(self.store.info.id)
        self.store.delete_paths([p for p in paths if p in known and known[p].status == MediaStatus.TRASHED.value])


def _remove_empty_folders(root: Path) -> None:
    """Remove the folders under ``root`` (and ``root``) that are empty; files are never removed here."""
    if not root.is_dir():
        return
    for folder, _, _ in sorted(os.walk(root), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):
            os.rmdir(folder)
