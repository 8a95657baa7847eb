"""Emulate a Hailo build on any machine: QDQ quantization of the same plan, embedded with ORT."""

from __future__ import annotations

from pathlib import Path

from hailoc.backends.onnxruntime.qdq_plan import render_qdq
from hailoc.backends.onnxruntime.quantize import quantize_inputs, quantize_key
from hailoc.backends.protocol import (
    ArtifactFile,
    Candidate,
    Job,
    StageOutput,
    Stages,
    plan_section,
)
from hailoc.engines import EngineSlots, Slot
from hailoc.faces import Embeddings, Faces
from hailoc.inference.session import Embedder, embed_at_sizes, open_session
from hailoc.options import BuildOptions
from hailoc.plan import PrecisionPlan
from hailoc.records import ExcludedLayer
from hailoc.records.layout import artifact_name
from hailoc.targets import BuildTarget

QDQ = "model.qdq.onnx"
NOT_A_HEF = "ONNX Runtime QDQ emulation of the Hailo plan: NOT a HEF"


class OrtBackend:
    """Builds targets with ONNX Runtime on the host; outputs are QDQ models, never HEFs."""

    name = "onnxruntime"
    stages: tuple[str, ...] = ("quantize",)
    ranks_layers = False

    def facts(self, target: BuildTarget, slot: Slot) -> dict[str, str]:
        """Nothing beyond the toolchain versions every record carries."""
        return {}

    def prepare(self, job: Job, stages: Stages) -> Path | None:
        """ONNX Runtime needs no per-model preparation."""
        return None

    def quantize(
        self, job: Job, plan: PrecisionPlan, prepared: Path | None, stages: Stages
    ) -> Candidate:
        """QDQ-quantize with the plan's 16-bit tensors, then embed the eval faces with it."""
        inputs = job.inputs
        cfg = inputs.config
        qplan = render_qdq(plan, inputs.onnx_proto)

        def produce(workdir: Path) -> StageOutput:
            facts = quantize_inputs(inputs, qplan, workdir / QDQ)
            stages.log(
                f"quantized {facts['calibration_faces']} calibration faces at opset "
                f"{facts['opset']}, {len(qplan.tensors)} tensors in 16-bit"
            )
            return StageOutput({QDQ: workdir / QDQ})

        entry = stages.run("quantize", quantize_key(inputs, qplan), produce)
        stages.phase("evaluate")
        embeddings = embed_at_sizes(entry / QDQ, cfg, inputs.eval_faces, cfg.gate.face_sizes)
        section = plan_section(
            plan,
            a16_kind="qdq_tensors",
            a16_layers=list(qplan.tensors),
            excluded=[ExcludedLayer(name=e.name, kind=e.kind, why=e.why) for e in plan.excluded],
        )
        return Candidate(section, embeddings, entry)

    def layer_noise(
        self, job: Job, candidate: Candidate, stages: Stages
    ) -> dict[str, float] | None:
        """None: `auto` ranks ONNX Runtime layers itself, toggling one quantized model."""
        return None

    def emulate(self, job: Job, optimized: Path, faces: Faces, stages: Stages) -> Embeddings:
        """Embeddings of uint8 RGB faces under a quantize stage's QDQ model."""
        cfg = job.inputs.config
        return Embedder(open_session(optimized / QDQ), cfg, cfg.embedding_output)(faces)

    def finish(self, job: Job, candidate: Candidate, stages: Stages) -> list[ArtifactFile]:
        """The QDQ model is the artifact."""
        name = artifact_name("qdq_onnx", job.target.model)
        return [ArtifactFile("qdq_onnx", name, candidate.entry / QDQ, NOT_A_HEF)]

    def engine_slots(self, options: BuildOptions) -> list[EngineSlots]:
        """None: ONNX Runtime builds run in this process."""
        return []

    def cancel(self) -> None:
        """Runs in-process: an interrupt reaches it directly."""
