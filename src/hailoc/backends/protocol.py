"""The Backend protocol: only what differs between backends; the runner owns everything else.

A build is: prepare (Hailo: parse; ORT: nothing) -> quantize the plan and embed the eval faces
with the result (Hailo: optimize + SDK_QUANTIZED emulation; ORT: QDQ + a session) -> the
runner's gate -> finish (Hailo: compile; ORT: the QDQ model is the artifact). Cached work goes
through `Stages.run`, so the stage cache, `--from-stage`, timings and the record's stage list
behave the same for every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hailoc.cache import Damage
from hailoc.engines import EngineSlots, Slot
from hailoc.faces import BySize, Embeddings, Faces
from hailoc.inputs import BuildInputs
from hailoc.options import BuildOptions
from hailoc.plan import PrecisionPlan
from hailoc.records import PlanSection
from hailoc.records.schema import FailureClassName
from hailoc.targets import BuildTarget

Fact = str | int | float | bool | None


@dataclass(frozen=True)
class StageOutput:
    """Files a stage produced in its work folder (copied into the cache) and its own numbers."""

    files: dict[str, Path]  # names may hold a folder: "logs/x.log" lands in logs/ of the entry
    worker_seconds: float | None = None
    peak_rss_mb: float | None = None
    facts: dict[str, Fact] = field(default_factory=dict)


class StageFailure(Exception):
    """A stage ended without its outputs; carries the class and details for the record."""

    def __init__(
        self,
        failure_class: FailureClassName,
        message: str,
        hint: str,
        *,
        error_type: str | None = None,
        detail: str | None = None,
        traceback_tail: tuple[str, ...] = (),
        worker_seconds: float | None = None,
        peak_rss_mb: float | None = None,
        logs: dict[str, bytes] | None = None,
    ) -> None:
        super().__init__(message)
        # Tool logs of the failed stage (name -> bytes): published under logs/ for support.
        self.logs = logs or {}
        self.failure_class = failure_class
        self.message = message
        self.hint = hint
        self.error_type = error_type
        self.detail = detail
        self.traceback_tail = traceback_tail
        self.worker_seconds = worker_seconds
        self.peak_rss_mb = peak_rss_mb


class Stages(Protocol):
    """What a backend may ask of the runner while it builds."""

    def run(self, name: str, key: str, produce: Callable[[Path], StageOutput]) -> Path:
        """The cache entry of stage `name` under `key`; `produce(workdir)` runs on a miss."""

    def phase(self, name: str) -> None:
        """An uncached step starts (shown in progress and the log)."""

    def log(self, line: str) -> None:
        """One line of the build's log."""

    def damaged(self, damage: Damage) -> None:
        """A cache entry (or blob) the backend found damaged and produced again."""


@dataclass(frozen=True)
class Job:
    """One target to build with its checked inputs and the invocation's options."""

    target: BuildTarget
    inputs: BuildInputs
    options: BuildOptions
    slot: Slot | None = None  # the engine (and GPU) this build holds


@dataclass(frozen=True)
class Candidate:
    """A quantized build, before the gate: its plan and its embeddings of the eval faces."""

    plan: PlanSection
    embeddings: BySize
    entry: Path  # the quantize stage's cache entry
    # The backend's own full-precision emulation, compared with ONNX to catch .alls mistakes.
    fp_emulated: BySize | None = None
    alls: str | None = None
    prepared: Path | None = None  # the prepare stage's cache entry (Hailo: the parse)


@dataclass(frozen=True)
class ArtifactFile:
    """A file to publish beside the record."""

    key: str  # the record's artifacts key: hef, standin_output, qdq_onnx, alls, hn
    name: str  # file name in the output folder
    source: Path | bytes
    note: str | None = None


class Backend(Protocol):
    """One way of turning a plan into a quantized model and an artifact."""

    name: str
    stages: tuple[str, ...]  # cached stages, in order, as `--from-stage` names them
    # True when `layer_noise` answers: `auto` then ranks and measures plans on this backend.
    ranks_layers: bool

    def facts(self, target: BuildTarget, slot: Slot) -> dict[str, str]:
        """Backend facts for the record of `target` (images, versions, digests)."""

    def prepare(self, job: Job, stages: Stages) -> Path | None:
        """Work every precision of the model shares (Hailo: parse); its cache entry."""

    def quantize(
        self, job: Job, plan: PrecisionPlan, prepared: Path | None, stages: Stages
    ) -> Candidate:
        """Quantize with `plan` and embed the eval faces at every gate size."""

    def layer_noise(
        self, job: Job, candidate: Candidate, stages: Stages
    ) -> dict[str, float] | None:
        """SNR in dB per ONNX layer from the backend's own analysis of `candidate` (Hailo:
        the DFC's layer noise analysis); None when it has none (`auto` then ranks and
        searches on the ONNX Runtime emulation)."""

    def emulate(self, job: Job, optimized: Path, faces: Faces, stages: Stages) -> Embeddings:
        """Embeddings of uint8 RGB faces under a built candidate's quantized model (its
        `Candidate.entry`): what evaluations of a finished build compare with fp32."""
        ...

    def finish(self, job: Job, candidate: Candidate, stages: Stages) -> list[ArtifactFile]:
        """Produce the artifact of a candidate that passed the gate."""

    def engine_slots(self, options: BuildOptions) -> list[EngineSlots]:
        """The engines builds are dispatched to (none: builds run in this process)."""
        ...

    def cancel(self) -> None:
        """Stop everything this backend started (containers); called from another thread."""


def plan_section(plan: PrecisionPlan, **fields: Any) -> PlanSection:
    """The record's plan section of `plan`: what was asked, and what a backend adds."""
    return PlanSection(precision=plan.precision, onnx_nodes=list(plan.onnx_nodes), **fields)
