"""deploy.json: what an application needs to run a build's artifact, and nothing it must guess.

Written beside every artifact: the input it takes (dtype, layout, colour, whether the
normalization is inside, so the application must not normalize again), the alignment, the
output and the format to request, "L2-normalize, then cosine", and this build's own
threshold at FAR 1e-3 and `pre_norm` floor, each with its source. The JSON Schema is
`docs/deploy.schema.json` (generated from these models; a test keeps it in step).
"""

from __future__ import annotations

import json
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hailoc import __version__
from hailoc.calibration.template import ARCFACE_TEMPLATE, SIZE
from hailoc.eval.metrics import match_rate_by_pre_norm, threshold_at_far
from hailoc.eval.sweep import PairScores, genuine_impostor
from hailoc.faces import BySize
from hailoc.manifest import ModelConfig

SCHEMA_ID: Literal["hailoc.deploy/1"] = "hailoc.deploy/1"
FAR = 1e-3
POSTPROCESS = "L2-normalize the output, then compare two faces by cosine similarity (dot product)"
HAILORT_API = "hailo-ai/hailort bindings/python pyhailort.py (see ../shared/DFC_NOTES.md)"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeployInput(_Model):
    """The tensor the artifact takes."""

    name: str
    shape: list[int]
    layout: Literal["NHWC", "NCHW"]
    dtype: Literal["uint8", "float32"]
    color: Literal["RGB", "BGR"]
    normalization_inside: bool = Field(
        description="True: feed raw 0-255 pixels and do NOT normalize (the artifact does)"
    )
    application_normalizes: dict[str, list[float]] | None = Field(
        default=None, description="mean/std the application applies when not inside"
    )
    source: str


class DeployAlignment(_Model):
    """How faces must be cropped before they are fed."""

    function: str
    size: int
    template: list[list[float]]
    landmark_order: str


class DeployQuantization(_Model):
    """Output scale / zero point for applications that read raw quantized values."""

    scale: float | None
    zero_point: float | None
    source: str


class DeployOutput(_Model):
    """The embedding and how to read it."""

    name: str
    name_source: str = ""
    dimension: int
    native_format: Literal["UINT8", "UINT16", "FLOAT32"] = Field(
        default="FLOAT32",
        description="what the artifact emits before dequantization: UINT16 (with a zero "
        "point) when the output layer is 16-bit, so read FLOAT32, never the raw values",
    )
    request_format: Literal["FLOAT32"]
    request_how: str
    quantization: DeployQuantization
    postprocess: str


class DeployThreshold(_Model):
    """A match threshold measured on this build's own embeddings."""

    far: float
    value: float
    fp32_value: float | None
    resolved: bool = Field(description="False: too few impostor pairs to resolve this FAR")
    genuine_pairs: int
    impostor_pairs: int
    source: str


class DeployPreNormFloor(_Model):
    """Reject probes whose raw embedding norm is below this: their matches collapse."""

    value: float | None
    source: str


class DeployArtifact(_Model):
    """The file the application loads."""

    file: str
    sha256: str
    kind: Literal["hef", "standin_output", "qdq_onnx"]
    note: str | None = None


class Deploy(_Model):
    """deploy.json."""

    schema_id: Literal["hailoc.deploy/1"] = SCHEMA_ID
    model: str
    precision: str
    backend: str
    hw_arch: str
    artifact: DeployArtifact
    input: DeployInput
    alignment: DeployAlignment
    output: DeployOutput
    threshold: DeployThreshold
    pre_norm_floor: DeployPreNormFloor
    produced_by: str = f"hailoc {__version__}"


def json_schema() -> str:
    """The JSON Schema of deploy.json, as committed in docs/deploy.schema.json."""
    schema = Deploy.model_json_schema()
    schema["$id"] = SCHEMA_ID
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def pre_norm_floor(pairs: PairScores, threshold: float, bins: int = 5) -> tuple[float | None, str]:
    """The pre_norm under which genuine probes (a face at a simulated size vs the same face
    at full size) match at `threshold` less than half the time."""
    if not len(pairs.genuine):
        return None, "no simulated face sizes: no probes to measure"
    floor = None
    for part in match_rate_by_pre_norm(pairs.genuine_pre_norm, pairs.genuine >= threshold, bins):
        if not part.count or part.match_rate >= 0.5:
            break
        floor = part.high
    how = (
        f"{len(pairs.genuine)} genuine probes in {bins} pre_norm bins (quantiles); the floor is "
        "the top of the highest bin, counted from the lowest, whose match rate is under 50%"
    )
    if floor is None:
        return None, f"no bin under a 50% match rate ({how})"
    return floor, how


