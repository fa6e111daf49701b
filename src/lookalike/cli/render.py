"""Turn results into the CLI's human tables and its stable JSON contract."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from lookalike.indexer.pipeline import IndexReport
    from lookalike.search.duplicates import DuplicateGroup
    from lookalike.search.searcher import QueryResult


def _t(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def query_json(result: QueryResult) -> str:
    """One JSON line: ``{"query", "results": [{"path", "kind", "score", "start", "end", "query_start",
    "query_end"}]}`` (plus ``"error"`` when the query file could not be used)."""
    obj: dict[str, Any] = {
        "query": result.query,
        "results": [
            {
                "path": h.path,
                "kind": h.kind.value,
                "score": round(h.score, 6),
                "start": _t(h.start),
                "end": _t(h.end),
                "query_start": _t(h.query_start),
                "query_end": _t(h.query_end),
                "id": h.media_id,
            }
            for h in result.hits
        ],
    }
    if result.error:
        obj["error"] = result.error
    return json.dumps(obj, ensure_ascii=False)


def _range(start: float | None, end: float | None) -> str:
    return "" if start is None or end is None else f"{start:.1f}-{end:.1f}s"


def print_query(console: Console, result: QueryResult) -> None:
    """A table of one query's results."""
    from rich.table import Table

    if result.error:
        console.print(f"[red]{result.query}: {result.error}[/red]")
        return
    table = Table(title=f"{result.query}", title_justify="left", show_edge=False)
    for col in ("#", "score", "kind", "path", "match", "query"):
        table.add_column(col, overflow="fold")
    for i, h in enumerate(result.hits, 1):
        table.add_row(
            str(i),
            f"{h.score:.3f}",
            h.kind.value,
            h.path,
            _range(h.start, h.end),
            _range(h.query_start, h.query_end),
        )
    console.print(table)


def dupes_json(groups: list[DuplicateGroup]) -> str:
    """``{"groups": [{"score", "items": [{"path", "kind", "start", "end"}]}]}``."""
    return json.dumps(
        {
            "groups": [
                {
                    "score": round(g.score, 6),
                    "items": [
                        {
                            "path": it.path,
                            "kind": it.kind,
                            "start": _t(it.start),
                            "end": _t(it.end),
                            "id": it.media_id,
                        }
                        for it in g.items
                    ],
                }
                for g in groups
            ]
        },
        ensure_ascii=False,
    )


def print_dupes(console: Console, groups: list[DuplicateGroup], threshold: float, video_threshold: float) -> None:
    """Duplicate groups, one block each."""
    at = f"image threshold {threshold:.2f}, video threshold {video_threshold:.2f}"
    if not groups:
        console.print(f"no duplicate groups at {at}")
        return
    console.print(f"{len(groups)} duplicate groups at {at}")
    for n, g in enumerate(groups, 1):
        console.print(f"[bold]group {n}[/bold] ({len(g.items)} files, min similarity {g.score:.3f})")
        for it in g.items:
            where = f"  {_range(it.start, it.end)}" if it.start is not None else ""
            console.print(f"  {it.kind:5} {it.path}{where}", highlight=False)


def report_dict(report: IndexReport) -> dict[str, Any]:
    """The end-of-run summary as JSON-friendly data."""
    return {
        "new": report.new,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "copied": report.copied,
        "images": report.images,
        "videos": report.videos,
        "frames": report.frames,
        "pruned": report.pruned,
        "seconds": round(report.seconds, 3),
        "failed": [{"path": f.path, "code": f.code, "message": f.message} for f in report.failed],
        "skipped": [{"path": str(s.path), "reason": s.reason} for s in report.skipped],
    }


def print_report(console: Console, report: IndexReport) -> None:
    """The end-of-run summary: counts, then every failed and skipped path with its reason."""
    console.print(
        f"indexed {report.new} new, {report.updated} updated ({report.images} images, {report.videos} videos, "
        f"{report.frames} frames; {report.copied} byte-identical copies reused), {report.unchanged} unchanged, "
        f"{len(report.failed)} failed, {len(report.skipped)} skipped, {report.pruned} pruned "
        f"in {report.seconds:.1f}s",
        highlight=False,
    )
    for f in report.failed:
        console.print(f"  [red]failed[/red] {f.path}: {f.code}: {f.message}", highlight=False)
    for s in report.skipped:
        console.print(f"  [yellow]skipped[/yellow] {s.path}: {s.reason}", highlight=False)
