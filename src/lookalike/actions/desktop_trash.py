"""The desktop's trash (the freedesktop.org Trash specification, ``$XDG_DATA_HOME/Trash``): where
``resolve --apply --into desktop`` puts files, so that a file manager lists them and can put them back too.

A file goes to ``Trash/files/<name>`` with ``Trash/info/<name>.trashinfo`` (its original path and the deletion
date) written first, as the specification asks. The run's journal records where each file went, so
``lookalike undo`` puts them back as from the library's own trash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import urllib.parse
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from lookalike.indexer.plan import key_path, path_key

INFO_SUFFIX = ".trashinfo"
NAME_MAX = 255  # bytes in a file name on the usual filesystems


def trash_dir(env: Mapping[str, str] | None = None) -> Path:
    """The home trash: ``$XDG_DATA_HOME/Trash``, by default ``~/.local/share/Trash``."""
    env = os.environ if env is None else env
    data = env.get("XDG_DATA_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "share")
    return Path(data) / "Trash"


def desktop_path(trash: Path, run_id: int, path: str, nonce: str) -> str:
    """Where a file of run ``run_id`` goes in ``trash``: ``files/<stem> (lookalike <run>-<tag>)<suffix>``, the tag
    hashing the original path with ``nonce`` (one per run: the trash is shared by every library of the user, whose
    run numbers repeat), the extension kept (file managers show the original name from the info file), the stem
    shortened to fit a file name with the info file's suffix; a catalog key like the library trash's (see
    :func:`lookalike.actions.apply.trash_path`)."""
    real = os.fsencode(key_path(path))
    stem, suffix = os.path.splitext(os.path.basename(real))
    tag = f" (lookalike {run_id}-{hashlib.sha256(nonce.encode() + real).hexdigest()[:10]})".encode()
    room = NAME_MAX - len(INFO_SUFFIX) - len(tag) - len(suffix)
    if room < 1:  # an extension too long to keep
        stem, suffix, room = stem + suffix, b"", NAME_MAX - len(INFO_SUFFIX) - len(tag)
    stem = stem[:room].decode("utf-8", "ignore").encode() if len(stem) > room and _utf8(stem) else stem[:room]
    return path_key(Path(os.fsdecode(os.path.join(os.fsencode(trash / "files"), stem + tag + suffix))))


def _utf8(name: bytes) -> bool:
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def info_path(dst: Path, library_trash: Path) -> Path | None:
    """The ``.trashinfo`` file that goes with ``dst`` when ``dst`` is in a desktop trash's ``files`` folder (None
    for the library's own trash)."""
    if dst.parent.name != "files" or dst.is_relative_to(library_trash):
        return None
    top = dst.parent.parent
    if top.name != "Trash" and not top.name.startswith(".Trash"):
        return None
    return top / "info" / (dst.name + INFO_SUFFIX)


def write_info(info: Path, original: Path, when: datetime | None = None) -> None:
    """Write ``info`` for a file trashed from ``original`` (created exclusively: an existing one is kept)."""
    info.parent.mkdir(parents=True, exist_ok=True)
    quoted = urllib.parse.quote(os.fsencode(original), safe="/")
    stamp = (when or datetime.now()).strftime("%Y-%m-%dT%H:%M:%S")
    text = f"[Trash Info]\nPath={quoted}\nDeletionDate={stamp}\n".encode()
    try:
        fd = os.open(info, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # written by a killed run that this one finishes
    with os.fdopen(fd, "wb") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def remove_info(info: Path | None) -> None:
    """Remove a ``.trashinfo`` file (when its file left the trash); a missing one is fine."""
    if info is not None:
        with contextlib.suppress(FileNotFoundError):
            info.unlink()
