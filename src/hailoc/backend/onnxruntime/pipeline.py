"""Placeholder replaced by the ORT backend."""

from __future__ import annotations

from typing import Any

from hailoc.errors import HailocError
from hailoc.records import BuildRecord


class OrtBuilder:
    """Not yet."""

    def __init__(self, *args: Any) -> None:
        raise HailocError("onnxruntime backend not built yet", fix="use --backend hailo")

    def build(self, target: Any, slot: int | None = None) -> BuildRecord:
        """Not yet."""
        raise NotImplementedError
