"""Static QDQ quantization with ONNX Runtime: int8 everywhere, 16-bit where the plan says."""

from __future__ import annotations

import logging
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hailoc.backends.onnxruntime.qdq_plan import QdqPlan
from hailoc.cache import StageCache, cache_key
from hailoc.errors import OnnxError
from hailoc.execution import usable_cores
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

    def __len__(self) -> int:
        return -(-len(self.faces) // self.step)

    def chunk(self, index: int) -> dict[str, npt.NDArray[np.float32]]:
        """The `index`-th feed."""
        chunk = np.asarray(self.faces[index * self.step : (index + 1) * self.step])
        if self.static and len(chunk) < self.batch:
            # Repeating the last face leaves min/max ranges unchanged.
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch - len(chunk), 0)])
        return {self.cfg.input.name: to_input(chunk, self.cfg)}

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        if self.pos >= len(self):
            return None
        self.pos += 1
        return self.chunk(self.pos - 1)

    def rewind(self) -> None:
        self.pos = 0


def collect_ranges(
    model: Path, reader: _Reader, out: Path, scratch: Path, workers: int = 0
) -> bool:
    """ONNX Runtime's MinMax calibration of `model` (the ranges `quantize_static` computes
    with the same arguments), written to `out` in its calibration-cache format; the feeds
    run on one single-threaded session per core instead of one session.

    ORT's calibrator runs a copy of the model with ReduceMin/ReduceMax after every tensor it
    calibrates, one feed at a time, and takes the min and max over the feeds: the same feeds
    and the same sessions' options but the thread count give the same ranges (a test holds
    this on every corpus export), ~1.3x sooner. False when this onnxruntime lacks the pieces
    (then `quantize_static` calibrates itself). `scratch`: a folder for the augmented copy.
    """
    import onnxruntime as ort

    try:
        from onnxruntime.quantization import calibrate
        from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry
    except ImportError:
        return False
    if not (hasattr(calibrate, "MinMaxCalibrater") and hasattr(calibrate, "save_tensors_data")):
        return False
    # As quantize_static calls create_calibrator for MinMax with no extra options, without
    # the session it opens (ours replace it).
    calibrator = calibrate.MinMaxCalibrater(
        model,
        list(set(QLinearOpsRegistry) | set(QDQRegistry)),
        augmented_model_path=str(scratch / "augmented.onnx"),
    )
    try:
        calibrator.augment_graph()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = 1
        count = max(1, min(workers or usable_cores(), len(reader)))

        def session(_: int) -> Any:
            return ort.InferenceSession(
                calibrator.augmented_model_path, options, providers=["CPUExecutionProvider"]
            )

        with ThreadPoolExecutor(count) as pool:
            sessions = list(pool.map(session, range(count)))
            names = [o.name for o in sessions[0].get_outputs()]
            keep = [name not in calibrator.model_original_outputs for name in names]

            def run(session: Any, share: npt.NDArray[np.intp]) -> list[list[Any]]:
                found = []
                for index in share:
                    values = session.run(None, reader.chunk(int(index)))
                    found.append([v if k else None for v, k in zip(values, keep, strict=True)])
                return found

            shares = np.array_split(np.arange(len(reader)), count)
            outputs = [row for part in pool.map(run, sessions, shares) for row in part]
        calibrator.infer_session = sessions[0]
        calibrator.intermediate_outputs = outputs
        calibrate.save_tensors_data(calibrator.compute_data(), out)
    finally:
        Path(calibrator.augmented_model_path).unlink(missing_ok=True)
    return True


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
    Either way they are collected on every core (`collect_ranges`).
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
        ranges = ranges_cache or Path(tmp) / "ranges.json"
        if _supports_ranges_cache(quantize_static):
            # Read when present; else written by whichever calibrates: hailoc's per-core
            # collection (the same ranges, sooner) or, without its pieces, quantize_static.
            cache_option["calibration_cache_path"] = str(ranges)
        try:
            if cache_option and not ranges.is_file():
                collect_ranges(src, Reader(chosen, cfg, batch), ranges, Path(tmp))
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
