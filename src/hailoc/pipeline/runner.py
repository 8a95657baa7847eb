"""build_one: the one function that owns a build's record, from start to end, for any backend.

inputs -> plan -> backend stages (through one StageRunner) -> fp32 reference -> gate ->
artifact -> publish. Whatever happens (an input error, a DFC failure, a full disk, Ctrl-C), the
target's folder ends with a record.json and build.log that say so, published in one rename,
and the reporter hears `done`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hailoc.autoplan.objective import measure
from hailoc.autoplan.search import rank_layers
from hailoc.backends.protocol import (
    ArtifactFile,
    Backend,
    Candidate,
    Job,
    StageFailure,
    plan_section,
)
from hailoc.cache import StageCache
from hailoc.deploy import DeployArtifact, deploy_for
from hailoc.engines import LOCAL, Slot
from hailoc.errors import HailocError
from hailoc.eval.build_report import write_build_report
from hailoc.eval.gate import accuracy_section, hint_for, judge
from hailoc.eval.metrics import Agreement
from hailoc.eval.sweep import EvalResult, evaluate
from hailoc.faces import BySize
from hailoc.failures import WALL_CLASSES
from hailoc.inputs import BuildInputs, InputsCache
from hailoc.locks import exclusive
from hailoc.manifest import LoadedManifest
from hailoc.options import BuildOptions
from hailoc.owned_files import (
    NotOurs,
    atomic_write_bytes,
    atomic_write_text,
    check_replaceable,
    publish_dir,
    remove_staging,
    staging_sibling,
)
from hailoc.pipeline.backend_scorer import BackendScorer
from hailoc.pipeline.progress import Reporter
from hailoc.pipeline.stages import BuildLog, StageRunner
from hailoc.pipeline.target_plan import AUTO_HINT, plan_for
from hailoc.pipeline.walls import KnownWalls, Step, WallRecovery
from hailoc.plan import PrecisionPlan, read_hn
from hailoc.records import (
    Artifact,
    AttemptRecord,
    AutoSummary,
    BuildRecord,
    ExcludedLayer,
    RecoverySection,
    write_record,
)
from hailoc.records.layout import DEPLOYABLE, output_dir, record_path
from hailoc.records.schema import FailureClassName
from hailoc.reference import References
from hailoc.targets import BuildTarget

log = logging.getLogger(__name__)

INTERRUPTED_HINT = (
    "the build was interrupted: run the same command again (finished stages are cached)"
)
# Artifacts an application loads (deploy.json describes the first one present).
DISK_HINT = "free disk space (or make the output folder writable) and run the command again"


@dataclass
class RunContext:
    """What every build of one invocation shares."""

    manifest: LoadedManifest
    options: BuildOptions
    reporter: Reporter
    inputs: InputsCache
    references: References
    # Set when the invocation is being interrupted: running builds end as `interrupted`.
    cancelled: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def create(
        cls, manifest: LoadedManifest, options: BuildOptions, reporter: Reporter
    ) -> RunContext:
        """A context with fresh per-invocation caches."""
        return cls(
            manifest, options, reporter, InputsCache(manifest), References(manifest.cache_dir)
        )


def _concat(by_size: BySize) -> np.ndarray[tuple[int, int], np.dtype[np.float32]]:
    return np.concatenate([by_size[s] for s in sorted(by_size, reverse=True)])


def _disk_error(exc: OSError) -> tuple[FailureClassName, str] | None:
    if exc.errno == errno.ENOSPC:
        return "disk_full", f"no space left on the device ({exc.filename or 'output'})"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "output", f"cannot write {exc.filename or 'the outputs'}: {exc.strerror}"
    return None


class _Build:
    """The state of one target's build while build_one runs."""

    def __init__(self, ctx: RunContext, backend: Backend, target: BuildTarget) -> None:
        self.ctx = ctx
        self.backend = backend
        self.target = target
        self.record = BuildRecord(
            model=target.model,
            backend=backend.name,
            hw_arch=target.hw_arch,
            precision=target.precision,
        )
        self.log = BuildLog(ctx.reporter, target)
        self.result: EvalResult | None = None
        self.reference: BySize | None = None
        self.stages: StageRunner | None = None

    def run(self, staged: Path, slot: Slot) -> None:
        """Every step up to the artifacts in `staged`; raises what the record must classify."""
        ctx, target, record = self.ctx, self.target, self.record
        inputs = ctx.inputs.get(target.model)
        record.inputs = inputs.describe(ctx.manifest)
        record.inputs.backend = self.backend.facts(target, slot)
        # Where the build ran: a Docker engine for Hailo, this host for ONNX Runtime.
        record.engine = record.inputs.backend.get("engine", LOCAL)
        record.requeued_from = slot.requeued_from
        stages = StageRunner(
            cache=StageCache(ctx.manifest.cache_dir, lambda damage: stages.damaged(damage)),
            work_root=ctx.manifest.work_dir,
            target=target,
            stage_names=self.backend.stages,
            options=ctx.options,
            record=record,
            log=self.log,
            reporter=ctx.reporter,
            engine=record.engine,
            gpu=slot.gpu,
        )
        self.stages = stages
        job = Job(target, inputs, ctx.options, slot)
        prepared = self.backend.prepare(job, stages)
        scorer = None
        if target.precision == "auto":
            stages.phase("auto-search")
            if self.backend.ranks_layers:
                scorer = BackendScorer(self.backend, job, prepared, stages, ctx.references)
        plan, auto = plan_for(
            ctx.manifest,
            inputs,
            target.precision,
            ctx.options,
            scorer=scorer,
            avoid=self._known_walls().read() if target.precision == "auto" else None,
        )
        summary = (
            AutoSummary(
                reached=auto.reached,
                message=auto.message,
                layers=auto.layers,
                target=auto.target,
                metric=auto.metric,
                face_size=auto.face_size,
            )
            if auto is not None
            else None
        )
        record.plan = plan_section(plan, auto=summary)
        if auto is not None and not auto.reached and not ctx.options.accept_best:
            record.fail("auto_target", auto.message, AUTO_HINT)
            return
        if auto is not None and not auto.reached:
            self.log(f"auto: {auto.message}; building it anyway (--accept-best)")
        built = self._attempts(job, plan, prepared, summary)
        if built is None:
            return
        candidate, artifacts, passed = built
        for artifact in artifacts:
            self._place(staged, artifact.key, artifact.name, artifact.source, artifact.note)
        self._deploy(staged, inputs, candidate, artifacts)
        record.status = "ok"
        if not passed:
            assert record.accuracy is not None
            record.message = "gate skipped by --skip-gate: " + "; ".join(
                record.accuracy.gate.reasons
            )

    def _known_walls(self) -> KnownWalls:
        record = self.record
        facts = record.inputs.backend if record.inputs is not None else {}
        sha = record.inputs.onnx_sha256 if record.inputs is not None else ""
        return KnownWalls.of(
            self.ctx.manifest.cache_dir,
            sha,
            self.target.hw_arch,
            facts.get("suite_image_id", self.backend.name),
        )

    def _walls(self, job: Job, plan: PrecisionPlan, prepared: Path | None) -> WallRecovery | None:
        """The wall recovery of a Hailo build with a 16-bit set, unless turned off."""
        ctx = self.ctx
        mode = ctx.options.on_wall or ctx.manifest.data.defaults.walls
        hn = prepared / "parsed.hn.json" if prepared is not None else None
        if mode != "recover" or plan.is_int8 or hn is None or not hn.is_file():
            return None
        inputs = job.inputs
        return WallRecovery(
            read_hn(hn),
            inputs.graph,
            self.target.hw_arch,
            lambda layers: rank_layers(inputs, ctx.manifest.cache_dir, layers),
        )

    def _attempts(
        self,
        job: Job,
        plan: PrecisionPlan,
        prepared: Path | None,
        summary: AutoSummary | None,
    ) -> tuple[Candidate, list[ArtifactFile], bool] | None:
        """Quantize, gate and finish `plan`; past a 16-bit wall, the narrower plans the
        recovery chooses (each try in the record's attempts). None: the gate stopped it."""
        walls = self._walls(job, plan, prepared)
        step = Step(plan, probe=False)
        planned: int | None = None
        while True:
            started = time.monotonic()
            first = len(self.record.stages)
            try:
                candidate = self.backend.quantize(job, step.plan, prepared, self._stages())
                self._take_plan(candidate, summary)
                if planned is None:
                    planned = len(candidate.plan.a16_layers)
                if step.probe:
                    self.backend.finish(job, candidate, self._stages())
                    self._attempt(walls, step, started, first, None)
                    assert walls is not None
                    step = walls.after_compile(step.plan) or step
                    continue
                self._stages().phase("gate")
                passed = self._gate(candidate)
                if passed or self.ctx.options.skip_gate:
                    passed = passed and self._recovered_reaches(candidate, summary)
                if not passed and not self.ctx.options.skip_gate:
                    self._attempt(walls, step, started, first, None)
                    # Compiling takes hours on real models: a build that fails the gate stops.
                    return None
                artifacts = self.backend.finish(job, candidate, self._stages())
                self._attempt(walls, step, started, first, None)
                return candidate, artifacts, passed
            except StageFailure as exc:
                if walls is None or exc.failure_class not in WALL_CLASSES:
                    if self.record.attempts:
                        self._attempt(walls, step, started, first, exc, self._failed_stage(first))
                    raise
                if planned is None:
                    planned = len(walls.a16_of(plan))
                stage = self._failed_stage(first)
                try:
                    if len(self.record.attempts) > 2 * planned + 16:
                        raise exc  # a guard: every wall narrows the set, so never reached
                    following = walls.after_wall(step.plan, exc, stage)
                except StageFailure:
                    self._attempt(walls, step, started, first, exc, stage)
                    raise
                self._attempt(walls, step, started, first, exc, stage, following)
                self._known_walls().add(walls.hn, following.removed)
                step = following
            finally:
                self._summarize_recovery(planned)

    def _stages(self) -> StageRunner:
        assert self.stages is not None
        return self.stages

    def _take_plan(self, candidate: Candidate, summary: AutoSummary | None) -> None:
        record = self.record
        record.plan = candidate.plan.model_copy(update={"auto": summary})
        if candidate.alls is not None and record.inputs is not None:
            record.inputs.alls = candidate.alls
            record.inputs.alls_sha256 = hashlib.sha256(candidate.alls.encode()).hexdigest()

    def _failed_stage(self, first: int) -> str:
        """The stage a failure came from: the last failed stage of this try (a plan the
        optimizer did not apply fails after an optimize that ended ok)."""
        failed = [s.name for s in self.record.stages[first:] if s.status == "failed"]
        return failed[-1] if failed else "optimize"

    def _attempt(
        self,
        walls: WallRecovery | None,
        step: Step,
        started: float,
        first: int,
        failure: StageFailure | None,
        stage: str | None = None,
        following: Step | None = None,
    ) -> None:
        """One try in the record once a wall has been met (a build that meets none, or does not
        recover, has no attempts list)."""
        record = self.record
        if failure is None and not record.attempts:
            return
        ran = record.stages[first:]
        a16 = list(walls.a16_of(step.plan)) if walls is not None else []
        if failure is not None and following is not None and following.note:
            self.log(f"wall: {failure.failure_class}: {following.note}")
        removed = list(following.removed) if following is not None else []
        for layer in removed:
            self.log(f"wall: {layer.name} leaves the 16-bit set ({layer.why})")
        record.attempts.append(
            AttemptRecord(
                number=len(record.attempts) + 1,
                a16_layers=a16,
                a16_w8=list(step.plan.a16_w8),
                kind="probe" if step.probe else "build",
                outcome="wall" if failure is not None else "ok",
                stage=stage if failure is not None else None,
                failure_class=failure.failure_class if failure is not None else None,
                message=(failure.detail or failure.message)[:500] if failure else None,
                removed=[ExcludedLayer(name=r.name, kind=r.kind, why=r.why) for r in removed],
                seconds=round(time.monotonic() - started, 3),
                stages_run=sum(1 for s in ran if not s.cache_hit),
                cache_hits=sum(1 for s in ran if s.cache_hit),
            )
        )

    def _summarize_recovery(self, planned: int | None) -> None:
        record = self.record
        if not record.attempts or planned is None:
            return
        kept = len(record.plan.a16_layers) if record.plan is not None else 0
        record.recovery = RecoverySection(
            planned=planned,
            kept=kept,
            attempts=len(record.attempts),
            compiles=sum(1 for s in record.stages if s.name == "compile" and not s.cache_hit),
            walls=[a.failure_class for a in record.attempts if a.failure_class],
        )

    def _recovered_reaches(self, candidate: Candidate, summary: AutoSummary | None) -> bool:
        """With `-p auto`, a plan narrowed past a wall must still reach auto's target: if not,
        the build ends `accuracy` with the compilable plan's numbers."""
        if summary is None or summary.target is None or not self.record.attempts:
            return True
        spec = self.ctx.inputs.get(self.target.model).config.auto
        if self.reference is None:
            return True
        found = measure(
            self.reference,
            candidate.embeddings,
            metric=spec.metric,
            face_size=spec.face_size,
            confidence=spec.confidence,
        )
        if found.reaches(summary.target):
            return True
        self.record.fail(
            "accuracy",
            f"the plan that compiles past the DFC's walls ({len(candidate.plan.a16_layers)} "
            f"16-bit layers) reaches {spec.metric} {found.value:.4f} "
            f"[{found.low:.4f}, {found.high:.4f}] at {spec.face_size} px, below auto's target "
            f"{summary.target}",
            "the walls left too few 16-bit layers: try a larger target (hailo8 instead of "
            "hailo8l), read the attempts in record.json, or build it anyway with --skip-gate",
        )
        return False

    def _deploy(
        self,
        staged: Path,
        inputs: BuildInputs,
        candidate: Candidate,
        artifacts: list[ArtifactFile],
    ) -> None:
        """deploy.json beside the artifact, from the gate's own embeddings."""
        main = next((a for a in artifacts if a.key in DEPLOYABLE), None)
        if main is None or self.reference is None:
            return
        cfg = inputs.config
        published = self.record.artifacts[main.key]
        deploy = deploy_for(
            cfg,
            backend=self.backend.name,
            hw_arch=self.target.hw_arch,
            precision=self.target.precision,
            artifact=DeployArtifact(
                file=main.name,
                sha256=published.sha256,
                kind=main.key,
                note=main.note,
            ),
            fp32=self.reference,
            candidate=candidate.embeddings,
            eval_source=inputs.eval_source,
            **_output_stream(
                cfg.embedding_output or inputs.onnx_proto.graph.output[0].name, candidate
            ),
        )
        self._place(staged, "deploy", "deploy.json", deploy.model_dump_json(indent=2).encode())

    def _place(
        self, staged: Path, key: str, name: str, source: Path | bytes, note: str | None = None
    ) -> None:
        """Write one published file into the staged folder and list it in the record."""
        data = source if isinstance(source, bytes) else source.read_bytes()
        atomic_write_bytes(staged / name, data)
        final = output_dir(self.ctx.manifest.hef_dir, self.target) / name
        self.record.artifacts[key] = Artifact(
            path=str(final), sha256=hashlib.sha256(data).hexdigest(), note=note
        )

    def _gate(self, candidate: Candidate) -> bool:
        ctx, record = self.ctx, self.record
        inputs = ctx.inputs.get(self.target.model)
        cfg = inputs.config
        reference = ctx.references.get(inputs, cfg.gate.face_sizes, self._stages().damaged)
        self.reference = reference
        self.result = evaluate(reference, candidate.embeddings)
        emulator_fp = (
            Agreement.of(_concat(reference), _concat(candidate.fp_emulated))
            if candidate.fp_emulated is not None
            else None
        )
        verdict = judge(self.result, cfg.gate, emulator_fp)
        record.accuracy = accuracy_section(
            self.result, verdict, eval_source=inputs.eval_source, emulator_fp=emulator_fp
        )
        self.log(f"gate: {'passed' if verdict.passed else verdict.message}")
        if not verdict.passed:
            klass = verdict.failure_class or "accuracy"
            record.fail(klass, verdict.message, hint_for(klass, self.target.precision))
        return verdict.passed

    def classify(self, exc: BaseException) -> None:
        """Put any exception into the record as a failure class with a hint."""
        record = self.record
        if isinstance(exc, StageFailure):
            record.fail(exc.failure_class, exc.message, exc.hint)
        elif isinstance(exc, HailocError):
            record.fail("input", str(exc), exc.fix or "fix the input named in the message")
        elif isinstance(exc, KeyboardInterrupt):
            record.fail("interrupted", "interrupted by a signal", INTERRUPTED_HINT)
        elif isinstance(exc, OSError) and _disk_error(exc) is not None:
            klass, message = _disk_error(exc) or ("disk_full", "")
            record.fail(klass, message, DISK_HINT)
        else:
            log.debug("unexpected failure", exc_info=exc)
            record.fail("internal", f"{type(exc).__name__}: {exc}", "report this as a hailoc bug")
            record.log_tail = traceback.format_exception(exc)[-12:]
        if self.ctx.cancelled.is_set() and record.status != "ok":
            record.fail("interrupted", f"interrupted ({record.message})", INTERRUPTED_HINT)

    def write(self, staged: Path, started: float) -> None:
        """record.json, build.log and report.md into the staged folder."""
        record = self.record
        for name, source in (self.stages.attachments if self.stages else {}).items():
            self._place(staged, name, name, source)
        record.seconds = round(time.monotonic() - started, 3)
        record.log_tail = record.log_tail or self.log.lines[-30:]
        if self.result is not None:
            write_build_report(staged, record, self.result)
        atomic_write_text(staged / "build.log", self.log.text())
        write_record(record_path(staged), record)


