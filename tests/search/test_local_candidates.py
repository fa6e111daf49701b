"""Candidates from shared keypoints: composites and tight crops, whose global vectors are far from the original's."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from lookalike.search import local_candidates as local_candidates_module
from lookalike.search.features import extract
from lookalike.search.groups import Relation
from lookalike.search.image_dupes import VerifyRule, find_image_duplicates
from lookalike.search.local_candidates import local_candidates
from lookalike.workspace import Workspace


def _collage(images: dict, names: list[str], w: int = 451, h: int = 300) -> Image.Image:
    out = Image.new("RGB", (2 * w, 2 * h))
    for (x, y), name in zip(((0, 0), (w, 0), (0, h), (w, h)), names, strict=True):
        out.paste(images[name].resize((w, h)), (x, y))
    return out


def _pictures(images: dict) -> list[Image.Image]:
    cat = images["chelsea"]
    pip = images["coffee"].resize((640, 427))
    pip.paste(cat.resize((226, 150)), (400, 260))
    return [
        cat,  # 0
        images["coffee"],  # 1
        images["rocket"],  # 2
        images["astronaut"],  # 3
        _collage(images, ["rocket", "astronaut", "coins", "chelsea"]),  # 4: holds 0 and 2 and 3
        pip,  # 5: the cat over the coffee
        cat.crop((135, 90, 315, 210)),  # 6: a tight 40% crop of 0
    ]


@pytest.mark.parametrize("exact_below", [50_000, 1_000])
def test_pictures_sharing_keypoints_are_paired_and_unrelated_ones_are_not(images, monkeypatch, exact_below):
    """The same answer from the exact index and from the IVF + 8-bit one (used past ``EXACT_BELOW`` descriptors)."""
    monkeypatch.setattr(local_candidates_module, "EXACT_BELOW", exact_below)
    feats = [extract(p) for p in _pictures(images)]
    pairs = local_candidates(len(feats), lambda i: feats[i], per_image=5, min_votes=8)
    votes = {(a, b): v for a, b, v in zip(pairs.a.tolist(), pairs.b.tolist(), pairs.votes.tolist(), strict=True)}
    # every pair of pictures showing the same photo (the cat in 0, 4, 5, 6; rocket 2 and astronaut 3 in the
    # collage 4; the coffee 1 under the picture-in-picture 5) is proposed with many shared keypoints (the fewest:
    # the small cat over the coffee and the tight crop, 13 since each quarter of a picture keeps its share) ...
    related = {(0, 4), (0, 5), (0, 6), (4, 5), (4, 6), (5, 6), (2, 4), (3, 4), (1, 5)}
    assert all(votes.get(p, 0) >= 12 for p in related), votes
    # ... and unrelated photos, when the few chance matches make them candidates at all, with far fewer
    assert all(v < 10 for p, v in votes.items() if p not in related), votes
    assert list(votes.values()) == sorted(votes.values(), reverse=True)


def test_each_picture_keeps_its_most_voted_partners_only(images):
    """Six resized copies of one photo: fifteen pairs share keypoints; with one partner a picture, each picture's
    best pair is kept and no other."""
    cat = images["chelsea"]
    feats = [extract(cat.resize((451 - 40 * i, 300 - 27 * i))) for i in range(6)]
    every = local_candidates(6, lambda i: feats[i], per_image=10, min_votes=8)
    assert len(every) == 15
    votes = {(a, b): v for a, b, v in zip(every.a.tolist(), every.b.tolist(), every.votes.tolist(), strict=True)}
    best = {max((p for p in votes if i in p), key=lambda p: (votes[p], -p[0], -p[1])) for i in range(6)}
    one = local_candidates(6, lambda i: feats[i], per_image=1, min_votes=8)
    assert set(zip(one.a.tolist(), one.b.tolist(), strict=True)) == best


def test_a_collage_sharing_fillers_with_other_composites_still_proposes_its_own_photo(images, monkeypatch):
    """A collage shares three fillers with four other collages, and its fourth quadrant (the cat) with the cat and
    its three copies: by votes alone its two best partners are collages and the cat's two best are its copies, so
    no pair joins the collage with the cat's family; chosen for the keypoints no earlier partner explained, its
    second partner is the cat or a copy (once one filler-sharing collage explains the fillers)."""
    cat = images["chelsea"]
    fillers = ["coffee", "rocket", "astronaut"]
    pictures = [cat, *(cat.resize((451 - 60 * i, 300 - 40 * i)) for i in (1, 2, 3))]  # 0-3: the cat family
    pictures.append(_collage(images, [*fillers, "chelsea"]))  # 4
    pictures += [_collage(images, [*fillers, other]) for other in ("coins", "camera", "page", "text")]  # 5-8
    feats = [extract(p) for p in pictures]

    def partners_of_collage() -> set[int]:
        pairs = local_candidates(len(feats), lambda i: feats[i], per_image=2, min_votes=8)
        return {b if a == 4 else a for a, b in zip(pairs.a.tolist(), pairs.b.tolist(), strict=True) if 4 in (a, b)}

    explained = partners_of_collage()
    monkeypatch.setattr(local_candidates_module, "MIN_NEW", 10**9)  # most-voted partners only
    most_voted = partners_of_collage()
    assert len(most_voted) >= 2 and most_voted <= {5, 6, 7, 8}
    assert explained & {0, 1, 2, 3} and explained > most_voted


def test_a_missing_picture_takes_no_part(images):
    feats = [extract(images["chelsea"]), None, extract(images["chelsea"].resize((225, 150)))]
    pairs = local_candidates(3, lambda i: feats[i], per_image=5, min_votes=8)
    assert [(int(a), int(b)) for a, b in zip(pairs.a, pairs.b, strict=True)] == [(0, 2)]
    assert len(local_candidates(3, lambda i: None, per_image=5, min_votes=8)) == 0


def test_a_collage_joins_its_photo_through_shared_keypoints_when_vectors_do_not_propose_it(
    images, settings_factory, tmp_path, caplog
):
    """With vector candidates cut to near-identical pictures, the collage is nobody's candidate; its keypoints
    still find the cat, and it joins the cat's group; with the keypoint pass off, or past its budget (said in the
    log), it does not."""
    cat = images["chelsea"]
    cat.save(tmp_path / "cat.png")
    _collage(images, ["retina", "hubble_deep_field", "immunohistochemistry", "chelsea"]).save(tmp_path / "c.jpg")
    for name in ("coffee", "rocket", "astronaut", "coins"):  # the collage's fillers are not indexed alone
        images[name].save(tmp_path / f"{name}.png")
    settings = settings_factory()
    with Workspace(settings) as ws:
        ws.index([tmp_path])
        store = ws.store()
        narrow = replace(VerifyRule(), k=1, floor=0.95)  # vector candidates: near-identical pictures only
        with_local = find_image_duplicates(store, narrow)
        without = find_image_duplicates(store, replace(narrow, local_per_image=0))
        with caplog.at_level(logging.WARNING, logger="lookalike.search.image_dupes"):
            over_budget = find_image_duplicates(store, replace(narrow, local_budget=500))
    assert over_budget == []
    assert "6 pictures: collages, screenshots and tight crops are not looked for" in caplog.text
    groups = {Path(g.representative.path).name: {Path(it.path).name: it.relation for it in g.items} for g in with_local}
    assert groups["cat.png"] == {"cat.png": Relation.REPRESENTATIVE, "c.jpg": Relation.CONTAINS}
    assert not any(
        "c.jpg" in {Path(it.path).name for it in g.items} and "cat.png" in {Path(it.path).name for it in g.items}
        for g in without
    )


def test_pictures_with_too_few_shared_keypoints_give_no_pairs(images):
    """Two unrelated photos share a few chance matches (a partner chosen for what it explains needs only
    ``MIN_NEW`` of them): below ``min_votes`` no pair is proposed, and nothing fails."""
    feats = [extract(images["retina"]), extract(images["horse"])]
    assert len(local_candidates(2, lambda i: feats[i], per_image=10, min_votes=10**6)) == 0
    assert len(local_candidates(2, lambda i: feats[i], per_image=10, min_votes=8)) == 0
