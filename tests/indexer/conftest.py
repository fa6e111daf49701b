"""Fixtures of the engine tests: a small real corpus and the library the local engine builds from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.indexer.ray_support import index_with, make_corpus, ray_settings


@pytest.fixture(scope="session")
def ray_media(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("ray-media"))


@pytest.fixture(scope="session")
def reference(ray_media, tmp_path_factory, model_cache) -> tuple[object, dict, list]:
    """The library the local engine builds."""
    return index_with(ray_settings(tmp_path_factory.mktemp("local"), model_cache), ray_media)
