"""SQLAlchemy 2 typed models of the catalog. The schema changes only through alembic migrations."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lookalike.storage.records import CAMERA_LENGTH

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; elsewhere ids are 64-bit like FAISS ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable names for migrations)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Collection(Base):
    """A set of vectors made by one model; its FAISS files live under ``<home>/collections/<name>/``."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    model: Mapped[str] = mapped_column(String(300))
    weights_tag: Mapped[str] = mapped_column(String(200))
    dim: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(20), default="cosine")
    preprocessing: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pooling: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    runtime: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # NULL: before 0005, torch
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


def hash_path(path: str) -> str:
    """The ``path_key`` of a catalog path: its SHA-256, hex."""
    return hashlib.sha256(path.encode("utf-8")).hexdigest()


def signed64(value: int) -> int:
    """An unsigned 64-bit number (an inode, a device id) as the signed integer a BIGINT column holds."""
    return value - (1 << 64) if value >= 1 << 63 else value


def unsigned64(value: int | None) -> int | None:
    """What :func:`signed64` stored, back as the unsigned number."""
    return None if value is None else value % (1 << 64)


class Media(Base):
    """One file seen by the indexer, with its outcome (ok, missing, or a per-file error)."""

    __tablename__ = "media"
    __table_args__ = (
        UniqueConstraint("collection_id", "path_key", name="uq_media_collection_path_key"),
        Index("ix_media_collection_sha256", "collection_id", "sha256"),
        Index("ix_media_collection_inode", "collection_id", "device", "inode"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)  # not indexed: PostgreSQL's b-tree refuses entries past ~2.7 kB
    path_key: Mapped[str] = mapped_column(String(64))  # SHA-256 of ``path``: the unique key
    device: Mapped[int | None] = mapped_column(BigInteger)  # (device, inode): which paths are one file
    inode: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(10))
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration: Mapped[float | None] = mapped_column(Float)
    fps: Mapped[float | None] = mapped_column(Float)
    n_frames: Mapped[int | None] = mapped_column(Integer)
    # What the file's EXIF says (images; None where it says nothing readable): the date taken as the camera's
    # wall-clock time (EXIF keeps no time zone, so neither does the column), make and model, and how many tags it
    # carries. ``meta_version`` is which version of the metadata reader filled them (NULL: not read yet).
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=False))
    camera: Mapped[str | None] = mapped_column(String(CAMERA_LENGTH))
    exif_fields: Mapped[int | None] = mapped_column(Integer)
    meta_version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10))
    error_code: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    indexed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Vector(Base):
    """One embedding; its id is its FAISS id. Levels image and segment live in the ``items`` index,
    level video in the ``videos`` index."""

    __tablename__ = "vectors"
    __table_args__ = (Index("ix_vectors_collection_level", "collection_id", "level"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    level: Mapped[str] = mapped_column(String(10))
    start_s: Mapped[float | None] = mapped_column(Float)
    end_s: Mapped[float | None] = mapped_column(Float)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)


class Run(Base):
    """One ``resolve --apply``: its file moves are journaled (:class:`JournalEntry`) before each happens."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(10))  # trash, hardlink, symlink
    state: Mapped[str] = mapped_column(String(10))  # applying, done, undone
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class JournalEntry(Base):
    """One file a run acts on: what it was (as catalogued, checked again before touching it), where it goes, and
    how far the move got (``planned``, ``done``, ``skipped`` with a reason, ``undone``, ``emptied``)."""

    __tablename__ = "journal"
    __table_args__ = (Index("ix_journal_run_state", "run_id", "state"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    media_id: Mapped[int | None] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(Text)
    keeper: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(10))
    trash_path: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[int | None] = mapped_column(BigInteger)
    inode: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text)


class Decision(Base):
    """A remembered "these two are not duplicates", by content (it survives renames and re-indexing)."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("collection_id", "sha_a", "sha_b", name="uq_decisions_pair"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    sha_a: Mapped[str] = mapped_column(String(64))
    sha_b: Mapped[str] = mapped_column(String(64))
    path_a: Mapped[str] = mapped_column(Text)
    path_b: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
