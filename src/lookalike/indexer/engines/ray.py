"""The Ray engine: a Ray Data pipeline decodes and embeds on the cluster; results stream back to the driver.

The driver keeps what must stay single (discovery, planning, the writer lock, commits, FAISS saves: see
``indexer/pipeline.py``) and cuts videos into parts from their headers; the cluster reads files by path (shared
storage mounted at the same path on every node), decodes them in CPU actors that each hold one supervised decode
process (a crash, hang or memory blow-up fails that file only, with the local engine's codes), and embeds batches
in an actor pool (one GPU per actor where nodes have GPUs, CPU actors otherwise). ``iter_batches`` streams the
vectors back with Ray Data's back-pressure.

Sized for throughput (profiled on 2 cores, benchmarks/RESULTS.md): the input blocks are built here
(``from_blocks``: no metadata tasks) with each video part alone and images 16 to a block, so that a decode actor
call does a block's worth of work and embed batches fill up; no stage runs as ``num_cpus=0`` tasks, which Ray
would start a fresh worker process for each.

A Ray worker that dies is restarted by Ray and its task run again, so a part may be delivered twice: the driver
keeps each image once and each video frame once (by its time), which makes a retried task harmless.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from lookalike.config import Settings
from lookalike.errors import ClusterError, LookalikeError, UsageError
from lookalike.indexer.decode_pool import DecodeFn
from lookalike.indexer.describe import MediaDescriptor
from lookalike.indexer.embed import Embedded, failed, image_done, video_done
from lookalike.indexer.embedders.base import Embedder
from lookalike.indexer.engines import RAY_INSTALL_HINT, Engine
from lookalike.indexer.engines.ray_stages import DecodeStage, EmbedStage, input_blocks, pack, unpack, video_parts
from lookalike.indexer.file_decoding import Failed, FrameChunk, ImageItem, Task, VideoEnd, decode_job
from lookalike.indexer.plan import Job
from lookalike.indexer.video_decode import VideoMeta

BLOCK_FILES = 16  # images per input block: one decode actor call (a video part is a block of its own)
PROBE_SECONDS = 5.0  # a head node that does not accept a connection within this is not there


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        UsageError: Ray is not installed (how to install it is said).
    """
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise UsageError(RAY_INSTALL_HINT) from e
    return ray


def connect(address: str) -> bool:
    """Join the Ray cluster at ``address`` (``auto``: the running one; ``local``: start one for this run) unless
    this process already did; returns whether this call connected (and so should disconnect).

    Raises:
        ClusterError: no cluster at the address.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    unreachable = _unreachable(address)
    if unreachable is not None:  # ray.init would retry for ever, logging every few seconds
        raise ClusterError(f"cannot join the Ray cluster at {address}: {unreachable}")
    quiet = {"include_dashboard": False, "logging_level": logging.WARNING, "configure_logging": True}
    try:
        ray.init(address=address, **quiet)  # "local" starts one even where another cluster runs (None would join it)
    except (ConnectionError, RuntimeError, ValueError) as e:
        if address == "auto" and isinstance(e, ConnectionError):  # Ray's text names flags lookalike does not have
            raise ClusterError(
                "cannot join the Ray cluster at auto: no running Ray cluster found on this machine (start one with "
                "`ray start --head`, set RAY_ADDRESS, or use --ray local)"
            ) from e
        raise ClusterError(f"cannot join the Ray cluster at {address}: {str(e).splitlines()[0]}") from e
    return True


@contextmanager
def joined(address: str) -> Iterator[Any]:
    """The ``ray`` module, joined to the cluster at ``address`` for the ``with`` block (and left at its end when
    this call joined it: see :func:`connect`).

    Raises:
        UsageError: Ray is not installed.
        ClusterError: no cluster at the address.
    """
    ray = import_ray()
    started = connect(address)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _unreachable(address: str) -> str | None:
    """Why nothing answers at the head node's ``host:port`` that ``address`` names (``auto``: the cluster this
    machine last started or ``RAY_ADDRESS``), or None when something does or the address is not of that form
    (``local``; ``ray://`` client addresses, whose client has its own time-out; an ``auto`` with no cluster
    known, which ``ray.init`` refuses at once)."""
    target: str | None = address
    if address == "auto":
        from ray._private.services import canonicalize_bootstrap_address

        try:
            target = canonicalize_bootstrap_address(address)
        except (ConnectionError, ValueError):
            return None
    if target is None or "://" in target:
        return None
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS).close()
    except OSError as e:
        return f"nothing answers at {target} ({e.strerror or e})"
    return None


def task_cause(error: BaseException) -> LookalikeError | None:
    """The lookalike error that a Ray task raised, through Ray's wrappers."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, LookalikeError):
            return current
        seen.add(id(current))
        inner = getattr(current, "cause", None)
        current = inner if isinstance(inner, BaseException) else current.__cause__
    return None


@dataclass
class _Video:
    """A video's parts as they come back: frames keyed by time (a retried part repeats them), ends per part."""

    parts: int
    frames: dict[float, np.ndarray] = field(default_factory=dict)
    ends: dict[int, VideoEnd] = field(default_factory=dict)

    def complete(self) -> bool:
        return len(self.ends) == self.parts and len(self.frames) == sum(e.frames for e in self.ends.values())


