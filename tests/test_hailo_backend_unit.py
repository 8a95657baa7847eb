"""The Hailo backend's own logic without Docker: a fake container runner plays the worker
(reads the job file, writes the outputs and result.json a real stage writes), so keys, job
files, blobs, output checks, failure classes and the stand-in marking are tested in
milliseconds. The Docker tests keep the end-to-end path."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hailoc.backends.hailo.backend import STANDIN_MAGIC, HailoBackend
from hailoc.backends.hailo.container import StageOutcome, StageRun
from hailoc.backends.hailo.docker_env import SuiteInfo
from hailoc.backends.hailo.sessions import HailoSession, Suite
from hailoc.backends.protocol import Job, StageFailure
from hailoc.cache import Damage, StageCache
from hailoc.engines import Slot
from hailoc.inputs import gather
from hailoc.manifest import load_manifest
from hailoc.options import BuildOptions
from hailoc.pipeline.stages import CacheStages
from hailoc.plan import build_plan
from hailoc.targets import BuildTarget
from tests.conftest import FIXTURES

HN = (FIXTURES / "fr_feature.hn.json").read_bytes()
HAR = b"HAR bytes of the fake DFC"


@dataclass
class FakeRunner:
    """Plays hailoc's worker: what each stage writes into out/, and its result.json."""

    hef: bytes = STANDIN_MAGIC + b" fake"
    # stage -> the result a failing worker reports, or a StageOutcome to return as is
    fail: dict[str, dict[str, Any] | StageOutcome] = field(default_factory=dict)
    corrupt: str | None = None  # an output whose bytes differ from what the worker reports
    jobs: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(
        self, run: StageRun, workdir: Path, on_line: Callable[[str], None]
    ) -> StageOutcome:
        files = run.files
        job = json.loads(files.work["job.json"])
        self.jobs.append(job)
        self.calls.append({"image": run.image, "gpu_index": run.gpu_index, "labels": run.labels})
        stage = job["stage"]
        for path, (host, sha) in files.inputs.items():
            # What the worker checks first: every input is the file the host hashed.
            assert hashlib.sha256(host.read_bytes()).hexdigest() == sha, path
        failure = self.fail.get(stage)
        if isinstance(failure, StageOutcome):
            return failure
        out = workdir / "out"
        out.mkdir(parents=True, exist_ok=True)
        (workdir / "cwd").mkdir(exist_ok=True)
        (workdir / "cwd" / "hailo_sdk.client.log").write_text(f"{stage} log line\n")
        on_line(f"@@hailoc stage={stage} event=start")
        if failure is not None:
            result = {"status": "error", **failure}
        else:
            written = self._outputs(stage, files.work, out)
            reported = {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in written}
            if self.corrupt in reported:
                (out / self.corrupt).write_bytes(b"changed on the way")
            result = {"status": "ok", "seconds": 1.5, "outputs_sha256": reported}
        (out / "result.json").write_text(json.dumps(result))
        return StageOutcome(result=result, exit_code=0 if failure is None else 1)

    def _outputs(self, stage: str, work: dict[str, bytes], out: Path) -> list[str]:
        if stage == "parse":
            (out / "parsed.har").write_bytes(HAR)
            (out / "parsed.hn.json").write_bytes(HN)
            return ["parsed.har", "parsed.hn.json"]
        if stage == "optimize":
            alls = work["model.alls"].decode()
            sixteen = {
                name.strip()
                for group in re.findall(
                    r"quantization_param\(\[([^\]]*)\],\s*precision_mode=a16", alls
                )
                for name in group.split(",")
            }
            layers = [name.split("/", 1)[-1] for name in json.loads(HN)["layers"]]
            applied = {name: "a16_w16" if name in sixteen else "a8_w8" for name in layers}
            (out / "optimized.har").write_bytes(HAR + b" optimized")
            (out / "applied_precision.json").write_text(json.dumps(applied))
            faces = np.load(_npy(work["eval.npy"]))
            rng = np.random.default_rng(0)
            emb = rng.normal(size=(len(faces), 128)).astype(np.float32)
            np.save(out / "emulate_fp.npy", emb)
            np.save(out / "emulate_q.npy", emb + 0.01)
            return ["optimized.har", "applied_precision.json", "emulate_fp.npy", "emulate_q.npy"]
        if stage == "compile":
            (out / "model.hef").write_bytes(self.hef)
            return ["model.hef"]
        raise AssertionError(f"no fake for {stage}")


