"""One typed settings object, built by the front doors and passed down explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lookalike.errors import UsageError
from lookalike.types import Backend

DEFAULT_MODEL = "efficientnet_lite0"


def default_home() -> Path:
    """The library directory used when neither ``--home`` nor ``LOOKALIKE_HOME`` is given."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "lookalike"


_FLAGS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


@dataclass(frozen=True)
class Settings:
    """Everything a run of lookalike can be told.

    Attributes:
        home: the library directory (database, FAISS indexes, manifests).
        db_url: a SQLAlchemy URL; None means SQLite at ``<home>/lookalike.db``.
        model: model spec (``efficientnet_lite0``, ``timm:NAME``, ``torchvision:NAME``, ``open_clip:ARCH@TAG``).
        weights: a local checkpoint for the model, ``random`` for untrained weights (plumbing tests),
            or None for the model's default weights.
        device: ``cpu``, ``cuda``, ``cuda:N`` or None to pick CUDA when present.
        backend: the runtime the image network runs on: ``torch``, ``onnxruntime``, ``openvino`` (the network
            exported to ONNX once, cached under ``<home>/models`` and checked against torch before first use), or
            ``auto``: the fastest installed on this CPU (torch on CUDA). Vectors agree across runtimes within the
            tolerance recorded with the collection, so a library indexed with one can be searched with another.
        model_cache: where exported model graphs are cached; None means ``<home>/models`` (libraries can share one).
        inference_threads: threads of each ONNX Runtime or OpenVINO session (0: the runtime's default, every core);
            ``lookalike serve`` runs 1, as it runs torch, so that concurrent requests use the cores side by side.
        batch_size: images per forward pass.
        gpu_jpeg: on CUDA, decode still JPEGs on the GPU (nvJPEG, in batches, overlapping the model); other
            formats, and a JPEG nvJPEG refuses, are decoded on the CPU. Off unless ``LOOKALIKE_GPU_JPEG=1``: on a
            16-core H200 host the CPU decode workers indexed 16-31% faster, and they give the CPU path's exact
            pictures (the GPU path's, a level off and trimmed of borders found on its own resized copy, got
            another box on grainy, nearly plain photos: 58-70 of 4,000 vectors under cosine 0.995). For a host
            whose cores starve the GPU.
        workers: decode worker processes (supervised: a decoder crash, hang or memory blow-up fails only that
            file); 0 decodes in a thread of the indexing process, unprotected; None picks by machine (see
            ``indexer.device.decode_workers``).
        decode_timeout: seconds a decode worker may go without progress on one file before it is stopped (wall
            clock, while the model shares the cores with it).
        decode_memory_mb: address-space limit of each decode worker process in MiB (0: none).
        ray: the Ray cluster that does the heavy work: its address, ``auto`` (the running cluster) or ``local`` (a
            Ray started for the run); None runs everything here. ``index`` decodes and embeds there (``workers``
            then counts decode actors; None: the cluster's CPUs less the embed actors'), ``reindex`` fills the
            shards of an IVF index there, ``dupes`` searches its candidates there.
        ray_actors: actors on the Ray cluster: for ``index``, embed actors (None: one per GPU, or one CPU actor on a
            cluster without GPUs); for ``dupes``, search actors (None, and at most: one per free CPU).
        video_part_seconds: videos are decoded in parts this long on a Ray cluster, side by side.
        frame_rate: video frames sampled per second.
        segment_seconds: length of the windows frame vectors are pooled into.
        trim_borders: cut black bars off video frames before embedding (new collections).
        trim_images: cut uniform borders of any colour (letterbox, mat, canvas) off pictures before embedding (new
            collections).
        mirror: make video frame vectors flip-invariant (new collections; twice the video inference).
        grayscale: embed video frames in grayscale (new collections): colour-invariant video vectors; off by
            default, since on the benchmark's dev split it made unrelated videos more alike than it helped copies.
        max_image_pixels: images with more pixels are refused (``too_many_pixels``) before decoding.
        max_image_bytes: image files larger than this are refused (``too_large``) before reading.
        follow_symlinks: follow links that stay inside the indexed root.
        similar_threshold: cosine similarity at which two images are called similar (``dupes --similar``: not
            verified; duplicates are decided by local-feature verification, see ``search/image_dupes.py``).
        video_dupe_threshold: aligned segment score above which two videos are called copies.
        api_key: when set, every route of the HTTP service but ``/healthz`` (and the page's static shell)
            needs it, in the ``X-API-Key`` header or the session cookie the page sets.
        max_upload_bytes: the largest request body the HTTP service reads (413 past it, counted as it streams).
        max_in_flight: requests the HTTP service works on at once; more are answered 503 at once.
        upload_stall_s: an upload that sends nothing for this many seconds is refused (408) ...
        upload_min_rate: ... as is one slower than this many bytes a second after its first 5 seconds.
        allowed_hosts: the names the HTTP service answers to (the ``Host`` header) besides the loopback ones
            (``localhost``, ``127.0.0.1``, ``::1``) and the address it listens on: a web page on another site that
            makes its own name resolve to this machine (DNS rebinding) is refused.
    """

    home: Path = field(default_factory=default_home)
    db_url: str | None = None
    model: str = DEFAULT_MODEL
    weights: str | None = None
    device: str | None = None
    backend: Backend = Backend.AUTO
    model_cache: Path | None = None
    inference_threads: int = 0
    batch_size: int = 32
    gpu_jpeg: bool = False
    workers: int | None = None
    decode_timeout: float = 60.0
    decode_memory_mb: int = 4096
    ray: str | None = None
    ray_actors: int | None = None
    video_part_seconds: float = 60.0
    frame_rate: float = 1.0
    segment_seconds: float = 2.0
    trim_borders: bool = True
    trim_images: bool = True
    mirror: bool = True
    grayscale: bool = False
    max_image_pixels: int = 64_000_000
    max_image_bytes: int = 512 * 1024 * 1024
    follow_symlinks: bool = False
    similar_threshold: float = 0.90
    video_dupe_threshold: float = 0.70
    api_key: str | None = field(default=None, repr=False)
    max_upload_bytes: int = 64 * 1024 * 1024
    max_in_flight: int = 16
    upload_stall_s: float = 10.0
    upload_min_rate: int = 10_240
    allowed_hosts: tuple[str, ...] = ()

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the catalog database."""
        return self.db_url or f"sqlite:///{self.home / 'lookalike.db'}"

    @property
    def models_dir(self) -> Path:
        """The folder of exported model graphs."""
        return self.model_cache or self.home / "models"

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed; None values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Settings from ``LOOKALIKE_*`` environment variables, then explicit overrides (None = unset).

        Raises:
            UsageError: ``LOOKALIKE_BACKEND`` names no backend, or ``LOOKALIKE_GPU_JPEG`` is not a yes or no.
        """
        env = os.environ
        values: dict[str, Any] = {}
        if env.get("LOOKALIKE_HOME"):
            values["home"] = Path(env["LOOKALIKE_HOME"])
        for key, name in (
            ("db_url", "LOOKALIKE_DB"),
            ("model", "LOOKALIKE_MODEL"),
            ("device", "LOOKALIKE_DEVICE"),
            ("backend", "LOOKALIKE_BACKEND"),
            ("model_cache", "LOOKALIKE_MODEL_CACHE"),
            ("weights", "LOOKALIKE_WEIGHTS"),
            ("api_key", "LOOKALIKE_API_KEY"),
        ):
            if env.get(name):
                values[key] = env[name]
        if env.get("LOOKALIKE_GPU_JPEG"):
            flag = env["LOOKALIKE_GPU_JPEG"].strip().lower()
            if flag not in _FLAGS:
                raise UsageError(f"LOOKALIKE_GPU_JPEG={flag!r}: use 1 or 0 (true/false, yes/no, on/off)")
            values["gpu_jpeg"] = _FLAGS[flag]
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "backend" in values:
            try:
                values["backend"] = Backend(values["backend"])
            except ValueError as e:
                known = ", ".join(b.value for b in Backend)
                bad = values["backend"]
                raise UsageError(f"unknown backend {bad!r} (LOOKALIKE_BACKEND); use one of: {known}") from e
        for key in ("home", "model_cache"):
            if key in values:
                values[key] = Path(values[key]).expanduser()
        return cls(**values)
