"""Load test of ``lookalike serve`` on loopback: fixed request rates, latency percentiles and error counts.

The library holds 100,000 vectors: the demo corpus (real photos, edited copies and videos) indexed by the real
indexer, plus synthetic image items whose vectors are blends of the real ones (as in ``index_scale``), written
through the storage API; it is built once under ``.bench/serve_load``. The server is the real CLI
(``lookalike serve``, uvicorn, one process), started fresh for the run.

Requests are sent open-loop: request i is due at ``start + i / rate`` whatever happened to earlier ones, and its
latency is counted from when it was due, so a server that falls behind shows it (no coordinated omission). The
mix alternates uploads of real photos (decoded and embedded by the model on every request) with searches by the
id of an indexed item; an error is any status other than 200, or a request that did not complete.

``--servers`` runs the same load against other server set-ups, one after the other, each started fresh:
  * ``cli``                 ``lookalike serve`` as shipped: uploads decoded in supervised worker processes, one
                            torch and one FAISS thread per request (``api.app.run``)
  * ``decode-in-process``   the same ``api.app.run`` with ``Settings.workers=0``: uploads decoded in the server
                            process, without crash isolation (the ``serve`` command has no option for it)
  * ``default-threads``     the same app (``api.app.create_app`` under uvicorn, as ``run`` starts it) without
                            ``run``'s thread tuning: torch and FAISS keep their default threads per request

    python -m benchmarks.serve_load [--rates 10 20 40] [--seconds 60] [--vectors 100000]
        [--servers cli decode-in-process default-threads]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import describe, load_average

WORK = Path(".bench/serve_load")
TIMEOUT_S = 10.0


def build_library(vectors: int, work: Path = WORK) -> Path:
    """The library home: the demo corpus indexed, then synthetic items up to ``vectors`` vectors in all."""
    from benchmarks.corpus import build_demo
    from benchmarks.index_scale import expand
    from lookalike.config import Settings
    from lookalike.storage.locks import writer_lock
    from lookalike.storage.records import MediaRecord, VectorRecord
    from lookalike.workspace import Workspace

    home = work / f"home_{vectors}"
    done = home / "BUILT"
    if done.exists():
        return home
    media = work / "media"
    if not (media / "photos").exists():
        build_demo(media)
    settings = Settings(home=home)
    with Workspace(settings) as ws:
        ws.index([media])
        store = ws.store()
        catalog, cid, dim = store.catalog, store.info.id, store.dim
        real = np.vstack([mat for _, mat in catalog.iter_vectors(cid, ("image", "segment"), dim)])
        have = catalog.count_vectors(cid, ("image", "segment", "video"))
        rng = np.random.default_rng(0)
        extra = expand(real, max(0, vectors - have), rng)
        with writer_lock(home):
            for start in range(0, len(extra), 5000):
                batch = [
                    (
                        MediaRecord(f"/synthetic/{start + i:07d}.jpg", "image", 1, 0, "ok"),
                        [VectorRecord("image", v)],
                    )
                    for i, v in enumerate(extra[start : start + 5000])
                ]
                store.write(batch)
            store.save()
        total = catalog.count_vectors(cid, ("image", "segment", "video"))
    done.write_text(f"{total}\n")
    return home


def upload_queries(count: int = 24) -> list[bytes]:
    """Real photos as a phone would upload them: package photos, scaled and JPEG-compressed."""
    from benchmarks.corpus import package_images

    out = []
    for n, im in enumerate(list(package_images().values())[:count]):
        im = im.convert("RGB")
        scale = 640 / max(im.size)
        if scale < 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=80 + n % 10)
        out.append(buf.getvalue())
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVERS = ("cli", "decode-in-process", "default-threads")


def serve(home: Path, port: int, setup: str) -> None:
    """Run a server set-up other than the CLI's in this process (see the module docstring)."""
    from lookalike.api.app import create_app, run
    from lookalike.config import Settings

    if setup == "decode-in-process":
        run(Settings(home=home, workers=0), "127.0.0.1", port)
    elif setup == "default-threads":
        import uvicorn

        app = create_app(Settings(home=home), "127.0.0.1")
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=5)
    else:
        raise ValueError(setup)


def start_server(home: Path, port: int, setup: str = "cli") -> subprocess.Popen:
    """A server on loopback (``lookalike serve``, or another set-up of ``SERVERS``), waited for until it reports
    ready."""
    import httpx2

    if setup == "cli":
        cmd = [sys.executable, "-m", "lookalike.cli.main", "--home", str(home), "serve", "--port", str(port)]
    else:
        cmd = [sys.executable, "-m", "benchmarks.serve_load", "--serve", setup, str(home), str(port)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"lookalike serve exited: {server.stderr.read() if server.stderr else ''}")
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json().get("ready"):
                return server
        except httpx2.HTTPError:
            pass
        time.sleep(0.25)
    server.kill()
    raise RuntimeError("lookalike serve did not become ready in 120 s")


