"""The build record: one typed, versioned schema for every backend (record.json)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hailoc import __version__

SCHEMA_VERSION = 2

Status = Literal["ok", "failed", "skipped"]


# Every way a build can end other than ok: the DFC's walls and faults (hailoc.failures
# recognises them), the gate's verdicts, and hailoc's own outcomes.
FailureClassName = Literal[
    "transfer",
    "super_defuse",
    "nan_exponent",
    "unsupported_16bit",
    "nan_params",
    "allocator",
    "script",
    "parse",
    "calibration",
    "timeout",
    "killed",
    "oom",
    "engine_lost",
    "unknown",
    "plan_not_applied",
    "accuracy",
    "degenerate",
    "auto_target",
    "input",
    "output",
    "disk_full",
    "busy",
    "interrupted",
    "internal",
]
FAILURE_CLASSES: tuple[str, ...] = FailureClassName.__args__  # type: ignore[attr-defined]


class Section(BaseModel):
    """Base of every record section: lenient on read (older or newer fields are ignored)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class StageRecord(Section):
    """One stage of a build: what ran (or came from cache) and how it ended."""

    name: str
    status: Literal["ok", "failed"]
    seconds: float = 0.0  # wall time on the host, container start and stop included
    worker_seconds: float | None = None  # what the worker itself spent (DFC time)
    cache_hit: bool = False
    cache_key: str = ""
    peak_rss_mb: float | None = None
    error_type: str | None = None
    message: str | None = None
    traceback_tail: list[str] = Field(default_factory=list)
    engine: str | None = None
    gpu: int | None = None


class Versions(Section):
    """Versions of everything that changes a build's numbers; part of every cache key."""

    hailoc: str
    python: str
    numpy: str
    onnx: str
    onnxruntime: str
    pillow: str


class CanonicalSection(Section):
    """What the canonicalization pass did to the user's graph, and its exactness check."""

    source_sha256: str  # the user's ONNX file
    rules_version: int
    applied: dict[str, int] = Field(default_factory=dict)  # rule -> rewrites
    refused: dict[str, str] = Field(default_factory=dict)  # rule -> why it was not used
    layers_before: int
    layers_after: int
    max_diff: float | None = None  # fp32 output, original vs canonical, on the check's faces
    check_faces: int = 0
    # canonical node -> the user's nodes it stands for (only where several became one)
    merged: dict[str, list[str]] = Field(default_factory=dict)


class InputsSection(Section):
    """What a build read, each with the sha256 of the bytes actually read."""

    onnx: str
    onnx_sha256: str  # the graph built: the canonical one when rules applied
    canonical: CanonicalSection | None = None
    manifest_entry: dict[str, object] = Field(default_factory=dict)
    calibration: str
    calibration_sha256: str
    eval_faces: int
    eval_sha256: str = ""
    eval_source: str = ""
    versions: Versions | None = None
    # Backend facts (suite image and its id, DFC image, worker digest, ...), all strings.
    backend: dict[str, str] = Field(default_factory=dict)
    alls: str | None = None
    alls_sha256: str | None = None


class ExcludedLayer(Section):
    """A layer the plan wanted in 16-bit but had to leave out, and why."""

    name: str
    kind: str
    why: str


class AutoSummary(Section):
    """What `--precision auto` chose, in the record of the build that used it."""

    reached: bool
    message: str
    layers: list[str]
    target: float | None = None
    metric: str | None = None
    face_size: int | None = None
    auto_plan: str = "../../auto_plan.json"


