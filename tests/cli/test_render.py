"""The CLI's text for `explain`: the evidence is set against the thresholds of the rule that decided the pair."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import pytest
from PIL import Image, ImageFilter
from rich.console import Console

from lookalike.cli.explain_text import explanation_dict, print_explanation
from lookalike.cli.render import print_dupes
from lookalike.search.explain import Explanation, explain_images
from lookalike.search.features import extract
from lookalike.search.groups import DuplicateGroup, GroupItem, Relation
from lookalike.search.image_dupes import VerifyRule, smooth_match

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def _text(expl: Explanation) -> str:
    console = Console(file=io.StringIO(), width=1000, color_system=None)
    print_explanation(console, expl, None)
    return console.file.getvalue()


def _thresholds(text: str) -> list[str]:
    """Every threshold the text names, in order."""
    return re.findall(r"\((?:needs|at most|under) [0-9.]+", text)


def _explain(a: Image.Image, b: Image.Image, cosine: float, identical: bool = False) -> Explanation:
    return explain_images(Path("a"), extract(a), Path("b"), extract(b), cosine, VerifyRule(), identical)[0]


@pytest.fixture(scope="module")
def smooth(images) -> Image.Image:
    """A real photo blurred until it has too few keypoints to be verified by them."""
    return images["rocket"].convert("RGB").resize((600, 400)).filter(ImageFilter.GaussianBlur(10))


def test_a_pair_decided_without_keypoints_is_shown_against_that_rules_thresholds_only(smooth):
    expl = _explain(smooth, _jpeg(smooth, 60), cosine=0.8)
    assert expl.duplicate and expl.method == "smooth"
    text = _text(expl)
    # the smooth rule: cosine to compare without keypoints, too few keypoints, agreement, moved, block, hues
    assert _thresholds(text) == [
        "(needs 0.50",
        "(under 60",
        "(needs 0.90",
        "(at most 0.01",
        "(at most 0.15",
        "(at most 20",
    ]
    assert "decided by: smooth" in text and "matched consistently" not in text and "inliers in" not in text


def test_a_pair_decided_by_keypoints_is_shown_against_their_thresholds_only(images):
    cat = images["chelsea"]
    expl = _explain(cat, cat.crop((90, 60, 361, 240)), cosine=0.8)
    assert expl.duplicate and expl.method == "local"
    text = _text(expl)
    # the keypoint rule: inliers, agreement, moved, spread, block, hues
    assert _thresholds(text) == [
        "(needs 15",
        "(needs 0.75",
        "(at most 0.01",
        "(needs 0.55",
        "(at most 0.15",
        "(at most 20",
    ]
    assert "decided by: local" in text and "without keypoints" not in text


def test_identical_bytes_name_no_threshold(images):
    cat = images["chelsea"]
    text = _text(_explain(cat, cat, cosine=1.0, identical=True))
    assert _thresholds(text) == []
    assert text.splitlines()[1:] == [
        "  global vectors: cosine 1.000",
        "  the same bytes: grouped without comparing further; decided by: identical",
    ]


def test_a_smooth_pair_rejected_says_whether_it_was_compared_without_keypoints(smooth, images):
    other = images["coffee"].convert("RGB").resize((600, 400)).filter(ImageFilter.GaussianBlur(8))
    far, near = _explain(smooth, other, cosine=0.3), _explain(smooth, other, cosine=0.8)
    assert not far.duplicate and not near.duplicate
    assert _text(far).splitlines()[-1] == (
        "  too smooth for keypoints alone (under 60), but not compared without them: cosine under 0.50"
    )
    # the figures the comparison without keypoints reached, as the decision measured them, against its thresholds
    fa, fb = extract(smooth), extract(other.convert("RGB"))
    measured = smooth_match(fa, fb, 0.8, VerifyRule())
    assert far.smooth is None and near.smooth is not None and measured is not None
    assert (near.smooth.score, near.smooth.moved, near.smooth.block) == (
        round(measured.agreement, 4),
        round(measured.moved, 4),
        round(measured.block, 4),
    )
    assert near.smooth.score < 0.9 and near.smooth.block > 0.15  # a different picture: far from passing
    assert _text(near).splitlines()[-1] == (
        "  too smooth for keypoints alone (under 60): also compared without them (cosine >= 0.50), where the aligned "
        f"overlap did not pass either: {near.smooth.score:.2f} of its structured patches agree (needs 0.90), "
        f"{near.smooth.moved:.3f} agree only once shifted (at most 0.01), a solid block of {near.smooth.block:.2f} "
        f"disagrees (at most 0.15), hues {near.smooth.hue_shift:.1f} degrees apart (at most 20); it shows 1.00 of the "
        "first and 1.00 of the second (each at least 0.045; one must be whole, or the rest of it plain)"
    )
    assert explanation_dict(near)["smooth"]["score"] == near.smooth.score
    assert explanation_dict(far)["smooth"] is None


def test_a_rejected_pair_never_calls_its_closest_fit_a_matched_region(images):
    """A crop's region is a matched region. The camera man and the coffee cup have a closest fit (5 keypoints one
    transform explains) that maps the camera picture onto no area of the coffee: no overlap is compared and no
    region is shown. A weak fit with an area is shown as the closest fit, never as a match."""
    cat = images["chelsea"]
    crop = _explain(cat, cat.crop((90, 60, 361, 240)), cosine=0.8)
    text = _text(crop)
    assert "  matched region: [" in text and "closest fit" not in text
    assert explanation_dict(crop)["fitted"] is True and explanation_dict(crop)["colour_distance"] < 1
    assert f"; their colours are {crop.colour:.2f} a*b* units apart" in text
    other = _explain(images["camera"].convert("RGB"), images["coffee"].convert("RGB"), cosine=0.2)
    assert not other.duplicate and other.inliers == 5 and other.region_b == (0, 0, 0, 0)
    assert other.failed == ("inliers",) and explanation_dict(other)["failed"] == ["inliers"]
    assert _text(other).splitlines()[1] == "  failed: 5 keypoint matches fit one transform (needs 15)"
    assert _text(other).splitlines()[3:] == [
        "  local features: 1000 and 1000 keypoints, 5 matched consistently with one transform (needs 15)",
        "  aligned overlap: none (no transform maps a part of one picture onto the other); decided by: local",
    ]
    assert explanation_dict(other)["fitted"] is False and explanation_dict(other)["colour_distance"] is None
    weak = dataclasses.replace(other, region_a=(0, 45, 451, 178), region_b=(10, 10, 60, 40))
    lines = _text(weak).splitlines()
    fit = "[0, 45, 451, 178] of the first, [10, 10, 60, 40] of the second"
    assert lines[-1] == f"  closest fit found (it failed the checks above): {fit}"
    assert "matched region" not in _text(weak) and lines[4].startswith("  aligned overlap: 0.00 of its")


def test_dupes_text_says_where_a_crop_lies_in_the_representative_and_where_a_collage_holds_it():
    """A crop's own box is its whole frame and says nothing: the text gives the representative's box it shows; a
    collage's text gives its own box that holds the representative."""
    rep = GroupItem(1, "/m/original.jpg", "image")
    crop = GroupItem(2, "/m/crop.jpg", "image", relation=Relation.CROPPED, score=1.0, inliers=270,
                     region=(0, 0, 300, 300), rep_region=(99, 50, 401, 351), method="local")  # fmt: skip
    collage = GroupItem(3, "/m/collage.jpg", "image", relation=Relation.CONTAINS, score=0.99, inliers=308,
                        region=(599, 99, 1000, 500), rep_region=(0, 0, 512, 512), method="local")  # fmt: skip
    console = Console(file=io.StringIO(), width=1000, color_system=None)
    print_dupes(console, [DuplicateGroup(0.99, [rep, crop, collage])], None, 0.7)
    assert console.file.getvalue().splitlines()[2:] == [
        "  image /m/original.jpg  representative",
        "  image /m/crop.jpg  cropped, 270 keypoints, score 1.00, shows 99,50,401,351 of the representative",
        "  image /m/collage.jpg  contains, 308 keypoints, score 0.99, holds it at 599,99,1000,500",
    ]


