"""ONNX graphs of the embedders' networks, exported once from their torch modules and cached under the library home.

A graph is keyed by the model spec, its weights tag (a file digest, or the pretrained tag that names the weights) and
the exporter (torch's version, the ONNX opset): a new torch, other weights or another model never reuse an old file.
Each graph has a JSON sidecar, written before the graph is renamed into place, holding its SHA-256 (a truncated or
damaged file is noticed, reported in one line and exported again) and the outcome of its verification against
torch per runtime version (done once); a failed export is recorded there too, and not tried again. A cache folder
that cannot be written is replaced, for the process, by a temporary one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from lookalike.storage.files import atomic_write, atomic_write_bytes, remove_stray_temps

log = logging.getLogger(__name__)

OPSET = 18
STRAY_TEMP_SECONDS = 600  # a temp file this old is a killed export's (an export takes well under a minute)


def exporter_version() -> str:
    """What writes the graphs: torch's dynamo ONNX exporter, by torch version and opset (read without importing
    torch)."""
    return f"torch-{metadata.version('torch')}-dynamo-opset{OPSET}"


class RecordedFailure(Exception):
    """An earlier process could not export this graph; the message says why."""


def first_line(error: Exception) -> str:
    """An exception's first line (at most 200 characters), or its type's name when it has no message."""
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class CachedGraph:
    """One cached graph: the ONNX file, its sidecar, and what the sidecar says (``dim``, ``sha256``, ``verified``)."""

    graph: Path
    sidecar: Path
    meta: dict[str, Any] = field(default_factory=dict)
    exported: bool = False  # written by this process (not found in the cache)

    @property
    def dim(self) -> int:
        """The vector dimension the graph outputs."""
        return int(self.meta["dim"])

    def verified(self, runtime: str) -> dict[str, Any] | None:
        """What was recorded for ``runtime`` (a runtime and its version) on this graph: its precision and lowest
        cosine, or ``failed`` with the reason it was refused; None if nothing."""
        result = self.meta.get("verified", {}).get(runtime)
        return result if isinstance(result, dict) else None

    def record(self, runtime: str, result: dict[str, Any]) -> None:
        """Remember how ``runtime`` did on this graph (written atomically)."""
        self.meta.setdefault("verified", {})[runtime] = result
        try:
            atomic_write_bytes(self.sidecar, json.dumps(self.meta, indent=2, sort_keys=True).encode())
        except OSError as e:  # a read-only shared cache: this process keeps the result, the next one checks again
            log.debug("cannot record the verification in %s: %s", self.sidecar, e)


class GraphCache:
    """The folder of exported graphs (``<home>/models``); where it cannot be written, a temporary one."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._temporary: tempfile.TemporaryDirectory[str] | None = None  # removed with this object

    def paths(self, spec: str, weights_tag: str) -> tuple[Path, Path]:
        """The graph file and sidecar of a model with given weights, under the current exporter."""
        key = hashlib.sha256(f"{spec}\n{weights_tag}\n{exporter_version()}".encode()).hexdigest()[:16]
        stem = f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', spec)[:60]}-{key}"
        return self.directory / f"{stem}.onnx", self.directory / f"{stem}.json"

    def get(self, spec: str, weights_tag: str, export: Callable[[Path], int]) -> CachedGraph:
        """The cached graph of a model, exported first when it is missing or damaged.

        Args:
            spec: the model spec.
            weights_tag: the tag of its weights.
            export: writes the graph to the path it is given and returns the vector dimension.

        Raises:
            RecordedFailure: an earlier export of this graph failed (the sidecar says why).
        """
        graph, sidecar = self.paths(spec, weights_tag)
        meta = _read_json(sidecar)
        if meta is not None and "export_failed" in meta:
            raise RecordedFailure(str(meta["export_failed"]))
        if meta is not None and graph.is_file():
            if meta.get("sha256") == _sha256(graph):
                return CachedGraph(graph, sidecar, meta)
            log.warning("model cache %s is damaged (its checksum does not match); exporting it again", graph)
        # else never exported, or a kill between the sidecar's write and the graph's rename: export (again)
        if not self._writable():
            graph, sidecar = self.paths(spec, weights_tag)
        with contextlib.suppress(OSError):
            remove_stray_temps(self.directory, older_than=STRAY_TEMP_SECONDS)
        return self._export(spec, weights_tag, export, graph, sidecar)

    def _export(
        self, spec: str, weights_tag: str, export: Callable[[Path], int], graph: Path, sidecar: Path
    ) -> CachedGraph:
        """Export to a temp file, write the sidecar (with the temp file's checksum), then rename the graph into
        place: a graph found in the cache always has its sidecar."""
        header = {"spec": spec, "weights_tag": weights_tag, "exporter": exporter_version()}
        meta: dict[str, Any] = {}

        def write(tmp: Path) -> None:
            meta.update(header, dim=export(tmp), sha256=_sha256(tmp), verified={})
            atomic_write_bytes(sidecar, json.dumps(meta, indent=2, sort_keys=True).encode())

        try:
            atomic_write(graph, write)
        except Exception as e:  # remembered (this exporter, these weights) so later processes do not try again
            if not meta:
                reason = f"{spec} cannot be exported to ONNX ({first_line(e)})"
                with contextlib.suppress(OSError):
                    atomic_write_bytes(sidecar, json.dumps({**header, "export_failed": reason}, indent=2).encode())
            raise
        return CachedGraph(graph, sidecar, meta, exported=True)

    def _writable(self) -> bool:
        """Whether graphs can be written to :attr:`directory`; if not, it becomes a temporary folder for this
        process, with one warning (each process then exports again)."""
        if self._temporary is not None:
            return False
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.directory):
                return True
        except OSError as e:
            self._temporary = tempfile.TemporaryDirectory(prefix="lookalike-models-")
            log.warning(
                "model cache %s cannot be written (%s); the graph is exported to a temporary folder for this run",
                self.directory,
                e.strerror or first_line(e),
            )
            self.directory = Path(self._temporary.name)
            return False


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
