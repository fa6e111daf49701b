"""Indexed files read back for showing: opened and checked against the catalog, and thumbnails of them.

Only paths the catalog holds are ever opened. The file is opened first, without following a symbolic link at its
place (unless the library follows links), and the open file is what is checked and read: a file replaced after
indexing (another size or mtime, no longer a regular file, a link swapped in to point elsewhere) is refused, and
cannot be swapped between the check and the reading.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from lookalike.errors import FileChangedError, NotIndexedError
from lookalike.indexer.decode import load_image
from lookalike.indexer.plan import key_path
from lookalike.indexer.video_decode import frame_at
from lookalike.storage.records import MediaRecord
from lookalike.types import MediaKind, MediaStatus

OWN_FDS = Path("/proc/self/fd")  # Linux: a path per open file of this process


@dataclass(frozen=True)
class OpenFile:
    """An indexed file opened and checked; ``path`` names the open file itself (on Linux, its ``/proc/self/fd``
    entry), so what is read is what was checked, whatever happens at the indexed path since."""

    media_id: int
    record: MediaRecord
    fd: int

    @property
    def path(self) -> Path:
        """A path that reads the open file (without ``/proc``, the indexed path, checked to be the same file)."""
        return OWN_FDS / str(self.fd) if OWN_FDS.is_dir() else key_path(self.record.path)

    def close(self) -> None:
        """Close the file."""
        os.close(self.fd)


def open_indexed(media_id: int, record: MediaRecord, follow_symlinks: bool = False) -> OpenFile:
    """Open an indexed file (indexed ok, still a regular file, unchanged) for reading; the caller closes it.

    Raises:
        NotIndexedError: the file is not indexed ok (it failed, or it is missing or trashed).
        FileChangedError: the file is gone or changed since it was indexed.
    """
    if record.status != MediaStatus.OK.value:
        why = record.error_code if record.status == MediaStatus.FAILED.value else record.status
        raise NotIndexedError(f"item {media_id} is {record.status} ({why}); nothing to show")
    # non-blocking: a FIFO put in the file's place must not hang the caller before it is refused below
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(key_path(record.path), flags)  # a catalog key: a name that is not UTF-8 is encoded
    except FileNotFoundError as e:
        raise FileChangedError(f"item {media_id} is no longer on disk; run `lookalike index` on its folder") from e
    except OSError as e:  # a link where the file was (ELOOP), or unreadable now
        raise FileChangedError(f"item {media_id} changed on disk since it was indexed; index it again") from e
    st = os.fstat(fd)
    changed = not stat.S_ISREG(st.st_mode) or st.st_size != record.size or st.st_mtime_ns != record.mtime_ns
    if not changed and not OWN_FDS.is_dir():  # no /proc: the path is what is read, so it must be this file
        try:
            at_path = os.stat(key_path(record.path), follow_symlinks=follow_symlinks)
            changed = (at_path.st_dev, at_path.st_ino) != (st.st_dev, st.st_ino)
        except OSError:
            changed = True
    if changed:
        os.close(fd)
        raise FileChangedError(f"item {media_id} changed on disk since it was indexed; index it again")
    return OpenFile(media_id, record, fd)


def thumbnail(
    opened: OpenFile, size: int, at: float | None, max_pixels: int = 64_000_000, max_bytes: int = 512 << 20
) -> bytes:
    """A JPEG of an opened image, or of a video's frame at ``at`` seconds (default: its first), ``size`` px."""
    if opened.record.kind == MediaKind.VIDEO.value:
        image = frame_at(opened.path, at or 0.0, short_side=size)
    else:
        image, _ = load_image(opened.path, max_pixels=max_pixels, max_bytes=max_bytes, draft=size)
    image.thumbnail((size, size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()
