"""Sessions that run an exported ONNX graph on a CPU runtime: ONNX Runtime or OpenVINO.

Each takes a float32 (n, 3, size, size) batch, already normalised, and returns the (n, dim) features. The runtime
libraries are imported when a session is opened, never at import time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lookalike.types import Backend

# OpenVINO's performance hint for batches. THROUGHPUT splits the cores into streams, and a batch is split over them
# (one request each, run at once): beside a decode process that takes a core now and then, one stream stalls instead
# of every thread of a single request (benchmarks/throughput.py, RESULTS.md issue 14). A batch too small to split
# (a query's picture) runs on the model compiled with LATENCY, on every thread the session has (`serve` gives each
# session one thread: one stream, so nothing is split there). benchmarks/backends.py prints both hints.
OPENVINO_HINT = "THROUGHPUT"
SPLIT_ROWS = 2  # rows per infer request from which a batch is split over the streams


class GraphSession(Protocol):
    """A compiled graph."""

    precision: str

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Features of a normalised float32 batch."""
        ...


_DISTRIBUTIONS = {
    Backend.ONNXRUNTIME: ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml"),
    Backend.OPENVINO: ("openvino",),
}


def runtime_version(backend: Backend) -> str:
    """``openvino-2026.4.1``: the runtime and its installed version (read without importing it), which keys what
    is remembered about it: another version may compute otherwise."""
    for name in _DISTRIBUTIONS.get(backend, ()):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return f"{backend}-{metadata.version(name)}"
    return str(backend)


def installed(backend: Backend) -> bool:
    """Whether a runtime can be used here: its library and the ONNX exporter's (onnxscript) are installed."""
    module = {Backend.ONNXRUNTIME: "onnxruntime", Backend.OPENVINO: "openvino"}.get(backend)
    if module is None:
        return backend == Backend.TORCH
    return all(importlib.util.find_spec(m) is not None for m in (module, "onnxscript", "onnx"))


class OnnxRuntimeSession:
    """ONNX Runtime's CPU execution provider, all graph optimisations on."""

    def __init__(self, graph: Path, precision: str = "f32", threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # errors only: its warnings about unused initialisers are not ours to act on
        self._session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self.precision = precision

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Features of a normalised float32 batch."""
        out: np.ndarray = self._session.run(None, {self._input: batch})[0]
        return out


class OpenVinoSession:
    """OpenVINO on the CPU: a batch is split over the compiled model's optimal number of infer requests (its
    streams, with the throughput hint), which run at once; a smaller batch runs as one request of the model compiled
    with the latency hint. Compiled blobs are cached beside the graph.

    The product runs f32 only; ``precision`` exists for ``benchmarks/backends.py`` (bf16 misses the tolerance).
    """

    def __init__(self, graph: Path, precision: str = "f32", threads: int = 0, hint: str = OPENVINO_HINT) -> None:
        import openvino as ov

        self._core = ov.Core()
        self._graph = graph
        self._config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": hint,
            "CACHE_DIR": str(graph.parent / "openvino"),
        }
        if threads:
            self._config["INFERENCE_NUM_THREADS"] = threads
        self._compiled = self._core.compile_model(str(graph), "CPU", self._config)
        self._requests = max(1, int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._latency: Any = None  # compiled with the latency hint when a small batch first comes
        self._lock = threading.Lock()
        self._local = threading.local()  # infer requests serve one thread at a time (the service has several)
        self.precision = precision

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Features of a normalised float32 batch: its parts run at once, one infer request each, or a batch too
        small to split (under :data:`SPLIT_ROWS` rows per request) as one request on the latency-compiled model."""
        if self._requests > 1 and len(batch) < SPLIT_ROWS * self._requests:
            return self._run_whole(batch)
        requests = getattr(self._local, "requests", None)
        if requests is None:
            requests = self._local.requests = [self._compiled.create_infer_request() for _ in range(self._requests)]
        parts = [part for part in np.array_split(batch, len(requests)) if len(part)]
        started = []
        failure: BaseException | None = None
        try:
            for request, part in zip(requests, parts, strict=False):
                request.start_async({0: part})
                started.append(request)
        finally:
            for request in started:  # none is left running into the next batch, whatever failed
                try:
                    request.wait()
                except Exception as e:
                    failure = failure or e
        if failure is not None:
            raise failure
        # each request reuses its output buffer on its next run: copy
        return np.concatenate([np.array(r.get_output_tensor(0).data, dtype=np.float32, copy=True) for r in started])

    def _run_whole(self, batch: np.ndarray) -> np.ndarray:
        """``batch`` as one request of the model compiled with the latency hint (every thread on it)."""
        request = getattr(self._local, "whole", None)
        if request is None:
            with self._lock:
                if self._latency is None:
                    config = {**self._config, "PERFORMANCE_HINT": "LATENCY"}
                    self._latency = self._core.compile_model(str(self._graph), "CPU", config)
            request = self._local.whole = self._latency.create_infer_request()
        out = request.infer({0: batch})[0]
        return np.array(out, dtype=np.float32, copy=True)  # the request reuses its output buffer on the next call


def open_session(backend: Backend, graph: Path, precision: str = "f32", threads: int = 0) -> GraphSession:
    """Compile ``graph`` on ``backend`` (``onnxruntime`` or ``openvino``) at ``precision``."""
    if backend == Backend.OPENVINO:
        return OpenVinoSession(graph, precision, threads)
    if backend == Backend.ONNXRUNTIME:
        return OnnxRuntimeSession(graph, precision, threads)
    raise ValueError(f"{backend} does not run ONNX graphs")
