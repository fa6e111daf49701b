"""Which runtime runs an embedder's network: the one asked for, or for ``auto`` the fastest installed here.

``auto`` order, fastest first, as measured on a 2-core AVX-512 CPU by ``benchmarks/backends.py`` (RESULTS.md, issue
14): OpenVINO, then ONNX Runtime, then torch. On CUDA the network stays on torch (fp16 autocast).
"""

from __future__ import annotations

from pathlib import Path

from lookalike.errors import UsageError
from lookalike.indexer.embedders.base import Embedder, TorchEmbedder
from lookalike.indexer.embedders.graph_cache import GraphCache
from lookalike.indexer.embedders.graph_embedder import GraphEmbedder
from lookalike.indexer.embedders.graph_runtimes import installed
from lookalike.indexer.embedders.weights import RANDOM_WEIGHTS
from lookalike.types import Backend

FASTEST_FIRST = (Backend.OPENVINO, Backend.ONNXRUNTIME, Backend.TORCH)
PACKAGES = {Backend.ONNXRUNTIME: "onnxruntime onnx onnxscript", Backend.OPENVINO: "openvino onnx onnxscript"}


def resolve_backend(requested: Backend | str, on_cuda: bool) -> Backend:
    """The runtime to use: ``auto`` picks the fastest installed one (torch on CUDA). ``onnxruntime`` and ``openvino``
    run on the CPU (``create_embedder`` puts their torch reference there unless a device was asked for).

    Raises:
        UsageError: the name is not a backend, the runtime asked for is not installed, or CUDA was asked for with a
            CPU runtime.
    """
    try:
        backend = Backend(requested)
    except ValueError as e:
        raise UsageError(f"unknown backend {requested!r}; use one of: {', '.join(b.value for b in Backend)}") from e
    if backend == Backend.AUTO:
        return Backend.TORCH if on_cuda else next(b for b in FASTEST_FIRST if installed(b))
    if backend != Backend.TORCH and on_cuda:
        raise UsageError(f"--backend {backend} runs on the CPU: leave out --device cuda, or use --backend torch")
    if not installed(backend):
        raise UsageError(f"--backend {backend} needs the packages {PACKAGES[backend]} (pip install them)")
    return backend


def on_backend(embedder: Embedder, backend: Backend | str, models: Path | None, threads: int = 0) -> Embedder:
    """``embedder`` with its network run by ``backend`` (resolved first) on ``threads`` threads (0: the runtime's
    default); graphs are cached in ``models`` (None: no cache, so torch). Untrained (``random``) weights stay on
    torch: every build draws other weights."""
    chosen = resolve_backend(backend, embedder.device_type == "cuda")
    if chosen == Backend.TORCH or models is None or not isinstance(embedder, TorchEmbedder):
        return embedder
    if embedder.weights_tag == RANDOM_WEIGHTS:  # untrained weights differ per build: no graph can be cached
        return embedder
    return GraphEmbedder(embedder, chosen, GraphCache(models), threads)
