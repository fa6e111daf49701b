"""The machine a benchmark runs on, in one line, measured when the script runs (never typed by hand).

Every benchmark prints :func:`describe` at the top of its output, so a figure copied into ``RESULTS.md`` carries
the cores, memory, threads and accelerator it was measured with. The load average says how busy the machine was
before the script started (this VM is shared: other work beside a benchmark slows it).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def _accelerator() -> str:
    import torch

    if not torch.cuda.is_available():
        return "no GPU (torch.cuda.is_available() is False)"
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return "GPU: " + ", ".join(names)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages now. Printed at the end of a timing run, it counts the benchmark's own
    busy threads too (a forward pass keeps one per core busy): only what exceeds them is other work."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def describe() -> str:
    """One line: CPU cores (those this process may use), CPU model, memory, load average, GPU, and the threads
    torch and FAISS use by default in this process, with library versions."""
    import faiss
    import torch

    from lookalike.storage.vectors import gpu_count

    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return (
        f"machine: {cores} CPU cores ({usable} usable; {_cpu_model()}), {_memory_gib():.1f} GiB RAM, "
        f"{load_average()} at start; {_accelerator()}, FAISS GPUs {gpu_count()}; "
        f"torch {torch.__version__} (threads: {torch.get_num_threads()}), faiss {faiss.__version__} "
        f"(OpenMP threads: {faiss.omp_get_max_threads()}), Python {platform.python_version()}"
    )


def cpu_capabilities() -> str:
    """The CPU features behind the precisions ``benchmarks/backends.py`` compares (the product runs f32): the
    kernel's AVX-512/BF16/AMX flags and what OpenVINO reports (its ``BF16`` capability means it can run bf16 here)."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    shown = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags]
    try:
        import openvino as ov

        caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        openvino = f"OpenVINO {ov.__version__.split('-')[0]} CPU capabilities {' '.join(caps)}"
    except ImportError:
        openvino = "OpenVINO not installed"
    return f"cpu flags: {' '.join(shown) or 'none of avx2/avx512/bf16/amx'}; {openvino}"


if __name__ == "__main__":
    print(describe())
