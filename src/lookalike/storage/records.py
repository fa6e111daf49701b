"""Plain records the catalog reads and writes, detached from SQL sessions: what other rooms exchange with storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

CAMERA_LENGTH = 100  # media.camera: make and model, cut to this many characters


@dataclass(frozen=True)
class CollectionInfo:
    """A collection row, detached from its session."""

    id: int
    name: str
    model: str
    weights_tag: str
    dim: int
    metric: str
    preprocessing: dict[str, Any]
    pooling: dict[str, Any]
    generation: int
    runtime: dict[str, Any] = field(default_factory=dict)  # see Catalog.note_runtime


@dataclass(frozen=True)
class MediaRecord:
    """What the indexer learned about one file."""

    path: str
    kind: str
    size: int
    mtime_ns: int
    status: str
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    fps: float | None = None
    n_frames: int | None = None
    error_code: str | None = None
    error: str | None = None
    device: int | None = None  # st_dev and st_ino: paths with the same pair are one file (hardlinks)
    inode: int | None = None
    taken_at: datetime | None = None  # see PhotoMetadata; meta_version: which reader filled them (None: unread)
    camera: str | None = None
    exif_fields: int | None = None
    meta_version: int | None = None


@dataclass(frozen=True)
class PhotoMetadata:
    """What a picture's EXIF says, each field None where it says nothing readable.

    Attributes:
        taken_at: DateTimeOriginal, else DateTime: the camera's wall-clock time, timezone-naive (EXIF has no zone).
        camera: make and model, e.g. ``Canon EOS 5D``.
        exif_fields: how many metadata tags the file carries (0 for none; None when its EXIF is unreadable).
    """

    taken_at: datetime | None = None
    camera: str | None = None
    exif_fields: int | None = None


@dataclass(frozen=True)
class VectorRecord:
    """One embedding to store, with the time range it covers (videos)."""

    level: str
    embedding: np.ndarray
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class KnownMedia:
    """The state of an already catalogued file, for incremental planning."""

    id: int
    size: int
    mtime_ns: int
    sha256: str | None
    status: str
    kind: str
    error_code: str | None = None
    device: int | None = None
    inode: int | None = None
    meta_version: int | None = None  # which metadata reader filled the row (None: not read yet)

    def unchanged(self, size: int, mtime_ns: int) -> bool:
        """Whether a file with this size and mtime is taken to be the one catalogued (no need to reopen it)."""
        return self.size == size and self.mtime_ns == mtime_ns


@dataclass(frozen=True)
class StoredVector:
    """Where a vector id points: its file and the time range it covers."""

    vector_id: int
    media_id: int
    path: str
    kind: str
    level: str
    start: float | None
    end: float | None


@dataclass(frozen=True)
class WriteResult:
    """Vectors a write added (to put in FAISS) and vector ids it replaced (to take out)."""

    added_ids: np.ndarray
    added_levels: list[str]
    added_vectors: np.ndarray
    removed_ids: np.ndarray
    generation: int


@dataclass(frozen=True)
class JournalRecord:
    """One file of a run: what it was when planned, where it goes, how far its move got.

    ``state`` is ``planned`` (journaled, maybe moving), ``done``, ``skipped`` (``reason`` says why), ``undone`` or
    ``emptied`` (its trash was emptied: it cannot be undone).
    """

    path: str
    keeper: str
    action: str
    size: int
    mtime_ns: int
    sha256: str | None
    device: int | None
    inode: int | None
    trash_path: str | None = None
    media_id: int | None = None
    state: str = "planned"
    reason: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class RunRecord:
    """A ``resolve --apply`` run and what became of its files."""

    id: int
    action: str
    state: str
    created_at: Any
    counts: dict[str, int]
    trash_bytes: int


@dataclass(frozen=True)
class DecisionRecord:
    """A remembered "not duplicates" pair."""

    id: int
    path_a: str
    path_b: str
    sha_a: str
    sha_b: str