def _deploy_input(cfg: ModelConfig, hef: bool) -> DeployInput:
    """How the application feeds the model: uint8 NHWC to a HEF (normalization on the chip),
    the original graph's input to a QDQ model."""
    height, width = cfg.input.shape[2:4] if cfg.input.layout == "NCHW" else cfg.input.shape[1:3]
    norm = cfg.normalization
    if hef:
        return DeployInput(
            name=cfg.input.name,
            shape=[1, height, width, 3],
            layout="NHWC",
            dtype="uint8",
            color=cfg.input.color,
            normalization_inside=True,
            source="the .alls puts normalization on the chip (or the graph has it): feed "
            "uint8 0-255 in this colour order through UINT8 input vstreams",
        )
    else:
        outside = not norm.in_graph and norm.mean is not None and norm.std is not None
        return DeployInput(
            name=cfg.input.name,
            shape=[1, *cfg.input.shape[1:]],
            layout=cfg.input.layout,
            dtype="float32",
            color=cfg.input.color,
            normalization_inside=norm.in_graph,
            application_normalizes=(
                {"mean": list(norm.mean or ()), "std": list(norm.std or ())} if outside else None
            ),
            source="the QDQ ONNX model is the original graph: normalize as the manifest says "
            "unless the graph does it",
        )


def _deploy_output(
    output_name: str, output_name_source: str, dimension: int, hef: bool, output_16bit: bool
) -> DeployOutput:
    """What the model returns and how to read it as float32."""
    return DeployOutput(
        name=output_name,
        name_source=output_name_source
        or ("the ONNX graph's output" if not hef else "the parsed HN"),
        dimension=dimension,
        native_format=("UINT16" if output_16bit else "UINT8") if hef else "FLOAT32",
        request_format="FLOAT32",
        request_how=(
            "HailoRT: OutputVStreamParams.make(network_group, format_type=FormatType.FLOAT32) "
            f"(dequantized on the host; {HAILORT_API})"
            if hef
            else "onnxruntime returns float32"
        ),
        quantization=DeployQuantization(
            scale=None,
            zero_point=None,
            source=(
                "read it from the HEF at deployment: hef.get_output_vstream_infos()[0]"
                ".quant_info (qp_scale, qp_zp); only needed when reading raw UINT8/UINT16 "
                "outputs instead of FLOAT32"
                if hef
                else "the QDQ model dequantizes its own output"
            ),
        ),
        postprocess=POSTPROCESS,
    )


def deploy_for(
    cfg: ModelConfig,
    *,
    backend: str,
    hw_arch: str,
    precision: str,
    artifact: DeployArtifact,
    fp32: BySize,
    candidate: BySize,
    output_name: str,
    eval_source: str,
    output_16bit: bool = False,
    output_name_source: str = "",
) -> Deploy:
    """deploy.json of one build from its eval embeddings (the gate's own numbers)."""
    hef = artifact.kind in ("hef", "standin_output")
    inputs = _deploy_input(cfg, hef)
    close = max(candidate)
    dimension = int(np.asarray(candidate[close]).reshape(len(candidate[close]), -1).shape[1])
    pairs = genuine_impostor(candidate)
    value, resolved = threshold_at_far(pairs.impostor, FAR), len(pairs.impostor) >= 1 / FAR
    fp32_value = threshold_at_far(genuine_impostor(fp32).impostor, FAR)
    source = (
        f"this build's embeddings of {eval_source}: genuine = a face at {close} px vs the same "
        "face at each smaller simulated size, impostors = different faces at any size"
    )
    if not resolved:
        source += (
            f"; only {len(pairs.impostor)} impostor pairs "
            f"(a FAR of {FAR:g} needs >= {int(1 / FAR)}): "
            "the value is above every impostor score seen, so measure it on more faces with "
            "`hailoc eval` before relying on it"
        )
    floor, how = pre_norm_floor(pairs, value)
    return Deploy(
        model=cfg.name,
        precision=precision,
        backend=backend,
        hw_arch=hw_arch,
        artifact=artifact,
        input=inputs,
        alignment=DeployAlignment(
            function=f"insightface.utils.face_align.norm_crop(img, landmarks, image_size={SIZE})",
            size=SIZE,
            template=[[float(v) for v in row] for row in ARCFACE_TEMPLATE],
            landmark_order="left eye, right eye, nose tip, left mouth corner, right mouth corner",
        ),
        output=_deploy_output(output_name, output_name_source, dimension, hef, output_16bit),
        threshold=DeployThreshold(
            far=FAR,
            value=value,
            fp32_value=fp32_value,
            resolved=resolved,
            genuine_pairs=len(pairs.genuine),
            impostor_pairs=len(pairs.impostor),
            source=source,
        ),
        pre_norm_floor=DeployPreNormFloor(
            value=floor, source=f"this build at its threshold {value:.4f}: {how}"
        ),
    )
