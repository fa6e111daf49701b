"""Keep-best rules: which file of a duplicate group is kept, by an ordered list of preferences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from lookalike.errors import UsageError
from lookalike.indexer.discover import canonical
from lookalike.storage.records import MediaRecord

LOSSLESS = frozenset({".png", ".tif", ".tiff", ".bmp", ".webp"})  # .webp may be lossless; it ranks with them
RULES = ("representative", "resolution", "size", "oldest", "newest", "format", "shortest-path", "path:DIR")


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
            rules.append(KeepRule("path", canonical(Path(folder))))
        elif part in RULES:
            rules.append(KeepRule(part))
        else:
            raise UsageError(f"unknown keep rule {part!r}; use a comma-separated list of: {', '.join(RULES)}")
    if not rules:
        raise UsageError(f"--keep needs at least one rule of: {', '.join(RULES)}")
    return rules


def _key(rule: KeepRule, c: Candidate) -> float | int | str:
    rec = c.record
    if rule.name == "representative":
        return 0 if c.representative else 1
    if rule.name == "resolution":
        return -((rec.width or 0) * (rec.height or 0))
    if rule.name == "size":
        return -rec.size
    if rule.name == "oldest":
        return rec.mtime_ns
    if rule.name == "newest":
        return -rec.mtime_ns
    if rule.name == "format":
        return 0 if PurePath(rec.path).suffix.lower() in LOSSLESS else 1
    if rule.name == "shortest-path":
        return len(rec.path)
    assert rule.folder is not None
    folder = str(rule.folder).rstrip("/") + "/"
    return 0 if rec.path.startswith(folder) else 1


def choose_keeper(candidates: Sequence[Candidate], rules: Sequence[KeepRule]) -> tuple[int, str]:
    """The index of the file to keep, and which rule decided (the first that set it apart from the runner-up;
    ``representative`` when none did: ties go to the representative, then to the shorter path)."""
    keys = [
        (*[_key(r, c) for r in rules], 0 if c.representative else 1, len(c.record.path), c.record.path)
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