async def _one(client, kind: str, payload, due: float, out: list) -> None:
    delay = due - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    status = 0  # no answer: a timeout or a refused connection
    try:
        if kind == "upload":
            r = await client.post("/api/search/upload?k=10", files={"file": ("query.jpg", payload, "image/jpeg")})
        else:
            r = await client.get(f"/api/search/similar/{payload}?k=10")
        status = r.status_code if r.status_code != 200 or len(r.json()["hits"]) == 10 else -1
    except Exception:  # counted as an error of the run (status 0)
        status = 0
    out.append((kind, time.perf_counter() - due, status))


async def run_rate(base: str, rate: float, seconds: float, uploads: list[bytes], ids: np.ndarray) -> list:
    """Send ``rate`` requests/s for ``seconds`` open-loop; returns (kind, latency s, status) per request (status 0:
    no answer; -1: an answer with fewer than k hits)."""
    import httpx2

    results: list = []
    limits = httpx2.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx2.AsyncClient(base_url=base, timeout=TIMEOUT_S, limits=limits) as client:
        # warm the connection pool and the server's caches outside the measurement
        await asyncio.gather(*(_one(client, "upload", uploads[i], time.perf_counter(), []) for i in range(4)))
        n = int(rate * seconds)
        t0 = time.perf_counter() + 0.2
        rng = np.random.default_rng(int(rate))
        tasks = []
        for i in range(n):
            kind = "upload" if i % 2 == 0 else "similar"
            payload = uploads[i % len(uploads)] if kind == "upload" else int(rng.choice(ids))
            tasks.append(asyncio.create_task(_one(client, kind, payload, t0 + i / rate, results)))
        await asyncio.gather(*tasks)
    return results


def summarise(rate: float, results: list) -> list[dict]:
    """One row per request kind and one for all: count, p50/p90/p99/max latency in ms, errors (of them 503s)."""
    rows = []
    for kind in ("upload", "similar", "all"):
        sel = [r for r in results if kind == "all" or r[0] == kind]
        lat = np.array([r[1] for r in sel]) * 1000
        rows.append(
            {
                "rate": rate,
                "kind": kind,
                "requests": len(sel),
                "p50": float(np.percentile(lat, 50)),
                "p90": float(np.percentile(lat, 90)),
                "p99": float(np.percentile(lat, 99)),
                "max": float(lat.max()),
                "errors": sum(r[2] != 200 for r in sel),
                "busy": sum(r[2] == 503 for r in sel),
            }
        )
    return rows


def _stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGINT)
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        server.kill()


def _print_table(rows: list[dict]) -> None:
    print("| req/s | requests | p50 ms | p90 ms | p99 ms | max ms | errors | of them 503 (busy) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        label = f"{r['rate']:g}" + ("" if r["kind"] == "all" else f" ({r['kind']})")
        print(
            f"| {label} | {r['requests']} | {r['p50']:.0f} | {r['p90']:.0f} | {r['p99']:.0f} | {r['max']:.0f} "
            f"| {r['errors']} | {r['busy']} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 20, 40])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=["cli"])
    parser.add_argument("--serve", nargs=3, metavar=("SERVER", "HOME", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[1]), int(args.serve[2]), args.serve[0])
        return
    print(describe(), flush=True)

    t = time.perf_counter()
    home = build_library(args.vectors)
    print(f"library: {home} ({(home / 'BUILT').read_text().strip()} vectors; ready in {time.perf_counter() - t:.0f} s)")
    from lookalike.config import Settings
    from lookalike.workspace import Workspace

    with Workspace(Settings(home=home)) as ws:
        store = ws.store()
        ids = np.array([m.id for m in store.catalog.known_media(store.info.id).values() if m.status == "ok"])
    uploads = upload_queries()
    tables = {}
    for name in args.servers:
        port = _free_port()
        server = start_server(home, port, name)
        rows = []
        try:
            for rate in args.rates:
                results = asyncio.run(run_rate(f"http://127.0.0.1:{port}", rate, args.seconds, uploads, ids))
                rows += summarise(rate, results)
                r = rows[-1]
                print(
                    f"  {name}, {rate:g} req/s: p50 {r['p50']:.0f} ms, p99 {r['p99']:.0f} ms, errors {r['errors']}",
                    flush=True,
                )
        finally:
            _stop(server)
        tables[name] = rows
    for name, rows in tables.items():
        print(
            f"\nserver: {name}; {args.vectors:,} vectors, {args.seconds:g} s per rate, open-loop, "
            f"loopback, {os.cpu_count()} cores (client on the same machine)"
        )
        _print_table(rows)
    print(f"\n{load_average()} at end")


if __name__ == "__main__":
    main()
