"""Turn results into the CLI's human tables and its stable JSON contract."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

from rich.markup import escape

if TYPE_CHECKING:
    from rich.console import Console

    from lookalike.indexer.pipeline import IndexReport
    from lookalike.search.groups import DuplicateGroup, GroupItem
    from lookalike.search.searcher import QueryResult
    from lookalike.storage.records import MediaRecord


def visible(value: object) -> str:
    """Text from outside (a file name, a message quoting one) with the characters that are not printable
    (terminal escape sequences, new lines, tabs, bidirectional overrides) shown as their escapes, so that a name
    cannot restyle, move or hide what is printed."""
    return "".join(ch if ch.isprintable() or ch == " " else ascii(ch)[1:-1] for ch in str(value))


def shown(value: object) -> str:
    """:func:`visible` text ready for a Rich console: markup brackets in it print as they are."""
    return escape(visible(value))


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
                **({"relation": h.relation, "inliers": h.inliers} if h.relation is not None else {}),
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
        console.print(f"[red]{shown(result.query)}: {shown(result.error)}[/red]")
        return
    verified = any(h.relation is not None for h in result.hits)
    if not console.is_terminal:  # piped: one line a hit, tab-separated, paths never wrapped or cut
        lines = [visible(result.query)]
        for i, h in enumerate(result.hits, 1):
            cells = [str(i), f"{h.score:.3f}", h.kind.value, visible(h.path), _range(h.start, h.end)]
            cells += [_range(h.query_start, h.query_end), *((h.relation or "",) if verified else ())]
            lines.append("\t".join(cells))
        console.file.write("\n".join(lines) + "\n")
        return
    table = Table(title=shown(result.query), title_justify="left", show_edge=False)
    for col in ("#", "score", "kind", "path", "match", "query", *(("verified",) if verified else ())):
        table.add_column(col, overflow="fold")
    for i, h in enumerate(result.hits, 1):
        table.add_row(
            str(i),
            f"{h.score:.3f}",
            h.kind.value,
            shown(h.path),
            _range(h.start, h.end),
            _range(h.query_start, h.query_end),
            *((h.relation or "",) if verified else ()),
        )
    console.print(table)


def item_dict(it: GroupItem) -> dict[str, Any]:
    """One group member with the evidence that ties it to the representative."""
    return {
        "path": it.path,
        "id": it.media_id,
        "kind": it.kind,
        "relation": it.relation.value,
        "score": round(it.score, 4),
        "method": it.method,
        "inliers": it.inliers,
        "region": None if it.region is None else list(it.region),
        "rep_region": None if it.rep_region is None else list(it.rep_region),
        "start": _t(it.start),
        "end": _t(it.end),
        "rep_start": _t(it.rep_start),
        "rep_end": _t(it.rep_end),
    }


def dupes_json(groups: list[DuplicateGroup]) -> str:
    """``{"groups": [{"kind", "score", "items": [item_dict(...)]}]}``; the first item of a group is its
    representative, every other item was verified against it."""
    return json.dumps(
        {
            "groups": [
                {"kind": g.kind.value, "score": round(g.score, 6), "items": [item_dict(it) for it in g.items]}
                for g in groups
            ]
        },
        ensure_ascii=False,
    )


CSV_COLUMNS = (
    "group",
    "kind",
    "path",
    "media",
    "relation",
    "score",
    "region",
    "ranges",
    "size",
    "resolution",
    "keeper",
    "taken",
    "camera",
)


def dupes_csv(groups: list[DuplicateGroup], records: dict[int, MediaRecord]) -> str:
    """Groups as CSV for spreadsheets, one row a file: group number, the group's kind, path, media kind, relation,
    score, region (``left top right bottom``), matched time ranges (``start-end``), bytes, ``WxH``, ``yes`` for
    the representative (the file ``resolve`` keeps by default), and what its EXIF says: the date taken
    (``YYYY-MM-DD HH:MM:SS``, the camera's clock) and the camera."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for n, g in enumerate(groups, 1):
        for it in g.items:
            rec = records.get(it.media_id)
            writer.writerow(
                [
                    n,
                    g.kind.value,
                    it.path,
                    it.kind,
                    it.relation.value,
                    f"{it.score:.4f}",
                    "" if it.region is None else " ".join(str(v) for v in it.region),
                    "" if it.start is None else _range(it.start, it.end),
                    "" if rec is None else rec.size,
                    "" if rec is None or rec.width is None else f"{rec.width}x{rec.height}",
                    "yes" if it.relation.value == "representative" else "",
                    "" if rec is None or rec.taken_at is None else rec.taken_at.isoformat(" "),
                    "" if rec is None else rec.camera or "",
                ]
            )
    return buf.getvalue()


def _evidence(it: GroupItem) -> str:
    parts = [it.relation.value]
    if it.method == "smooth":  # too smooth for keypoints: the aligned frames agree patch by patch
        parts.append("verified without keypoints")
    elif it.inliers is not None:
        parts.append(f"{it.inliers} keypoints")
    if it.relation.value != "representative":
        parts.append(f"score {it.score:.2f}")
    if it.rep_region is not None and it.relation.value == "cropped":  # where in the representative the crop lies
        parts.append("shows " + ",".join(str(v) for v in it.rep_region) + " of the representative")
    if it.region is not None and it.relation.value == "contains":  # where in this picture the representative lies
        parts.append("holds it at " + ",".join(str(v) for v in it.region))
    if it.start is not None:
        parts.append(_range(it.start, it.end))
    if it.rep_start is not None:
        parts.append(f"= {_range(it.rep_start, it.rep_end)} of the first")
    return ", ".join(parts)


def print_dupes(
    console: Console, groups: list[DuplicateGroup], similar_threshold: float | None, video_threshold: float
) -> None:
    """Groups, one block each: the representative first, then each member with what it is to it and why."""
    at = f"video threshold {video_threshold:.2f}"
    if similar_threshold is not None:
        at += f", similar threshold {similar_threshold:.2f}"
    if not groups:
        console.print(f"no duplicate groups ({at})")
        return
    counts = ", ".join(f"{sum(g.kind == k for g in groups)} {k.value}" for k in dict.fromkeys(g.kind for g in groups))
    console.print(f"{len(groups)} groups: {counts} ({at})")
    for n, g in enumerate(groups, 1):
        console.print(f"[bold]group {n}[/bold] {g.kind.value} ({len(g.items)} files, weakest score {g.score:.3f})")
        for it in g.items:
            console.print(f"  {it.kind:5} {shown(it.path)}  [dim]{_evidence(it)}[/dim]", highlight=False)


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
        "missing": report.missing,
        "restored": report.restored,
        "moved": report.moved,
        "metadata": report.metadata,
        "seconds": round(report.seconds, 3),
        "failed": [{"path": f.path, "code": f.code, "message": f.message} for f in report.failed],
        "skipped": [{"path": str(s.path), "reason": s.reason} for s in report.skipped],
    }


