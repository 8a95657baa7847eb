"""Engine choices without Docker: which engines get copied files, GPU discovery parsing."""

from __future__ import annotations

import pytest

from hailoc.backends.hailo.docker_env import parse_gpu_list
from hailoc.engines import EngineSpec


def test_only_the_local_default_engine_mounts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert EngineSpec("local").file_mode == "mount"
    assert EngineSpec("other", host="unix:///run/other.sock").file_mode == "copy"
    assert EngineSpec("gpu", host="ssh://me@gpu").file_mode == "copy"
    assert EngineSpec("lab", context="lab").file_mode == "copy"
    assert EngineSpec("nfs", host="tcp://nfs:2376", files="mount").file_mode == "mount"
    monkeypatch.setenv("DOCKER_HOST", "tcp://elsewhere:2376")
    assert EngineSpec("local").file_mode == "copy"


def test_gpu_list_from_nvidia_smi() -> None:
    text = (
        "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-0b9c...)\n"
        "GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-5d1e...)\n"
        "  MIG 1g.10gb Device 0: (UUID: MIG-...)\n"
        "GPU 3: NVIDIA RTX A6000 (UUID: GPU-77aa...)\n"
    )
    assert parse_gpu_list(text) == (0, 1, 3)
    assert parse_gpu_list("NVIDIA-SMI has failed") == ()
