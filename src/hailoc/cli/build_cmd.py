"""`hailoc build`: compile models (Hailo DFC in Docker) or emulate them (ONNX Runtime)."""

from __future__ import annotations

import typer

from hailoc.choices import BACKENDS, WALL_MODES, check_choice, split_choices
from hailoc.cli.build_options import (
    ACCEPT_BEST,
    ALL_MODELS,
    BACKEND,
    BUDGET,
    DOCKER_CONTEXT,
    DOCKER_HOST,
    ENGINE,
    FORCE,
    FROM_STAGE,
    GPUS,
    HW_ARCH,
    JOBS,
    NAMES,
    NO_WAIT,
    ON_WALL,
    PER_GPU,
    PRECISION,
    RETRY_FAILED,
    SKIP_GATE,
    STAGE_TIMEOUT,
    SUITE_IMAGE,
    TARGET,
)
from hailoc.cli.build_summary import print_summary
from hailoc.cli.live import LiveReporter
from hailoc.cli.option_checks import chosen_engines, finite
from hailoc.cli.state import state
from hailoc.manifest.schema import HW_ARCHS, PRECISIONS
from hailoc.options import BuildOptions
from hailoc.pipeline.builds import (
    STAGES,
    BuildRequest,
    choose_targets,
    open_backends,
    read_inputs,
    run_builds,
)


def build(
    ctx: typer.Context,
    names: list[str] = NAMES,
    all_models: bool = ALL_MODELS,
    precision: str | None = PRECISION,
    hw_arch: str | None = HW_ARCH,
    backend: str | None = BACKEND,
    force: bool = FORCE,
    from_stage: str | None = FROM_STAGE,
    stage_timeout: float = STAGE_TIMEOUT,
    gpus: bool | None = GPUS,
    jobs: int | None = JOBS,
    per_gpu: int = PER_GPU,
    retry_failed: bool = RETRY_FAILED,
    suite_image: str | None = SUITE_IMAGE,
    engine: list[str] = ENGINE,
    docker_host: list[str] = DOCKER_HOST,
    docker_context: list[str] = DOCKER_CONTEXT,
    target: float | None = TARGET,
    budget: int | None = BUDGET,
    skip_gate: bool = SKIP_GATE,
    accept_best: bool = ACCEPT_BEST,
    on_wall: str | None = ON_WALL,
    no_wait: bool = NO_WAIT,
) -> None:
    """Build models: parse -> optimize -> compile with the Hailo DFC, or emulate with ORT.

    Every build is checked against the fp32 model by the accuracy gate (agreement per
    simulated face size, degeneracy). Hailo outputs land in hef/<model>/<hw_arch>/<precision>/,
    ONNX Runtime ones in hef/<model>/onnxruntime/<precision>/, each with record.json,
    build.log and report.md, published whole. Writes hef/summary.json and hef/summary.md as
    builds finish; exits 1 when any build failed, 130/143 when interrupted.
    """
    st = state(ctx)
    manifest = st.manifest()
    # Every value that becomes a path or a choice is checked here, before any work.
    if from_stage is not None:
        check_choice("--from-stage", from_stage, STAGES)
    if backend is not None:
        check_choice("--backend", backend, BACKENDS)
    if on_wall is not None:
        check_choice("--on-wall", on_wall, WALL_MODES)
    request = BuildRequest(
        names=names or [],
        all_models=all_models,
        precisions=split_choices("--precision", precision, PRECISIONS) if precision else None,
        hw_archs=split_choices("--hw-arch", hw_arch, HW_ARCHS) if hw_arch is not None else None,
        backend=backend,
        retry_failed=retry_failed,
        jobs=jobs,
    )
    options = BuildOptions(
        force=force,
        from_stage=from_stage,
        stage_timeout=finite("--stage-timeout", stage_timeout),
        gpus=gpus,
        suite_image=suite_image,
        engines=chosen_engines(manifest, engine or [], docker_host or [], docker_context or []),
        per_gpu=per_gpu,
        skip_gate=skip_gate,
        auto_target=finite("--target", target) if target is not None else None,
        auto_budget=budget,
        wait=not no_wait,
        accept_best=accept_best,
        on_wall="fail" if on_wall == "fail" else "recover" if on_wall else None,
    )
    targets = choose_targets(manifest, request, from_stage)
    if not targets:
        st.out.print("nothing failed in the last batch")
        return
    # Before the live view: a missing daemon or suite image is one line, not a table.
    backends = open_backends(manifest, targets, options)
    inputs = read_inputs(manifest, targets)
    with LiveReporter(st.err, targets) as reporter:
        records = run_builds(manifest, targets, options, reporter, backends, jobs, inputs)
    print_summary(st.out, st.err, records, manifest.hef_dir / "summary.json")
    if any(r.failure_class == "busy" for r in records):
        raise typer.Exit(3)  # --no-wait and another process holds a target
    if any(r.status != "ok" for r in records):
        raise typer.Exit(1)
