"""Images per second of the local engine vs ``index --ray`` on the same corpus and machine, and per embed actor.

The last table measures each embed actor on its own: the product's ``EmbedStage`` in 1..N Ray actors, fed the
corpus already decoded (by the product's ``decode_job``) in batches of ``batch_size``, all actors at once; each
actor's images/s is its images over the run's wall clock (decoding is not part of it).

    python -m benchmarks.ray_scale [--count 200] [--actors 1 2] [--photos DIR]

Every row indexes the same photo corpus (``benchmarks.throughput.photo_corpus``) into a fresh library with
``Workspace.index``: the local engine; Ray started for the run (``--ray``, start-up included); and a Ray already
running (``--ray auto``) with 1..N embed actors (decode actors take the other CPUs). On a GPU machine each embed
actor takes one GPU. Ray needs a loopback-only network namespace on these machines: run as root, the script
re-executes itself inside one (``unshare -n``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import describe
from benchmarks.throughput import photo_corpus
from lookalike.config import Settings
from lookalike.workspace import Workspace


def _loopback_only() -> bool:
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return [line.split(":")[0].strip() for line in lines] == ["lo"]


def _run(corpus: Path, work: Path, name: str, **changes) -> float:
    home = work / name
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings(home=home, model_cache=work / "models", **changes)
    with Workspace(settings) as ws:
        started = time.perf_counter()
        report = ws.index([corpus])
        seconds = time.perf_counter() - started
    assert report.new == report.images + report.copied and not report.failed, report
    return report.new / seconds


def _actor_rates(ray, corpus: Path, work: Path, actors: int, gpus: int, rounds: int = 2) -> list[float]:
    """Each of ``actors`` embed actors' images/s, all fed decoded batches of the corpus at once (``rounds`` passes
    after one warm-up batch each); each actor takes one GPU where the cluster has ``gpus``."""
    from dataclasses import replace

    from lookalike.indexer.describe import MediaDescriptor
    from lookalike.indexer.embedders.registry import create_embedder
    from lookalike.indexer.engines.ray_stages import EmbedStage, pack
    from lookalike.indexer.file_decoding import DecodeLimits, ImageItem, Task, decode_job
    from lookalike.types import MediaKind

    settings = Settings(home=work / "actor-rate", model_cache=work / "models")
    pre = create_embedder(settings.model, settings.weights, "cpu", settings.backend, settings.models_dir).preprocess
    limits = DecodeLimits(settings.max_image_pixels, settings.max_image_bytes, settings.batch_size)
    paths = sorted(corpus.iterdir())
    items = [
        m
        for i, path in enumerate(paths)
        for m in decode_job(Task(i, path, MediaKind.IMAGE), pre, limits)
        if isinstance(m, ImageItem)
    ]
    size = settings.batch_size
    batches = [pack([(0, 1, m) for m in items[i : i + size]]) for i in range(0, len(items), size)]
    stage = ray.remote(**({"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": 1}))(EmbedStage)
    device = None if gpus else "cpu"  # as the engine does: an actor on a GPU embeds on its GPU
    pool = [stage.remote(replace(settings, db_url=None), MediaDescriptor(), device) for _ in range(actors)]
    ray.get([a.__call__.remote(batches[0]) for a in pool])  # start-up and the first pass, not counted
    started = time.perf_counter()
    last = {[a.__call__.remote(b) for b in batches * rounds][-1]: n for n, a in enumerate(pool)}  # in order per actor
    finished = [0.0] * actors
    waiting = list(last)
    while waiting:
        ready, waiting = ray.wait(waiting, num_returns=1)
        finished[last[ready[0]]] = time.perf_counter() - started
    for a in pool:
        ray.kill(a)
    return [len(items) * rounds / seconds for seconds in finished]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lookalike-ray-scale")
    parser.add_argument("--photos", type=Path, help="index this folder of photos instead of the photo corpus")
    args = parser.parse_args()
    if not _loopback_only() and os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"):
        cmd = shlex.join([sys.executable, "-m", "benchmarks.ray_scale", *sys.argv[1:]])
        sys.exit(subprocess.call(["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {cmd}"]))
    import ray

    print(describe())
    if not _loopback_only():
        print("network: Ray runs on this machine's own interfaces (no loopback-only namespace: not root, or no ip)")
    corpus = args.photos or photo_corpus(args.work / f"images{args.count}", count=args.count)
    n = len(list(corpus.iterdir()))
    _run(corpus, args.work, "warm-up")  # exports the model graph once, warms the page cache
    rows = [("local engine (default)", "-", _run(corpus, args.work, "local"))]
    rows.append(("--ray local (Ray started for the run)", "1", _run(corpus, args.work, "ray-local", ray="local")))
    ray.init(address="local", include_dashboard=False, logging_level="WARNING")
    gpus = int(ray.cluster_resources().get("GPU", 0))
    counts = [a for a in args.actors if not gpus or a <= gpus]  # one embed actor per GPU at most
    if len(counts) < len(args.actors):
        print(f"not run: {sorted(set(args.actors) - set(counts))} embed actors (more than the {gpus} GPUs)")
    for actors in counts:
        rate = _run(corpus, args.work, f"ray-{actors}", ray="auto", ray_actors=actors)
        rows.append((f"--ray auto (running Ray), {'GPU' if gpus else 'CPU'} actors", str(actors), rate))
    per_actor = [(actors, _actor_rates(ray, corpus, args.work, actors, gpus)) for actors in counts]
    ray.shutdown()
    what = f"photos from {corpus}" if args.photos else "photos and edited copies"
    print(f"corpus: {n} {what}; default model efficientnet_lite0, default backend; GPUs in the cluster: {gpus}")
    print("| engine | embed actors | images/s | images/s per actor |")
    print("|---|---|---|---|")
    for name, actors, rate in rows:
        per = f"{rate / int(actors):.1f}" if actors != "-" else "-"
        print(f"| {name} | {actors} | {rate:.1f} | {per} |")
    print()
    print("| embed actors (fed decoded batches) | images/s, all actors | images/s of each actor |")
    print("|---|---|---|")
    for actors, rates in per_actor:
        print(f"| {actors} | {sum(rates):.1f} | {', '.join(f'{r:.1f}' for r in rates)} |")


if __name__ == "__main__":
    main()