def build_one(
    ctx: RunContext, backend: Backend, target: BuildTarget, slot: Slot | None = None
) -> BuildRecord:
    """Build one target; every outcome ends in a published record (KeyboardInterrupt is
    re-raised after the record is written)."""
    started = time.monotonic()
    build = _Build(ctx, backend, target)
    if ctx.cancelled.is_set():
        # Queued behind a build that was interrupted: nothing started, nothing is written.
        build.record.fail("interrupted", "not started: the batch was interrupted", INTERRUPTED_HINT)
        ctx.reporter.done(build.record)
        return build.record
    final = output_dir(ctx.manifest.hef_dir, target)
    what = f"hef/{target.model}/{target.arch_folder}/{target.precision}"
    interrupted: KeyboardInterrupt | None = None
    try:
        check_replaceable(final, what=what)
        with exclusive(
            final,
            what=what,
            locks=ctx.manifest.locks_dir,
            wait=ctx.options.wait,
            on_wait=lambda: build.log(f"waiting: another hailoc process is building {what}"),
        ):
            staged = staging_sibling(final)
            try:
                try:
                    build.run(staged, slot or Slot())
                except KeyboardInterrupt as exc:
                    interrupted = exc
                    build.classify(exc)
                except Exception as exc:
                    build.classify(exc)
                build.write(staged, started)
                publish_dir(staged, final, what=what)
            finally:
                remove_staging(staged)
    except NotOurs as exc:
        build.record.fail("output", str(exc), exc.fix or "give another output folder")
    except OSError as exc:
        # The outputs themselves could not be written: the record cannot land on disk.
        klass, message = _disk_error(exc) or ("internal", f"{type(exc).__name__}: {exc}")
        build.record.fail(klass, message, DISK_HINT)
        log.error("%s: %s", what, message)
    ctx.reporter.done(build.record)
    if interrupted is not None:
        raise interrupted
    return build.record


def _output_stream(onnx_output: str, candidate: Candidate) -> dict[str, Any]:
    """The output a deployment reads: for a Hailo build, the vstream HailoRT names after the
    layer that FEEDS the output layer (`net/fc1`, not `output_layer1`: DFC_FIELD_NOTES
    section 9), UINT16 when the output layer is 16-bit."""
    hn = candidate.prepared / "parsed.hn.json" if candidate.prepared is not None else None
    if hn is None or not hn.is_file():
        return {"output_name": onnx_output}
    order = (
        json.loads(hn.read_text(encoding="utf-8"))
        .get("net_params", {})
        .get("output_layers_order", [])
    )
    sixteen = any(a.startswith("output_layer") for a in candidate.plan.a16_layers)
    return {
        "output_name": str(order[0]) if order else onnx_output,
        "output_name_source": "the parsed HN's output_layers_order (HailoRT names the output "
        "vstream after the layer feeding the output); check hef.get_output_vstream_infos()",
        "output_16bit": sixteen,
    }
