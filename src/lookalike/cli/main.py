"""The ``lookalike`` command: thin commands over :class:`lookalike.workspace.Workspace`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from lookalike.cli.cleanup import register as register_cleanup
from lookalike.cli.common import err, out, within, workspace
from lookalike.cli.render import shown
from lookalike.config import Settings
from lookalike.errors import UsageError
from lookalike.types import Backend

app = typer.Typer(
    help="Find duplicate and similar images and videos.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
register_cleanup(app)


@app.callback()
def main(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(help="Library directory \\[env LOOKALIKE_HOME; default ~/.local/share/lookalike]."),
    ] = None,
    db: Annotated[str | None, typer.Option("--db", help="SQLAlchemy database URL \\[default: SQLite in HOME].")] = None,
    model: Annotated[
        str | None,
        typer.Option(help="efficientnet_lite0 (default), timm:NAME, torchvision:NAME, open_clip:ARCH[@TAG]."),
    ] = None,
    weights: Annotated[str | None, typer.Option(help="Local checkpoint file, or 'random'.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N \\[default: cuda when present].")] = None,
    backend: Annotated[
        Backend | None,
        typer.Option(
            help="Runtime of the image model: auto (the fastest installed; torch on CUDA), torch, onnxruntime or "
            "openvino \\[env LOOKALIKE_BACKEND; default auto]. Vectors agree across runtimes (cosine >= 0.99999)."
        ),
    ] = None,
) -> None:
    """Global options; every command reads the library in HOME."""
    try:
        ctx.obj = Settings.from_env(home=home, db_url=db, model=model, weights=weights, device=device, backend=backend)
    except UsageError as e:
        err.print(f"[red]error:[/red] {shown(e)}")
        raise typer.Exit(2) from e


@app.command()
def index(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Folders or files to index.", exists=True)],
    prune: Annotated[bool, typer.Option(help="Forget files under PATHS that no longer exist.")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Decode worker processes (0: decode in this process, without crash isolation). Default: 1 on up to "
            "2 cores, more on bigger machines.",
        ),
    ] = None,
    decode_timeout: Annotated[
        float | None,
        typer.Option(
            callback=within(0, 86_400, low_open=True),
            help="Seconds a decoder may go without progress on one file. Default: 60.",
        ),
    ] = None,
    decode_memory: Annotated[
        int | None, typer.Option(min=64, help="Memory limit of each decode process, MiB. Default: 4096.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Images per forward pass. Default: 32.")] = None,
    frame_rate: Annotated[
        float | None,
        typer.Option(callback=within(0, 60, low_open=True), help="Video frames sampled per second (up to 60)."),
    ] = None,
    follow_symlinks: Annotated[bool, typer.Option(help="Follow links that stay inside PATHS.")] = False,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="local|auto|ADDRESS",
            help="Decode and embed on a Ray cluster: 'local' (a Ray started for this run), 'auto' (the running one) "
            "or its address. Nodes read files by path (shared storage at the same path).",
        ),
    ] = None,
    ray_actors: Annotated[
        int | None, typer.Option(min=1, help="Embed actors on the Ray cluster (default: one per GPU, else 1).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Index images and videos under PATHS (only new or changed files are processed)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from lookalike.cli.render import print_report, report_dict

    if ray_actors is not None and ray is None:
        raise typer.BadParameter("needs --ray (actors run on a Ray cluster)", param_hint="--ray-actors")
    ctx.obj = ctx.obj.with_(
        workers=workers,
        decode_timeout=decode_timeout,
        decode_memory_mb=decode_memory,
        batch_size=batch_size,
        frame_rate=frame_rate,
        follow_symlinks=follow_symlinks or None,
        ray=ray,
        ray_actors=ray_actors,
    )
    with workspace(ctx, create=True) as ws:
        progress = Progress(
            TextColumn("indexing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=not err.is_terminal,
        )
        with progress:
            task = progress.add_task("index", total=None)
            try:
                report = ws.index(
                    paths,
                    prune=prune,
                    progress=lambda done, total: progress.update(task, completed=done, total=total),
                )
            except KeyboardInterrupt:
                progress.stop()
                err.print("interrupted: the files indexed so far are kept; run the same command again for the rest")
                raise typer.Exit(130) from None
        built = ws.store().info.pooling.get("frame_rate")
    if frame_rate is not None and built is not None and float(built) != frame_rate:
        err.print(
            f"[yellow]warning:[/yellow] --frame-rate {frame_rate:g} was not used: this collection samples "
            f"{float(built):g} frames a second (it was built so; index into a new --home to change it)"
        )
    if as_json:
        out.print_json(json.dumps(report_dict(report)))
    else:
        print_report(out, report)


@app.command()
def search(
    ctx: typer.Context,
    queries: Annotated[list[Path] | None, typer.Argument(help="Query images or videos.")] = None,
    text: Annotated[list[str] | None, typer.Option("--text", help="Text query (CLIP models); repeatable.")] = None,
    item: Annotated[list[int] | None, typer.Option("--id", help="Id of an indexed file; repeatable.")] = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=1000, help="Results per query.")] = 10,
    verify: Annotated[
        bool, typer.Option("--verify", help="Verify image results with local features; verified copies first.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines, one object per query.")] = False,
) -> None:
    """Find items similar to query files, texts or indexed ids (the model is loaded once for all)."""
    from lookalike.cli.render import print_query, query_json

    if not queries and not text and not item:
        err.print("[red]error:[/red] give query files, --text or --id")
        raise typer.Exit(2)
    with workspace(ctx) as ws:
        results = []
        if queries:
            results += ws.search_files(queries, k, verify)
        if text:
            results += ws.search_texts(text, k)
        for media_id in item or []:
            results.append(ws.search_media(media_id, k))
    for r in results:
        if as_json:
            sys.stdout.write(query_json(r) + "\n")
        else:
            print_query(out, r)
    if any(r.error for r in results):
        raise typer.Exit(1)


@app.command()
def dupes(
    ctx: typer.Context,
    similar: Annotated[
        bool,
        typer.Option(
            "--similar",
            help="Also list similar images (close global vectors, not verified; pairs already in one duplicate "
            "group are left out).",
        ),
    ] = False,
    similar_threshold: Annotated[
        float | None,
        typer.Option(
            callback=within(0.5, 1.0),
            help="Cosine similarity for 'similar', 0.5 to 1.0 (implies --similar) \\[default: 0.90].",
        ),
    ] = None,
    video_threshold: Annotated[
        float | None,
        typer.Option(
            callback=within(0.0, 1.0),
            help="Aligned video segment score for 'copy' \\[default: calibrated, see README].",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print groups as JSON, with the evidence per file.")] = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print groups as CSV (one row a file), for spreadsheets.")
    ] = False,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="local|auto|ADDRESS",
            help="Search the candidates on a Ray cluster ('local', 'auto' or its address): actors map the saved "
            "index file (shared storage at the same path); verification runs here.",
        ),
    ] = None,
    ray_actors: Annotated[
        int | None, typer.Option(min=1, help="Search actors on the Ray cluster (default: one per CPU).")
    ] = None,
) -> None:
    """Group duplicate images (verified with local features: the same picture, edited) and videos that share
    footage (whole copies as groups, partial overlaps as pairs, with the matched time ranges)."""
    from lookalike.cli.render import dupes_csv, dupes_json, print_dupes

    if ray_actors is not None and ray is None:
        raise typer.BadParameter("needs --ray (actors run on a Ray cluster)", param_hint="--ray-actors")
    ctx.obj = ctx.obj.with_(
        similar_threshold=similar_threshold, video_dupe_threshold=video_threshold, ray=ray, ray_actors=ray_actors
    )
    similar = similar or similar_threshold is not None
    with workspace(ctx) as ws:
        groups = ws.duplicates(similar=similar)
        settings = ws.settings
        records = ws.files({it.media_id for g in groups for it in g.items}) if as_csv else {}
    if as_csv:
        sys.stdout.write(dupes_csv(groups, records))
    elif as_json:
        sys.stdout.write(dupes_json(groups) + "\n")
    else:
        print_dupes(out, groups, settings.similar_threshold if similar else None, settings.video_dupe_threshold)


@app.command()
def explain(
    ctx: typer.Context,
    a: Annotated[Path, typer.Argument(help="First image (taken as the representative).")],
    b: Annotated[Path, typer.Argument(help="Second image.")],
    picture: Annotated[
        Path | None, typer.Option("--picture", help="Write a side-by-side picture of the matched regions here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Say whether two images are duplicates, as `dupes` decides, and on what evidence."""
    from lookalike.cli.explain_text import explanation_dict, print_explanation

    with workspace(ctx) as ws:
        expl = ws.explain(a, b, picture)
    if as_json:
        sys.stdout.write(json.dumps(explanation_dict(expl), ensure_ascii=False) + "\n")
    else:
        print_explanation(out, expl, picture)


