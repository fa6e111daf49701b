"""Dependencies shared by the routes: the service object, id and ``k`` bounds, and the documented headers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import APIKeyHeader

from lookalike.api.guards import API_KEY_HEADER, CHANGE_HEADER
from lookalike.api.service import Service

MAX_K = 100  # results per query, at most
MAX_ID = 2**63 - 1

# Enforcement is ApiKeyGuard's (it runs before any body is read); this declares the header in the OpenAPI document
api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="The service's API key, when set.")
# ... and ChangeGuard's, for the routes that change the library (so that /docs can send it)
change_header = APIKeyHeader(
    name=CHANGE_HEADER,
    auto_error=False,
    scheme_name="ChangeHeader",
    description="Any value (1); the routes that change the library need it: a page of another site cannot send it.",
)


def get_service(request: Request) -> Service:
    """The app's shared service (made by the app's lifespan)."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]
ItemId = Annotated[int, Path(ge=1, le=MAX_ID, description="Id of an indexed file.")]
K = Annotated[int, Query(ge=1, le=MAX_K, description=f"Results wanted (1-{MAX_K}).")]
