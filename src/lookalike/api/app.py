"""The HTTP service: ``create_app(settings)`` builds the FastAPI app (nothing happens at import time).

Routes live in ``routes/``; the shared model, indexes and caches in ``service.Service``, made when the app starts
(its lifespan) and closed when it stops; request guards in ``guards``. Domain errors become HTTP statuses here.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.middleware.trustedhost import TrustedHostMiddleware

from lookalike import __version__
from lookalike.api.deps import api_key_header
from lookalike.api.guards import (
    SESSION_COOKIE,
    ApiKeyGuard,
    BodyTimeout,
    ChangeGuard,
    FailedAttempts,
    InFlightLimit,
    SameOriginOnly,
    session_token,
)
from lookalike.api.routes import items, library, review, search
from lookalike.api.schemas import Health
from lookalike.api.service import Service
from lookalike.config import Settings
from lookalike.errors import (
    CollectionMismatchError,
    DecodeError,
    FileChangedError,
    LibraryLockedError,
    LookalikeError,
    NotIndexedError,
    SchemaOutOfDateError,
    TextQueryNotSupportedError,
)

STATIC = Path(__file__).with_name("static")
# the page runs only its own script and shows only this server's pictures and videos (or the user's own blobs)
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob:; media-src 'self' blob:; script-src 'self'; style-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'"
)

# most specific first: the first class an error is an instance of gives its status
STATUS_OF: list[tuple[type[LookalikeError], int]] = [
    (FileChangedError, 410),
    (NotIndexedError, 404),
    (DecodeError, 422),
    (TextQueryNotSupportedError, 400),
    (CollectionMismatchError, 409),
    (LibraryLockedError, 409),
    (SchemaOutOfDateError, 503),
    (LookalikeError, 400),
]


class SessionRequest(BaseModel):
    """The API key, exchanged for a session cookie by the web page."""

    key: str


def _status(error: LookalikeError) -> int:
    return next(code for cls, code in STATUS_OF if isinstance(error, cls))


SESSION_ATTEMPTS = 10  # wrong keys a client may send ...
SESSION_WINDOW_S = 60  # ... in this many seconds before it is answered 429
SESSION_MAX_AGE_S = 12 * 3600  # the session cookie's life
DOCS_ASSETS = "/static-docs"  # Swagger UI's files, from the swagger-ui-bundle package (no CDN: works offline)


def _swagger_assets() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
WILDCARDS = ("0.0.0.0", "::", "")


def trusted_hosts(settings: Settings, host: str | None = None) -> list[str]:
    """The ``Host`` names the service answers to: loopback, the address it listens on (unless it listens on every
    interface), and the settings' ``allowed_hosts``."""
    names = [*LOOPBACK_NAMES, *settings.allowed_hosts]
    if host and host not in WILDCARDS:
        names += [host, f"[{host}]"] if ":" in host else [host]
    return list(dict.fromkeys(names))


def create_app(settings: Settings, host: str | None = None) -> FastAPI:
    """The lookalike HTTP service over the library ``settings`` names, listening on ``host``.

    The model and indexes are loaded once when the app starts and shared by all requests; searches keep
    working while ``lookalike index`` writes to the same library, and see its work once it saves. Requests
    whose ``Host`` is not one of :func:`trusted_hosts` are answered 400.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(settings)
        app.state.service = service
        service.warm_up()
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="lookalike",
        version=__version__,
        description="Find duplicate and similar images and videos.",
        lifespan=lifespan,
        max_body_size=settings.max_upload_bytes,
        docs_url=None,
        openapi_url=None,
        redoc_url=None,
    )
    secured = [Depends(api_key_header)]
    for router in (search.router, items.router, library.router, review.router):
        app.include_router(router, dependencies=secured)

    @app.exception_handler(LookalikeError)
    async def domain_error(_request: Request, error: LookalikeError) -> JSONResponse:
        body = {"detail": str(error)}
        if isinstance(error, DecodeError):
            body["code"] = error.code
        return JSONResponse(body, status_code=_status(error))

    @app.get("/healthz", response_model=Health, tags=["service"])
    def healthz(request: Request) -> Health:
        """Liveness (always answered, never needs the key) and readiness (a collection is loaded)."""
        service: Service = request.app.state.service
        return Health(status="ok", ready=service.ready)

    attempts = FailedAttempts(SESSION_ATTEMPTS, SESSION_WINDOW_S)

    @app.post("/api/session", tags=["service"], status_code=204)
    def login(body: SessionRequest, request: Request) -> Response:
        """Exchange the API key for an HttpOnly session cookie (how the web page authenticates its images).

        Wrong keys are counted per client: past :data:`SESSION_ATTEMPTS` in :data:`SESSION_WINDOW_S` seconds the
        client is answered 429 until the window has passed. The cookie lasts :data:`SESSION_MAX_AGE_S` seconds
        and is ``Secure`` when the page is served over TLS.
        """
        if settings.api_key is None:
            return Response(status_code=204)
        client = request.client.host if request.client else "?"
        wait = attempts.wait(client)
        if wait:
            return JSONResponse(
                {"detail": f"too many wrong keys; retry in {wait} s"},
                status_code=429,
                headers={"Retry-After": str(wait)},
            )
        try:
            given = body.key.encode("utf-8")
        except UnicodeEncodeError:
            return JSONResponse({"detail": "the key is not valid text"}, status_code=400)
        if not hmac.compare_digest(given, settings.api_key.encode()):
            attempts.failed(client)
            return JSONResponse({"detail": "wrong API key"}, status_code=401)
        response = Response(status_code=204)
        response.set_cookie(
            SESSION_COOKIE,
            session_token(settings.api_key),
            max_age=SESSION_MAX_AGE_S,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="lookalike API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        headers = {"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_POLICY}
        return FileResponse(STATIC / "index.html", headers=headers)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount(DOCS_ASSETS, StaticFiles(directory=_swagger_assets()), name="docs-assets")
    # the review routes change the library: a JSON POST with the change header from this origin only (CSRF)
    changes = {r.path for r in review.router.routes if isinstance(r, APIRoute) and "POST" in (r.methods or ())}
    app.add_middleware(ChangeGuard, paths=changes)
    if settings.api_key is not None:
        app.add_middleware(ApiKeyGuard, api_key=settings.api_key)
    app.add_middleware(SameOriginOnly)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=trusted_hosts(settings, host))
    # a stalled or trickling upload is refused and frees its slot
    app.add_middleware(BodyTimeout, stall=settings.upload_stall_s, min_rate=settings.upload_min_rate)
    app.add_middleware(InFlightLimit, limit=settings.max_in_flight)  # outermost: refuses before anything else
    return app


def run(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the app with uvicorn in this process, tuned for serving: one compute thread per request.

    torch and FAISS are set to one thread each (process-wide), as are ONNX Runtime's and OpenVINO's sessions (through
    the settings), so concurrent requests use the cores side by side instead of each spreading over all of them; see
    ``indexer.device.one_thread_per_request``.
    """
    import uvicorn

    from lookalike.workspace import for_serving, serve_threads

    serve_threads()
    app = create_app(for_serving(settings), host)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
