"""Where two choices of `dupes` come from, on the halves `benchmarks/dupes_quality.py` builds: the hue check's
threshold and the order in which files become representatives.

For each half, the product's own `find_image_duplicates` runs once with the hue check off (`max_hue_shift` 360);
its verified pairs are kept (the star grouping is skipped), then:

  * hue: the per-cell hue shift (`search/smooth.hue_shift`) of every pair verified without the hue check, split into
    pairs of one picture and pairs of different pictures (a recoloured variant of a design, a hard negative):
    percentiles, counts beyond each threshold, and the different-picture pairs with a shift under 30 degrees;
  * rank: the pairs the shipped rule verifies (hue shift <= `VerifyRule.max_hue_shift`) grouped into stars with the
    shipped rank (`search/representatives.representative_rank`: hubs first, links before keypoints) and with the
    rank it replaced (the most pixels, colour, then keypoints before links; no hub test), each scored as
    `dupes_quality` scores a grouping: copies in their original's group per class, mixed groups.

    python -m benchmarks.dupes_quality --work DIR --halves dev unseen --verify-sources 0 --no-search  # builds
    python -m benchmarks.dupes_ablation --work DIR --halves dev
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.dupes_corpus import Entry, build_half, pictures, plan_halves
from benchmarks.dupes_quality import CLASSES, grouped_with_original, mixed_groups
from benchmarks.machine import describe
from lookalike.config import Settings
from lookalike.search import image_dupes
from lookalike.search import representatives as reps
from lookalike.search.groups import star_groups
from lookalike.search.smooth import hue_shift
from lookalike.workspace import Workspace

THRESHOLDS = (15.0, 18.0, 20.0, 22.0, 25.0, 30.0)


def capture(ws: Workspace) -> dict[str, Any]:
    """The verified pairs of the product's duplicate search with the hue check off, and what grouping needs."""
    seen: dict[str, Any] = {}

    def keep(verdicts, records, cache, confirm, nearby):
        seen.update(verdicts=verdicts, records=records, cache=cache, nearby=nearby)
        return []

    stars = image_dupes._stars
    image_dupes._stars = keep  # type: ignore[assignment]
    try:
        image_dupes.find_image_duplicates(ws.store(), image_dupes.VerifyRule(max_hue_shift=360.0))
    finally:
        image_dupes._stars = stars
    return seen


def previous_rank(verdicts: reps.Verdicts, records: dict, features: Callable, links: dict) -> Callable[[int], tuple]:
    """The rank before the hub test: the most pixels, colour, then keypoints (in 2x steps) before links."""
    coverage, tilts, turns = reps.own_coverage(verdicts), reps.tilt(verdicts), reps.turned(verdicts)

    def rank(media_id: int) -> tuple:
        rec, share, feats = records[media_id], coverage[media_id], features(media_id)
        pixels = max(1.0, (rec.width or 0) * (rec.height or 0) * share)
        return (
            share < 0.5,
            tilts[media_id] > reps.TILTED or turns[media_id] > 0.5,
            -round(math.log(pixels, reps.PIXEL_STEP)),
            reps.grey(feats),
            -int(math.log2(1 + len(feats))) if feats is not None else 0,
            -len(links[media_id]),
            share < 0.95,
            not reps._lossless(rec.path),
            -rec.size,
            rec.path,
        )

    return rank


def confirmer(ws: Workspace, seen: dict[str, Any], decided: dict) -> Callable[[int, int], bool]:
    """What the product's ``confirm`` does: a file met through a member is verified against the representative."""
    records, cache, rule = seen["records"], seen["cache"], image_dupes.VerifyRule()
    store = ws.store()

    def vector(media_id: int) -> np.ndarray:
        return store.catalog.vectors_of(store.info.id, media_id, store.dim)[0].embedding

    def confirm(rep: int, member: int) -> bool:
        key = (rep, member) if (rep, member) in decided or (member, rep) not in decided else (member, rep)
        if key not in decided:
            ra, rb = records[key[0]], records[key[1]]
            if ra.sha256 and ra.sha256 == rb.sha256:
                return True
            cos = float(vector(key[0]) @ vector(key[1]))
            keys = (image_dupes.content_key(ra), image_dupes.content_key(rb))
            decided[key] = image_dupes.verify_in_order(cache.get(key[0]), cache.get(key[1]), cos, rule, keys)
        return bool(decided[key].duplicate)

    return confirm


