"""Static QDQ quantization with ONNX Runtime: int8 everywhere, 16-bit where the plan says."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hailoc.backends.onnxruntime.qdq_plan import QdqPlan
from hailoc.cache import StageCache, cache_key
from hailoc.errors import OnnxError
from hailoc.inference.preprocess import to_input
from hailoc.inputs import BuildInputs
from hailoc.manifest import ModelConfig

# 16-bit QuantizeLinear needs opset >= 21. Every plan (int8 too) is quantized at this opset, so
# the int8 graph is the same graph the 16-bit plans and the auto search start from.
OPSET = 21


def quantize_key(inputs: BuildInputs, plan: QdqPlan) -> str:
    """The cache key of one QDQ model: shared by builds and the auto search."""
    return cache_key(
        "ort-quantize",
        inputs.quantization_identity() | {"a16_tensors": list(plan.tensors), "opset": OPSET},
    )


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
    """Feeds calibration faces in chunks of the model's batch (padding a static batch)."""

    def __init__(self, faces: npt.NDArray[np.uint8], cfg: ModelConfig, batch: int) -> None:
        self.faces = faces
        self.cfg = cfg
        self.batch = batch
        self.static = batch > 0
        self.step = batch if batch > 0 else 16
        self.pos = 0

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        if self.pos >= len(self.faces):
            return None
        chunk = np.asarray(self.faces[self.pos : self.pos + self.step])
        self.pos += self.step
        if self.static and len(chunk) < self.batch:
            # Repeating the last face leaves min/max ranges unchanged.
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch - len(chunk), 0)])
        return {self.cfg.input.name: to_input(chunk, self.cfg)}

    def rewind(self) -> None:
        self.pos = 0


def quantize(
    model: Any,
    faces: npt.NDArray[np.uint8],
    cfg: ModelConfig,
    plan: QdqPlan,
    out: Path,
    *,
    calibset_size: int,
    ranges_cache: Path | None = None,
) -> dict[str, int | list[str]]:
    """Write a QDQ model of `model` (an onnx.ModelProto) to `out`; return facts for the record.

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

    upgraded = upgrade_opset(model, OPSET)
    chosen = faces[:calibset_size]
    batch = upgraded.graph.input[0].type.tensor_type.shape.dim[0].dim_value

    class Reader(_Reader, CalibrationDataReader):  # type: ignore[misc]
        pass

    with tempfile.TemporaryDirectory(prefix="hailoc-ort-", dir=out.parent) as tmp:
        src = Path(tmp) / "fp32.onnx"
        onnx.save(upgraded, str(src))
        _quiet_quantizer()
        cache_option: dict[str, str] = {}
        if ranges_cache is not None and _supports_ranges_cache(quantize_static):
            cache_option["calibration_cache_path"] = str(ranges_cache)
        try:
            quantize_static(
                str(src),
                str(out),
                Reader(chosen, cfg, batch),
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
                where=str(cfg.onnx),
                fix="check the model loads in onnxruntime and the plan's layers",
            ) from None
    return {"opset": OPSET, "calibration_faces": len(chosen), "a16_tensors": list(plan.tensors)}


class _QuietQuantizer(logging.Filter):
    """Drops what ORT's quantizer logs below ERROR: advice about pre-processing on every call,
    not actionable. It logs through the root logger itself, so a filter there sees only
    such direct records (hailoc's own propagate past it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "onnxruntime" not in record.pathname


def _quiet_quantizer() -> None:
    # A filter, not the root level: a search quantizes on one thread while another logs.
    root = logging.getLogger()
    if not any(isinstance(f, _QuietQuantizer) for f in root.filters):
        root.addFilter(_QuietQuantizer())


RANGES_KIND = "ort-ranges"
RANGES = "ranges.json"


def quantize_inputs(
    inputs: BuildInputs,
    plan: QdqPlan,
    out: Path,
    cache: StageCache | None = None,
    upgraded: Any = None,
) -> dict[str, int | list[str]]:
    """Quantize a model's checked inputs with `plan`: exactly what `quantize_key` describes.

    With `cache`, the calibration's activation ranges (what every plan of this model and
    calibration set shares: the fp32 model's min/max per tensor) are kept in it and read
    back by the next plan, so one search calibrates once (the QDQ bytes are the same).
    `upgraded`: the model already at OPSET (a search converts it once, not per plan).
    """
    cfg = inputs.config
    ranges = out.parent / f".{out.name}.{RANGES}"
    key = cache_key(RANGES_KIND, inputs.quantization_identity() | {"opset": OPSET})
    known = cache.read_bytes(RANGES_KIND, key, RANGES) if cache is not None else None
    if known is not None:
        ranges.write_bytes(known)
    try:
        facts = quantize(
            upgraded if upgraded is not None else inputs.onnx_proto,
            inputs.calib,
            cfg,
            plan,
            out,
            calibset_size=cfg.optimization.calibset_size,
            ranges_cache=ranges if cache is not None else None,
        )
        if cache is not None and known is None and ranges.is_file():
            cache.store(RANGES_KIND, key, {RANGES: ranges})
    finally:
        ranges.unlink(missing_ok=True)
    return facts


def _supports_ranges_cache(function: Any) -> bool:
    import inspect

    return "calibration_cache_path" in inspect.signature(function).parameters
