"""The one place that decides where models run (CUDA or CPU) and tunes the process for it."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.errors import DeviceError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def resolve_device(requested: str | None = None) -> torch.device:
    """The device to run models on: ``requested`` when given, else CUDA when present, else CPU.

    Raises:
        DeviceError: the name is not a device, or CUDA was requested but is not available.
    """
    import torch

    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as e:
            raise DeviceError(f"{requested!r} is not a device: use cpu, cuda or cuda:N") from e
        if device.type == "cuda" and not torch.cuda.is_available():
            raise DeviceError(f"--device {requested} was asked for, but this machine has no CUDA GPU: use --device cpu")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# a GPU driver's files: NVIDIA's, AMD's (ROCm), WSL2's GPU paravirtualisation and Jetson's (Tegra) devices
_GPU_DRIVER_FILES = (
    "proc/driver/nvidia/version",
    "dev/nvidiactl",
    "dev/kfd",
    "dev/dxg",
    "dev/nvhost-ctrl",
    "dev/nvmap",
)


def gpu_driver_present(root: Path = Path("/")) -> bool:
    """Whether any GPU driver may be here: a driver's device or proc file under ``root``, or a CUDA driver library
    the loader finds. Without one no CUDA (or ROCm) device can exist, and torch need not be imported to say so."""
    if any((root / f).exists() for f in _GPU_DRIVER_FILES):
        return True
    return ctypes.util.find_library("cuda") is not None


def device_type(requested: str | None = None) -> str:
    """``cuda`` or ``cpu``: the type of :func:`resolve_device`'s answer, found without importing torch when the
    answer is the CPU (asked for, or no GPU driver of any kind on a Linux machine); when in doubt torch is asked.

    Raises:
        DeviceError: as :func:`resolve_device`.
    """
    if requested == "cpu":
        return "cpu"
    if not requested and sys.platform == "linux" and not gpu_driver_present():
        return "cpu"
    return resolve_device(requested).type


def decode_workers(device: torch.device | str, requested: int | None = None, cpus: int | None = None) -> int:
    """How many supervised decode processes run beside the model.

    On CUDA the GPU does the maths, so decoding gets every core but one. On a CPU the forward pass already keeps
    all cores busy, so one process decodes (a few more on big machines). 0 (only when asked for) decodes in a
    thread of the indexing process: slightly faster on 2 cores, but without crash isolation
    (benchmarks/RESULTS.md has both).
    """
    if requested is not None:
        return max(0, requested)
    cpus = cpus or os.cpu_count() or 1
    if getattr(device, "type", device) == "cuda":
        return max(1, min(8, cpus - 1))
    return 1 if cpus <= 2 else min(4, cpus // 4 + 1)


def tune_cpu_allocator() -> bool:
    """Stop glibc from returning big activation buffers to the OS after every forward pass.

    Same effect as ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<huge>`` in the environment, applied to the
    running process (environment variables are read by glibc only at start-up). On CPU inference this
    avoids a page-fault storm per batch. Returns whether it could be applied (glibc only).
    """
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except (OSError, AttributeError):
        return False
    log.debug("glibc allocator tuned for CPU inference: %s", ok)
    return bool(ok)


def one_thread_per_request() -> None:
    """Tune a serving process: each request's forward pass runs on one thread, requests run side by side.

    torch's default (a thread per core for every forward pass) makes concurrent requests fight for the cores;
    on 2 cores at 20 requests/s it doubled p99 latency (benchmarks/RESULTS.md, serve_load). Process-wide, so
    only a process that does nothing but serve calls it (``lookalike serve`` does, through ``api.app.run``).
    """
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