def test_dupes_text_says_a_smooth_copy_was_verified_without_keypoints():
    """A copy too smooth for keypoints was verified by its aligned frames: its match holds no keypoint inliers, and
    the text once read "0 keypoints" as if it had failed them."""
    rep = GroupItem(1, "/m/sky.png", "image")
    copy = GroupItem(2, "/m/sky.jpg", "image", relation=Relation.EDITED, score=0.97, inliers=0,
                     region=(0, 0, 600, 400), rep_region=(0, 0, 600, 400), method="smooth")  # fmt: skip
    console = Console(file=io.StringIO(), width=1000, color_system=None)
    print_dupes(console, [DuplicateGroup(0.97, [rep, copy])], None, 0.7)
    assert console.file.getvalue().splitlines()[2:] == [
        "  image /m/sky.png  representative",
        "  image /m/sky.jpg  edited, verified without keypoints, score 0.97",
    ]


def test_a_smooth_pairs_coverage_is_given_for_the_first_and_second_picture_either_way_round(smooth, images):
    """The files' content keys set which way round a pair is matched (as `dupes` does): the figures are the
    decision's, and the coverage is still the first picture's, then the second's."""
    other = images["coffee"].convert("RGB").resize((600, 400)).filter(ImageFilter.GaussianBlur(8))
    boxed = Image.new("RGB", (600, 800))
    boxed.paste(other, (0, 200))  # the other picture letterboxed: its content is half of its frame
    for keys in (("a", "b"), ("b", "a")):
        expl = explain_images(Path("a"), extract(smooth), Path("b"), extract(boxed), 0.8, VerifyRule(), keys=keys)[0]
        assert not expl.duplicate and expl.smooth is not None
        assert expl.smooth.coverage == (1.0, 0.503), keys
        assert "it shows 1.00 of the first and 0.50 of the second (each at least 0.045;" in _text(expl)
