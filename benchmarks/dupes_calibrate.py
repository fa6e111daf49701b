"""Calibrate the duplicate verification rule on the dev half of ``benchmarks/dupes_quality.py``.

Every candidate pair the product's own candidate stages (``search/candidates.py``, nearest vectors, and
``search/local_candidates.py``, shared keypoints) yield on the dev library is
verified with the product's own functions (``search/verify.py``); each pair's evidence (inliers, agreement of the
aligned overlap, keypoints, cosine) is tabled against the truth (same picture or not), and a grid of thresholds
shows how many different pictures each rule would call duplicates and how many copies it would verify. The rule in
``VerifyRule`` is the one with no false pair on dev and the most copies verified, plus a margin; the unseen half is
then measured with it fixed by ``dupes_quality.py``.

    python -m benchmarks.dupes_calibrate --work DIR [--half dev]

(DIR is the ``--work`` folder of a ``dupes_quality`` run: it reads ``DIR/dev/media.json`` and ``DIR/dev/home``.)
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks.machine import describe
from lookalike.config import Settings
from lookalike.search.candidates import image_candidates
from lookalike.search.feature_cache import FeatureCache
from lookalike.search.features import Features
from lookalike.search.image_dupes import VerifyRule, content_key, judge, local_pairs, reversed_order
from lookalike.search.smooth import TURN_GATE, dense_match, likely_turn
from lookalike.search.verify import Match, match, whole_frame
from lookalike.workspace import Workspace

SMOOTH_KEYPOINTS, SMOOTH_COSINE = 80, 0.3  # pairs compared without keypoints too, for grids up to these


@dataclass(frozen=True)
class PairEvidence:
    """What verification saw on one candidate pair, with the truth."""

    a: str
    b: str
    same: bool
    edit: str
    cosine: float
    fa: Features
    fb: Features
    match: Match | None
    smooth: tuple[Match, ...]  # whole frame, and the dense placement: for pairs too smooth for keypoints


def _labels(half_dir: Path) -> dict[str, tuple[str, str]]:
    """{absolute path: (label, edit kind)} from the half's media.json."""
    files = json.loads((half_dir / "media.json").read_text())["files"]
    media = half_dir / "media"
    return {str(media / rel): (e["label"], e["kind"]) for rel, e in files.items()}


def collect(half_dir: Path, rule: VerifyRule) -> tuple[list[PairEvidence], dict[str, int], float]:
    """Gather the evidence on every candidate pair of the half (the product's candidate stage and matching);
    also count, per edit, copies whose original is not among the candidates."""
    labels = _labels(half_dir)
    with Workspace(Settings(home=half_dir / "home")) as ws:
        store = ws.store()
        start = time.perf_counter()
        cands = image_candidates(store, rule.k, rule.floor, rule.nprobe)
        stored = store.catalog.hydrate(store.info.id, cands.ids.tolist())
        records = store.catalog.media_many(store.info.id, {sv.media_id for sv in stored.values()})
        cache = FeatureCache(records, size=len(records) + 1)
        out = []
        paired: set[tuple[str, str]] = set()

        def key(media_id: int) -> str:  # pairs are matched in the order of their content keys, as the product does
            return content_key(records[media_id])

        for a, b, cos in zip(cands.a.tolist(), cands.b.tolist(), cands.cosine.tolist(), strict=True):
            va, vb = stored[int(cands.ids[a])], stored[int(cands.ids[b])]
            if reversed_order((key(va.media_id), key(vb.media_id))):
                va, vb = vb, va
            fa, fb = cache.get(va.media_id), cache.get(vb.media_id)
            if fa is None or fb is None:
                continue
            m = match(fa, fb, mirror=cos >= rule.mirror_cosine)
            (la, ka), (lb, kb) = labels[va.path], labels[vb.path]
            edit = kb if ka == "original" else ka
            smooth = _smooth_evidence(fa, fb, float(cos), rule)
            out.append(PairEvidence(va.path, vb.path, la == lb, edit, float(cos), fa, fb, m, smooth))
            paired.update({(va.path, vb.path), (vb.path, va.path)})
        # and the pairs the pass over shared keypoints adds (composites, tight crops)
        path_of = {media_id: r.path for media_id, r in records.items()}
        for ma, mb in local_pairs(sorted(records), cache, rule):
            ma, mb = (mb, ma) if reversed_order((key(ma), key(mb))) else (ma, mb)
            pa, pb = path_of[ma], path_of[mb]
            fa, fb = cache.get(ma), cache.get(mb)
            if (pa, pb) in paired or fa is None or fb is None:
                continue
            cos = float(
                store.catalog.vectors_of(store.info.id, ma, store.dim)[0].embedding
                @ store.catalog.vectors_of(store.info.id, mb, store.dim)[0].embedding
            )
            m = match(fa, fb, mirror=cos >= rule.mirror_cosine)
            (la, ka), (lb, kb) = labels[pa], labels[pb]
            edit = kb if ka == "original" else ka
            smooth = _smooth_evidence(fa, fb, cos, rule)
            out.append(PairEvidence(pa, pb, la == lb, edit, cos, fa, fb, m, smooth))
            paired.update({(pa, pb), (pb, pa)})
        seconds = time.perf_counter() - start
    originals = {lab: p for p, (lab, kind) in labels.items() if kind == "original"}
    missing: Counter[str] = Counter()
    for p, (lab, kind) in labels.items():
        if kind != "original" and lab in originals and (p, originals[lab]) not in paired:
            missing[kind] += 1
    return out, dict(missing), seconds


