"""Incremental planning: which discovered files need decoding, which are unchanged, which are copies."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes, unquote_to_bytes

from lookalike.indexer.discover import Candidate, Skipped
from lookalike.storage.records import KnownMedia, MediaRecord
from lookalike.types import MediaKind, MediaStatus


@dataclass(frozen=True, slots=True)
class Job:
    """A file to decode and embed."""

    index: int
    path: Path
    key: str
    kind: MediaKind
    size: int
    mtime_ns: int
    sha256: str | None


@dataclass
class Plan:
    """What an index run will do.

    Attributes:
        jobs: files to decode and embed (one per distinct content).
        copies: files whose content equals a job's or an indexed file's, by SHA-256: their vectors are copied.
        unchanged: paths whose size and mtime (or content) match the catalog.
        touched: files whose mtime changed but content did not (mtime updated, nothing re-embedded).
        skipped: paths passed over, with why.
        updated: keys of jobs that replace an earlier version of the file.
    """

    jobs: list[Job] = field(default_factory=list)
    copies: list[Job] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    touched: list[Job] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    updated: set[str] = field(default_factory=set)


def sha256_file(path: Path) -> str | None:
    """SHA-256 of a file's bytes, or None when it cannot be read (the decoder then reports why)."""
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


BYTES_PREFIX = "bytes:"


def path_key(path: Path) -> str:
    """The catalog key of an absolute path: its text, or for a name that is not valid UTF-8 (which no database
    text column can hold) ``bytes:`` and its percent-encoded bytes. Real keys start with "/", so the two forms
    never collide, and :func:`key_path` turns either back into the same bytes."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return BYTES_PREFIX + quote_from_bytes(os.fsencode(path), safe="/")
    return text


def key_path(key: str) -> Path:
    """The filesystem path behind a catalog key (see :func:`path_key`)."""
    if key.startswith(BYTES_PREFIX):
        return Path(os.fsdecode(unquote_to_bytes(key[len(BYTES_PREFIX) :])))
    return Path(key)


# Failures that say more about the machine or the moment than about the file: tried again on every run.
RETRY_CODES = frozenset(
    {"out_of_memory", "decode_timeout", "decoder_crashed", "vanished", "permission_denied", "duplicate_of_failed"}
)


def retried(old: KnownMedia) -> bool:
    """Whether a catalogued file failed for a reason in :data:`RETRY_CODES` (so it is decoded again)."""
    return old.status == "failed" and old.error_code in RETRY_CODES


def settled(old: KnownMedia, size: int, mtime_ns: int) -> bool:
    """Whether a catalogued file needs no work: same size and mtime, and not a failure worth retrying."""
    return old.unchanged(size, mtime_ns) and not retried(old)


def make_plan(found: Iterable[Candidate | Skipped], known: dict[str, KnownMedia], hash_threads: int = 4) -> Plan:
    """Compare discovered files with the catalog.

    A file is unchanged when size and mtime match (failures in :data:`RETRY_CODES` are retried); otherwise its
    SHA-256 decides: same content as its own row means only the mtime moved; same content as another indexed
    file (or another file of this run) means its vectors are copied, not recomputed.
    """
    plan = Plan()
    fresh: list[tuple[str, Candidate]] = []
    for item in found:
        if isinstance(item, Skipped):
            plan.skipped.append(item)
            continue
        key = path_key(item.path)
        old = known.get(key)
        if old is not None and settled(old, item.size, item.mtime_ns):
            plan.unchanged.append(key)
        else:
            fresh.append((key, item))
    with ThreadPoolExecutor(max_workers=hash_threads) as pool:
        digests = list(pool.map(lambda kc: sha256_file(kc[1].path), fresh))
    # a row this run rewrites (its file changed) no longer holds its old content: a copy of that content is decoded
    rewritten = {key for key, _ in fresh}
    known_shas = {m.sha256 for key, m in known.items() if m.sha256 and m.status == "ok" and key not in rewritten}
    first_of_sha: set[str] = set()
    for n, ((key, cand), sha) in enumerate(zip(fresh, digests, strict=True)):
        job = Job(n, cand.path, key, cand.kind, cand.size, cand.mtime_ns, sha)
        old = known.get(key)
        if old is not None and sha is not None and old.sha256 == sha and not retried(old):
            plan.touched.append(job)
            continue
        if old is not None:
            plan.updated.add(key)
        if sha is not None and (sha in known_shas or sha in first_of_sha):
            plan.copies.append(job)
            continue
        if sha is not None:
            first_of_sha.add(sha)
        plan.jobs.append(job)
    return plan


def vanished(known: dict[str, KnownMedia], roots: Iterable[Path]) -> list[str]:
    """Catalogued paths under ``roots`` that no longer exist on disk."""
    bases = [r.expanduser().absolute() for r in roots]
    out = []
    for key in known:
        path = key_path(key)
        if any(path == b or b in path.parents for b in bases) and not os.path.lexists(path):
            out.append(key)
    return out


def make_record(job: Job, status: MediaStatus, **fields: Any) -> MediaRecord:
    """The catalog record of a job with its outcome and what decoding learned."""
    return MediaRecord(
        path=job.key,
        kind=job.kind.value,
        size=job.size,
        mtime_ns=job.mtime_ns,
        status=status.value,
        sha256=job.sha256,
        **fields,
    )
