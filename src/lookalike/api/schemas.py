"""Request and response bodies of the HTTP API (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from lookalike.types import MediaStatus, SearchHit

if TYPE_CHECKING:
    from lookalike.actions.apply import RunReport
    from lookalike.actions.resolve import Resolution
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
    modified: datetime = Field(description="The file's modification time when it was indexed (UTC).")
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
            modified=datetime.fromtimestamp(r.mtime_ns / 1e9, UTC),
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
        "resized, cropped, rotated, flipped (a mirror image), framed (plain borders added), edited, contains, "
        "similar, copy, partial."
    )
    score: float = Field(description="Verification score against the representative (1 for the representative).")
    inliers: int | None = Field(
        None,
        description="Keypoint matches one geometric transform explains (images; 0 for method smooth: verified "
        "without keypoints).",
    )
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


class ResolveRequest(BaseModel):
    """A resolve, as ``lookalike resolve`` takes it: a dry run unless ``apply``."""

    keep: str | None = Field(
        None, max_length=1000, description="Keep-best rules, comma-separated (default: each group's representative)."
    )
    apply: bool = Field(False, description="Carry the plan out (journaled, undoable); false changes nothing.")
    action: str = Field("trash", description="trash, or hardlink / symlink to the keeper (identical copies only).")
    choices: dict[str, str] | None = Field(
        None,
        description="A reviewed plan: a file's path (as the plan names it) -> keep, trash, hardlink or symlink; only "
        "chosen files are acted on and each group keeps a file. Null: the automatic plan.",
    )


class PlannedFile(BaseModel):
    """One file of a resolve plan."""

    path: str
    action: str = Field(description="keep, or what is (or would be) done to it: trash, hardlink, symlink.")
    keeper: str = Field(description="The file of its group that is kept.")
    reason: str = Field(description="Why (a file a run left alone says `skipped: ` and why).")
    group: int = Field(description="Its verified duplicate group, numbered from 1.")


class Skipped(BaseModel):
    """A file a run left as it was, and why."""

    path: str
    why: str


class ResolveResponse(BaseModel):
    """The plan, and for an applied resolve the run that carried it out (the JSON of ``lookalike resolve --json``,
    with the skipped files also listed apart)."""

    run: int | None = Field(description="The run's id, for /api/undo (null: a dry run, or nothing to do).")
    actions: list[PlannedFile]
    outside: list[str] = Field(description="Chosen files that are in no verified duplicate group now (left alone).")
    skipped: list[Skipped] = Field(description="Files the run left as they were (changed since indexed, ...).")
    recovered: list[int] = Field(
        default_factory=list, description="Runs an interrupted process had left unfinished, finished first."
    )

    @classmethod
    def of(cls, result: Resolution) -> ResolveResponse:
        """The API shape of a resolve: a file the run left alone has action ``keep`` and the reason it was skipped."""
        skipped = dict(result.report.skipped) if result.report else {}
        actions = [PlannedFile.model_validate(a) for a in result.outcome()]
        left = [Skipped(path=path, why=why) for path, why in skipped.items()]
        recovered = [r.run for r in result.recovered if r.run is not None]
        return cls(run=result.run, actions=actions, outside=result.outside, skipped=left, recovered=recovered)


class UndoRequest(BaseModel):
    """Which run to undo."""

    run: int | None = Field(None, ge=1, description="A run's id (default: the latest applied run).")


class RunResult(BaseModel):
    """What an undo did: the files put back, and those left as they are with why."""

    run: int | None
    done: list[str]
    skipped: list[Skipped]

    @classmethod
    def of(cls, report: RunReport) -> RunResult:
        """The API shape of a run report."""
        skipped = [Skipped(path=path, why=why) for path, why in report.skipped]
        return cls(run=report.run, done=report.done, skipped=skipped)


class DistinctRequest(BaseModel):
    """Files that are not duplicates of one another."""

    paths: list[str] = Field(min_length=2, max_length=1000, description="Two or more indexed files (their paths).")


class DistinctResponse(BaseModel):
    """What ``distinct`` remembered."""

    added: int = Field(description="New pairs remembered.")
    decisions: list[int] = Field(description="Ids of the new pairs (/api/decisions/forget takes them back).")


class ForgetRequest(BaseModel):
    """Remembered decisions to forget."""

    ids: list[int] = Field(min_length=1, max_length=100_000)


class ForgetResponse(BaseModel):
    """How many decisions were forgotten."""

    forgotten: int


class Decision(BaseModel):
    """A remembered "not duplicates" pair."""

    id: int
    a: str
    b: str


class DecisionsResponse(BaseModel):
    """The remembered "not duplicates" pairs."""

    decisions: list[Decision]
