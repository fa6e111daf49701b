"""Walk folders and find media files, recognised by content as well as by name."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import filetype

from lookalike.types import MediaKind

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif", ".heic", ".heif"}
)
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mts", ".m2ts"})  # .m*ts: AVCHD
# MIME types recognised from file content (first bytes), mapped to what we decode them as.
IMAGE_MIMES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "image/bmp",
        "image/tiff",
        "image/avif",
        "image/heic",
        "image/heif",
    }
)
VIDEO_MIMES = frozenset(
    {"video/mp4", "video/quicktime", "video/x-matroska", "video/webm", "video/x-msvideo", "video/x-m4v"}
)
SNIFF_BYTES = 262


@dataclass(frozen=True, slots=True)
class Candidate:
    """A media file to index."""

    path: Path
    kind: MediaKind
    size: int
    mtime_ns: int
    device: int | None = None  # st_dev and st_ino: two paths with the same pair are one file (hardlinks)
    inode: int | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A path passed over, with why (``broken_link``, ``outside_root``, ``not_regular_file`` ...)."""

    path: Path
    reason: str


def sniff_kind(head: bytes) -> MediaKind | None:
    """The media kind of a file from its first bytes, or None when they are not a known media format."""
    kind = filetype.guess(head)
    if kind is None:
        return None
    if kind.mime in IMAGE_MIMES:
        return MediaKind.IMAGE
    if kind.mime in VIDEO_MIMES:
        return MediaKind.VIDEO
    return None


def kind_from_name(path: Path) -> MediaKind | None:
    """The media kind a file's extension suggests."""
    ext = path.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return MediaKind.IMAGE
    if ext in VIDEO_EXTENSIONS:
        return MediaKind.VIDEO
    return None


def classify(path: Path) -> MediaKind | None:
    """What to decode ``path`` as: its content decides; the extension is the fallback.

    A file with a media extension but unrecognised content stays a candidate, so the decoder reports a
    specific error for it instead of a silent skip.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        return kind_from_name(path)
    return sniff_kind(head) or kind_from_name(path)


def canonical(path: Path) -> Path:
    """The one name of a file or folder: absolute, ``~`` expanded, ``..`` and symbolic links resolved (a path that
    does not exist is made absolute and normalised as far as it goes)."""
    return Path(os.path.realpath(path.expanduser()))


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


KindFn = Callable[[Path, os.stat_result], MediaKind | None]


def _classify_stat(path: Path, _st: os.stat_result) -> MediaKind | None:
    return classify(path)


def walk(
    root: Path,
    follow_symlinks: bool = False,
    include_hidden: bool = False,
    kind_of: KindFn = _classify_stat,
    skip: Path | None = None,
) -> Iterator[Candidate | Skipped]:
    """Yield every media file under ``root`` by its canonical path, and every path passed over with the reason.

    Paths are canonical: ``root`` is resolved (``..``, symlinked parent folders), and a followed link is reported
    at its target, so one file reached by several names is yielded once (hardlinks, which are several real paths
    of one file, are each yielded, with the same device and inode).
    Hidden files and folders (name starting with a dot) are passed over silently unless ``include_hidden``.
    Symbolic links are not followed unless ``follow_symlinks``, and even then only when they resolve inside
    ``root``; each real directory is entered once, so link loops end.

    Args:
        root: a folder or a single file.
        follow_symlinks: follow links whose target stays inside ``root``.
        include_hidden: also walk dot-files and dot-folders.
        kind_of: decides a regular file's media kind (None: not media); by default its content is sniffed.
            The indexer passes one that answers from the catalog for files whose size and mtime did not change.
        skip: a folder not to walk into (the library's home, whose trash holds moved copies), reported as skipped
            with the reason ``lookalike_home``.
    """
    skipped = canonical(skip) if skip is not None else None
    root = canonical(root)
    real_root = root
    if root.is_file():
        yield from _entry(root, follow_symlinks, kind_of, from_root=True)
        return
    seen_dirs: set[tuple[int, int]] = set()
    yielded: set[Path] = set()  # with links followed, a file may be reached twice: it is yielded once
    stack = [root]
    while stack:
        folder = stack.pop()
        if skipped is not None and canonical(folder) == skipped:
            yield Skipped(folder, "lookalike_home")
            continue
        try:
            st = folder.stat()
            if (st.st_dev, st.st_ino) in seen_dirs:
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except PermissionError:
            yield Skipped(folder, "permission_denied")
            continue
        except OSError as e:
            yield Skipped(folder, f"unreadable_folder: {e.strerror}")
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith(".") and not include_hidden:
                continue
            path = Path(entry.path)
            if entry.is_symlink():
                target = _follow(path, real_root, follow_symlinks)
                if isinstance(target, Skipped):
                    yield target
                    continue
                if target.is_dir():
                    subdirs.append(target)
                    continue
                path = target
            elif entry.is_dir(follow_symlinks=False):
                subdirs.append(path)
                continue
            if follow_symlinks:
                if path in yielded:
                    continue
                yielded.add(path)
            yield from _entry(path, follow_symlinks, kind_of)
        stack.extend(reversed(subdirs))


def _follow(path: Path, real_root: Path, follow: bool) -> Path | Skipped:
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return Skipped(path, "broken_link")
    if not follow:
        return Skipped(path, "symlink_not_followed")
    if not _inside(target, real_root):
        return Skipped(path, "outside_root")
    return target


def _entry(path: Path, follow: bool, kind_of: KindFn, from_root: bool = False) -> Iterator[Candidate | Skipped]:
    try:
        st = path.stat() if follow or from_root else path.lstat()
    except FileNotFoundError:
        yield Skipped(path, "vanished")
        return
    except OSError as e:
        yield Skipped(path, f"unreadable: {e.strerror}")
        return
    if not stat.S_ISREG(st.st_mode):
        if kind_from_name(path) is not None:
            yield Skipped(path, "not_regular_file")
        return
    if not os.access(path, os.R_OK):
        if kind_from_name(path) is not None:
            yield Skipped(path, "permission_denied")
        return
    kind = kind_of(path, st)
    if kind is not None:
        yield Candidate(path, kind, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)