def hue_table(half: str, seen: dict[str, Any], files: dict[str, Entry]) -> dict[tuple[int, int], float]:
    """Print the hue shifts of the pairs verified without the hue check; returns them per pair."""
    verdicts, records, cache = seen["verdicts"], seen["records"], seen["cache"]
    label = {m: files.get(os.path.realpath(r.path)) for m, r in records.items()}
    same, other, shifts = [], [], {}
    for (a, b), v in verdicts.items():
        ea, eb = label.get(a), label.get(b)
        if not v.duplicate or v.match is None or ea is None or eb is None:
            continue
        fa, fb = cache.get(a), cache.get(b)
        shifts[(a, b)] = h = hue_shift(fa, fb, v.match) if fa is not None and fb is not None else 0.0
        if ea.label == eb.label:
            same.append(h)
        else:
            other.append((h, f"{ea.label} ({ea.kind}) / {eb.label} ({eb.kind})"))
    s, o = np.array(same), np.array([h for h, _ in other])
    print(f"\n## {half}: per-cell hue shift of pairs verified without the hue check\n")
    heads = " | ".join(f"> {t:g}" for t in THRESHOLDS)
    print(f"| pairs | n | median | 90% | 99% | 99.9% | max | {heads} |")
    print("|---" * (7 + len(THRESHOLDS)) + "|")
    pct = " | ".join(f"{x:.1f}" for x in np.percentile(s, [50, 90, 99, 99.9]))
    print(
        f"| one picture | {len(s)} | {pct} | {s.max():.1f} | "
        + " | ".join(str(int((s > t).sum())) for t in THRESHOLDS)
        + " |"
    )
    print(
        f"| different pictures | {len(o)} | | | | | | " + " | ".join(str(int((o > t).sum())) for t in THRESHOLDS) + " |"
    )
    print("\ndifferent pictures verified without the hue check, shift under 30 degrees:")
    for h, what in sorted(other):
        if h < 30:
            print(f"- {h:.1f}: {what}")
    return shifts


def rank_table(half: str, ws: Workspace, seen: dict[str, Any], files: dict[str, Entry], shifts: dict) -> None:
    """Print the grouping with the previous and the shipped rank, over the pairs the shipped rule verifies."""
    rule = image_dupes.VerifyRule()
    records, cache = seen["records"], seen["cache"]
    kept = {k: v for k, v in seen["verdicts"].items() if not v.duplicate or shifts.get(k, 0.0) <= rule.max_hue_shift}
    links: dict[int, dict[int, bool]] = {}
    for (a, b), v in kept.items():
        if v.duplicate:
            links.setdefault(a, {})[b] = True
            links.setdefault(b, {})[a] = True
    print(f"\n## {half}: the order of representatives (pairs verified by the shipped rule)\n")
    print("| rank | " + " | ".join(f"{c} grouped" for c in CLASSES) + " | groups | mixed groups |")
    print("|---" * (len(CLASSES) + 3) + "|")
    ranks = (
        ("before (pixels, keypoints before links)", previous_rank),
        ("shipped (hubs first, links before keypoints)", reps.representative_rank),
    )
    for name, make in ranks:
        rank = make(kept, records, cache.get, links)
        stars = star_groups(links, rank, confirmer(ws, seen, dict(kept)), seen["nearby"])
        groups = [[os.path.realpath(records[m].path) for m in g] for g in stars]
        flags = grouped_with_original(groups, files)
        shares = " | ".join(f"{np.mean([ok for p, ok in flags.items() if files[p].group == c]):.3f}" for c in CLASSES)
        print(f"| {name} | {shares} | {len(groups)} | {len(mixed_groups(groups, files).groups)} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Print the hue table and the rank table per half."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="dupes_quality's --work (libraries already indexed)")
    ap.add_argument("--halves", nargs="+", choices=("dev", "unseen"), default=["dev"])
    args = ap.parse_args(argv)
    print(describe(), flush=True)
    plan = plan_halves(pictures(), None)
    for half in args.halves:
        built = build_half(args.work / half / "media", plan[half])
        files = {os.path.realpath(p): e for p, e in built.items()}
        with Workspace(Settings(home=args.work / half / "home")) as ws:
            seen = capture(ws)
            shifts = hue_table(half, seen, files)
            rank_table(half, ws, seen, files, shifts)


if __name__ == "__main__":
    main()
