"""The build runner with a fake backend: no Docker, no ONNX Runtime, every path of the record.

The project holds the real example ONNX (read and hashed, never run) and a tiny synthetic
calibration set; the fp32 reference is replaced by fixed embeddings, so only the runner's own
logic is under test.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from hailoc.backends.protocol import ArtifactFile, Candidate, Job, StageFailure, StageOutput, Stages
from hailoc.engines import Slot
from hailoc.errors import HailocError
from hailoc.faces import BySize
from hailoc.inputs import BuildInputs
from hailoc.manifest import load_manifest
from hailoc.options import BuildOptions
from hailoc.pipeline.progress import SilentReporter
from hailoc.pipeline.runner import RunContext, build_one
from hailoc.plan import PrecisionPlan
from hailoc.records import BuildRecord, PlanSection, read_record
from hailoc.records.layout import output_dir
from hailoc.targets import BuildTarget
from tests.conftest import REPO
from tests.synthetic import synthetic_set

SIZES = (112, 64, 40, 24, 16)
DIM = 16


def _embeddings(faces: int, seed: int = 0) -> BySize:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(faces, DIM)).astype(np.float32) * rng.uniform(1, 3, (faces, 1))
    return {s: (base + 0.01 * rng.normal(size=base.shape)).astype(np.float32) for s in SIZES}


class FakeReferences:
    """fp32 embeddings without running a model."""

    def get(self, inputs: BuildInputs, sizes: tuple[int, ...], on_damage: object = None) -> BySize:
        return _embeddings(len(inputs.eval_faces))


class FakeBackend:
    """Records what the runner asked for; quantize returns close or collapsed embeddings."""

    name = "onnxruntime"
    stages: tuple[str, ...] = ("prepare", "quantize", "finish")
    ranks_layers = False

    def __init__(self, *, collapsed: bool = False, fail_in: str | None = None) -> None:
        self.collapsed = collapsed
        self.fail_in = fail_in
        self.produced: list[str] = []
        self.finished = False
        self.delay: dict[str, float] = {}  # seconds a stage's work takes

    def _stage(self, stages: Stages, name: str, key: str) -> Path:
        def produce(workdir: Path) -> StageOutput:
            self.produced.append(name)
            time.sleep(self.delay.get(name, 0.0))
            if self.fail_in == name:
                raise StageFailure("allocator", f"{name}: BackendAllocatorException", "fewer")
            if self.fail_in == f"{name}-crash":
                raise RuntimeError("a bug in a backend")
            (workdir / "out.bin").write_bytes(name.encode())
            return StageOutput({"out.bin": workdir / "out.bin"}, worker_seconds=0.5)

        return stages.run(name, key, produce)

    def facts(self, target: BuildTarget, slot: Slot) -> dict[str, str]:
        return {"fake": "yes"}

    def prepare(self, job: Job, stages: Stages) -> Path | None:
        return self._stage(stages, "prepare", f"prepare-{job.inputs.onnx_sha256}")

    def quantize(
        self, job: Job, plan: PrecisionPlan, prepared: Path | None, stages: Stages
    ) -> Candidate:
        entry = self._stage(stages, "quantize", f"quantize-{plan.precision}")
        faces = len(job.inputs.eval_faces)
        if self.collapsed:
            same = np.ones((faces, DIM), dtype=np.float32)
            embeddings = {s: same for s in SIZES}
        else:
            embeddings = _embeddings(faces)
        return Candidate(PlanSection(precision=plan.precision), embeddings, entry)

    def layer_noise(
        self, job: Job, candidate: Candidate, stages: Stages
    ) -> dict[str, float] | None:
        return None

    def finish(self, job: Job, candidate: Candidate, stages: Stages) -> list[ArtifactFile]:
        self._stage(stages, "finish", f"finish-{candidate.entry.name}")
        self.finished = True
        if self.fail_in == "finish-input":
            raise HailocError("bad", where="x", fix="y")
        return [ArtifactFile("qdq_onnx", f"{job.target.model}.fake", b"artifact bytes", "fake")]

    def cancel(self) -> None:
        pass


@pytest.fixture
def fake_project(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    shutil.copy(REPO / "models" / "fr_feature.onnx", tmp_path / "models")
    shutil.copytree(REPO / "alls_templates", tmp_path / "alls_templates")
    text = (REPO / "models.yaml").read_text().replace("calib_set: fr_demo", "calib_set: tiny")
    (tmp_path / "models.yaml").write_text(text)
    synthetic_set(tmp_path / "calibration")
    return tmp_path


Build = Callable[..., tuple[BuildRecord, Path]]


@pytest.fixture
def build(fake_project: Path) -> Build:
    manifest = load_manifest(fake_project / "models.yaml")

    def run(backend: FakeBackend, **options: object) -> tuple[BuildRecord, Path]:
        ctx = RunContext.create(manifest, BuildOptions(**options), SilentReporter())  # type: ignore[arg-type]
        ctx.references = FakeReferences()  # type: ignore[assignment]
        target = BuildTarget("fr_feature", "hailo8", "int8", "onnxruntime")
        record = build_one(ctx, backend, target)
        return record, output_dir(manifest.hef_dir, target)

    return run


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_success_publishes_record_log_report_and_artifact(build: Build) -> None:
    backend = FakeBackend()
    record, folder = build(backend)
    assert record.status == "ok", record.message
    assert backend.produced == ["prepare", "quantize", "finish"]
    on_disk = read_record(folder / "record.json")
    assert on_disk.status == "ok" and on_disk.accuracy is not None
    assert on_disk.accuracy.gate.passed
    artifact = on_disk.artifacts["qdq_onnx"]
    assert hashlib.sha256((folder / "fr_feature.fake").read_bytes()).hexdigest() == artifact.sha256
    assert {"record.json", "build.log", "report.md", "fr_feature.fake"} <= _files(folder)
    assert "== quantize: running" in (folder / "build.log").read_text()
    assert on_disk.inputs is not None and on_disk.inputs.backend == {"fake": "yes"}
    assert on_disk.engine == "local" and all(s.engine == "local" for s in on_disk.stages)
    # Nothing staged or in flight is left beside the target.
    assert [p.name for p in folder.parent.iterdir() if ".staging-" in p.name] == []


def test_second_build_hits_the_cache_and_from_stage_reruns_from_there(build: Build) -> None:
    build(FakeBackend())
    again = FakeBackend()
    record, _ = build(again)
    assert again.produced == [] and record.all_cached
    assert [s.cache_hit for s in record.stages] == [True, True, True]
    partial = FakeBackend()
    record, _ = build(partial, from_stage="quantize")
    assert partial.produced == ["quantize", "finish"]
    assert [s.cache_hit for s in record.stages] == [True, False, False]
    forced = FakeBackend()
    build(forced, force=True)
    assert forced.produced == ["prepare", "quantize", "finish"]


def test_gate_failure_stops_before_finish_and_publishes_no_artifact(build: Build) -> None:
    backend = FakeBackend(collapsed=True)
    record, folder = build(backend)
    assert record.status == "failed" and record.failure_class == "degenerate"
    assert not backend.finished
    assert "fr_feature.fake" not in _files(folder)
    assert read_record(folder / "record.json").failure_class == "degenerate"
    assert "FAILED (degenerate)" in (folder / "report.md").read_text()


def test_skip_gate_keeps_the_artifact_and_says_so(build: Build) -> None:
    record, folder = build(FakeBackend(collapsed=True), skip_gate=True)
    assert record.status == "ok" and "gate skipped" in (record.message or "")
    assert "fr_feature.fake" in _files(folder)


@pytest.mark.parametrize(
    ("fail_in", "klass"),
    [
        ("prepare", "allocator"),
        ("quantize", "allocator"),
        ("finish", "allocator"),
        ("quantize-crash", "internal"),
        ("finish-input", "input"),
    ],
)
def test_a_failure_in_any_step_still_writes_record_and_log(
    build: Build, fail_in: str, klass: str
) -> None:
    # A good build first: its artifact must not survive next to a failed record.
    build(FakeBackend())
    record, folder = build(FakeBackend(fail_in=fail_in), force=True)
    assert record.status == "failed" and record.failure_class == klass
    on_disk = read_record(folder / "record.json")
    assert on_disk.failure_class == klass and on_disk.hint
    assert (folder / "build.log").is_file()
    assert "fr_feature.fake" not in _files(folder)
    failed = [s for s in on_disk.stages if s.status == "failed"]
    assert len(failed) == (0 if fail_in == "finish-input" else 1)


def test_input_error_is_a_record_too(build: Build, fake_project: Path) -> None:
    (fake_project / "calibration" / "tiny" / "calib.npy").write_bytes(b"flipped")
    record, folder = build(FakeBackend())
    assert record.failure_class == "input" and "array changed: calib.npy" in (record.message or "")
    assert (folder / "record.json").is_file() and (folder / "build.log").is_file()


def test_keyboard_interrupt_is_recorded_then_raised(build: Build, fake_project: Path) -> None:
    class Interrupting(FakeBackend):
        def quantize(
            self, job: Job, plan: PrecisionPlan, prepared: Path | None, stages: Stages
        ) -> Candidate:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build(Interrupting())
    folder = fake_project / "hef" / "fr_feature" / "onnxruntime" / "int8"
    record = read_record(folder / "record.json")
    assert record.failure_class == "interrupted"


def test_a_folder_with_user_files_is_never_replaced(build: Build) -> None:
    _, folder = build(FakeBackend())
    (folder / "notes.txt").write_text("mine")
    record, _ = build(FakeBackend(), force=True)
    assert record.failure_class == "output" and "notes.txt" in (record.message or "")
    assert (folder / "notes.txt").read_text() == "mine"


def test_two_builds_needing_one_stage_at_once_run_it_once(fake_project: Path) -> None:
    """Two precisions of one model built at once share its prepare stage: the second waits
    for the first and takes the entry from the cache instead of running it too."""
    manifest = load_manifest(fake_project / "models.yaml")
    ctx = RunContext.create(manifest, BuildOptions(), SilentReporter())
    ctx.references = FakeReferences()  # type: ignore[assignment]
    backend = FakeBackend()
    backend.delay["prepare"] = 0.5  # the second build asks while the first still runs it
    targets = [
        BuildTarget("fr_feature", "hailo8", p, "onnxruntime") for p in ("int8", "int16-final")
    ]
    with ThreadPoolExecutor(2) as pool:
        records = list(pool.map(lambda t: build_one(ctx, backend, t), targets))
    assert [r.status for r in records] == ["ok", "ok"], [r.message for r in records]
    assert backend.produced.count("prepare") == 1
    hits = [s.cache_hit for r in records for s in r.stages if s.name == "prepare"]
    assert sorted(hits) == [False, True]


def test_a_plan_narrowed_past_walls_must_still_reach_autos_target(fake_project: Path) -> None:
    """-p auto: the plan that compiles after the walls is measured against auto's target;
    below it, the build fails `accuracy` naming the compilable plan's numbers."""
    from hailoc.pipeline.runner import _Build
    from hailoc.records import AttemptRecord, AutoSummary

    manifest = load_manifest(fake_project / "models.yaml")
    ctx = RunContext.create(manifest, BuildOptions(), SilentReporter())
    build = _Build(ctx, FakeBackend(), BuildTarget("fr_feature", "hailo8", "auto", "hailo"))
    faces = len(ctx.inputs.get("fr_feature").eval_faces)
    build.reference = _embeddings(faces)
    summary = AutoSummary(
        reached=True, message="", layers=["Conv_9"], target=0.99, metric="p5", face_size=24
    )
    close = Candidate(
        PlanSection(precision="auto", a16_layers=["conv4"]), _embeddings(faces), Path()
    )
    far = Candidate(PlanSection(precision="auto"), _embeddings(faces, seed=1), Path())
    # No wall met: auto's own search already measured its plan.
    assert build._recovered_reaches(far, summary)
    build.record.attempts.append(AttemptRecord(number=1, outcome="wall"))
    assert build._recovered_reaches(close, summary)
    assert build.record.failure_class is None
    assert not build._recovered_reaches(far, summary)
    assert build.record.failure_class == "accuracy"
    assert "past the DFC's walls" in (build.record.message or "")
    assert "below auto's target 0.99" in (build.record.message or "")