def print_report(console: Console, report: IndexReport) -> None:
    """The end-of-run summary: counts, then every failed and skipped path with its reason."""
    console.print(
        f"indexed {report.new} new, {report.updated} updated ({report.images} images, {report.videos} videos, "
        f"{report.frames} frames; {report.copied} byte-identical copies reused), {report.unchanged} unchanged, "
        f"{len(report.failed)} failed, {len(report.skipped)} skipped, {report.missing} missing, "
        f"{report.pruned} pruned in {report.seconds:.1f}s",
        highlight=False,
    )
    if report.moved or report.restored:
        console.print(
            f"  found again: {report.moved} missing files at a new path (renamed or moved), "
            f"{report.restored} at their own path",
            highlight=False,
        )
    if report.missing:
        console.print(
            f"  {report.missing} {'file' if report.missing == 1 else 'files'} indexed under these folders "
            f"{'is' if report.missing == 1 else 'are'} gone: left out of search and dupes; `index --prune` forgets "
            f"{'it' if report.missing == 1 else 'them'}",
            highlight=False,
        )
    for f in report.failed:
        console.print(f"  [red]failed[/red] {shown(f.path)}: {f.code}: {shown(f.message)}", highlight=False)
    for s in report.skipped:
        console.print(f"  [yellow]skipped[/yellow] {shown(s.path)}: {shown(s.reason)}", highlight=False)
