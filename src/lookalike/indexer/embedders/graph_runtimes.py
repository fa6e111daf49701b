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

# OpenVINO's performance hint: LATENCY measured fastest for one synchronous request at a time (THROUGHPUT splits the
# cores into streams that only pay off with parallel requests); benchmarks/backends.py prints both.
OPENVINO_HINT = "LATENCY"


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
    """OpenVINO on the CPU, with the latency hint; compiled blobs are cached beside the graph.

    The product runs f32 only; ``precision`` exists for ``benchmarks/backends.py`` (bf16 misses the tolerance).
    """

    def __init__(self, graph: Path, precision: str = "f32", threads: int = 0, hint: str = OPENVINO_HINT) -> None:
        import openvino as ov

        core = ov.Core()
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": hint,
            "CACHE_DIR": str(graph.parent / "openvino"),
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self._compiled = core.compile_model(str(graph), "CPU", config)
        self._local = threading.local()  # an infer request serves one thread at a time (the service has several)
        self.precision = precision

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Features of a normalised float32 batch."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        out = request.infer({0: batch})[0]
        return np.array(out, dtype=np.float32, copy=True)  # the request reuses its output buffer on the next call


def open_session(backend: Backend, graph: Path, precision: str = "f32", threads: int = 0) -> GraphSession:
    """Compile ``graph`` on ``backend`` (``onnxruntime`` or ``openvino``) at ``precision``."""
    if backend == Backend.OPENVINO:
        return OpenVinoSession(graph, precision, threads)
    if backend == Backend.ONNXRUNTIME:
        return OnnxRuntimeSession(graph, precision, threads)
    raise ValueError(f"{backend} does not run ONNX graphs")