def _npy(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


class FakeClient:
    """A Docker client with no containers (cancel() lists and removes by label)."""

    def __init__(self) -> None:
        self.listed: list[dict[str, Any]] = []
        self.containers = self

    def list(self, all: bool, filters: dict[str, Any]) -> list[Any]:
        self.listed.append(filters)
        return []


@pytest.fixture
def setup(calibrated_project: Path) -> Callable[..., tuple[HailoBackend, Job, CacheStages]]:
    manifest = load_manifest(calibrated_project / "models.yaml")
    inputs = gather(manifest, "fr_feature")

    def make(
        runner: FakeRunner, *, gpus: bool = False, damaged: list[Damage] | None = None
    ) -> tuple[HailoBackend, Job, CacheStages]:
        info = SuiteInfo("hailo-suite:test", "sha256:suite", "python3", "3.31.0", "4.21.0")
        session = HailoSession(
            FakeClient(), {"hailo8": Suite(info, "hailoc-dfc:test")}, gpus, "w" * 64
        )
        backend = HailoBackend(manifest, [session], run=runner)
        target = BuildTarget("fr_feature", "hailo8", "int16-final", "hailo")
        slot = Slot(session.engine, 1 if gpus else None)
        job = Job(target, inputs, BuildOptions(stage_timeout=30), slot)
        stages = CacheStages(StageCache(manifest.cache_dir), manifest.work_dir, lambda _: None)
        if damaged is not None:
            stages.damaged = damaged.append  # type: ignore[method-assign]
        return backend, job, stages

    return make


def test_a_build_runs_parse_optimize_compile_with_checked_inputs_and_marks_the_standin(
    setup: Callable[..., tuple[HailoBackend, Job, CacheStages]],
) -> None:
    runner = FakeRunner()
    backend, job, stages = setup(runner, gpus=True)
    prepared = backend.prepare(job, stages)
    assert prepared is not None and (prepared / "parsed.hn.json").read_bytes() == HN
    plan = build_plan(job.inputs.config, job.inputs.graph, "int16-final")
    candidate = backend.quantize(job, plan, prepared, stages)
    artifacts = backend.finish(job, candidate, stages)
    assert [j["stage"] for j in runner.jobs] == ["parse", "optimize", "compile"]
    parse, optimize, _ = runner.jobs
    # Inputs are content-addressed blobs named by the bytes' sha256, hashed in the job file.
    assert parse["onnx"].endswith(f"{job.inputs.onnx_sha256}.onnx")
    assert parse["sha256"][parse["onnx"]] == job.inputs.onnx_sha256
    assert optimize["calib"].endswith(f"{job.inputs.calib_sha256}.npy")
    assert optimize["sha256"][optimize["calib"]] == job.inputs.calib_sha256
    # Each stage container carries the run's label (cancel finds it) and the build's GPU.
    assert {c["labels"]["org.hailoc.run"] for c in runner.calls} == {backend.run_id}
    assert {c["gpu_index"] for c in runner.calls} == {1}
    assert {c["image"] for c in runner.calls} == {"hailoc-dfc:test"}
    # The plan section names HN layers, and the DFC's applied precision backs it.
    assert candidate.plan.a16_kind == "hn_layers"
    assert candidate.plan.a16_layers and set(candidate.plan.a16_layers) <= set(
        candidate.plan.applied_a16 or []
    )
    sizes = job.inputs.config.gate.face_sizes
    assert set(candidate.embeddings) == set(sizes)
    assert all(len(v) == len(job.inputs.eval_faces) for v in candidate.embeddings.values())
    # A stand-in output never passes for a HEF.
    keys = {a.key: a.name for a in artifacts}
    assert "hef" not in keys and keys["standin_output"] == "fr_feature.standin-not-a-hef"
    # Everything came from the cache the second time: no container.
    runner.jobs.clear()
    again = backend.prepare(job, stages)
    assert again == prepared and runner.jobs == []
    backend.cancel()
    session = next(iter(backend.sessions.values()))
    assert session.client.listed == [{"label": [f"org.hailoc.run={backend.run_id}"]}]


def test_a_real_hef_is_named_hef(
    setup: Callable[..., tuple[HailoBackend, Job, CacheStages]],
) -> None:
    backend, job, stages = setup(FakeRunner(hef=b"\x01HEF bytes"))
    prepared = backend.prepare(job, stages)
    plan = build_plan(job.inputs.config, job.inputs.graph, "int8")
    artifacts = backend.finish(job, backend.quantize(job, plan, prepared, stages), stages)
    assert {a.key: a.name for a in artifacts}["hef"] == "fr_feature.hef"


@pytest.mark.parametrize(
    ("outcome", "failure_class"),
    [
        (StageOutcome(result=None, exit_code=None, timed_out=True), "timeout"),
        (StageOutcome(result=None, exit_code=None, engine_lost=True), "engine_lost"),
        (StageOutcome(result=None, exit_code=137, oom_killed=True), "oom"),
        (StageOutcome(result=None, exit_code=139), "killed"),
    ],
)
def test_a_container_that_dies_ends_in_its_failure_class(
    setup: Callable[..., tuple[HailoBackend, Job, CacheStages]],
    outcome: StageOutcome,
    failure_class: str,
) -> None:
    backend, job, stages = setup(FakeRunner(fail={"parse": outcome}))
    with pytest.raises(StageFailure) as caught:
        backend.prepare(job, stages)
    assert caught.value.failure_class == failure_class
    # Nothing half-done is cached: the next call runs the stage again.
    assert list(StageCache(backend.manifest.cache_dir).entries()) == []


def test_the_dfc_exception_is_classified_with_its_logs(
    setup: Callable[..., tuple[HailoBackend, Job, CacheStages]],
) -> None:
    error = {
        "error_type": "AccelerasNegativeSlopesError",
        "message": "the exponent [[nan]] is not in range [ 7 22] for layer fr/conv4/act_op",
    }
    backend, job, stages = setup(FakeRunner(fail={"optimize": error}))
    prepared = backend.prepare(job, stages)
    plan = build_plan(job.inputs.config, job.inputs.graph, "int16-all")
    with pytest.raises(StageFailure) as caught:
        backend.quantize(job, plan, prepared, stages)
    assert caught.value.failure_class == "nan_exponent"
    assert "[[nan]]" in str(caught.value)
    assert "hailo_sdk.client.log" in caught.value.logs


def test_an_output_that_changed_on_the_way_fails_transfer(
    setup: Callable[..., tuple[HailoBackend, Job, CacheStages]],
) -> None:
    backend, job, stages = setup(FakeRunner(corrupt="parsed.har"))
    with pytest.raises(StageFailure) as caught:
        backend.prepare(job, stages)
    assert caught.value.failure_class == "transfer"


def test_a_damaged_blob_is_moved_aside_reported_and_written_again(
    setup: Callable[..., tuple[HailoBackend, Job, CacheStages]],
) -> None:
    damaged: list[Damage] = []
    backend, job, stages = setup(FakeRunner(), damaged=damaged)
    backend.prepare(job, stages)
    blob = backend.host.root / f"{job.inputs.onnx_sha256}.onnx"
    blob.write_bytes(blob.read_bytes()[:100])  # truncated under its name
    backend, job, stages = setup(FakeRunner(), damaged=damaged)  # a new invocation
    backend.prepare(job, stages)
    assert [d.kind for d in damaged] == ["blobs"]
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == job.inputs.onnx_sha256


def test_a_planned_layer_left_8_bit_fails_plan_not_applied(
    setup: Callable[..., tuple[HailoBackend, Job, CacheStages]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = FakeRunner()
    outputs = runner._outputs

    def drop_requests(stage: str, work: dict[str, bytes], out: Path) -> list[str]:
        written = outputs(stage, work, out)
        if stage == "optimize":
            applied = json.loads((out / "applied_precision.json").read_text())
            (out / "applied_precision.json").write_text(json.dumps({k: "a8_w8" for k in applied}))
        return written

    monkeypatch.setattr(runner, "_outputs", drop_requests)
    backend, job, stages = setup(runner)
    prepared = backend.prepare(job, stages)
    plan = build_plan(job.inputs.config, job.inputs.graph, "int16-final")
    with pytest.raises(StageFailure) as caught:
        backend.quantize(job, plan, prepared, stages)
    assert caught.value.failure_class == "plan_not_applied"
