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

from lookalike.indexer.discover import Candidate, Skipped, canonical
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
    device: int | None = None
    inode: int | None = None


@dataclass
class Plan:
    """What an index run will do.

    Attributes:
        jobs: files to decode and embed (one per distinct content).
        copies: files whose content equals a job's or an indexed file's, by SHA-256: their vectors are copied.
        unchanged: paths whose size and mtime (or content) match the catalog.
        touched: files whose mtime (or device and inode) changed but content did not: the row is updated, nothing
            re-embedded.
        restored: files catalogued as missing (or trashed) that are back with their content: their vectors return.
        skipped: paths passed over, with why.
        updated: keys of jobs that replace an earlier version of the file.
        seen: the key of every file found.
    """

    jobs: list[Job] = field(default_factory=list)
    copies: list[Job] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    touched: list[Job] = field(default_factory=list)
    restored: list[Job] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    updated: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)


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
    return old.status == MediaStatus.FAILED.value and old.error_code in RETRY_CODES


# rows of files not on disk whose vectors are kept: out of answers until the file is back
ABSENT = frozenset({MediaStatus.MISSING.value, MediaStatus.TRASHED.value})


def settled(old: KnownMedia, size: int, mtime_ns: int) -> bool:
    """Whether a catalogued file needs no work: same size and mtime, not a failure worth retrying, not absent."""
    return old.unchanged(size, mtime_ns) and not retried(old) and old.status not in ABSENT


def make_plan(found: Iterable[Candidate | Skipped], known: dict[str, KnownMedia], hash_threads: int = 4) -> Plan:
    """Compare discovered files with the catalog.

    A file is unchanged when size and mtime match (failures in :data:`RETRY_CODES` are retried); otherwise its
    SHA-256 decides: same content as its own row means only the mtime moved (or a missing file is back); same
    content as another catalogued file (or another file of this run) means its vectors are copied, not recomputed.
    A file found twice (roots that overlap) is planned once.
    """
    plan = Plan()
    fresh: list[tuple[str, Candidate]] = []
    for item in found:
        if isinstance(item, Skipped):
            plan.skipped.append(item)
            continue
        key = path_key(item.path)
        if key in plan.seen:
            continue
        plan.seen.add(key)
        old = known.get(key)
        if old is not None and settled(old, item.size, item.mtime_ns):
            plan.unchanged.append(key)
            if (old.device, old.inode) != (item.device, item.inode):  # moved disk, or catalogued before 0.2
                job = Job(-1, item.path, key, item.kind, item.size, item.mtime_ns, old.sha256, item.device, item.inode)
                plan.touched.append(job)
        else:
            fresh.append((key, item))
    with ThreadPoolExecutor(max_workers=hash_threads) as pool:
        digests = list(pool.map(lambda kc: sha256_file(kc[1].path), fresh))
    # a row this run rewrites (its file changed) no longer holds its old content: a copy of that content is decoded
    rewritten = {key for key, _ in fresh}
    stored = ABSENT | {MediaStatus.OK.value}  # rows whose vectors are kept
    known_shas = {m.sha256 for key, m in known.items() if m.sha256 and m.status in stored and key not in rewritten}
    first_of_sha: set[str] = set()
    for n, ((key, cand), sha) in enumerate(zip(fresh, digests, strict=True)):
        job = Job(n, cand.path, key, cand.kind, cand.size, cand.mtime_ns, sha, cand.device, cand.inode)
        old = known.get(key)
        if old is not None and sha is not None and old.sha256 == sha and not retried(old):
            (plan.restored if old.status in ABSENT else plan.touched).append(job)
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


@dataclass
class Absent:
    """Catalogued files under the indexed roots that a run did not find.

    Attributes:
        missing: indexed files gone from disk (deleted, renamed, moved away), not yet catalogued as missing.
        forgotten: files that had failed and are gone from disk: their rows hold nothing worth keeping.
        aliases: still there, but under another name, which the run catalogued: a path through a symbolic link or
            with ``..`` that an earlier version stored. The rows are dropped (the file is not).
    """

    missing: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)


NOT_THE_FILE = frozenset({"symlink_not_followed", "broken_link", "outside_root", "not_regular_file", "lookalike_home"})


def _under(text: str, bases: list[str]) -> bool:
    return any(text == b or text.startswith(b.rstrip("/") + "/") for b in bases)


def root_bases(roots: Iterable[Path]) -> list[str]:
    """The canonical paths of ``roots``, as :func:`under` takes them (resolved once a run, not once a file)."""
    return [str(canonical(Path(r))) for r in roots]


def under(key: str, bases: list[str]) -> bool:
    """Whether the catalogued file ``key`` lies under one of ``bases`` (see :func:`root_bases`)."""
    return _under(str(key_path(key)), bases)


def absent(known: dict[str, KnownMedia], roots: Iterable[Path], plan: Plan) -> Absent:
    """The catalogued files under ``roots`` that the walk behind ``plan`` did not find (see :class:`Absent`).

    A file under a folder the walk could not read, or a path it passed over (:attr:`Plan.skipped`), is neither:
    it is there, only unread this time.
    """
    # the canonical root, and the root as given: rows an earlier version stored through a symlinked folder
    bases = sorted({str(canonical(Path(r))) for r in roots} | {str(Path(r).expanduser().absolute()) for r in roots})
    # a folder the walk could not read hides what is under it; a path now a link or not a regular file is no
    # longer the file indexed there
    unread = [str(s.path) for s in plan.skipped if s.reason not in NOT_THE_FILE]
    out = Absent()
    for key, old in known.items():
        if key in plan.seen or old.status in ABSENT:
            continue
        path = key_path(key)
        text = str(path)
        if not _under(text, bases) or _under(text, unread):
            continue
        if not os.path.lexists(path):
            (out.missing if old.status == MediaStatus.OK.value else out.forgotten).append(key)
        elif os.path.realpath(path) != text:
            out.aliases.append(key)
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
        device=job.device,
        inode=job.inode,
        **fields,
    )
