"""Small value types shared by the rooms."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MediaKind(StrEnum):
    """What a media file holds."""

    IMAGE = "image"
    VIDEO = "video"


class Level(StrEnum):
    """What one stored vector describes."""

    IMAGE = "image"
    SEGMENT = "segment"
    VIDEO = "video"


class Backend(StrEnum):
    """The runtime that executes an embedder's network (the model and its vectors stay the same)."""

    AUTO = "auto"  # the fastest one installed on this machine (see indexer.embedders.backends)
    TORCH = "torch"
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"


class MediaStatus(StrEnum):
    """Outcome of indexing one file."""

    OK = "ok"
    FAILED = "failed"
    MISSING = "missing"  # gone from disk since it was indexed: left out of answers, its vectors kept until pruned
    TRASHED = "trashed"  # moved to the trash by `resolve --apply`: left out of answers until `undo`


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One result of a search, best first in a result list.

    ``start``/``end`` locate the match inside the result (videos); ``query_start``/``query_end`` locate it
    inside the query when the query is a video. Times are seconds, or None where they do not apply.
    ``relation`` (what the hit is to the query: ``identical`` bytes, ``resized``, ``cropped`` ...,
    ``not_duplicate`` when compared and found not to be the same picture, or ``unverified`` when not compared: a
    video, or a file that cannot be read) and ``inliers`` (None for identical bytes, which are not compared
    further) are set by a verified search.
    """

    media_id: int
    path: str
    kind: MediaKind
    score: float
    start: float | None = None
    end: float | None = None
    query_start: float | None = None
    query_end: float | None = None
    relation: str | None = None
    inliers: int | None = None
