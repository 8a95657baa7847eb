"""The models.yaml schema: strict pydantic models, unknown keys rejected."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from hailoc.engines import EngineSpec, check_docker_url
from hailoc.errors import HailocError

HwArch = Literal["hailo8", "hailo8l", "hailo8r", "hailo10h", "hailo15h", "hailo15m", "hailo15l"]
HW_ARCHS: tuple[str, ...] = HwArch.__args__  # type: ignore[attr-defined]

Precision = Literal["int8", "int16-final", "int16-all", "custom", "auto"]
PRECISIONS: tuple[str, ...] = Precision.__args__  # type: ignore[attr-defined]

Backend = Literal["onnxruntime", "hailo"]

# One suite image serves one family: DFC v3.x builds Hailo-8, v5.x builds Hailo-10/15.
ArchFamily = Literal["hailo8", "hailo10h"]
ARCH_FAMILIES: dict[str, tuple[str, ...]] = {
    "hailo8": ("hailo8", "hailo8l", "hailo8r"),
    "hailo10h": ("hailo10h", "hailo15h", "hailo15m", "hailo15l"),
}


def family_of(hw_arch: str) -> str:
    """The architecture family (suite generation) a hw_arch belongs to."""
    return next(f for f, archs in ARCH_FAMILIES.items() if hw_arch in archs)


ImageRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,254}$")]
Family = Literal["generic", "insightface", "magface", "adaface", "faceplugin"]

# Calibration and eval faces are aligned to the 112x112 ArcFace template.
ALIGNED_SIZE = 112

# Names become folder names under hef/ and calibration/: no separators, no dot-dot, no leading dot.
SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SafeName = Annotated[str, StringConstraints(pattern=SAFE_NAME)]


def _no_dotdot(value: str) -> str:
    if ".." in value:
        raise ValueError("must not contain '..'")
    return value


ModelName = Annotated[SafeName, AfterValidator(_no_dotdot)]


def _relative_path(value: str) -> str:
    path = PurePosixPath(value)
    if not value or "\x00" in value:
        raise ValueError("must be a non-empty path")
    if ".." in path.parts and path.is_absolute():
        raise ValueError("must not mix an absolute path with '..'")
    return value


RelPath = Annotated[str, AfterValidator(_relative_path)]


class Strict(BaseModel):
    """Base for every manifest section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class InputSpec(Strict):
    """The network input as the ONNX file declares it."""

    name: str = Field(min_length=1)
    shape: tuple[int, int, int, int]
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    color: Literal["RGB", "BGR"] = "RGB"

    @field_validator("shape")
    @classmethod
    def _positive(cls, shape: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        if any(dim <= 0 for dim in shape):
            raise ValueError("every dimension must be a positive integer")
        return shape

    @model_validator(mode="after")
    def _three_channels(self) -> InputSpec:
        channels = self.shape[1] if self.layout == "NCHW" else self.shape[3]
        if channels != 3:
            raise ValueError(
                f"layout {self.layout} puts channels at "
                f"{'shape[1]' if self.layout == 'NCHW' else 'shape[3]'} = {channels}, expected 3"
            )
        return self

    @property
    def height_width(self) -> tuple[int, int]:
        """Spatial size (H, W) of the input."""
        if self.layout == "NCHW":
            return self.shape[2], self.shape[3]
        return self.shape[1], self.shape[2]


Triple = tuple[float, float, float]


def _triple(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (float(value),) * 3
    return value


class Normalization(Strict):
    """Either per-channel mean/std applied by the DFC, or `in_graph: true`."""

    mean: Triple | None = None
    std: Triple | None = None
    in_graph: bool = False

    _expand = field_validator("mean", "std", mode="before")(_triple)

    @model_validator(mode="after")
    def _one_way(self) -> Normalization:
        has_values = self.mean is not None or self.std is not None
        if self.in_graph and has_values:
            raise ValueError("give either mean/std or in_graph: true, not both")
        if not self.in_graph and (self.mean is None or self.std is None):
            raise ValueError("needs both mean and std, or in_graph: true")
        if self.std is not None and any(s <= 0 for s in self.std):
            raise ValueError("std values must be > 0")
        return self


class Finetune(Strict):
    """post_quantization_optimization(finetune, ...) settings."""

    learning_rate: float = Field(default=1e-4, gt=0)
    epochs: int = Field(default=4, ge=1)
    dataset_size: int = Field(default=4000, ge=1)


class Optimization(Strict):
    """Model-optimization settings rendered into the .alls."""

    # auto: the DFC's own rule (level 0 without a GPU or with < 1024 entries), decided per
    # stage; a number is written as given.
    optimization_level: Literal["auto"] | Annotated[int, Field(ge=0, le=4)] = "auto"
    compression_level: int = Field(default=0, ge=0, le=5)
    calib_batch_size: int = Field(default=8, ge=1)
    calibset_size: int = Field(default=1024, ge=1)
    finetune: Finetune | None = None
    compiler_optimization_level: Literal["max"] | int | None = None


class Gate(Strict):
    """Accuracy-gate thresholds: a build that misses them is recorded as failed."""

    min_mean_agreement: float = Field(default=0.95, ge=-1, le=1)
    min_worst_agreement: float = Field(default=0.85, ge=-1, le=1)
    max_impostor_similarity: float = Field(default=0.60, ge=-1, le=1)
    min_norm_cv: float = Field(default=0.01, ge=0)
    face_sizes: tuple[int, ...] = (112, 64, 40, 24, 16)

    @field_validator("face_sizes")
    @classmethod
    def _sizes(cls, sizes: tuple[int, ...]) -> tuple[int, ...]:
        if not sizes or any(not 8 <= s <= ALIGNED_SIZE for s in sizes):
            raise ValueError(f"give face sizes in pixels between 8 and {ALIGNED_SIZE}")
        if len(set(sizes)) != len(sizes):
            raise ValueError("face sizes must be distinct")
        # The largest size is the "close" face every other size is compared with.
        return tuple(sorted(sizes, reverse=True))


class DetectorSpec(Strict):
    """Face detector used by `hailoc calib build`: ONNX models that give 5 landmarks."""

    kind: Literal["ultraface", "scrfd"] = "ultraface"
    model: RelPath = "models/fr_detect.onnx"
    # 68-point model used by `ultraface` for the 5 points (and, when given, to refine alignment).
    landmarks: RelPath | None = "models/fr_landmark.onnx"
    score_threshold: float = Field(default=0.7, gt=0, lt=1)
    nms_iou: float = Field(default=0.4, gt=0, le=1)
    # SCRFD's square input side; ultraface's input is fixed by the model (320x240).
    input_size: int = Field(default=640, ge=32)

    @model_validator(mode="after")
    def _ultraface_needs_landmarks(self) -> DetectorSpec:
        if self.kind == "ultraface" and self.landmarks is None:
            raise ValueError("kind 'ultraface' needs a landmarks model (it gives no points)")
        return self


class AutoSearch(Strict):
    """`--precision auto`: the fewest 16-bit layers that reach the target agreement."""

    target: float = Field(default=0.98, gt=0, le=1)
    # The statistic of per-face agreement at face_size that must reach the target: p5 (the
    # 5th percentile), mean, or worst (the single worst face: noisy on small sets).
    metric: Literal["p5", "mean", "worst"] = "p5"
    face_size: int = Field(default=24, ge=8, le=112)
    # A plan reaches the target only when this bootstrap interval's lower end does.
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    # Below this many eval faces the search says the set is too small instead of choosing.
    min_eval_faces: int = Field(default=50, ge=1)
    max_layers: int | None = Field(default=None, ge=1)
    max_weight_share: float | None = Field(default=None, gt=0, le=1)
    # Wide non-conv layers in 16-bit trip the allocator ("needs super-defuse").
    max_non_conv_width: int = Field(default=1024, ge=1)
    # With the Hailo backend: the DFC's layer noise analysis ranks the layers. simple reads
    # "partial_snr" (cheap); advanced reads "snr" (one emulation per layer: GPU hours on
    # ResNet-100). `noise_images` calibration images feed it.
    noise_analysis: Literal["simple", "advanced"] = "simple"
    noise_images: int = Field(default=16, ge=1, le=1024)


class EngineEntry(Strict):
    """A Docker engine builds may run on (defaults.engines)."""

    name: SafeName
    host: str | None = None
    context: SafeName | None = None
    files: Literal["mount", "copy"] | None = None
    gpus: tuple[Annotated[int, Field(ge=0, le=63)], ...] | None = None
    jobs: Annotated[int, Field(ge=1, le=64)] | None = None
    suite_images: dict[ArchFamily, ImageRef] = Field(default_factory=dict)

    @field_validator("host")
    @classmethod
    def _url(cls, host: str | None) -> str | None:
        if host is not None:
            try:
                check_docker_url(host, "host")
            except HailocError as exc:
                raise ValueError(f"{exc.message}; {exc.fix}") from None
        return host

    @model_validator(mode="after")
    def _one_way(self) -> EngineEntry:
        if self.host is not None and self.context is not None:
            raise ValueError("give host or context, not both")
        if self.gpus is not None and len(set(self.gpus)) != len(self.gpus):
            raise ValueError(f"gpus lists an index twice: {list(self.gpus)}")
        return self

    def spec(self) -> EngineSpec:
        """The engine as the batch sees it."""
        return EngineSpec(
            name=self.name,
            host=self.host,
            context=self.context,
            files=self.files,
            gpus=self.gpus,
            jobs=self.jobs,
            suite_images=tuple(sorted(self.suite_images.items())),
        )


class Defaults(Strict):
    """Values every model inherits unless its own entry overrides them."""

    hw_arch: HwArch = "hailo8"
    precision: Precision = "int8"
    backend: Backend = "onnxruntime"
    # The suite image for the Hailo-8 family; suite_images maps families to images when a
    # project targets both (e.g. {hailo8: hailo8_ai_sw_suite_2025-10:1,
    # hailo10h: hailo10_ai_sw_suite_2025-10:1}) and overrides this for the families it names.
    suite_image: ImageRef = "hailo8_ai_sw_suite_2025-10:1"
    suite_images: dict[ArchFamily, ImageRef] = Field(default_factory=dict)
    calibration_dir: RelPath = "calibration"
    hef_dir: RelPath = "hef"
    alls_templates: RelPath = "alls_templates"
    optimization: Optimization = Optimization()
    gate: Gate = Gate()
    auto: AutoSearch = AutoSearch()
    detector: DetectorSpec = DetectorSpec()
    # Docker engines for the Hailo backend; empty: this machine's default engine.
    engines: tuple[EngineEntry, ...] = ()
    # When the DFC refuses a 16-bit set (a wall): narrow it and go on, or end the build.
    walls: Literal["recover", "fail"] = "recover"

    @field_validator("engines")
    @classmethod
    def _unique_engines(cls, engines: tuple[EngineEntry, ...]) -> tuple[EngineEntry, ...]:
        names = [e.name for e in engines]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"engine names must be unique: {', '.join(twice)} repeated")
        return engines


class ModelEntry(Strict):
    """One face model: where it is, how to feed it, how to compile it."""

    family: Family = "generic"
    onnx: RelPath
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
    input: InputSpec
    normalization: Normalization
    hw_arch: HwArch | None = None
    calib_set: SafeName | None = None
    precision: Precision | None = None
    start_nodes: tuple[str, ...] = ()
    end_nodes: tuple[str, ...] = ()
    embedding_output: str | None = None
    a16_layers: tuple[str, ...] = ()
    alls_template: SafeName | None = None
    alls_extra: tuple[str, ...] = ()
    optimization: Optimization | None = None
    gate: Gate | None = None
    auto: AutoSearch | None = None
    # Rewrite exporter spellings (decomposed PReLU, NHWC transpose pairs, ...) into the ops the
    # Hailo parser fuses, each rewrite proven exact (onnxgraph/canonical.py); false: as given.
    canonicalize: bool = True
    notes: str | None = None

    @field_validator("alls_extra")
    @classmethod
    def _single_lines(cls, lines: tuple[str, ...]) -> tuple[str, ...]:
        for line in lines:
            if "\n" in line or "\r" in line:
                raise ValueError("each entry must be a single .alls line")
        return lines

    @model_validator(mode="after")
    def _custom_needs_layers(self) -> ModelEntry:
        if self.precision == "custom" and not self.a16_layers:
            raise ValueError("precision 'custom' needs a16_layers (ONNX or HN layer names)")
        return self


class Manifest(Strict):
    """The whole models.yaml."""

    version: Literal[1] = 1
    defaults: Defaults = Defaults()
    models: dict[ModelName, ModelEntry]


def is_safe_name(name: str) -> bool:
    """True when `name` can be used as a folder name under hef/ or calibration/."""
    return re.fullmatch(SAFE_NAME, name) is not None and ".." not in name
