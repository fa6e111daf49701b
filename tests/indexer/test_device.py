"""Where models run: a GPU is looked for through torch whenever any GPU driver may be present."""

from __future__ import annotations

import pytest
import torch

from lookalike.indexer import device
from lookalike.indexer.device import device_type, gpu_driver_present

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


@pytest.mark.parametrize("driver", ["proc/driver/nvidia/version", "dev/nvidiactl", "dev/kfd", "dev/dxg", "dev/nvmap"])
def test_each_driver_file_means_a_gpu_may_be_present(driver, tmp_path, monkeypatch):
    """WSL2 (/dev/dxg) and Jetson (/dev/nvmap) have no /dev/nvidiactl, yet torch sees their GPU."""
    monkeypatch.setattr(device.ctypes.util, "find_library", lambda name: None)
    assert not gpu_driver_present(tmp_path)
    (tmp_path / driver).parent.mkdir(parents=True)
    (tmp_path / driver).touch()
    assert gpu_driver_present(tmp_path)


def test_a_cuda_library_the_loader_finds_means_a_gpu_may_be_present(tmp_path, monkeypatch):
    monkeypatch.setattr(device.ctypes.util, "find_library", lambda name: "libcuda.so.1" if name == "cuda" else None)
    assert gpu_driver_present(tmp_path)


def test_torch_decides_when_a_driver_may_be_present(monkeypatch):
    monkeypatch.setattr(device, "gpu_driver_present", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_type() == "cuda"
    assert device_type("cpu") == "cpu"
    monkeypatch.setattr(device, "gpu_driver_present", lambda: False)
    assert device_type() == ("cpu" if device.sys.platform == "linux" else "cuda")