class PlanSection(Section):
    """The precision plan in ONNX terms and in the backend's own terms."""

    precision: str = ""
    onnx_nodes: list[str] = Field(default_factory=list)
    # hn_layers: names in the .alls (Hailo); qdq_tensors: tensors with 16-bit Q/DQ (ORT).
    a16_kind: Literal["hn_layers", "qdq_tensors"] = "hn_layers"
    a16_layers: list[str] = Field(default_factory=list)
    excluded: list[ExcludedLayer] = Field(default_factory=list)
    auto: AutoSummary | None = None
    # Hailo: the optimization level the .alls asks for (None: the DFC's default) and why.
    optimization_level: int | None = None
    optimization_reason: str | None = None
    # Hailo: the level the DFC ran (its own log line, or the level the .alls set), the
    # calibset_size the .alls states and the compression settings written (no implicit 4-bit).
    optimization_level_applied: int | None = None
    calibset_size: int | None = None
    compression_level: int | None = None
    auto_4bit_weights_ratio: float | None = None
    # Hailo: the layers the optimized HAR holds in 16-bit (None: the DFC did not say).
    applied_a16: list[str] | None = None


class AgreementNumbers(Section):
    """cosine(fp32, candidate) per face, summarised."""

    mean: float
    min: float
    p5: float


class SizeRow(Section):
    """One line of the distance sweep."""

    size: int
    agreement_mean: float
    agreement_min: float
    pre_norm_fp32: float
    pre_norm_candidate: float
    match_rate_fp32: float | None = None
    match_rate_candidate: float | None = None


class DegeneracyNumbers(Section):
    """Signals of collapsed embeddings."""

    norm_mean: float
    norm_std: float
    norm_cv: float
    mean_pairwise_similarity: float
    effective_rank: float


class VerificationNumbers(Section):
    """Genuine/impostor statistics, the best threshold and ROC numbers."""

    genuine_mean: float
    genuine_std: float
    impostor_mean: float
    impostor_std: float
    threshold: float
    accuracy: float
    tar_at_far_1e2: float
    tar_at_far_1e3: float
    roc_auc: float


class SideNumbers(Section):
    """fp32's or the candidate's own numbers."""

    degeneracy: DegeneracyNumbers
    verification: VerificationNumbers | None = None
    pre_norm_ratio: float | None = None


class GateSection(Section):
    """The gate's verdict."""

    passed: bool
    failure_class: FailureClassName | None = Field(default=None, alias="class")
    reasons: list[str] = Field(default_factory=list)


class PairsSection(Section):
    """`hailoc eval --pairs`: verification on the user's own pairs."""

    pairs: int
    used: int
    skipped_images: dict[str, str] = Field(default_factory=dict)
    fp32: VerificationNumbers
    candidate: VerificationNumbers
    candidate_at_fp32_threshold: float
    pairs_file: str = ""
    images: str = ""


class IntervalNumbers(Section):
    """A statistic and its bootstrap 95% interval."""

    value: float
    low: float
    high: float


class PreNormStats(Section):
    """Distribution of the genuine probes' raw embedding norms."""

    mean: float
    p5: float
    p50: float
    p95: float


class IdentitySide(Section):
    """fp32's or the build's verification numbers at one probe size."""

    tar_at_far_1e2: IntervalNumbers
    tar_at_far_1e3: IntervalNumbers
    threshold_at_far_1e2: float
    threshold_at_far_1e3: float
    # The build's TAR at fp32's thresholds: what an application tuned on fp32 gets.
    tar_at_far_1e2_fp32_threshold: IntervalNumbers | None = None
    tar_at_far_1e3_fp32_threshold: IntervalNumbers | None = None
    roc_auc: IntervalNumbers
    genuine_mean: float
    impostor_mean: float
    pre_norm: PreNormStats


class IdentitySizeRow(Section):
    """One probe size: fp32 and the build side by side."""

    size: int
    fp32: IdentitySide
    build: IdentitySide


class IdentitiesSection(Section):
    """`hailoc eval --identities`: verification at distance on labelled identities."""

    folder: str
    people: int
    faces: int
    genuine_pairs: int
    impostor_pairs: int
    impostor_note: str
    build_source: str  # which artifact produced the build column
    reused_faces: int = 0
    skipped_images: dict[str, str] = Field(default_factory=dict)
    rows: list[IdentitySizeRow]


