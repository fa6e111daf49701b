"""Keep-best rules: which file of a duplicate group is kept, by an ordered list of preferences.

``representative``: the group's representative; ``resolution``: most pixels; ``size``: most bytes; ``oldest`` and
``newest``: by the date the photo was taken (EXIF) when every file compared has one, else by modification time;
``exif``: most metadata (EXIF tags); ``format``: lossless first; ``shortest-path``; ``path:DIR``: files under DIR first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePath

from lookalike.errors import UsageError
from lookalike.indexer.discover import canonical
from lookalike.storage.records import MediaRecord

LOSSLESS = frozenset({".png", ".tif", ".tiff", ".bmp", ".webp"})  # .webp may be lossless; it ranks with them
RULES = ("representative", "resolution", "size", "oldest", "newest", "exif", "format", "shortest-path", "path:DIR")


@dataclass(frozen=True)
class KeepRule:
    """One preference: ``name`` is one of :data:`RULES` (``path`` with ``folder`` for ``path:DIR``)."""

    name: str
    folder: Path | None = None

    def __str__(self) -> str:
        return f"path:{self.folder}" if self.folder is not None else self.name


@dataclass(frozen=True)
class Candidate:
    """A group member that may be kept: its record, and whether it is the group's representative."""

    record: MediaRecord
    representative: bool
    pixels: int | None = None  # of the picture itself (a photo on a canvas: the photo's box), when known


def parse_rules(text: str) -> list[KeepRule]:
    """``resolution,size,oldest`` as rules, in order.

    Raises:
        UsageError: an unknown rule, or ``path:`` without a folder.
    """
    rules = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part.startswith("path:"):
            folder = part[len("path:") :].strip()
            if not folder:
                raise UsageError("the rule path:DIR needs a folder, e.g. --keep path:~/Pictures/originals")
            where = canonical(Path(folder).expanduser())
            if not where.is_dir():
                raise UsageError(f"the rule path:{folder} names no folder ({where} is not one)")
            rules.append(KeepRule("path", where))
        elif part in RULES:
            rules.append(KeepRule(part))
        else:
            raise UsageError(f"unknown keep rule {part!r}; use a comma-separated list of: {', '.join(RULES)}")
    if not rules:
        raise UsageError(f"--keep needs at least one rule of: {', '.join(RULES)}")
    return rules


def _age(rec: MediaRecord, dated: bool) -> float:
    """When the file came to be: its date taken (seconds since year 1, the camera's clock) when ``dated``, else its
    modification time (seconds since 1970). One group uses one of the two, never a mix."""
    if dated and rec.taken_at is not None:
        return (rec.taken_at - datetime(1, 1, 1)).total_seconds()
    return rec.mtime_ns / 1e9


SAME_RESOLUTION = 0.97  # pictures within 3% of the most pixels tie on ``resolution`` (a box measured to a pixel or two)


def _pixels(c: Candidate) -> int:
    """The picture's pixels in a candidate: its matched box where known (not a canvas around it), else the file's."""
    return c.pixels if c.pixels is not None else (c.record.width or 0) * (c.record.height or 0)


def _key(rule: KeepRule, c: Candidate, dated: bool, most: int) -> float | int | str:
    rec = c.record
    if rule.name == "representative":
        return 0 if c.representative else 1
    if rule.name == "resolution":  # thin bars round a copy, a pixel more in its box, are not more of the picture
        pixels = _pixels(c)
        return -most if pixels >= SAME_RESOLUTION * most else -pixels
    if rule.name == "size":
        return -rec.size
    if rule.name == "oldest":
        return _age(rec, dated)
    if rule.name == "newest":
        return -_age(rec, dated)
    if rule.name == "exif":
        return -(rec.exif_fields or 0)
    if rule.name == "format":
        return 0 if PurePath(rec.path).suffix.lower() in LOSSLESS else 1
    if rule.name == "shortest-path":
        return len(rec.path)
    assert rule.folder is not None
    folder = str(rule.folder).rstrip("/") + "/"
    return 0 if rec.path.startswith(folder) else 1


def choose_keeper(candidates: Sequence[Candidate], rules: Sequence[KeepRule]) -> tuple[int, str]:
    """The index of the file to keep, and which rule decided (the first that set it apart from the runner-up;
    ``representative`` when none did: ties go to the representative, then to the shorter path).

    ``oldest`` and ``newest`` compare dates taken only when every candidate has one: a date taken and a modification
    time are not comparable (a copy made today of a photo taken in 2010), so one file without a date sends the group
    back to modification times.
    """
    dated = all(c.record.taken_at is not None for c in candidates)
    most = max((_pixels(c) for c in candidates), default=0)
    keys = [
        (*[_key(r, c, dated, most) for r in rules], 0 if c.representative else 1, len(c.record.path), c.record.path)
        for c in candidates
    ]
    order = sorted(range(len(candidates)), key=lambda i: keys[i])
    best = order[0]
    if len(order) > 1:
        runner = order[1]
        for n, rule in enumerate(rules):
            if keys[best][n] != keys[runner][n]:
                return best, str(rule)
    return best, "representative"
