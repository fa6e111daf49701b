"""Each copy of the ``dupes_quality`` benchmark verified directly against its original, per edit kind: the ceiling of
what ``dupes`` can group (a group's members are verified against its representative, and the original represents
most families), and why the rest fail.

For every copy of a half, ``Workspace.explain(original, copy)`` (the product's decision on one pair: the same
features, rule and order as ``dupes``) gives the verdict; a failed pair is put down to the first check it fails
(``Explanation.failed``: ``inliers``, ``whole``, ``agreement``, ``moved``, ``spread``, ``block``, ``hue``), or to
``smooth`` when either picture has fewer keypoints than the rule's ``smooth_keypoints`` (such pairs are compared
without keypoints, and the keypoint checks say little), with the pair's cosine under ``smooth_cosine`` counted
apart (``smooth, far``: not compared without keypoints at all).

    python -m benchmarks.dupes_direct --work DIR [--halves dev unseen]

(DIR is the ``--work`` folder of a ``dupes_quality`` run, whose libraries it reads.)
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

from benchmarks.machine import describe
from lookalike.config import Settings
from lookalike.search.explain import Explanation
from lookalike.search.image_dupes import VerifyRule
from lookalike.workspace import Workspace

CLASSES = ("ordinary", "hard", "combined")


def reason(x: Explanation, rule: VerifyRule) -> str:
    """Why a pair that is not a duplicate failed (see the module docstring)."""
    if min(x.keypoints) < rule.smooth_keypoints:
        return "smooth" if x.cosine >= rule.smooth_cosine else "smooth, far"
    return x.failed[0] if x.failed else x.method


def measure(half_dir: Path) -> tuple[dict[str, list[str]], dict[str, str], float]:
    """{edit kind: the reason of each of its copies ("" when verified)}, {edit kind: class}, seconds."""
    files = json.loads((half_dir / "media.json").read_text())["files"]
    media = half_dir / "media"
    originals = {e["label"]: rel for rel, e in files.items() if e["kind"] == "original"}
    rule = VerifyRule()
    out: dict[str, list[str]] = defaultdict(list)
    classes: dict[str, str] = {}
    start = time.perf_counter()
    with Workspace(Settings(home=half_dir / "home"), create=False) as ws:
        for rel, e in files.items():
            if e["group"] not in CLASSES or e["label"] not in originals:
                continue
            x = ws.explain(media / originals[e["label"]], media / rel)
            out[e["kind"]].append("" if x.duplicate else reason(x, rule))
            classes[e["kind"]] = e["group"]
    return out, classes, time.perf_counter() - start


def table(half: str, results: dict[str, list[str]], classes: dict[str, str]) -> str:
    """Per edit kind and class: copies, verified directly, and the failures by reason."""
    names = sorted({r for rs in results.values() for r in rs if r}, key=lambda r: (r.startswith("smooth"), r))
    rows = [
        f"| {half}: edit | class | copies | verified | " + " | ".join(names) + " |",
        "|---|---|---|---|" + "---|" * len(names),
    ]

    def row(label: str, cls: str, rs: list[str]) -> str:
        count = Counter(rs)
        cells = " | ".join(str(count.get(n, 0)) for n in names)
        return f"| {label} | {cls} | {len(rs)} | {count[''] / max(1, len(rs)):.3f} | {cells} |"

    for kind in sorted(results, key=lambda k: (CLASSES.index(classes[k]), k)):
        rows.append(row(kind, classes[kind], results[kind]))
    for cls in CLASSES:
        rows.append(row(f"**{cls}**", cls, [r for k, rs in results.items() if classes[k] == cls for r in rs]))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    """Explain every copy against its original on each half and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--halves", nargs="+", choices=("dev", "unseen"), default=["dev", "unseen"])
    args = ap.parse_args(argv)
    print(describe(), flush=True)
    for half in args.halves:
        results, classes, seconds = measure(args.work / half)
        copies = sum(map(len, results.values()))
        print(f"\n{half}: {copies} copies explained against their original in {seconds:.0f} s\n")
        print(table(half, results, classes), flush=True)


if __name__ == "__main__":
    main()