class _Gather:
    """Turns (part, parts, message, vectors) rows, in any order and possibly repeated, into finished files."""

    def __init__(self, jobs: Sequence[Job], video: MediaDescriptor) -> None:
        self.by_index = {j.index: j for j in jobs}
        self.video = video
        self.done: set[int] = set()
        self.videos: dict[int, _Video] = {}

    def add(self, part: int, parts: int, message: Any, vectors: np.ndarray | None) -> Iterator[Embedded]:
        """Take one row; yields the file it completes, if any."""
        idx = message.job
        if idx in self.done:
            return
        job = self.by_index[idx]
        if isinstance(message, Failed):
            yield self._finish(idx, failed(job, message))
        elif isinstance(message, ImageItem):
            assert vectors is not None
            yield self._finish(idx, image_done(job, message.meta, vectors))
        else:
            buf = self.videos.setdefault(idx, _Video(parts))
            if isinstance(message, FrameChunk):
                assert vectors is not None
                buf.frames.update(zip(message.times.tolist(), vectors, strict=True))
            elif isinstance(message, VideoEnd):
                buf.ends[part] = message
            if buf.complete():
                yield self._finish(idx, self._video_done(job, buf))

    def _video_done(self, job: Job, buf: _Video) -> Embedded:
        if not buf.frames:
            return failed(job, Failed(job.index, "no_frames", "the video stream holds no decodable frame"))
        times = np.array(sorted(buf.frames))
        meta: VideoMeta = buf.ends[0].meta
        return video_done(job, meta, len(times), times, np.vstack([buf.frames[t] for t in times]), self.video)

    def _finish(self, idx: int, done: Embedded) -> Embedded:
        self.done.add(idx)
        self.videos.pop(idx, None)
        return done


class RayEngine(Engine):
    """Decodes and embeds on a Ray cluster (``settings.ray``: an address, ``auto`` or ``local``)."""

    def __init__(self, settings: Settings, embedder: Callable[[], Embedder], decode: DecodeFn = decode_job) -> None:
        super().__init__()
        import_ray()
        self.settings = settings
        self._embedder = embedder
        self._decode = decode

    def embed(self, jobs: Sequence[Job], video: MediaDescriptor) -> Iterator[Embedded]:
        """Run the pipeline over ``jobs``; yields each file as its last part comes back.

        Raises:
            SharedStorageError: a node cannot see a file's folder.
            ClusterError: the cluster cannot be joined, or the pipeline failed.
        """
        ray = import_ray()
        embedder = self._embedder()  # checks the collection's model and weights here, before the cluster starts
        started = connect(self.settings.ray or "local")
        gather = _Gather(jobs, video)
        try:
            for batch in self._dataset(jobs, video, embedder).iter_batches(batch_size=None, batch_format="numpy"):
                for part, parts, message, vectors, runtime in unpack(batch):
                    if runtime is not None:
                        self.runtimes.add(runtime)
                    yield from gather.add(part, parts, message, vectors)
        except ray.exceptions.RayError as e:
            cause = task_cause(e)
            if cause is not None:
                raise cause from None
            raise ClusterError(f"the Ray pipeline failed: {str(e).strip().splitlines()[0]}") from e
        finally:
            if started:
                ray.shutdown()
        lost = [j for j in jobs if j.index not in gather.done]
        if lost:
            raise ClusterError(f"the cluster returned no result for {len(lost)} files (first: {lost[0].path})")

    def _dataset(self, jobs: Sequence[Job], video: MediaDescriptor, embedder: Embedder) -> Any:
        import pyarrow as pa

        ray = import_ray()
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.execution_options.preserve_order = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        s = self.settings
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        actors = s.ray_actors or max(1, gpus)
        # an embed actor holds a CPU on a GPU node too (Ray reserves one for it): the decoders get what is left, or
        # the embed pool would wait for a CPU forever
        decoders = s.workers or max(1, int(resources.get("CPU", 1)) - actors)
        per_actor = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": 1}
        s = replace(s, db_url=None, api_key=None)  # what the actors need of the settings: no database password
        tasks = [Task(j.index, j.path, j.kind) for j in jobs]
        blocks = input_blocks(video_parts(tasks, s.video_part_seconds, s.decode_timeout), BLOCK_FILES)
        rows = ray.data.from_blocks([pa.table({"payload": pa.array(pack(b)["payload"], pa.binary())}) for b in blocks])
        return rows.map_batches(
            DecodeStage,
            fn_constructor_kwargs={
                "settings": s,
                "pre": embedder.preprocess,
                "video": video,
                "decode": self._decode,
            },
            batch_size=None,
            compute=ray.data.ActorPoolStrategy(size=decoders),
            num_cpus=1,
        ).map_batches(
            EmbedStage,
            fn_constructor_kwargs={"settings": s, "video": video, "device": None if gpus else s.device},
            batch_size=s.batch_size,
            compute=ray.data.ActorPoolStrategy(size=actors),
            **per_actor,
        )
