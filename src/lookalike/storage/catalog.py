"""The SQL catalog: collections, media rows with per-file outcomes, and stored vectors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from lookalike.storage.orm import Collection, Media, Vector, hash_path, signed64, unsigned64
from lookalike.storage.records import (
    CollectionInfo,
    KnownMedia,
    MediaRecord,
    PhotoMetadata,
    VectorRecord,
    WriteResult,
)
from lookalike.storage.runtimes import NO_RUNTIME, read_runtime, with_runtime
from lookalike.storage.vector_queries import VectorQueries, from_bytes
from lookalike.types import MediaStatus

_MEDIA_FIELDS = tuple(f.name for f in fields(MediaRecord) if f.name != "path")  # copied onto the row


def _to_bytes(vec: np.ndarray) -> bytes:
    return np.asarray(vec, dtype="<f4").tobytes()


def _id64(value: int | None) -> int | None:
    return None if value is None else signed64(value)


def _row_values(rec: MediaRecord) -> dict[str, Any]:
    """A record's column values (path aside), device and inode as the signed 64-bit numbers the columns hold."""
    values = {k: getattr(rec, k) for k in _MEDIA_FIELDS}
    values["device"], values["inode"] = _id64(rec.device), _id64(rec.inode)
    return values


def _info(row: Collection) -> CollectionInfo:
    values = {f.name: getattr(row, f.name) for f in fields(CollectionInfo)}
    dicts = {k: dict(values[k] or {}) for k in ("preprocessing", "pooling")}  # detached copies
    return CollectionInfo(**{**values, **dicts, "runtime": read_runtime(row.runtime)})


