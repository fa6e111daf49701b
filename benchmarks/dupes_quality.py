"""Duplicate decisions on a large public benchmark: what ``lookalike dupes`` and ``lookalike search`` tell a user
about ~100 real pictures, 26 named edits of each, and hard negatives that must stay apart.

The corpus is built by ``benchmarks/dupes_corpus.py`` (read its docstring: sources, edits, hard negatives, fillers)
and split in two halves, *dev* (for calibration) and *unseen* (for the check), by families of related pictures.
Each half (about 1,400 files) is indexed whole through the real pipeline (``Workspace.index``), then measured
with the product's own functions:

  * search@20: each copy queries ``Workspace.search_files(k=20)``; the share whose original is among the hits.
    "verified": the same with ``verify=True`` when the searcher takes that keyword ("n/a" otherwise).
  * grouped: the share of copies that ``Workspace.duplicates()`` puts in the same group as their original. Only
    groups of kind ``duplicates`` (or without a kind) count: ``similar`` and ``overlap`` are not a verdict.
  * mixed groups: duplicate groups holding two labels (two sources, a source and a hard negative, two hard
    negatives); "within a family" counts those whose labels all come from one family (two halves of one photo,
    moments of one shot, variants of one design); "through composites" those where two labels are there only as
    composites (collage, picture-in-picture, screenshot, meme: they share filler photos, window chrome or captions,
    which makes them overlaps, not duplicates); "negatives joined" counts hard negatives in a group with any
    other label. Every mixed group is listed after the tables.
  * representatives: of the groups holding an original, how many the original represents, and the kinds of the
    copies that represent the others (``resolve`` keeps the representative by default: a copy there would be kept
    and the original trashed).
  * seconds: indexing (incremental when ``--work`` is reused), the copy searches, ``duplicates()``.

Edit classes: *ordinary* (resize, crop 70%, flip, rotate 7°, grayscale, colour, blur, watermark, letterbox, inset,
thumbnail, JPEG q12, WebP 3/4), *hard* (collage, picture-in-picture, meme, screenshot, rotate 90°, crop 40%,
perspective, squeeze, dark re-shoot, crop+gray+small) and *combined* (two ordinary edits).

``--pairs-csv FILE`` writes, for the dev half, one row per (copy, original) pair and per (other label's file,
original) pair among each original's top 30 hits: ``path_a, path_b, same_label, edit, cosine`` (the search score;
empty when neither side finds the other in its top 30 / top 20), for calibrating a verifier.

    apt-get install lomiri-wallpapers sway-backgrounds desktop-base debian-edu-artwork-buster \\
        debian-edu-artwork-spacefun lxqt-themes xfdesktop4-data opencv-doc
    nice python -m benchmarks.dupes_quality [--work DIR] [--halves dev unseen] [--sources N] [--pairs-csv FILE]

A full run builds ~620 MB of media and takes about 40 minutes on 2 busy CPU cores, most of it the verified searches
(``--verify-sources 0`` skips them). On a busy machine set ``OMP_NUM_THREADS=1``: search embeds one picture at a
time, and torch's threads fighting over the cores made each query 12 times slower here (1.2 s instead of 0.1 s).
"""

from __future__ import annotations

import argparse
import csv
import filecmp
import functools
import inspect
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.dupes_corpus import EDITS, Entry, Role, build_half, pictures, plan_halves
from benchmarks.machine import describe
from lookalike.config import Settings
from lookalike.workspace import Workspace

CLASSES = ("ordinary", "hard", "combined")
Hits = dict[str, list[tuple[str, float]]]  # query path -> [(hit path, score)], best first


