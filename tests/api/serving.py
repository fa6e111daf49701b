"""Helpers of the HTTP service tests: apps over real indexed libraries, through Starlette's TestClient."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from lookalike.config import Settings


@contextmanager
def serving(settings: Settings, **changes) -> Iterator[TestClient]:
    """A client of the app over ``settings`` (its lifespan runs: model and indexes are loaded), asking for it by
    a loopback name as a browser on this machine does."""
    with TestClient(create_app(settings.with_(**changes)), base_url="http://127.0.0.1:8000") as client:
        yield client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """The app served by uvicorn on a loopback port, in a thread; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
