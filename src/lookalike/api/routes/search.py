"""Search routes: by uploaded example, by text, by indexed id."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import filetype
from fastapi import APIRouter, File, HTTPException, UploadFile

from lookalike.api.deps import ItemId, K, ServiceDep
from lookalike.api.schemas import SearchResponse, TextQuery
from lookalike.workspace import SNIFF_BYTES, sniff_kind

router = APIRouter(prefix="/api/search", tags=["search"])


@router.post("/upload", response_model=SearchResponse)
def search_upload(
    service: ServiceDep,
    file: Annotated[UploadFile, File(description="An image or a video; its content decides, not its name.")],
    k: K = 10,
) -> SearchResponse:
    """Items similar to an uploaded image (images and video moments) or video (videos, with matched ranges)."""
    head = file.file.read(SNIFF_BYTES)
    file.file.seek(0)
    kind = sniff_kind(head)
    if kind is None:
        raise HTTPException(
            415,
            f"{file.filename or 'the upload'} is not an image or video format lookalike reads "
            "(judged by its content; the name and Content-Type are not trusted)",
        )
    name = file.filename or "upload"
    with tempfile.TemporaryDirectory(prefix="lookalike-upload-") as tmp:
        path = Path(tmp) / f"query.{filetype.guess_extension(head)}"
        with open(path, "wb") as out:
            shutil.copyfileobj(file.file, out, 1 << 20)
        result = service.search_upload(path, kind, name, k)
    if result.error:
        raise HTTPException(422, f"{name}: {result.error}")
    return SearchResponse.of(result, query=name)


@router.post("/text", response_model=SearchResponse)
def search_text(service: ServiceDep, query: TextQuery) -> SearchResponse:
    """Items matching a text description (CLIP models only; other models answer 400)."""
    result = service.search_text(query.text, query.k)
    return SearchResponse.of(result)


@router.get("/similar/{item_id}", response_model=SearchResponse)
def search_similar(service: ServiceDep, item_id: ItemId, k: K = 10) -> SearchResponse:
    """Items similar to an indexed file (the file itself left out)."""
    return SearchResponse.of(service.search_media(item_id, k))
