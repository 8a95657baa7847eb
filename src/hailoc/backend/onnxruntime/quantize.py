"""Static QDQ quantization with ONNX Runtime: int8 everywhere, 16-bit where the plan says."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hailoc.backend.onnxruntime.preprocess import to_input
from hailoc.backend.onnxruntime.qdq_plan import QdqPlan
from hailoc.errors import OnnxError
from hailoc.manifest import ModelConfig

# Per-channel int8 QDQ needs opset >= 13; 16-bit QuantizeLinear needs >= 21.
OPSET_INT8 = 13
OPSET_16BIT = 21


def upgrade_opset(model: Any, needed: int) -> Any:
    """The model at opset >= `needed` (converted with onnx's version converter when older)."""
    from onnx import version_converter

    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if current >= needed:
        return model
    try:
        return version_converter.convert_version(model, needed)
    except Exception as exc:
        raise OnnxError(
            f"cannot convert opset {current} to {needed}: {str(exc).splitlines()[0][:200]}",
            where="onnx",
            fix=f"export the model at opset >= {needed}",
        ) from None


class _Reader:
    """Feeds calibration faces one batch at a time (the example model has a static batch 1)."""

    def __init__(self, faces: npt.NDArray[np.uint8], cfg: ModelConfig, batch: int) -> None:
        self.faces = faces
        self.cfg = cfg
        self.batch = batch
        self.pos = 0

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        if self.pos >= len(self.faces):
            return None
        chunk = np.asarray(self.faces[self.pos : self.pos + self.batch])
        self.pos += self.batch
        return {self.cfg.input.name: to_input(chunk, self.cfg)}

    def rewind(self) -> None:
        self.pos = 0


def quantize(
    onnx_path: Path,
    calib: Path,
    cfg: ModelConfig,
    plan: QdqPlan,
    out: Path,
    *,
    calibset_size: int,
    ranges_cache: Path | None = None,
) -> dict[str, Any]:
    """Write a QDQ model to `out`; returns facts for the record (opset, tensors, faces).

    With `ranges_cache` (and an onnxruntime that supports it), activation ranges are
    collected once and reused: a plan search quantizes the same model dozens of times.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = onnx.load(str(onnx_path))
    # With a shared ranges cache every variant must see the same graph: use one opset.
    opset = OPSET_16BIT if plan.tensors or ranges_cache else OPSET_INT8
    model = upgrade_opset(model, opset)
    faces = np.load(calib, mmap_mode="r")[:calibset_size]
    batch = model.graph.input[0].type.tensor_type.shape.dim[0].dim_value or 16

    class Reader(_Reader, CalibrationDataReader):  # type: ignore[misc]
        pass

    with tempfile.TemporaryDirectory(prefix="hailoc-ort-") as tmp:
        src = Path(tmp) / "fp32.onnx"
        onnx.save(model, str(src))
        # ORT logs advice about pre-processing at WARNING on every call; it is not actionable.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        cache_option: dict[str, Any] = {}
        if ranges_cache is not None and _supports_ranges_cache(quantize_static):
            cache_option["calibration_cache_path"] = str(ranges_cache)
        try:
            quantize_static(
                str(src),
                str(Path(tmp) / "qdq.onnx"),
                Reader(faces, cfg, batch),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"TensorQuantOverrides": plan.overrides()} if plan.tensors else {},
                **cache_option,
            )
        except Exception as exc:
            raise OnnxError(
                f"onnxruntime quantization failed: {str(exc).splitlines()[0][:200]}",
                where=str(onnx_path),
                fix="check the model loads in onnxruntime and the plan's layers",
            ) from None
        finally:
            root.setLevel(level)
        data = (Path(tmp) / "qdq.onnx").read_bytes()
    out.write_bytes(data)
    return {"opset": opset, "calibration_faces": len(faces), "a16_tensors": list(plan.tensors)}


def _supports_ranges_cache(function: Any) -> bool:
    import inspect

    return "calibration_cache_path" in inspect.signature(function).parameters
