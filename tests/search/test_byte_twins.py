"""Byte-identical files in `dupes`: a run verifies two contents once however many byte-identical files each has,
and a twin that cannot be read any more leaves its readable twin's pairs to be verified on their own."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lookalike.search import image_dupes
from lookalike.workspace import Workspace


def _content(feats) -> str:
    return hashlib.sha256(feats.gray.tobytes()).hexdigest()


def _group_of(groups, name: str) -> set[str]:
    found = [{Path(it.path).name for it in g.items} for g in groups if name in {Path(it.path).name for it in g.items}]
    assert len(found) == 1, (name, found)
    return found[0]


def test_two_contents_are_verified_once_though_one_has_a_byte_identical_twin(library, monkeypatch):
    settings, _ = library  # coffee.png and coffee_copy.png are byte-identical; a resized copy and a crop of it
    real, verified = image_dupes.verify, []

    def spy(fa, fb, cosine, rule):
        verified.append(frozenset((_content(fa), _content(fb))))
        return real(fa, fb, cosine, rule)

    monkeypatch.setattr(image_dupes, "verify", spy)
    with Workspace(settings) as ws:
        groups = ws.duplicates()
    assert len(verified) == len(set(verified)), "a pair of contents was verified twice"
    assert _group_of(groups, "coffee.png") == {"coffee.png", "coffee_copy.png", "coffee_small.jpg", "coffee_crop.png"}
    assert _group_of(groups, "rocket.png") == {"rocket.png", "rocket.jpg"}


@pytest.mark.parametrize("gone", ["coffee.png", "coffee_copy.png"])
def test_a_twin_deleted_since_indexing_leaves_the_other_twin_verified_on_its_own(library, gone):
    """The verdict on a pair with a file that cannot be read ("unreadable") is not kept for its twin: whichever
    twin's pairs come first, the one still there is grouped with the resized copy and the crop."""
    settings, media = library
    (media / gone).unlink()
    with Workspace(settings) as ws:
        groups = ws.duplicates()
    kept = ({"coffee.png", "coffee_copy.png"} - {gone}).pop()
    assert {kept, "coffee_small.jpg", "coffee_crop.png"} <= _group_of(groups, "coffee_small.jpg")
