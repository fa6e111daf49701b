"""Reading stored vectors back: by file, in chunks for FAISS rebuilds, by id for search hits (a part of
:class:`~lookalike.storage.catalog.Catalog`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from lookalike.storage.orm import Media, Vector
from lookalike.storage.records import StoredVector, VectorRecord
from lookalike.types import MediaStatus


def from_bytes(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    """Stored little-endian float32 blobs as an (n, dim) matrix."""
    if not blobs:
        return np.zeros((0, dim), np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dim).astype(np.float32)


class VectorQueries:
    """The vector reads of the catalog; FAISS indexes hold the vectors of files that are there (status ok)."""

    _session: sessionmaker[Session]

    def vectors_of(self, collection_id: int, media_id: int, dim: int) -> list[VectorRecord]:
        """The stored vectors of one file, in time order."""
        with self._session() as s:
            rows = s.execute(
                select(Vector.level, Vector.start_s, Vector.end_s, Vector.embedding)
                .where(Vector.collection_id == collection_id, Vector.media_id == media_id)
                .order_by(Vector.id)
            ).all()
        mat = from_bytes([r.embedding for r in rows], dim)
        return [VectorRecord(r.level, mat[i], r.start_s, r.end_s) for i, r in enumerate(rows)]

    def iter_vectors(
        self, collection_id: int, levels: Sequence[str], dim: int, chunk: int = 20_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The stored vectors of the given levels as ``(ids, matrix)`` chunks, by id: those of files that are there
        (not of files catalogued as missing), which are what the FAISS indexes hold."""
        last = -1
        while True:
            with self._session() as s:
                rows = s.execute(
                    select(Vector.id, Vector.embedding)
                    .join(Media, Media.id == Vector.media_id)
                    .where(
                        Vector.collection_id == collection_id,
                        Vector.level.in_(levels),
                        Vector.id > last,
                        Media.status == MediaStatus.OK.value,
                    )
                    .order_by(Vector.id)
                    .limit(chunk)
                ).all()
            if not rows:
                return
            last = rows[-1].id
            yield np.array([r.id for r in rows], np.int64), from_bytes([r.embedding for r in rows], dim)

    def vectors_by_id(self, collection_id: int, vector_ids: Sequence[int], dim: int) -> tuple[np.ndarray, np.ndarray]:
        """The stored vectors of ``vector_ids`` as ``(ids, matrix)``, by ascending id (ids no longer stored are left
        out)."""
        wanted = sorted({int(i) for i in vector_ids if int(i) >= 0})
        ids: list[int] = []
        blobs: list[bytes] = []
        with self._session() as s:
            for start in range(0, len(wanted), 500):
                rows = s.execute(
                    select(Vector.id, Vector.collection_id, Vector.embedding).where(
                        Vector.id.in_(wanted[start : start + 500])
                    )
                )
                for r in rows:
                    if r.collection_id == collection_id:
                        ids.append(r.id)
                        blobs.append(r.embedding)
        order = np.argsort(np.array(ids, np.int64), kind="stable")
        return np.array(ids, np.int64)[order], from_bytes(blobs, dim)[order]

    def vector_ids(self, collection_id: int, levels: Sequence[str]) -> np.ndarray:
        """The ids of the stored vectors of the given levels that the FAISS indexes hold (see :meth:`iter_vectors`),
        ascending."""
        with self._session() as s:
            ids = s.scalars(
                select(Vector.id)
                .join(Media, Media.id == Vector.media_id)
                .where(
                    Vector.collection_id == collection_id,
                    Vector.level.in_(levels),
                    Media.status == MediaStatus.OK.value,
                )
                .order_by(Vector.id)
            ).all()
        return np.array(ids, np.int64)

    def count_vectors(self, collection_id: int, levels: Sequence[str]) -> int:
        """How many vectors of the given levels the FAISS indexes hold (see :meth:`iter_vectors`)."""
        with self._session() as s:
            query = (
                select(func.count(Vector.id))
                .join(Media, Media.id == Vector.media_id)
                .where(
                    Vector.collection_id == collection_id,
                    Vector.level.in_(levels),
                    Media.status == MediaStatus.OK.value,
                )
            )
            return int(s.scalar(query) or 0)

    def hydrate(self, collection_id: int, vector_ids: Iterable[int]) -> dict[int, StoredVector]:
        """Files and time ranges behind vector ids; ids no longer stored are left out."""
        wanted = sorted({int(i) for i in vector_ids if int(i) >= 0})
        out: dict[int, StoredVector] = {}
        with self._session() as s:
            for start in range(0, len(wanted), 500):
                # by primary key only: with the collection in the WHERE clause SQLite's planner walked the
                # collection's index instead (every vector of the collection: 12 ms a query at 100k vectors)
                rows = s.execute(
                    select(
                        Vector.id,
                        Vector.collection_id,
                        Vector.media_id,
                        Vector.level,
                        Vector.start_s,
                        Vector.end_s,
                        Media.path,
                        Media.kind,
                    )
                    .join(Media, Media.id == Vector.media_id)
                    .where(Vector.id.in_(wanted[start : start + 500]))
                )
                for r in rows:
                    if r.collection_id == collection_id:
                        out[r.id] = StoredVector(r.id, r.media_id, r.path, r.kind, r.level, r.start_s, r.end_s)
        return out
