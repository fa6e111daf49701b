"""Fixtures of the HTTP service tests: apps over real indexed libraries, through Starlette's TestClient."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from lookalike.config import Settings


@contextmanager
def serving(settings: Settings, **changes) -> Iterator[TestClient]:
    """A client of the app over ``settings`` (its lifespan runs: model and indexes are loaded)."""
    with TestClient(create_app(settings.with_(**changes))) as client:
        yield client


@pytest.fixture(scope="module")
def client(indexed) -> Iterator[TestClient]:
    """The service over the shared indexed corpus, default settings (no key)."""
    settings, _ = indexed
    with serving(settings) as c:
        yield c


@pytest.fixture
def serve() -> Callable[..., object]:
    return serving
