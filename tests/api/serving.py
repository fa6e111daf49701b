"""Helpers of the HTTP service tests: apps over real indexed libraries, through Starlette's TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from lookalike.config import Settings


@contextmanager
def serving(settings: Settings, **changes) -> Iterator[TestClient]:
    """A client of the app over ``settings`` (its lifespan runs: model and indexes are loaded), asking for it by
    a loopback name as a browser on this machine does."""
    with TestClient(create_app(settings.with_(**changes)), base_url="http://127.0.0.1:8000") as client:
        yield client