class Catalog(VectorQueries):
    """Repository over the catalog database; every method runs in its own transaction (the vector reads are in
    :class:`~lookalike.storage.vector_queries.VectorQueries`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)

    # -- collections -------------------------------------------------------------------------
    def collections(self) -> list[CollectionInfo]:
        """All collections, oldest first."""
        with self._session() as s:
            return [_info(c) for c in s.scalars(select(Collection).order_by(Collection.id))]

    def collection(self, name: str) -> CollectionInfo | None:
        """The collection called ``name``, if any."""
        with self._session() as s:
            row = s.scalar(select(Collection).where(Collection.name == name))
            return _info(row) if row else None

    def create_collection(
        self,
        name: str,
        model: str,
        weights_tag: str,
        dim: int,
        preprocessing: dict[str, Any],
        pooling: dict[str, Any],
    ) -> CollectionInfo:
        """Create an empty collection."""
        with self._session.begin() as s:
            row = Collection(
                name=name,
                model=model,
                weights_tag=weights_tag,
                dim=dim,
                metric="cosine",
                preprocessing=preprocessing,
                pooling=pooling,
                generation=0,
                runtime=NO_RUNTIME,
            )
            s.add(row)
            s.flush()
            return _info(row)

    def note_runtime(self, collection_id: int, runtime: str, tolerance: float) -> None:
        """Record that ``runtime`` computed vectors of the collection, each within cosine ``tolerance`` of torch's."""
        with self._session.begin() as s:
            row = s.get_one(Collection, collection_id)
            row.runtime = with_runtime(row.runtime, runtime, tolerance)

    def generation(self, collection_id: int) -> int:
        """The collection's write counter; FAISS files are current when their manifest holds the same."""
        with self._session() as s:
            return int(s.scalar(select(Collection.generation).where(Collection.id == collection_id)) or 0)

    def _bump(self, s: Session, collection_id: int) -> int:
        s.execute(update(Collection).where(Collection.id == collection_id).values(generation=Collection.generation + 1))
        return int(s.scalar(select(Collection.generation).where(Collection.id == collection_id)) or 0)

    # -- media ---------------------------------------------------------------------------------
    def known_media(self, collection_id: int) -> dict[str, KnownMedia]:
        """Every catalogued file of the collection by path."""
        with self._session() as s:
            rows = s.execute(
                select(
                    Media.path,
                    Media.id,
                    Media.size,
                    Media.mtime_ns,
                    Media.sha256,
                    Media.status,
                    Media.kind,
                    Media.error_code,
                    Media.device,
                    Media.inode,
                    Media.meta_version,
                ).where(Media.collection_id == collection_id)
            )
            return {
                r.path: KnownMedia(
                    r.id,
                    r.size,
                    r.mtime_ns,
                    r.sha256,
                    r.status,
                    r.kind,
                    r.error_code,
                    unsigned64(r.device),
                    unsigned64(r.inode),
                    r.meta_version,
                )
                for r in rows
            }

    def media(self, collection_id: int, media_id: int) -> MediaRecord | None:
        """The stored record of one file."""
        return self.media_many(collection_id, [media_id]).get(media_id)

    def media_many(self, collection_id: int, media_ids: Iterable[int]) -> dict[int, MediaRecord]:
        """The stored records of files by id; ids not in the collection are left out."""
        wanted = sorted({int(i) for i in media_ids})
        out: dict[int, MediaRecord] = {}
        with self._session() as s:
            for start in range(0, len(wanted), 500):
                rows = s.scalars(
                    select(Media).where(Media.collection_id == collection_id, Media.id.in_(wanted[start : start + 500]))
                )
                for row in rows:
                    values = {k: getattr(row, k) for k in _MEDIA_FIELDS}
                    values["device"], values["inode"] = unsigned64(row.device), unsigned64(row.inode)
                    out[row.id] = MediaRecord(path=row.path, **values)
        return out

    def media_id(self, collection_id: int, path: str) -> int | None:
        """The id of the file at ``path``, if catalogued."""
        with self._session() as s:
            return s.scalar(
                select(Media.id).where(Media.collection_id == collection_id, Media.path_key == hash_path(path))
            )

    def ok_media_with_sha(self, collection_id: int, sha256: str) -> int | None:
        """Some indexed file with this content hash whose vectors are stored, if any: one that is there first, else
        one catalogued as missing (a renamed file finds its vectors again)."""
        with self._session() as s:
            return s.scalar(
                select(Media.id)
                .where(
                    Media.collection_id == collection_id,
                    Media.sha256 == sha256,
                    Media.status.in_([MediaStatus.OK.value, MediaStatus.MISSING.value, MediaStatus.TRASHED.value]),
                )
                .order_by(Media.status != MediaStatus.OK.value, Media.id)
                .limit(1)
            )

    def mark_absent(
        self, collection_id: int, paths: Sequence[str], status: MediaStatus = MediaStatus.MISSING
    ) -> np.ndarray:
        """Catalog indexed files as missing (gone from disk) or trashed: their vectors stay stored, out of answers.

        Returns:
            the ids of their vectors, to take out of the FAISS indexes.
        """
        removed: list[int] = []
        with self._session.begin() as s:
            for start in range(0, len(paths), 500):
                keys = [hash_path(p) for p in paths[start : start + 500]]
                ids = s.scalars(
                    select(Media.id).where(Media.collection_id == collection_id, Media.path_key.in_(keys))
                ).all()
                if not ids:
                    continue
                removed.extend(s.scalars(select(Vector.id).where(Vector.media_id.in_(ids))).all())
                s.execute(update(Media).where(Media.id.in_(ids)).values(status=status.value))
            self._bump(s, collection_id)
        return np.array(removed, np.int64)

    def restore(self, collection_id: int, dim: int, found: Sequence[MediaRecord]) -> WriteResult:
        """Catalog files that were missing or trashed as there again (with their size, mtime and identity now):
        their stored vectors are returned, to put back in the FAISS indexes."""
        ids: list[int] = []
        levels: list[str] = []
        blobs: list[bytes] = []
        with self._session.begin() as s:
            for rec in found:
                media_id = s.scalar(
                    select(Media.id).where(
                        Media.collection_id == collection_id,
                        Media.path_key == hash_path(rec.path),
                        Media.status.in_([MediaStatus.MISSING.value, MediaStatus.TRASHED.value]),
                    )
                )
                if media_id is None:  # not catalogued, or already back (its vectors are in the index)
                    continue
                s.execute(
                    update(Media)
                    .where(Media.id == media_id)
                    .values(
                        status=MediaStatus.OK.value,
                        size=rec.size,
                        mtime_ns=rec.mtime_ns,
                        device=_id64(rec.device),
                        inode=_id64(rec.inode),
                    )
                )
                for r in s.execute(
                    select(Vector.id, Vector.level, Vector.embedding).where(Vector.media_id == media_id)
                ):
                    ids.append(r.id)
                    levels.append(r.level)
                    blobs.append(r.embedding)
            generation = self._bump(s, collection_id)
        return WriteResult(np.array(ids, np.int64), levels, from_bytes(blobs, dim), np.zeros(0, np.int64), generation)

    def touch(
        self, collection_id: int, path: str, size: int, mtime_ns: int, device: int | None, inode: int | None
    ) -> None:
        """Record a new mtime (and file identity) for a file whose content did not change."""
        with self._session.begin() as s:
            s.execute(
                update(Media)
                .where(Media.collection_id == collection_id, Media.path_key == hash_path(path))
                .values(size=size, mtime_ns=mtime_ns, device=_id64(device), inode=_id64(inode))
            )

    def set_metadata(self, collection_id: int, found: Sequence[tuple[str, PhotoMetadata]], version: int) -> None:
        """Record what files' EXIF says (``found``: catalog path and metadata), read by metadata reader ``version``;
        nothing else of their rows changes (their vectors stay as they are)."""
        stmt = (
            update(Media)
            .where(Media.collection_id == collection_id, Media.path_key == bindparam("key"))
            .values(
                taken_at=bindparam("taken_at"),
                camera=bindparam("camera"),
                exif_fields=bindparam("exif_fields"),
                meta_version=version,
            )
        )
        with self._session.begin() as s:
            for start in range(0, len(found), 500):
                params = [
                    {"key": hash_path(path), "taken_at": m.taken_at, "camera": m.camera, "exif_fields": m.exif_fields}
                    for path, m in found[start : start + 500]
                ]
                s.connection().execute(stmt, params)

    def mark_metadata(self, collection_id: int, paths: Sequence[str], version: int) -> None:
        """Set only the metadata reader version of files' rows (a read begun, or to be tried again)."""
        stmt = (
            update(Media)
            .where(Media.collection_id == collection_id, Media.path_key == bindparam("key"))
            .values(meta_version=version)
        )
        with self._session.begin() as s:
            for start in range(0, len(paths), 500):
                s.connection().execute(stmt, [{"key": hash_path(path)} for path in paths[start : start + 500]])

    def write(
        self, collection_id: int, dim: int, items: Iterable[tuple[MediaRecord, Sequence[VectorRecord]]]
    ) -> WriteResult:
        """Store files and their vectors in one transaction, replacing what was stored for those paths.

        Rows are written in bulk (one statement per table, RETURNING the new ids), so a batch costs a few
        round trips, not a few per file.

        Returns:
            the new vector ids (FAISS ids) with their levels and vectors, and the replaced vector ids.
        """
        batch = list(items)
        now = datetime.now(UTC)
        with self._session.begin() as s:
            found = s.execute(
                select(Media.path, Media.id).where(
                    Media.collection_id == collection_id, Media.path_key.in_([hash_path(r.path) for r, _ in batch])
                )
            )
            existing: dict[str, int] = {r.path: r.id for r in found}
            removed: list[int] = []
            if existing:
                old_ids = list(existing.values())
                removed = list(s.scalars(select(Vector.id).where(Vector.media_id.in_(old_ids))))
                s.execute(delete(Vector).where(Vector.media_id.in_(old_ids)))
                for rec, _ in batch:
                    if rec.path in existing:
                        values = _row_values(rec)
                        s.execute(update(Media).where(Media.id == existing[rec.path]).values(indexed_at=now, **values))
            fresh: list[dict[str, Any]] = [
                {"collection_id": collection_id, "path": rec.path, "path_key": hash_path(rec.path), "indexed_at": now}
                | _row_values(rec)
                for rec, _ in batch
                if rec.path not in existing
            ]
            if fresh:
                ids = s.scalars(insert(Media).returning(Media.id, sort_by_parameter_order=True), fresh).all()
                existing.update(zip((f["path"] for f in fresh), ids, strict=True))
            rows, levels, vecs = [], [], []
            for rec, vectors in batch:
                for v in vectors:
                    rows.append(
                        {
                            "collection_id": collection_id,
                            "media_id": existing[rec.path],
                            "level": v.level,
                            "start_s": v.start,
                            "end_s": v.end,
                            "embedding": _to_bytes(v.embedding),
                        }
                    )
                    levels.append(v.level)
                    vecs.append(np.asarray(v.embedding, np.float32))
            vector_ids = (
                s.scalars(insert(Vector).returning(Vector.id, sort_by_parameter_order=True), rows).all() if rows else []
            )
            generation = self._bump(s, collection_id)
        matrix = np.vstack(vecs).astype(np.float32) if vecs else np.zeros((0, dim), np.float32)
        return WriteResult(np.array(vector_ids, np.int64), levels, matrix, np.array(removed, np.int64), generation)

    def delete_media(self, collection_id: int, paths: Sequence[str]) -> np.ndarray:
        """Forget files (and their vectors); returns the removed vector ids."""
        removed: list[int] = []
        with self._session.begin() as s:
            for start in range(0, len(paths), 500):
                chunk = list(paths[start : start + 500])
                ids = s.scalars(
                    select(Media.id).where(
                        Media.collection_id == collection_id, Media.path_key.in_([hash_path(p) for p in chunk])
                    )
                ).all()
                if not ids:
                    continue
                removed.extend(s.scalars(select(Vector.id).where(Vector.media_id.in_(ids))).all())
                s.execute(delete(Vector).where(Vector.media_id.in_(ids)))
                s.execute(delete(Media).where(Media.id.in_(ids)))
            self._bump(s, collection_id)
        return np.array(removed, np.int64)

    # -- reporting -----------------------------------------------------------------------------------
    def stats(self, collection_id: int) -> dict[str, int]:
        """Counts of files by kind and status, and of vectors by level."""
        out: dict[str, int] = {}
        with self._session() as s:
            for kind, status, n in s.execute(
                select(Media.kind, Media.status, func.count(Media.id))
                .where(Media.collection_id == collection_id)
                .group_by(Media.kind, Media.status)
            ):
                out[f"{kind}s_{status}"] = int(n)
            for level, n in s.execute(
                select(Vector.level, func.count(Vector.id))
                .where(Vector.collection_id == collection_id)
                .group_by(Vector.level)
            ):
                out[f"vectors_{level}"] = int(n)
        return out

    def failures(self, collection_id: int) -> list[tuple[str, str, str]]:
        """``(path, error_code, message)`` of every file that failed, by path."""
        with self._session() as s:
            rows = s.execute(
                select(Media.path, Media.error_code, Media.error)
                .where(Media.collection_id == collection_id, Media.status == MediaStatus.FAILED.value)
                .order_by(Media.path)
            )
            return [(r.path, r.error_code or "", r.error or "") for r in rows]
