"""Library routes: what is indexed, and duplicate groups."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from lookalike.api.deps import ServiceDep
from lookalike.api.schemas import DuplicatesResponse, LibraryInfo

router = APIRouter(prefix="/api", tags=["library"])

# below 0.5 nearly everything would pair with everything (a quadratic answer): not a duplicate threshold
Threshold = Annotated[float | None, Query(ge=0.5, le=1.0, description="Default: the calibrated setting.")]


@router.get("/info", response_model=LibraryInfo)
def info(service: ServiceDep) -> LibraryInfo:
    """The searched collection: model, whether it takes text queries, counts."""
    summary = service.summary()
    return LibraryInfo(
        **summary,
        auth=service.settings.api_key is not None,
        max_upload_bytes=service.settings.max_upload_bytes,
    )


@router.get("/duplicates", response_model=DuplicatesResponse)
def duplicates(
    service: ServiceDep, similar_threshold: Threshold = None, video_threshold: Threshold = None
) -> DuplicatesResponse:
    """Verified groups of duplicate images (with the matched regions), videos sharing footage (with the matched
    ranges), and, when ``similar_threshold`` is given, groups of similar images (not verified)."""
    groups = service.duplicates(similar_threshold, video_threshold)
    s = service.settings
    return DuplicatesResponse.of(
        groups, similar_threshold, s.video_dupe_threshold if video_threshold is None else video_threshold
    )
