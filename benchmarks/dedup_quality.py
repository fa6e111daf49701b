"""Near-duplicate retrieval quality on a public benchmark built from package-shipped photos.

Each source photo gets 11 real edits (resize, crop, flip, rotate, grayscale, colour, blur, text overlay,
letterbox, JPEG quality 12, WebP re-encode). The sources are split in two: a *dev* half, on which the
`dupes` threshold is calibrated, and an *unseen* half, reported with that threshold fixed.

Metrics (per half, the whole half indexed through the real `lookalike index` pipeline):
  * source->copies: each original queries the whole half (originals + all copies); recall@10 is the share
    of the top 10 (the query itself left out) that are its copies, mAP the mean average precision of its
    11 copies over the full ranking.
  * copy->source: each copy queries the originals; recall@1 / recall@10 that its original is there.
  * pairs at threshold: precision and recall of "same source" over all pairs, and how many `dupes` groups
    mix two sources.

    python -m benchmarks.dedup_quality [--model SPEC] [--work DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.corpus import EDITS, EXTENSIONS, edited, frame_at, package_images, save, video_dir
from benchmarks.machine import describe
from lookalike.config import Settings
from lookalike.workspace import Workspace

EXCLUDED = {"motorcycle_right"}  # the right view of a stereo pair is a near-duplicate of the left one
STILLS = (("bikes", 1.0), ("bikes", 6.0), ("bigbuckbunny", 1.0), ("bigbuckbunny", 4.5), ("carphone_pristine", 2.0))


def sources() -> dict:
    """All package photos plus a few stills from the package videos, by name."""
    images = {k: v for k, v in package_images().items() if k not in EXCLUDED}
    vids = video_dir()
    for name, t in STILLS:
        images[f"{name}_{t:g}s"] = frame_at(vids / f"{name}.mp4", t)
    return dict(sorted(images.items()))


def hard_negatives() -> dict:
    """Similar but distinct pictures: other moments of the same video shots (at least 1.5 s from any still)."""
    from benchmarks.corpus import video_frames

    out = {}
    for name in ("bikes", "bigbuckbunny", "carphone_pristine"):
        taken = [t for n, t in STILLS if n == name]
        for t, im in video_frames(video_dir() / f"{name}.mp4"):
            whole = float(round(t))
            if abs(t - whole) < 0.02 and all(abs(whole - s) >= 1.5 for s in taken):
                out[f"{name}_{whole:g}s"] = im
    return out


def build(root: Path, names: list[str], images: dict, negatives: dict) -> dict[str, str]:
    """Write originals, copies and hard negatives; returns {file path: source name}."""
    label = {str(save(im, root / "negatives" / f"{n}.jpg", "JPEG")): f"neg:{n}" for n, im in negatives.items()}
    for n in names:
        label[str(save(images[n], root / "originals" / f"{n}.png"))] = n
        for e in EDITS:
            path = root / "copies" / f"{n}__{e.name}{EXTENSIONS[e.fmt]}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(edited(images[n], e))
            label[str(path)] = n
    return label


def vectors(settings: Settings, root: Path) -> tuple[list[str], np.ndarray]:
    """Index ``root`` with the real pipeline and read back one vector per file."""
    with Workspace(settings) as ws:
        report = ws.index([root])
        assert not report.failed, report.failed
        store = ws.store()
        ids, mats = zip(*store.catalog.iter_vectors(store.info.id, ["image"], store.dim), strict=True)
        hyd = store.catalog.hydrate(store.info.id, np.concatenate(ids).tolist())
        paths = [hyd[int(i)].path for i in np.concatenate(ids)]
        return paths, np.vstack(mats)


def average_precision(relevant: np.ndarray) -> float:
    """AP of a ranked list given as a boolean relevance vector."""
    if not relevant.any():
        return 0.0
    hits = np.cumsum(relevant)
    return float((hits[relevant] / (np.flatnonzero(relevant) + 1)).mean())


def evaluate(paths: list[str], vecs: np.ndarray, label: dict[str, str]) -> dict[str, float]:
    """Retrieval metrics of one half."""
    src = np.array([label[p] for p in paths])
    is_orig = np.array(["/originals/" in p for p in paths])
    is_copy = np.array(["/copies/" in p for p in paths])
    sims = vecs @ vecs.T
    r10, aps = [], []
    for q in np.flatnonzero(is_orig):
        order = np.argsort(-sims[q])
        order = order[order != q]
        rel = (src[order] == src[q]) & is_copy[order]
        r10.append(rel[:10].sum() / min(10, rel.sum()))
        aps.append(average_precision(rel))
    orig_idx = np.flatnonzero(is_orig)
    c1, c10 = [], []
    for q in np.flatnonzero(is_copy):
        order = orig_idx[np.argsort(-sims[q, orig_idx])]
        c1.append(src[order[0]] == src[q])
        c10.append(src[q] in set(src[order[:10]]))
    return {
        "recall@10": float(np.mean(r10)),
        "mAP": float(np.mean(aps)),
        "copy->source R@1": float(np.mean(c1)),
        "copy->source R@10": float(np.mean(c10)),
        "queries": len(r10),
    }


def per_edit_recall(paths: list[str], vecs: np.ndarray, label: dict[str, str]) -> dict[str, float]:
    """Share of each edit's copies found in their original's top 12 (11 copies + slack)."""
    src = np.array([label[p] for p in paths])
    sims = vecs @ vecs.T
    found: dict[str, list[bool]] = {e.name: [] for e in EDITS}
    for q, p in enumerate(paths):
        if "/originals/" not in p:
            continue
        order = [i for i in np.argsort(-sims[q]) if i != q][:12]
        top = {paths[i] for i in order}
        for e in EDITS:
            copy = next(x for x in paths if x.endswith(f"/{src[q]}__{e.name}{EXTENSIONS[e.fmt]}"))
            found[e.name].append(copy in top)
    return {k: float(np.mean(v)) for k, v in found.items()}


def pair_stats(paths: list[str], vecs: np.ndarray, label: dict[str, str], t: float) -> dict[str, float]:
    """Pair precision/recall at threshold ``t`` and how many connected groups mix sources."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    src = np.array([label[p] for p in paths])
    sims = vecs @ vecs.T
    iu = np.triu_indices(len(paths), 1)
    same = src[iu[0]] == src[iu[1]]
    pred = sims[iu] >= t
    tp = float((pred & same).sum())
    precision = tp / max(1.0, float(pred.sum()))
    recall = tp / max(1.0, float(same.sum()))
    r, c = iu[0][pred], iu[1][pred]
    graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(len(paths), len(paths)))
    _, lab = connected_components(graph, directed=False)
    mixed = sum(len(set(src[lab == g])) > 1 for g in np.unique(lab))
    orig = {src[i]: lab[i] for i, p in enumerate(paths) if "/originals/" in p}
    copies = [i for i, p in enumerate(paths) if "/copies/" in p]
    with_original = float(np.mean([lab[i] == orig[src[i]] for i in copies]))
    return {"pair precision": precision, "pair recall": recall, "mixed groups": mixed, "grouped": with_original}