@app.command()
def info(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print counts as JSON.")] = False,
    failed: Annotated[bool, typer.Option("--failed", help="List files that failed, with reasons.")] = False,
) -> None:
    """Show what the library holds."""
    with workspace(ctx) as ws:
        data = ws.info()
        failures = ws.failures() if failed and data["collections"] else []
    if as_json:
        if failed:
            data["failed"] = [{"path": p, "code": c, "message": m} for p, c, m in failures]
        sys.stdout.write(json.dumps(data) + "\n")
        return
    out.print(f"library: {shown(data['home'])}")
    if not data["collections"]:
        out.print("nothing indexed yet")
    for c in data["collections"]:
        counts = ", ".join(f"{k}={v}" for k, v in c.items() if k not in ("name", "model", "weights", "dim", "runtime"))
        runtimes = "+".join(c["runtime"]["runtimes"]) or "no vectors yet"
        model = f"{shown(c['model'])}, {shown(c['weights'])}, {c['dim']}-d, {runtimes}"
        out.print(f"collection {shown(c['name'])} ({model}): {counts}")
    for p, c, m in failures:
        out.print(f"  failed {shown(p)}: {c}: {shown(m)}")


@app.command()
def reindex(
    ctx: typer.Context,
    factory: Annotated[
        str | None,
        typer.Option(
            help="FAISS factory string for the items index: Flat, IVF1024,Flat, HNSW32, IVF4096,PQ128 ... "
            "\\[default: by size: Flat up to 100k vectors, then IVF; past 8 GiB of vectors, IVF with PQ128 codes]."
        ),
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="local|auto|ADDRESS",
            help="Fill the shards of an IVF index on a Ray cluster ('local', 'auto' or its address).",
        ),
    ] = None,
) -> None:
    """Rebuild the FAISS indexes from the stored vectors (choose another index type)."""
    ctx.obj = ctx.obj.with_(ray=ray)
    with workspace(ctx) as ws:
        factories = ws.reindex(factory)
    out.print(", ".join(f"{name}: {f}" for name, f in factories.items()))


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the API key every route but /healthz requires \\[env LOOKALIKE_API_KEY].", exists=True
        ),
    ] = None,
    max_upload_mb: Annotated[int | None, typer.Option(min=1, help="Largest request body, MiB [64].")] = None,
    max_in_flight: Annotated[
        int | None, typer.Option(min=1, help="Requests worked on at once; more get 503 at once [16].")
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="A name the service answers to besides loopback and HOST (the Host header); repeatable."),
    ] = None,
) -> None:
    """Serve the search API and web page (http://HOST:PORT/, API docs at /docs)."""
    from lookalike.api.app import run

    try:
        key = api_key_file.read_text(encoding="utf-8").strip() if api_key_file else None
    except (UnicodeDecodeError, OSError) as e:
        raise typer.BadParameter(f"{api_key_file} cannot be read as text: {e}", param_hint="--api-key-file") from e
    if api_key_file is not None and not key:
        raise typer.BadParameter(
            f"{api_key_file} is empty: an empty key would mean no key", param_hint="--api-key-file"
        )
    settings = ctx.obj.with_(
        api_key=key or None,
        max_upload_bytes=max_upload_mb * 1024 * 1024 if max_upload_mb else None,
        max_in_flight=max_in_flight,
        allowed_hosts=tuple(allow_host) if allow_host else None,
    )
    if settings.api_key is None and host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/yellow] serving on {host} without an API key: anyone who can reach it can search")
    if host in ("0.0.0.0", "::") and not allow_host:
        err.print(
            f"[yellow]warning:[/yellow] listening on every interface, but only requests addressed to localhost or "
            f"{host} are answered: give the name or address others use with --allow-host NAME"
        )
    out.print(f"lookalike serving {shown(settings.home)} on http://{host}:{port}/ (API docs at /docs)")
    run(settings, host, port)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Migrate the database to this version's schema."""
    from lookalike.workspace import upgrade_schema

    _, after = upgrade_schema(ctx.obj)
    out.print(f"database at migration {after}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the database's migration and the newest one this version knows."""
    from lookalike.workspace import schema_revisions

    current, head = schema_revisions(ctx.obj)
    out.print(f"database: {current or 'empty'}; this lookalike: {head}")


if __name__ == "__main__":
    app()
