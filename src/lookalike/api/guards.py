"""Request guards of the HTTP service, as plain ASGI middleware: a cap on requests in flight, the API key, who may
ask for library data, and who may change the library.

They look at the request line and headers only, so a refused request's body is never read. The body size limit
is FastAPI's own (``FastAPI(max_body_size=...)``), which counts the streamed body and answers 413 with or
without a Content-Length header.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import threading
import time
from collections import deque
from collections.abc import Collection
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_KEY_HEADER = "X-API-Key"
CHANGE_HEADER = "X-Lookalike"  # a custom header: what a form or a no-cors fetch from another site cannot send
SESSION_COOKIE = "lookalike_session"
# reachable without the key: liveness, the page's static shell (no library data in it) and the key check itself
PUBLIC_PATHS = frozenset({"/healthz", "/", "/api/session", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/", "/static-docs/")


def session_token(api_key: str) -> str:
    """The cookie value that stands for ``api_key`` (derived, so the key itself is never stored in a browser)."""
    return hmac.new(api_key.encode(), b"lookalike-session", hashlib.sha256).hexdigest()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def is_public(path: str) -> bool:
    """Whether ``path`` is served without the API key."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class InFlightLimit:
    """Answers 503 at once when ``limit`` requests are already being worked on, instead of queueing them.

    ``/healthz`` is not counted and never refused, so a busy service still reports itself alive.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0  # touched only on the event loop thread

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            busy = JSONResponse(
                {"detail": f"busy: {self.in_flight} requests in flight (limit {self.limit}); retry shortly"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
            await busy(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class ApiKeyGuard:
    """Requires the API key (``X-API-Key`` header, or the session cookie the page sets) outside the public paths."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.key = api_key.encode()
        self.token = session_token(api_key).encode()

    def allowed(self, scope: Scope) -> bool:
        """Whether the request carries the key or the session cookie."""
        given = _header(scope, API_KEY_HEADER.lower().encode())
        if given is not None and hmac.compare_digest(given.encode(), self.key):
            return True
        cookie_header = _header(scope, b"cookie")
        if cookie_header:
            cookies = SimpleCookie()
            try:
                cookies.load(cookie_header)
            except Exception:  # a malformed Cookie header is simply no session
                return False
            morsel = cookies.get(SESSION_COOKIE)
            if morsel is not None and hmac.compare_digest(morsel.value.encode(), self.token):
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]) or self.allowed(scope):
            await self.app(scope, receive, send)
            return
        denied = JSONResponse(
            {"detail": f"an API key is required: send it in the {API_KEY_HEADER} header"},
            status_code=401,
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
        await denied(scope, receive, send)


FETCH_SITES_ALLOWED = frozenset({"same-origin", "none"})  # the page itself; a typed address or a bookmark


class SameOriginOnly:
    """Library data (``/api/...``) goes to this origin's own page only.

    A browser says who asks in ``Sec-Fetch-Site``: a page on another site, or on another port of this machine
    (``same-site``: cookies do not tell ports apart), is refused with 403 before anything is read; clients that
    send no such header (curl, scripts) are not browsers and pass. Every answer also carries
    ``Cross-Origin-Resource-Policy: same-origin``, so a browser will not hand a picture or video to another
    origin's ``<img>`` or ``<video>`` either.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        site = _header(scope, b"sec-fetch-site")
        if scope["path"].startswith("/api/") and site is not None and site not in FETCH_SITES_ALLOWED:
            refused = JSONResponse({"detail": f"refused: a request from another site ({site})"}, status_code=403)
            await refused(scope, receive, self._with_policy(send))
            return
        await self.app(scope, receive, self._with_policy(send))

    @staticmethod
    def _with_policy(send: Send) -> Send:
        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"cross-origin-resource-policy"]
                message = {**message, "headers": [*headers, (b"cross-origin-resource-policy", b"same-origin")]}
            await send(message)

        return send_with_policy


def _same_origin(origin: str, scope: Scope) -> bool:
    """Whether an ``Origin`` header names the host (and port) this request was sent to. The scheme is not compared:
    behind a proxy that ends TLS the service sees http for a page served over https, and one host and port serve
    one scheme."""
    host = _header(scope, b"host")
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return host is not None and netloc != "" and netloc.lower() == host.lower()


def change_refusal(scope: Scope) -> tuple[int, str] | None:
    """Why a request to a route that changes the library is refused, with its status (None: it may go on).

    A change comes as a POST with a JSON body and the :data:`CHANGE_HEADER` header, and, when the client says which
    page sent it (``Origin``), from this service's own page. A form on another site, or a page on another port of
    this machine (whose requests carry the session cookie: cookies do not tell ports apart), can send a POST, but
    neither a custom header nor a JSON content type without the browser asking this service first (CORS, which it
    never allows), and its ``Origin`` names it. Clients that are not browsers send no ``Origin`` and pass with the
    header.
    """
    origin = _header(scope, b"origin")
    if origin is not None and not _same_origin(origin, scope):
        return 403, f"refused: a change asked by a page of another origin ({origin})"
    if not _header(scope, CHANGE_HEADER.lower().encode()):
        return 403, f"refused: a change needs the {CHANGE_HEADER} header (a page of another site cannot send it)"
    content_type = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        return 415, f"a change is sent as JSON (Content-Type: application/json), not {content_type or 'no type'}"
    return None


class ChangeGuard:
    """Guards the routes that change the library (``paths``): a POST to one is refused unless
    :func:`change_refusal` lets it through. Other methods pass, to be answered 405 by the app."""

    def __init__(self, app: ASGIApp, paths: Collection[str]) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths:
            refusal = change_refusal(scope)
            if refusal is not None:
                status, detail = refusal
                await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class FailedAttempts:
    """Failed attempts per client in a sliding window (thread-safe): a client past ``limit`` in ``window``
    seconds waits until its oldest attempt leaves the window."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def failed(self, client: str) -> None:
        """Count one failed attempt of ``client``."""
        now = time.monotonic()
        with self._lock:
            self._prune(client, now).append(now)
            if len(self._seen) > 10_000:  # forget quiet clients rather than grow without bound
                for key in [k for k, q in self._seen.items() if not q or now - q[-1] > self.window]:
                    del self._seen[key]

    def wait(self, client: str) -> int:
        """Seconds ``client`` must wait before its next attempt is looked at (0: it may try now)."""
        now = time.monotonic()
        with self._lock:
            if client not in self._seen:
                return 0
            seen = self._prune(client, now)
            if len(seen) < self.limit:
                return 0
            return max(1, math.ceil(seen[0] + self.window - now))

    def _prune(self, client: str, now: float) -> deque[float]:
        seen = self._seen.setdefault(client, deque())
        while seen and now - seen[0] > self.window:
            seen.popleft()
        return seen


class _SlowBody(Exception):
    """The request body stalled or came in too slowly."""


class BodyTimeout:
    """Refuses a request whose body stalls (no data for ``stall`` seconds) or, ``grace`` seconds after the app
    starts reading it, comes in slower than ``min_rate`` bytes a second: 408, and its in-flight slot is freed.
    Twenty uploads at a byte a second would otherwise hold every slot while everyone else gets 503. Only the body
    is timed: once it is in, ``receive`` (which then only reports a disconnect, e.g. while a video streams) is
    passed through untouched, and a response that has started is never replaced."""

    def __init__(self, app: ASGIApp, stall: float = 10.0, grace: float = 5.0, min_rate: float = 10_240) -> None:
        self.app = app
        self.stall = stall
        self.grace = grace
        self.min_rate = min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: float | None = None  # when the app first asked for the body
        received = 0
        body_done = False
        slow: list[str] = []  # why the body was cut off (the app may turn the error into its own 400)
        started = replaced = False

        async def timed_receive() -> Message:
            nonlocal received, body_done, start
            if body_done:  # after the body, receive() only tells of a disconnect: wait as long as it takes
                return await receive()
            start = time.monotonic() if start is None else start
            try:
                message = await asyncio.wait_for(receive(), timeout=self.stall)
            except TimeoutError as e:
                slow.append(f"no data for {self.stall:g} s")
                raise _SlowBody(slow[-1]) from e
            if message["type"] != "http.request" or not message.get("more_body"):
                body_done = True
                return message
            received += len(message.get("body", b""))
            elapsed = time.monotonic() - start
            if elapsed > self.grace and received < self.min_rate * elapsed:
                slow.append(f"{received / elapsed:.0f} bytes/s, under {self.min_rate:.0f}")
                raise _SlowBody(slow[-1])
            return message

        async def refuse() -> None:
            refused = JSONResponse({"detail": f"request body too slow: {slow[-1]}"}, status_code=408)
            await refused(scope, receive, send)

        async def watched_send(message: Message) -> None:
            nonlocal replaced, started
            if replaced:
                return
            if slow and not started and message["type"] == "http.response.start":
                replaced = True
                await refuse()
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, watched_send)
        except _SlowBody:
            if replaced or started:
                return
            replaced = True
            await refuse()
