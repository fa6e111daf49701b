"""Commands that clean up duplicates: resolve (dry run by default), undo, trash, distinct, decisions."""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lookalike.cli.common import err, out, workspace
from lookalike.cli.render import shown

if TYPE_CHECKING:
    from lookalike.actions.apply import RunReport
    from lookalike.actions.resolve import Resolution

trash_app = typer.Typer(help="Files moved to the trash by `resolve --apply`.", no_args_is_help=True)
decisions_app = typer.Typer(help="Remembered decisions ('these are not duplicates').", no_args_is_help=True)


def _rules(value: str | None) -> str | None:
    """--keep checked at the edge: an unknown rule is a usage error (exit code 2)."""
    from lookalike.errors import UsageError
    from lookalike.workspace import parse_rules

    if value is not None:
        try:
            parse_rules(value)
        except UsageError as e:
            raise typer.BadParameter(str(e)) from e
    return value


def _action(value: str) -> str:
    from lookalike.workspace import RESOLVE_ACTIONS

    if value not in RESOLVE_ACTIONS:
        raise typer.BadParameter(f"{value!r} is not one of: {', '.join(RESOLVE_ACTIONS)}")
    return value


def _trash(value: str) -> str:
    from lookalike.workspace import TRASHES

    if value not in TRASHES:
        raise typer.BadParameter(f"{value!r} is not one of: {', '.join(TRASHES)}")
    return value


def resolve(
    ctx: typer.Context,
    keep: Annotated[
        str | None,
        typer.Option(
            callback=_rules,
            help="Keep-best rules in order: representative, resolution, size, oldest, newest (by EXIF date taken "
            "when every file has one, else modification time), exif (most metadata), format (lossless first), "
            "shortest-path, path:DIR [default: the group's representative].",
        ),
    ] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Carry the plan out (without it nothing changes).")] = False,
    action: Annotated[
        str,
        typer.Option(
            callback=_action,
            help="trash (undoable), or hardlink / symlink to the keeper (identical copies only).",
        ),
    ] = "trash",
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    plan: Annotated[
        Path | None,
        typer.Option(
            help="A reviewed plan: the JSON of `resolve --json` with actions changed ('-' reads standard input); "
            "only the files it names trash/hardlink/symlink are acted on, each group keeps a file.",
        ),
    ] = None,
    delete: Annotated[
        bool,
        typer.Option(
            "--delete",
            help="With --apply: delete the files for good instead of keeping them in the trash "
            "(asks first; cannot be undone).",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before --delete.")] = False,
    into: Annotated[
        str,
        typer.Option(
            callback=_trash,
            help="Where trashed files go: library (<home>/trash/<run>/<path>) or desktop (the freedesktop.org "
            "trash your file manager shows); `lookalike undo` puts them back from either.",
        ),
    ] = "library",
) -> None:
    """Plan which file of each verified duplicate group to keep and what to do with the others; --apply does it
    (journaled: `lookalike undo` puts everything back)."""
    if delete and not apply:
        raise typer.BadParameter("--delete goes with --apply (a dry run deletes nothing)", param_hint="--delete")
    if delete and not yes and plan is not None and str(plan) == "-":
        raise typer.BadParameter("with --plan - standard input holds the plan: add --yes to delete", param_hint="--yes")
    with workspace(ctx) as ws:
        choices = _read_plan(plan) if plan is not None else None  # a bad plan file: one line, exit code 1
        if delete:
            planned = ws.resolve(keep, False, action, choices)
            doomed = [p for p in planned.plan if p.action != "keep"]
            if not doomed:
                if as_json:
                    sys.stdout.write(json.dumps(resolution_dict(planned), ensure_ascii=False) + "\n")
                else:
                    out.print("nothing to delete")
                return
            if not yes:
                for p in doomed:
                    err.print(f"  {p.action:<8} {shown(p.path)}  (keeper {shown(p.keeper)})")
            if not yes and not typer.confirm(
                f"Delete {len(doomed)} files for good? They cannot be undone (without --delete they go to the "
                "trash, and `lookalike undo` puts them back)",
                default=False,
                err=True,  # the question on standard error: --json output stays JSON
            ):
                err.print("nothing was deleted")
                raise typer.Exit(1)
            choices = {p.path: p.action for p in planned.plan}  # exactly the files confirmed
        result = ws.resolve(keep, apply, action, choices, delete, into)
    if as_json:
        sys.stdout.write(json.dumps(resolution_dict(result), ensure_ascii=False) + "\n")
        return
    _print_resolution(result, apply, delete)


def _read_plan(source: Path) -> dict[str, str]:
    """The choices of a reviewed plan file: ``{"actions": [{"path", "action"}, ...]}`` -> path -> action."""
    from lookalike.errors import UsageError

    name = "standard input" if str(source) == "-" else str(source)
    try:
        text = sys.stdin.read() if str(source) == "-" else source.read_text(encoding="utf-8")
        data = json.loads(text)
        return {str(a["path"]): str(a["action"]) for a in data["actions"]}
    except OSError as e:
        raise UsageError(f"--plan {name}: cannot be read: {e.strerror}") from e
    except ValueError as e:
        raise UsageError(f"--plan {name}: not JSON ({e}); give the output of `lookalike resolve --json`") from e
    except (KeyError, TypeError, AttributeError) as e:
        raise UsageError(
            f'--plan {name}: not a plan: it needs {{"actions": [{{"path": ..., "action": ...}}, ...]}} '
            "as `lookalike resolve --json` prints it"
        ) from e


def resolution_dict(result: Resolution) -> dict[str, Any]:
    """``{"run": id|null, "actions": [{"path", "action", "keeper", "reason", "group"}], "outside": [path]}``; a file
    the run left alone has action ``keep`` and the reason it was skipped; ``outside`` lists the files a reviewed plan
    chose for that are in no verified group now."""
    return {"run": result.run, "actions": result.outcome(), "outside": result.outside}


def _print_resolution(result: Resolution, applied: bool, deleted: bool = False) -> None:
    for rec in result.recovered:
        out.print(f"finished run {rec.run}, which an earlier process left unfinished: {len(rec.done)} files")
    data = resolution_dict(result)
    group = None
    for p, a in zip(result.plan, data["actions"], strict=True):
        if p.group != group:
            group = p.group
            out.print(f"[bold]group {p.group + 1}[/bold]")
        out.print(f"  {a['action']:<8} {shown(a['path'])}  ({shown(a['reason'])})")
    for path in result.outside:
        out.print(f"  [yellow]not in a verified group now, left alone[/yellow] {shown(path)}")
    moved = [a for a in data["actions"] if a["action"] != "keep"]
    if not applied:
        out.print(f"dry run: {len(moved)} files would be moved; nothing was changed (add --apply)")
    elif result.run is None:
        out.print("nothing to do")
    else:
        skipped = len(result.report.skipped) if result.report else 0
        done = len(moved)
        if deleted:
            out.print(f"run {result.run}: {done} files deleted for good, {skipped} skipped")
        else:
            out.print(
                f"run {result.run}: {done} files done, {skipped} skipped; `lookalike undo {result.run}` puts them back"
            )


def undo(
    ctx: typer.Context,
    run: Annotated[int | None, typer.Argument(help="The run to undo \\[default: the latest].")] = None,
) -> None:
    """Put back every file a run moved, byte-identical and with its modification time, and into the catalog."""
    with workspace(ctx) as ws:
        report = ws.undo(run)
    _print_report(report, "restored")


def _print_report(report: RunReport, verb: str) -> None:
    out.print(f"run {report.run}: {len(report.done)} files {verb}, {len(report.skipped)} left as they are")
    for path, why in report.skipped:
        out.print(f"  [yellow]left[/yellow] {shown(path)}: {shown(why)}")


@trash_app.command("list")
def trash_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """Runs of `resolve --apply`, newest first: their state, files by state, and bytes in the trash."""
    with workspace(ctx) as ws:
        runs = ws.trash_runs()
    if as_json:
        rows = [
            {"run": r.id, "action": r.action, "state": r.state, "created": str(r.created_at), "files": r.counts}
            | {"bytes": r.trash_bytes}
            for r in runs
        ]
        sys.stdout.write(json.dumps({"runs": rows}) + "\n")
        return
    if not runs:
        out.print("no runs")
    for r in runs:
        files = ", ".join(f"{n} {state}" for state, n in sorted(r.counts.items()))
        out.print(f"run {r.id}  {r.created_at:%Y-%m-%d %H:%M}  {r.action}  {r.state}  {files}  {r.trash_bytes:,} bytes")


def _age(text: str) -> timedelta:
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhm]?)\s*", text)
    if not found:
        raise typer.BadParameter(f"{text!r} is not an age like 30d, 12h or 45m")
    value, unit = float(found.group(1)), found.group(2) or "d"
    return timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: value})


