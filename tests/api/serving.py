"""Helpers of the HTTP service tests: apps over real indexed libraries, through Starlette's TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from lookalike.config import Settings


@contextmanager
def serving(settings: Settings, **changes) -> Iterator[TestClient]:
    """A client of the app over ``settings`` (its lifespan runs: model and indexes are loaded)."""
    with TestClient(create_app(settings.with_(**changes))) as client:
        yield client