def _smooth_evidence(fa: Features, fb: Features, cos: float, rule: VerifyRule) -> tuple[Match, ...]:
    """The comparisons without keypoints (as ``image_dupes.smooth_match`` makes them: whole frame, turned when a
    right angle is likely, dense placement) for pairs that some rule of the grids compares so."""
    if min(len(fa), len(fb)) >= SMOOTH_KEYPOINTS or cos < SMOOTH_COSINE:
        return ()
    dense = dense_match(fa, fb, mirror=cos >= rule.mirror_cosine)
    quarter = likely_turn(fa, fb)
    turned = (whole_frame(fa, fb, quarter),) if quarter else ()
    return (whole_frame(fa, fb),) + turned + ((dense,) if dense is not None else ())


def decide(e: PairEvidence, rule: VerifyRule) -> bool:
    """The product's decision on the pair's evidence under ``rule``: ``image_dupes.judge`` on the keypoint match,
    then (as ``image_dupes.verify`` does for pairs too smooth for keypoints) on either comparison without them."""
    if judge(e.fa, e.fb, e.match, None, rule).duplicate:
        return True
    if min(len(e.fa), len(e.fb)) >= rule.smooth_keypoints or e.cosine < rule.smooth_cosine:
        return False
    return any(judge(e.fa, e.fb, e.match, s, rule).duplicate for s in e.smooth)


def turns(pairs: list[PairEvidence], rule: VerifyRule, gates: tuple[float, ...] = (0.0, 0.5, 0.6, 0.7, 0.8)) -> str:
    """Quarter turns of smooth pairs: of the pairs compared without keypoints that fail unturned, how many each
    gate of ``smooth.likely_turn`` lets through, and how many pairs of one picture and of different pictures the
    whole frames turned as it points verify (``image_dupes.smooth_match``'s last try)."""
    failing = [
        e
        for e in pairs
        if min(len(e.fa), len(e.fb)) < rule.smooth_keypoints
        and e.cosine >= rule.smooth_cosine
        and not judge(e.fa, e.fb, e.match, None, rule).duplicate
        and not any(judge(e.fa, e.fb, e.match, s, rule).duplicate for s in e.smooth if abs(s.rotation) < 45)
    ]
    lines = [
        f"Quarter turns of smooth pairs ({len(failing)} fail unturned; the rule's gate is {TURN_GATE})\n",
        "| gate | let through | verified turned: same picture | different pictures |",
        "|---|---|---|---|",
    ]
    for gate in gates:
        through = [(e, q) for e in failing if (q := likely_turn(e.fa, e.fb, gate))]
        verified = [e for e, q in through if judge(e.fa, e.fb, None, whole_frame(e.fa, e.fb, q), rule).duplicate]
        same = sum(e.same for e in verified)
        lines.append(f"| {gate} | {len(through)} | {same} | {len(verified) - same} |")
    return "\n".join(lines)


