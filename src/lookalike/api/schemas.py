"""Request and response bodies of the HTTP API (they make the OpenAPI document)."""

from __future__ import annotations

from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from lookalike.types import MediaStatus, SearchHit

if TYPE_CHECKING:
    from lookalike.search.groups import DuplicateGroup
    from lookalike.search.searcher import QueryResult
    from lookalike.storage.records import MediaRecord


def _media_fields(media_id: int, path: str, kind: str, start: float | None, end: float | None) -> dict[str, Any]:
    """The fields every listed file has: id, name, path, kind, matched range and the URLs to show it."""
    at = f"?t={start:.2f}" if start is not None else ""
    return {
        "id": media_id,
        "name": PurePath(path).name,
        "path": path,
        "kind": kind,
        "start": start,
        "end": end,
        "thumbnail": f"/api/items/{media_id}/thumbnail{at}",
        "file": f"/api/items/{media_id}/file",
    }


class Hit(BaseModel):
    """One result: an indexed file, its similarity, and for videos the matched time ranges."""

    id: int
    name: str = Field(description="File name (the full path is in `path`).")
    path: str
    kind: str = Field(description="image or video")
    score: float = Field(description="Cosine similarity (images, video moments) or aligned segment score (videos).")
    start: float | None = Field(None, description="Start of the match inside this result, seconds (videos).")
    end: float | None = None
    query_start: float | None = Field(None, description="Start of the match inside the query video, seconds.")
    query_end: float | None = None
    thumbnail: str = Field(description="URL of a thumbnail (a video's frame at the match).")
    file: str = Field(description="URL of the file itself (supports range requests, for video playback).")

    @classmethod
    def of(cls, hit: SearchHit) -> Hit:
        """The API shape of a search hit."""
        return cls(
            **_media_fields(hit.media_id, hit.path, hit.kind.value, hit.start, hit.end),
            score=round(hit.score, 4),
            query_start=hit.query_start,
            query_end=hit.query_end,
        )


class SearchResponse(BaseModel):
    """Results of one query, best first."""

    query: str
    hits: list[Hit]

    @classmethod
    def of(cls, result: QueryResult, query: str | None = None) -> SearchResponse:
        """The API shape of a query result."""
        return cls(query=query or result.query, hits=[Hit.of(h) for h in result.hits])


class TextQuery(BaseModel):
    """A text query (CLIP models)."""

    text: str = Field(min_length=1, max_length=1000)
    k: int = Field(10, ge=1, le=100)


class ItemInfo(BaseModel):
    """What the catalog knows about one file."""

    id: int
    name: str
    path: str
    kind: str
    status: str = Field(description="ok, failed (see error_code), or missing (gone from disk since indexed)")
    size: int
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    fps: float | None = None
    error_code: str | None = None
    error: str | None = None
    thumbnail: str | None = None
    file: str | None = None

    @classmethod
    def of(cls, media_id: int, r: MediaRecord) -> ItemInfo:
        """The API shape of a catalog record."""
        ok = r.status == MediaStatus.OK.value
        return cls(
            id=media_id,
            name=PurePath(r.path).name,
            path=r.path,
            kind=r.kind,
            status=r.status,
            size=r.size,
            width=r.width,
            height=r.height,
            duration=r.duration,
            fps=r.fps,
            error_code=r.error_code,
            error=r.error,
            thumbnail=f"/api/items/{media_id}/thumbnail" if ok else None,
            file=f"/api/items/{media_id}/file" if ok else None,
        )


class GroupItem(BaseModel):
    """A member of a duplicate group and the evidence tying it to the group's representative (the first item)."""

    id: int
    name: str
    path: str
    kind: str
    start: float | None = None
    end: float | None = None
    thumbnail: str
    file: str
    relation: str = Field(
        description="What this file is to the representative: representative, identical, hardlink (the same file as "
        "an item above, at another path), "
        "resized, cropped, rotated, edited, contains, similar, copy, partial."
    )
    score: float = Field(description="Verification score against the representative (1 for the representative).")
    inliers: int | None = Field(None, description="Keypoint matches one geometric transform explains (images).")
    region: list[int] | None = Field(
        None, description="[left, top, right, bottom] of this file that shows the representative, in its pixels."
    )
    rep_region: list[int] | None = Field(None, description="The representative's box that shows this file.")
    rep_start: float | None = Field(None, description="Videos: the representative's matched range start.")
    rep_end: float | None = None
    method: str | None = Field(
        None,
        description="identical, hardlink (one file at two paths), local (keypoints), global (vectors), aligned.",
    )


class Group(BaseModel):
    """Files that are the same picture or footage; the first item is the representative."""

    kind: str = Field(
        description="duplicates (verified), overlap (two videos sharing part of their footage) or "
        "similar (global vectors only, not verified)."
    )
    score: float = Field(description="The weakest member's verification score.")
    items: list[GroupItem]


class DuplicatesResponse(BaseModel):
    """Duplicate groups at the thresholds used."""

    similar_threshold: float | None
    video_threshold: float
    groups: list[Group]

    @classmethod
    def of(
        cls, groups: list[DuplicateGroup], similar_threshold: float | None, video_threshold: float
    ) -> DuplicatesResponse:
        """The API shape of duplicate groups."""
        out = [
            Group(
                kind=g.kind.value,
                score=round(g.score, 4),
                items=[
                    GroupItem(
                        **_media_fields(it.media_id, it.path, it.kind, it.start, it.end),
                        relation=it.relation.value,
                        score=it.score,
                        inliers=it.inliers,
                        region=None if it.region is None else list(it.region),
                        rep_region=None if it.rep_region is None else list(it.rep_region),
                        rep_start=it.rep_start,
                        rep_end=it.rep_end,
                        method=it.method,
                    )
                    for it in g.items
                ],
            )
            for g in groups
        ]
        return cls(similar_threshold=similar_threshold, video_threshold=video_threshold, groups=out)


class LibraryInfo(BaseModel):
    """The collection the service searches."""

    model: str | None
    text_search: bool = Field(description="Whether the model can embed text queries (CLIP models).")
    items: int
    vectors: int
    generation: int
    auth: bool = Field(description="Whether the service asks for an API key.")
    max_upload_bytes: int


class Health(BaseModel):
    """Liveness and readiness."""

    status: str
    ready: bool = Field(description="A collection is loaded and searches can be answered.")