@dataclass(frozen=True)
class HalfResult:
    """What one half measured: per copy path whether search / verified search / dupes found its original."""

    name: str
    files: dict[str, Entry]
    sources: int
    index_s: float
    search_s: float
    dupes_s: float
    found: dict[str, bool] | None  # None: --no-search
    verified: dict[str, bool] | None  # None: the searcher takes no ``verify`` keyword (or --verify-sources 0)
    verify_errors: int
    grouped: dict[str, bool] | None  # None: duplicates() raised
    groups: int
    mixing: Mixing
    representatives: dict[str, str]  # label -> the kind of the file representing the group holding its original


@functools.cache
def _real(path: str) -> str:
    return os.path.realpath(path)


def originals(files: dict[str, Entry]) -> dict[str, str]:
    """{label: path of its original}."""
    return {e.label: p for p, e in files.items() if e.kind == "original"}


def copies(files: dict[str, Entry]) -> list[str]:
    """Paths of the edited copies."""
    return [p for p, e in files.items() if e.group in CLASSES]


def search(fn: Callable[..., Any], queries: Sequence[str], k: int, label: str) -> tuple[Hits, float, int]:
    """Run the product's search over ``queries`` in batches; returns the hits, the seconds it took and how many
    queries raised (a batch that raises is re-run one query at a time; a query that raises is left out)."""
    hits: Hits = {}
    errors = 0
    start = time.perf_counter()
    for i in range(0, len(queries), 50):
        batch = list(queries[i : i + 50])
        try:
            results = fn([Path(p) for p in batch], k=k)
        except Exception:
            results = []
            for q in batch:
                try:
                    results += fn([Path(q)], k=k)
                except Exception as e:
                    errors += 1
                    results.append(None)
                    print(f"\n  {label}: {q}: {type(e).__name__}: {e}", file=sys.stderr)
        for q, res in zip(batch, results, strict=True):
            if res is not None:
                hits[q] = [(_real(h.path), float(h.score)) for h in res.hits]
        print(f"  {label}: {min(i + 50, len(queries))}/{len(queries)}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return hits, time.perf_counter() - start, errors


def sample(queries: list[str], files: dict[str, Entry], sources: int | None) -> list[str]:
    """The copies of ``sources`` sources spread evenly over the half (all copies when None)."""
    labels = sorted(originals(files))
    if sources is None or sources >= len(labels):
        return queries
    keep = {labels[round(i * len(labels) / sources)] for i in range(sources)}
    return [q for q in queries if files[q].label in keep]


def verifying_search(ws: Workspace) -> Callable[..., Any] | None:
    """``search_files`` with ``verify=True`` if the workspace's or the searcher's takes that keyword, else None."""
    for fn in (ws.search_files, ws.searcher().search_files):
        if "verify" in inspect.signature(fn).parameters:
            return functools.partial(fn, verify=True)
    return None


def recall(hits: Hits, files: dict[str, Entry]) -> dict[str, bool]:
    """Per copy: is its original among its hits?"""
    orig = originals(files)
    return {q: orig[files[q].label] in {p for p, _ in found} for q, found in hits.items()}


def duplicate_groups(ws: Workspace) -> tuple[list[list[str]] | None, float]:
    """The paths of each ``duplicates`` group (groups of another kind left out) and the seconds it took; None when
    the product raised (the traceback is printed, the other measures go on)."""
    start = time.perf_counter()
    try:
        groups = ws.duplicates()
    except Exception:
        traceback.print_exc()
        return None, time.perf_counter() - start
    seconds = time.perf_counter() - start
    kept = [g for g in groups if str(getattr(g, "kind", "duplicates")) == "duplicates"]
    return [[_real(it.path) for it in g.items] for g in kept], seconds


def representatives(groups: list[list[str]], files: dict[str, Entry]) -> dict[str, str]:
    """Per label whose original is in a group: the kind of that group's representative (``original`` when it is
    the original or a copy with the same bytes, as an edit of a grey photo to grey levels is; an edit's name when
    a copy represents it, which ``resolve`` would keep over the original; ``another picture`` when the group is
    represented by a file of another label, a mixed group)."""
    orig = {p: label for label, p in originals(files).items()}
    out = {}
    for g in groups:
        for p in g:
            if p not in orig:
                continue
            rep = files.get(g[0])
            if rep is None or rep.label != orig[p]:  # a mixed group (counted there) or a file outside the corpus
                out[orig[p]] = "another picture"
            else:
                same = g[0] == p or filecmp.cmp(g[0], p, shallow=False)
                out[orig[p]] = "original" if same else rep.kind
    return out


def grouped_with_original(groups: list[list[str]], files: dict[str, Entry]) -> dict[str, bool]:
    """Per copy: is it in the same group as its original?"""
    where = {p: i for i, g in enumerate(groups) for p in g}
    orig = originals(files)
    return {c: c in where and where.get(orig[files[c].label]) == where[c] for c in copies(files)}


@dataclass(frozen=True)
class Mixing:
    """The duplicate groups that hold two labels (files outside the corpus ignored).

    Attributes:
        groups: one line per mixed group: each label with the kinds of its files there.
        family: how many stay within one family (halves of one photo, moments of one shot, variants of a design).
        composites: how many join two labels only through composites (each of two labels is there only as
            collages, pictures-in-pictures, screenshots or memes, which share fillers, window chrome or captions).
        negatives: hard negatives that share a group with another label.
    """

    groups: list[str]
    family: int
    composites: int
    negatives: int


COMPOSITES = {"collage", "picture_in_picture", "screenshot", "meme"}


def mixed_groups(groups: list[list[str]], files: dict[str, Entry]) -> Mixing:
    """What the mixed groups among ``groups`` join."""
    lines, family, composites, negatives = [], 0, 0, 0
    for g in groups:
        entries = [files[p] for p in g if p in files]
        kinds: dict[str, list[str]] = {}
        for e in entries:
            kinds.setdefault(e.label, []).append(e.kind)
        if len(kinds) < 2:
            continue
        parts = [
            f"{label} ({', '.join(k) if len(k) <= 3 else f'{len(k)} files'})" for label, k in sorted(kinds.items())
        ]
        lines.append(" + ".join(parts))
        family += len({e.family for e in entries}) == 1
        composites += sum(set(k) <= COMPOSITES for k in kinds.values()) >= 2
        negatives += sum(e.group == "negative" for e in entries)
    return Mixing(lines, family, composites, negatives)


def index_half(settings: Settings, media: Path) -> float:
    """Index ``media`` with the real pipeline; returns the seconds it took (warns about failed files)."""
    start = time.perf_counter()
    with Workspace(settings) as ws:
        report = ws.index([media])
    seconds = time.perf_counter() - start
    print(f"  {report.new} new, {report.unchanged} unchanged, {seconds:.0f} s", file=sys.stderr)
    if report.failed:
        print(f"  warning: {len(report.failed)} files failed to index: {report.failed[:3]}", file=sys.stderr)
    return seconds


def measure(half: str, settings: Settings, files: dict[str, Entry], opts: argparse.Namespace) -> HalfResult:
    """Index one half, search with every copy (verified: a sample), group duplicates; on the dev half, optionally
    write the calibration pairs."""
    print(f"{half}: indexing {len(files)} files", file=sys.stderr)
    index_s = index_half(settings, opts.work / half / "media")
    with Workspace(settings) as ws:
        queries = copies(files)
        hits: Hits = {}
        search_s, verified, verify_errors = 0.0, None, 0
        if opts.search:
            hits, search_s, _ = search(ws.search_files, queries, 20, f"{half} search")
        verify = verifying_search(ws)
        if verify is not None and opts.verify_sources != 0:
            checked, _, verify_errors = search(
                verify, sample(queries, files, opts.verify_sources), 20, f"{half} verify"
            )
            verified = recall(checked, files)
        print(f"{half}: duplicates()", file=sys.stderr)
        groups, dupes_s = duplicate_groups(ws)
        if opts.pairs_csv is not None and half == "dev":
            top30, _, _ = search(ws.search_files, list(originals(files).values()), 30, f"{half} originals")
            write_pairs(opts.pairs_csv, files, top30, hits)
    mixing = mixed_groups(groups or [], files)
    return HalfResult(
        half, files, len(originals(files)), index_s, search_s, dupes_s, recall(hits, files) if opts.search else None,
        verified, verify_errors,
        None if groups is None else grouped_with_original(groups, files), len(groups or []), mixing,
        representatives(groups or [], files),
    )  # fmt: skip


def write_pairs(path: Path, files: dict[str, Entry], top30: Hits, copy_hits: Hits) -> None:
    """Calibration rows: every (copy, original) pair, and every (other label's file, original) pair among the
    original's top 30 hits; ``cosine`` is the search score (empty when neither search found the pair)."""
    rows = []
    for label, orig in originals(files).items():
        scores = {p: s for p, s in top30.get(orig, [])}
        for p, e in files.items():
            if p == orig or (e.label != label and p not in scores):
                continue
            score = scores.get(p, dict(copy_hits.get(p, [])).get(orig))
            same = int(e.label == label)
            rows.append({"path_a": p, "path_b": orig, "same_label": same, "edit": e.kind, "cosine": score})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path_a", "path_b", "same_label", "edit", "cosine"])
        writer.writeheader()
        writer.writerows({**r, "cosine": "" if r["cosine"] is None else f"{r['cosine']:.4f}"} for r in rows)
    print(f"wrote {len(rows)} pairs to {path}", file=sys.stderr)


# -- tables ----------------------------------------------------------------------------------------------


def share(flags: dict[str, bool] | None, files: dict[str, Entry], field: str = "", value: str = "") -> str:
    """The share of True among the copies whose entry has ``field`` equal to ``value`` (all copies without a
    field), as text: "n/a" without flags, "-" when none is selected."""
    if flags is None:
        return "n/a"
    values = [v for p, v in flags.items() if not field or getattr(files[p], field) == value]
    return f"{sum(values) / len(values):.2f}" if values else "-"


def edit_table(results: list[HalfResult]) -> str:
    """Per edit kind and per class: search@20, verified search@20 and grouped, for each half."""
    cols = [f"{r.name} search@20 | {r.name} verified | {r.name} grouped" for r in results]
    lines = ["| edit | class | " + " | ".join(cols) + " |", "|---|---|" + "---|---|---|" * len(results)]
    rows = [(e.name, e.group, "kind", e.name) for e in EDITS]
    rows += [(f"**{c}**", c, "group", c) for c in CLASSES] + [("**all**", "", "", "")]
    for name, group, field, value in rows:
        cells = [" | ".join(share(flags, r.files, field, value) for flags in (r.found, r.verified, r.grouped))
                 for r in results]  # fmt: skip
        lines.append(f"| {name} | {group} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_table(results: list[HalfResult]) -> str:
    """One row per half: sizes, grouped and found shares per class, mixed groups, seconds."""
    head = (
        "half | sources | files | ordinary grouped | hard grouped | combined grouped | ordinary search@20 | "
        "hard search@20 | verified queries (errors) | dupes groups | mixed groups | within a family | "
        "through composites | negatives joined | index s | search s | dupes s"
    )
    lines = [f"| {head} |", "|" + "---|" * (head.count("|") + 1)]
    for r in results:
        grouped = [share(r.grouped, r.files, "group", c) for c in CLASSES]
        found = [share(r.found, r.files, "group", c) for c in CLASSES[:2]]
        verified = "n/a" if r.verified is None else f"{len(r.verified)} ({r.verify_errors})"
        dupes = "error" if r.grouped is None else f"{r.dupes_s:.1f}"
        m = r.mixing
        cells = [r.name, r.sources, len(r.files), *grouped, *found, verified, r.groups, len(m.groups), m.family]
        cells += [m.composites, m.negatives, f"{r.index_s:.0f}", f"{r.search_s:.0f}", dupes]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def representative_table(results: list[HalfResult]) -> str:
    """Per half: of the groups holding an original, how many it represents, and which copies represent the others
    (``resolve`` keeps the representative by default)."""
    lines = [
        "| half | groups holding an original | represented by the original | by a copy (kinds) |",
        "|---|---|---|---|",
    ]
    for r in results:
        kinds = Counter(r.representatives.values())
        own = kinds.pop("original", 0)
        other = ", ".join(f"{k} {n}" for k, n in kinds.most_common()) or "-"
        lines.append(f"| {r.name} | {len(r.representatives)} | {own} | {other} |")
    return "\n".join(lines)


def mixed_examples(r: HalfResult, limit: int = 30) -> str:
    """What each mixed group joins (the most frequent first), for reading what went wrong."""
    counts = Counter(r.mixing.groups)
    return "\n".join(f"- {r.name}: {line}" + (f" (x{n})" if n > 1 else "") for line, n in counts.most_common(limit))


# -- main ------------------------------------------------------------------------------------------------


def prepare(work: Path, halves: list[str], limit: int | None, reindex: bool) -> dict[str, dict[str, Entry]]:
    """Build (or reuse) the corpus of each half; drop a half's library when its corpus changed or on request."""
    plan = plan_halves(pictures(), limit)
    out = {}
    for half in halves:
        manifest = work / half / "media.json"
        before = manifest.stat().st_mtime if manifest.exists() else None
        print(f"{half}: corpus ({sum(p.role is Role.SOURCE for p in plan[half])} sources)", file=sys.stderr)
        out[half] = build_half(work / half / "media", plan[half])
        if reindex or before != manifest.stat().st_mtime:
            shutil.rmtree(work / half / "home", ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> None:
    """Build the corpus, index each half, print the tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=None, help="keep corpora and libraries here (reused when present)")
    ap.add_argument("--halves", nargs="+", choices=("dev", "unseen"), default=["dev", "unseen"])
    ap.add_argument("--sources", type=int, default=None, help="at most this many sources in all (quick runs)")
    ap.add_argument("--pairs-csv", type=Path, default=None, help="write the dev half's calibration pairs here")
    ap.add_argument(
        "--verify-sources",
        type=int,
        default=8,
        help="verified search (slow: local features of up to 56 candidates per query) runs on the copies of this many "
        "sources per half; 0 skips it, -1 runs it on all",
    )
    ap.add_argument(
        "--no-search",
        dest="search",
        action="store_false",
        help="skip search@20 (n/a in the tables) and measure the grouping (`dupes`) and verified search (when a change "
        "touched only verification and grouping: search is most of the run's time)",
    )
    ap.add_argument("--reindex", action="store_true", help="drop the libraries kept in --work and index afresh")
    ap.add_argument("--model", default=None, help="model spec (default: the product's default)")
    ap.add_argument("--weights", default=None)
    args = ap.parse_args(argv)
    if args.verify_sources < 0:
        args.verify_sources = None
    print(describe(), flush=True)
    work = args.work = (args.work or Path(tempfile.mkdtemp(prefix="lookalike-dupes-"))).resolve()
    start = time.perf_counter()
    corpora = prepare(work, args.halves, args.sources, args.reindex)
    results = []
    for half, files in corpora.items():
        settings = Settings(home=work / half / "home").with_(model=args.model, weights=args.weights)
        results.append(measure(half, settings, files, args))
    model = args.model or Settings().model
    print(f"model {model}; {len(EDITS)} edit kinds; work {work}; {time.perf_counter() - start:.0f} s in all\n")
    print(edit_table(results), "\n")
    print(summary_table(results), "\n")
    print(representative_table(results), "\n")
    print("mixed groups (label (kinds of its files there)):")
    print("\n".join(mixed_examples(r) for r in results if r.mixing.groups) or "- none")


if __name__ == "__main__":
    main()