def grid(pairs: list[PairEvidence], rule: VerifyRule, rows: tuple[str, tuple], cols: tuple[str, tuple]) -> str:
    """False pairs and the share of same-picture pairs verified, for rules varying two of ``rule``'s fields."""
    (rname, rvals), (cname, cvals) = rows, cols
    lines = [f"| {rname} \\ {cname} | " + " | ".join(str(v) for v in cvals) + " |", "|---|" + "---|" * len(cvals)]
    true_pairs = sum(e.same for e in pairs)
    for rv in rvals:
        cells = []
        for cv in cvals:
            variant = replace(rule, **{rname: rv, cname: cv})
            calls = [e for e in pairs if decide(e, variant)]
            false = sum(not e.same for e in calls)
            cells.append(f"{false} / {sum(e.same for e in calls) / max(1, true_pairs):.3f}")
        lines.append(f"| {rv} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def hardest(pairs: list[PairEvidence], rule: VerifyRule, limit: int = 15) -> str:
    """The different pictures the rule calls duplicates, or (if none) those with the most inliers."""
    diff = [e for e in pairs if not e.same and (e.match is not None or e.smooth)]
    called = [e for e in diff if decide(e, rule)]
    shown = sorted(called or [e for e in diff if e.match is not None], key=lambda e: -_evidence(e).inliers)[:limit]
    rows = [
        f"{'called duplicates' if called else 'closest (none called)'}:",
        "| inliers | agreement | moved | spread | block | cover a | cover b | cosine | a | b |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in shown:
        m = _evidence(e)
        rows.append(
            f"| {m.inliers} | {m.agreement:.2f} | {m.moved:.3f} | {m.spread:.2f} | {m.block:.2f} | "
            f"{m.coverage_a:.2f} | {m.coverage_b:.2f} | {e.cosine:.2f} | {Path(e.a).name} | {Path(e.b).name} |"
        )
    return "\n".join(rows)


def _evidence(e: PairEvidence) -> Match:
    """The keypoint match, else the comparison without keypoints that agrees most."""
    if e.match is not None:
        return e.match
    return max(e.smooth, key=lambda m: m.agreement)


def per_edit(pairs: list[PairEvidence], missing: dict[str, int], rule: VerifyRule) -> str:
    """Per edit kind: copy-original pairs that are candidates, and how many the rule verifies."""
    stats: dict[str, list[bool]] = defaultdict(list)
    for e in pairs:
        if e.same and ("/originals/" in e.a or "/originals/" in e.b):
            stats[e.edit].append(decide(e, rule))
    rows = ["| edit | copy-original pairs among candidates | verified | not a candidate |", "|---|---|---|---|"]
    for edit in sorted(set(stats) | set(missing)):
        got = stats.get(edit, [])
        rows.append(f"| {edit} | {len(got)} | {sum(got)} | {missing.get(edit, 0)} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    """Gather the dev half's evidence and print the calibration tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--half", default="dev")
    args = ap.parse_args(argv)
    print(describe(), flush=True)
    rule = VerifyRule()
    pairs, missing, seconds = collect(args.work / args.half, rule)
    print(
        f"{args.half}: {len(pairs)} candidate pairs (k={rule.k}, floor {rule.floor}), {sum(e.same for e in pairs)} "
        f"of the same picture; matched in {seconds:.1f} s ({1000 * seconds / max(1, len(pairs)):.1f} ms a pair, "
        "feature extraction included)\n"
    )
    print("cells: different-picture pairs called duplicates / share of same-picture pairs verified\n")
    print(grid(pairs, rule, ("max_moved", (1.0, 0.03, 0.02, 0.01, 0.005)), ("min_agreement", (0.3, 0.5, 0.6, 0.7))))
    print()
    print(grid(pairs, rule, ("min_inliers", (10, 15, 20, 30)), ("min_spread", (0.0, 0.3, 0.5, 0.55, 0.6))))
    print()
    print(grid(pairs, rule, ("max_block", (1.0, 0.3, 0.2, 0.15, 0.1)), ("min_agreement", (0.5, 0.6, 0.7))))
    print()
    print(
        grid(
            pairs,
            rule,
            ("smooth_agreement", (0.8, 0.85, 0.9, 0.95)),
            ("max_hue_shift", (15.0, 20.0, 25.0, 30.0, 360.0)),
        )
    )
    print()
    print(grid(pairs, rule, ("smooth_keypoints", (0, 40, 60, 80)), ("smooth_cosine", (0.3, 0.5, 0.7, 0.9))))
    print()
    print(turns(pairs, rule))
    print(f"\nthe rule: {rule}\n")
    print(per_edit(pairs, missing, rule) + "\n")
    print(hardest(pairs, rule))


if __name__ == "__main__":
    main()