class AccuracySection(Section):
    """Every number the gate and the reports use."""

    faces: int
    sizes: list[int]
    agreement: AgreementNumbers
    sweep: list[SizeRow]
    fp32_threshold: float | None = None
    fp32: SideNumbers
    candidate: SideNumbers
    gate: GateSection
    eval_source: str = ""
    # The DFC's own full-precision emulation vs ONNX: a wrong .alls normalization shows here.
    emulator_fp_agreement: AgreementNumbers | None = None
    pairs: PairsSection | None = None
    identities: IdentitiesSection | None = None

    def at_size(self, size: int) -> SizeRow | None:
        """The sweep row for `size`, if evaluated."""
        return next((r for r in self.sweep if r.size == size), None)


class Artifact(Section):
    """A file the build published, with its hash."""

    path: str
    sha256: str
    note: str | None = None


class AttemptRecord(Section):
    """One try of a plan while hailoc narrowed the 16-bit set past a DFC wall."""

    number: int
    a16_layers: list[str] = Field(default_factory=list)  # HN layers this try asked 16-bit
    a16_w8: list[str] = Field(default_factory=list)
    # probe: only whether it compiles was asked (bisection); build: the plan to publish.
    kind: Literal["build", "probe"] = "build"
    outcome: Literal["ok", "wall"] = "ok"
    stage: str | None = None  # where the wall stood
    failure_class: FailureClassName | None = None
    message: str | None = None
    # What this try's wall took out of the next try, and why.
    removed: list[ExcludedLayer] = Field(default_factory=list)
    seconds: float = 0.0
    stages_run: int = 0
    cache_hits: int = 0


class RecoverySection(Section):
    """How a build got past its 16-bit walls: the plan in `plan` is the one compiled."""

    planned: int  # 16-bit HN layers of the first plan
    kept: int  # ... of the plan compiled
    attempts: int
    compiles: int  # compile stages that ran (cache hits not counted)
    walls: list[str] = Field(default_factory=list)  # the classes met, in order

    @property
    def line(self) -> str:
        """The one line the summary and the CLI print."""
        return (
            f"recovered: {self.kept} of {self.planned} 16-bit layers kept after "
            f"{self.attempts} attempts"
        )


class DamagedEntry(Section):
    """A cache entry this build found damaged: moved aside and produced again."""

    kind: str  # parse, optimize, reference, blobs, ...
    key: str
    reason: str
    moved_to: str | None = None


class BuildRecord(Section):
    """Everything needed to trust, reproduce or debug one model build."""

    schema_version: int = SCHEMA_VERSION
    model: str
    backend: str
    hw_arch: str
    precision: str
    status: Status = "failed"
    failure_class: FailureClassName | None = None
    message: str | None = None
    hint: str | None = None
    engine: str | None = None
    # Set when a first attempt was lost with this engine and the build ran again elsewhere.
    requeued_from: str | None = None
    inputs: InputsSection | None = None
    plan: PlanSection | None = None
    stages: list[StageRecord] = Field(default_factory=list)
    # Set when a 16-bit wall was met: every plan tried, and the outcome.
    attempts: list[AttemptRecord] = Field(default_factory=list)
    # Cache entries found damaged (and produced again) during this build.
    cache_damaged: list[DamagedEntry] = Field(default_factory=list)
    recovery: RecoverySection | None = None
    accuracy: AccuracySection | None = None
    artifacts: dict[str, Artifact] = Field(default_factory=dict)
    log_tail: list[str] = Field(default_factory=list)
    hailoc_version: str = __version__
    started_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    seconds: float = 0.0

    def fail(self, failure_class: FailureClassName, message: str, hint: str) -> None:
        """Mark the build failed with a class, a one-line message and a remedy hint."""
        self.status = "failed"
        self.failure_class = failure_class
        self.message = message
        self.hint = hint

    @property
    def all_cached(self) -> bool:
        """True when every stage that ran came from the cache."""
        cached = [s for s in self.stages if s.cache_key]
        return bool(cached) and all(s.cache_hit for s in cached)

    def to_json(self) -> str:
        """Stable, human-readable JSON (the gate's class is written as `class`)."""
        return self.model_dump_json(indent=2, by_alias=True) + "\n"
