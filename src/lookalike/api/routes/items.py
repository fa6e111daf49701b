"""Item routes: metadata, thumbnails and the files themselves (only files the catalog holds)."""

from __future__ import annotations

from typing import Annotated, Any

import filetype
from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response
from starlette.types import Receive, Scope, Send

from lookalike.api.deps import ItemId, ServiceDep
from lookalike.api.schemas import ItemInfo
from lookalike.workspace import IMAGE_MIMES, VIDEO_MIMES

router = APIRouter(prefix="/api/items", tags=["items"])


@router.get("/{item_id}", response_model=ItemInfo)
def item(service: ServiceDep, item_id: ItemId) -> ItemInfo:
    """What the catalog knows about one file (failed files say why)."""
    found = service.item(item_id)
    return ItemInfo.of(found.id, found.record)


@router.get("/{item_id}/thumbnail", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
def thumbnail(
    service: ServiceDep,
    item_id: ItemId,
    t: Annotated[float | None, Query(ge=0, le=1e7, description="Seconds into a video (default: its start).")] = None,
    size: Annotated[int, Query(ge=16, le=1024, description="Longest side in pixels.")] = 320,
) -> Response:
    """A JPEG thumbnail of an image, or of a video's frame at ``t`` seconds."""
    data = service.thumbnail(item_id, size, t)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/{item_id}/file", response_class=FileResponse)
def original(service: ServiceDep, item_id: ItemId) -> FileResponse:
    """The indexed file itself, with range requests (a video plays and seeks from it)."""
    opened = service.indexed_file(item_id)
    try:
        # the type comes from the content, as it did when indexing; the name is not trusted (no HTML served inline)
        media_type = filetype.guess_mime(str(opened.path))
    except BaseException:
        opened.close()
        raise
    headers = {"Cache-Control": "private, max-age=60", "X-Content-Type-Options": "nosniff"}
    if media_type not in IMAGE_MIMES | VIDEO_MIMES:
        media_type = "application/octet-stream"
        headers["Content-Disposition"] = "attachment"
    # the response reads the checked open file, and closes it however the response ends (416, 400, a disconnect)
    return _OpenFileResponse(opened, media_type=media_type, headers=headers)


class _OpenFileResponse(FileResponse):
    """A file response over an :class:`OpenFile`, which it closes when it is done, whatever happened."""

    def __init__(self, opened: Any, **kwargs: Any) -> None:  # an OpenFile (``Workspace.open_file``)
        super().__init__(opened.path, **kwargs)
        self._opened = opened

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._opened.close()