def calibrate(paths: list[str], vecs: np.ndarray, label: dict[str, str], margin: float = 0.03) -> float:
    """Precision first: the lowest threshold (0.01 steps) at which no dev `dupes` group mixes two sources
    or pulls in a hard negative, plus a safety margin."""
    for t in np.arange(0.50, 0.99, 0.01):
        if pair_stats(paths, vecs, label, float(t))["mixed groups"] == 0:
            return round(float(t) + margin, 2)
    return 0.99


def main() -> None:
    """Build both halves, index them, print the tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--work", type=Path, default=None, help="keep corpora and libraries here")
    args = ap.parse_args()
    print(describe(), flush=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="lookalike-bench-"))
    images = sources()
    negatives = hard_negatives()
    names = list(images)
    neg_names = list(negatives)
    halves = {"dev": names[0::2], "unseen": names[1::2]}
    results = {}
    for half, members in halves.items():
        negs = {n: negatives[n] for n in (neg_names[0::2] if half == "dev" else neg_names[1::2])}
        label = build(work / half / "media", members, images, negs)
        settings = Settings(home=work / half / "home", model=args.model, weights=args.weights)
        paths, vecs = vectors(settings, work / half / "media")
        results[half] = (paths, vecs, label)
    threshold = calibrate(*results["dev"])
    print(
        f"model {args.model}; {len(EDITS)} edit kinds; sources: dev {len(halves['dev'])}, "
        f"unseen {len(halves['unseen'])}; hard negatives: {len(neg_names)}; "
        f"threshold calibrated on dev (no mixed group + 0.03): {threshold:.2f}\n"
    )
    print(
        "| set | queries | recall@10 | mAP | copy->source R@1 | copy->source R@10 | pair precision | "
        "pair recall | copies grouped with their original | mixed groups |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for half, (paths, vecs, label) in results.items():
        m = evaluate(paths, vecs, label)
        p = pair_stats(paths, vecs, label, threshold)
        print(
            f"| {half} | {m['queries']} | {m['recall@10']:.3f} | {m['mAP']:.3f} | {m['copy->source R@1']:.3f} | "
            f"{m['copy->source R@10']:.3f} | {p['pair precision']:.3f} | {p['pair recall']:.3f} | "
            f"{p['grouped']:.3f} | {p['mixed groups']} |"
        )
    print("\nper edit: share of copies in their original's top 12 (both halves)")
    print("| edit | " + " | ".join(e.name for e in EDITS) + " |")
    print("|---|" + "---|" * len(EDITS))
    for half, (paths, vecs, label) in results.items():
        pe = per_edit_recall(paths, vecs, label)
        print(f"| {half} | " + " | ".join(f"{pe[e.name]:.2f}" for e in EDITS) + " |")


if __name__ == "__main__":
    main()
