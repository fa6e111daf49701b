"""The CLI's text and JSON for ``explain``: the decision on two pictures, set against the thresholds of the rule
that decided it."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from lookalike.cli.render import shown

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from lookalike.search.explain import Explanation


def explanation_dict(expl: Explanation) -> dict[str, Any]:
    """The decision on two pictures with its evidence and the thresholds it used."""
    rule = expl.rule
    return {
        "a": expl.path_a,
        "b": expl.path_b,
        "duplicate": expl.duplicate,
        "relation": None if expl.relation is None else expl.relation.value,
        "method": expl.method,
        "cosine": expl.cosine,
        "score": expl.score,
        "inliers": expl.inliers,
        "keypoints": list(expl.keypoints),
        "moved": expl.moved,
        "spread": expl.spread,
        "block": expl.block,
        "coverage": list(expl.coverage),
        "region_a": None if expl.region_a is None else list(expl.region_a),
        "region_b": None if expl.region_b is None else list(expl.region_b),
        "hue_shift": expl.hue_shift,
        "colour_distance": expl.colour,
        "fitted": expl.fitted,
        "failed": list(expl.failed),
        "smooth": None if expl.smooth is None else dataclasses.asdict(expl.smooth),
        "thresholds": {
            "min_inliers": rule.min_inliers,
            "min_agreement": rule.min_agreement,
            "max_moved": rule.max_moved,
            "min_spread": rule.min_spread,
            "max_block": rule.max_block,
            "smooth_keypoints": rule.smooth_keypoints,
            "smooth_cosine": rule.smooth_cosine,
            "smooth_agreement": rule.smooth_agreement,
            "max_hue_shift": rule.max_hue_shift,
        },
    }


RELATION_WORDS = {  # "B <words> A" for what B is to A
    "identical": "holds the same bytes as",
    "resized": "is a resized copy of",
    "edited": "is an edited copy of",
    "rotated": "is a turned copy of",
    "flipped": "is a mirror image of",
    "framed": "is, with plain borders added, a copy of",
    "cropped": "is a crop of",
    "contains": "contains",
    "copy": "is a copy of",
}


def print_explanation(console: Console, expl: Explanation, picture: Path | None) -> None:
    """The decision in words, then its evidence line by line against the thresholds of the rule that decided it:
    keypoints (``local``), the comparison without keypoints (``smooth``), or none for the same bytes."""
    a, b = shown(expl.path_a), shown(expl.path_b)
    if expl.duplicate:
        what = RELATION_WORDS.get(expl.relation.value, "a copy of") if expl.relation else "a copy of"
        console.print(f"[green]duplicates[/green]: {b} {what} {a}")
    else:
        console.print(f"[yellow]not duplicates[/yellow]: {a} and {b}")
        if expl.failed and expl.method != "unreadable":
            console.print(f"  failed: {'; '.join(_failure(expl, name) for name in expl.failed)}")
    if expl.method == "identical":
        console.print(f"  global vectors: cosine {expl.cosine:.3f}")
        console.print("  the same bytes: grouped without comparing further; decided by: identical")
    else:
        for line in _smooth_evidence(expl) if expl.method == "smooth" else _local_evidence(expl):
            console.print(f"  {line}")
    if expl.fitted and expl.method != "identical":
        what = "matched region" if expl.duplicate else "closest fit found (it failed the checks above)"
        console.print(f"  {what}: {list(expl.region_a or ())} of the first, {list(expl.region_b or ())} of the second")
    if picture is not None:
        console.print(f"  picture: {shown(picture)}")


def _failure(expl: Explanation, name: str) -> str:
    """One failed check of the keypoint rule, with its figure and threshold."""
    rule = expl.rule
    words = {
        "inliers": f"{expl.inliers} keypoint matches fit one transform (needs {rule.min_inliers})",
        "whole": "neither picture is shown whole, nor framed by plain surroundings (they share a part)",
        "agreement": f"{expl.score:.2f} of the overlap's patches agree (needs {rule.min_agreement:.2f})",
        "moved": f"{expl.moved:.3f} agree only once shifted (at most {rule.max_moved})",
        "spread": f"inliers in {expl.spread:.2f} of the cells textured in both (needs {rule.min_spread})",
        "block": f"a solid block of {expl.block:.2f} disagrees (at most {rule.max_block})",
        "hue": f"hues differ by {expl.hue_shift:.1f} degrees (at most {rule.max_hue_shift:.0f})",
    }
    return words[name]


def _overlap_shown(expl: Explanation) -> str:
    shown_ = f"it shows {expl.coverage[0]:.2f} of the first and {expl.coverage[1]:.2f} of the second"
    return f"{shown_} (one must be whole, or the rest of it plain); {_by(expl)}"


def _by(expl: Explanation) -> str:
    return f"decided by: {expl.method}"


def _hues(expl: Explanation) -> list[str]:
    if expl.region_a is None:
        return []
    apart = "" if expl.colour is None else f"; their colours are {expl.colour:.2f} a*b* units apart"
    return [
        f"colours: the aligned regions' hues differ by {expl.hue_shift:.1f} degrees, cell by cell (at most "
        f"{expl.rule.max_hue_shift:.0f}: a recoloured variant of a design shifts them, an edit keeps them){apart}"
    ]


def _local_evidence(expl: Explanation) -> list[str]:
    """The keypoint rule's evidence; for a pair too smooth for keypoints, whether it was also compared without them
    (and failed there too: a duplicate by that comparison is decided by ``smooth``)."""
    rule = expl.rule
    lines = [
        f"global vectors: cosine {expl.cosine:.3f}",
        f"local features: {expl.keypoints[0]} and {expl.keypoints[1]} keypoints, {expl.inliers} matched "
        f"consistently with one transform (needs {rule.min_inliers})",
    ]
    if expl.fitted:
        lines += [
            f"aligned overlap: {expl.score:.2f} of its structured patches agree (needs {rule.min_agreement:.2f}), "
            f"{expl.moved:.3f} agree only once shifted (at most {rule.max_moved}), inliers in {expl.spread:.2f} of "
            f"the cells textured in both (needs {rule.min_spread}), a solid block of {expl.block:.2f} disagrees "
            f"(at most {rule.max_block}); " + _overlap_shown(expl),
            *_hues(expl),
        ]
    else:
        lines.append("aligned overlap: none (no transform maps a part of one picture onto the other); " + _by(expl))
    if not expl.duplicate and min(expl.keypoints) < rule.smooth_keypoints:
        smooth = f"too smooth for keypoints alone (under {rule.smooth_keypoints})"
        if expl.cosine >= rule.smooth_cosine:
            lines.append(
                f"{smooth}: also compared without them (cosine >= {rule.smooth_cosine:.2f}), where the aligned overlap "
                "did not pass either" + _smooth_figures(expl)
            )
        else:
            lines.append(f"{smooth}, but not compared without them: cosine under {rule.smooth_cosine:.2f}")
    return lines


def _smooth_figures(expl: Explanation) -> str:
    """What the comparison without keypoints measured on a pair it did not verify, against its thresholds."""
    rule, m = expl.rule, expl.smooth
    if m is None:
        return f" (needs {rule.smooth_agreement:.2f} to agree)"
    return (
        f": {m.score:.2f} of its structured patches agree (needs {rule.smooth_agreement:.2f}), {m.moved:.3f} agree "
        f"only once shifted (at most {rule.max_moved}), a solid block of {m.block:.2f} disagrees (at most "
        f"{rule.max_block}), hues {m.hue_shift:.1f} degrees apart (at most {rule.max_hue_shift:.0f}); it shows "
        f"{m.coverage[0]:.2f} of the first and {m.coverage[1]:.2f} of the second (each at least "
        f"{m.min_coverage}; one must be whole, or the rest of it plain)"
    )


def _smooth_evidence(expl: Explanation) -> list[str]:
    """The evidence of the comparison without keypoints, against its own thresholds (no keypoint count applies)."""
    rule = expl.rule
    return [
        f"global vectors: cosine {expl.cosine:.3f} (needs {rule.smooth_cosine:.2f} to compare without keypoints)",
        f"local features: {expl.keypoints[0]} and {expl.keypoints[1]} keypoints (under {rule.smooth_keypoints}: "
        "too smooth to verify by keypoints)",
        "aligned overlap, without keypoints (whole frame to whole frame, or placed by correlation): "
        f"{expl.score:.2f} of its structured patches agree (needs {rule.smooth_agreement:.2f}), {expl.moved:.3f} "
        f"agree only once shifted (at most {rule.max_moved}), a solid block of {expl.block:.2f} disagrees (at most "
        f"{rule.max_block}); " + _overlap_shown(expl),
        *_hues(expl),
    ]