@trash_app.command("empty")
def trash_empty(
    ctx: typer.Context,
    older_than: Annotated[str, typer.Option(help="Only runs older than this (30d, 12h, 0 for all).")] = "30d",
) -> None:
    """Delete for good the trashed files of runs older than --older-than (they can no longer be undone)."""
    age = _age(older_than)
    with workspace(ctx) as ws:
        report = ws.empty_trash(age)
    out.print(f"deleted {len(report.done)} trashed files, {len(report.skipped)} could not be deleted")
    for path, why in report.skipped:
        out.print(f"  [yellow]left[/yellow] {shown(path)}: {shown(why)}")


def distinct(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Two or more indexed files that are not duplicates.")],
) -> None:
    """Remember that these files are not duplicates of one another: `dupes` and `resolve` keep them apart."""
    with workspace(ctx) as ws:
        added = ws.distinct(paths)
    out.print(f"remembered {added} new pair{'s' if added != 1 else ''} as not duplicates")


@decisions_app.command("list")
def decisions_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decisions as JSON.")] = False,
) -> None:
    """Remembered 'not duplicates' pairs, with their ids (for `decisions forget`)."""
    with workspace(ctx) as ws:
        found = ws.decisions()
    if as_json:
        rows = [{"id": d.id, "a": d.path_a, "b": d.path_b} for d in found]
        sys.stdout.write(json.dumps({"decisions": rows}, ensure_ascii=False) + "\n")
        return
    for d in found:
        out.print(f"{d.id}  distinct  {shown(d.path_a)}  {shown(d.path_b)}")
    if not found:
        out.print("no decisions")


@decisions_app.command("forget")
def decisions_forget(
    ctx: typer.Context,
    ids: Annotated[list[int], typer.Argument(help="Ids from `decisions list`.")],
) -> None:
    """Forget remembered decisions: the pairs may be grouped again."""
    with workspace(ctx) as ws:
        n = ws.forget_decisions(ids)
    out.print(f"forgot {n} decision{'s' if n != 1 else ''}")


def register(app: typer.Typer) -> None:
    """Add these commands to the ``lookalike`` app."""
    app.command()(resolve)
    app.command()(undo)
    app.command()(distinct)
    app.add_typer(trash_app, name="trash")
    app.add_typer(decisions_app, name="decisions")
