"""`hailoc build`: compile models (Hailo DFC in Docker) or emulate them (ONNX Runtime)."""

from __future__ import annotations

import threading
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from hailoc.backends.hailo.backend import HailoBackend
from hailoc.backends.onnxruntime.backend import OrtBackend
from hailoc.backends.protocol import Backend
from hailoc.cli.live import LiveReporter
from hailoc.cli.state import CliState, state
from hailoc.cli.tables import accuracy_table
from hailoc.cli.validate import chosen_engines, finite
from hailoc.engines import Slot
from hailoc.errors import HailocError
from hailoc.inputs import InputsCache
from hailoc.manifest import LoadedManifest
from hailoc.manifest.schema import HW_ARCHS, PRECISIONS
from hailoc.options import DEFAULT_STAGE_TIMEOUT, BuildOptions
from hailoc.pipeline.batch import EnginePool, EngineSlots, expand_targets, run_batch
from hailoc.pipeline.runner import RunContext, build_one
from hailoc.records import BuildRecord, SummaryRow, read_summary, write_summary
from hailoc.reference import References
from hailoc.targets import BACKENDS, WALL_MODES, BuildTarget, check_choice, split_choices

# Each backend's cached stages, as --from-stage names them (the backends own the lists).
BACKEND_STAGES = {"hailo": HailoBackend.stages, "onnxruntime": OrtBackend.stages}
STAGES = tuple(dict.fromkeys(s for stages in BACKEND_STAGES.values() for s in stages))


def build(
    ctx: typer.Context,
    names: list[str] = typer.Argument(None, help="Models to build (see `hailoc models list`)."),
    all_models: bool = typer.Option(False, "--all", help="Build every model in the manifest."),
    precision: str | None = typer.Option(
        None,
        "--precision",
        "-p",
        help=f"{' | '.join(PRECISIONS)}; several as int8,int16-final (default: the model's).",
    ),
    hw_arch: str | None = typer.Option(
        None, "--hw-arch", help=f"Target(s): {', '.join(HW_ARCHS)}; several as hailo8,hailo8l."
    ),
    backend: str | None = typer.Option(
        None, "--backend", "-b", help="hailo | onnxruntime (default: defaults.backend)."
    ),
    force: bool = typer.Option(False, "--force", help="Ignore the stage cache."),
    from_stage: str | None = typer.Option(
        None,
        "--from-stage",
        help="Re-run this stage and the ones after it: parse|optimize|compile (Hailo), "
        "quantize (ONNX Runtime).",
    ),
    stage_timeout: float = typer.Option(
        DEFAULT_STAGE_TIMEOUT, "--stage-timeout", help="Seconds one stage may take (> 0)."
    ),
    gpus: bool | None = typer.Option(
        None, "--gpus/--cpu", help="Use the NVIDIA GPUs (default: when Docker offers them)."
    ),
    jobs: int | None = typer.Option(
        None,
        "--jobs",
        "-j",
        min=1,
        max=64,
        help="Targets built at once (default: every slot: one per GPU, or per engine "
        "without GPUs); each build holds a free GPU slot when its engine has GPUs.",
    ),
    per_gpu: int = typer.Option(
        1, "--per-gpu", min=1, max=8, help="Builds one GPU may hold at once."
    ),
    retry_failed: bool = typer.Option(
        False,
        "--retry-failed",
        help="Re-run only what failed or did not run in the last batch (hef/summary.json).",
    ),
    suite_image: str | None = typer.Option(
        None, "--suite-image", help="Suite image tag (default: defaults.suite_image)."
    ),
    engine: list[str] = typer.Option(
        None,
        "--engine",
        metavar="NAME",
        help="Build on this engine of defaults.engines (repeatable; default: all listed, "
        "else this machine's Docker).",
    ),
    docker_host: list[str] = typer.Option(
        None,
        "--docker-host",
        metavar="URL",
        help="Build on the Docker engine at this URL: unix://, tcp:// or ssh://user@host "
        "(repeatable; files are copied, never mounted).",
    ),
    docker_context: list[str] = typer.Option(
        None,
        "--docker-context",
        metavar="NAME",
        help="Build on this named Docker context (repeatable).",
    ),
    target: float | None = typer.Option(
        None, "--target", help="auto: agreement to reach, in (0, 1] (default: auto.target)."
    ),
    budget: int | None = typer.Option(
        None, "--budget", min=1, help="auto: at most this many 16-bit layers."
    ),
    skip_gate: bool = typer.Option(
        False,
        "--skip-gate",
        help="Keep the artifact (and compile) even when the accuracy gate fails; "
        "the record still says it failed the gate.",
    ),
    accept_best: bool = typer.Option(
        False,
        "--accept-best",
        help="auto: when the target is not reached, build the best plan found (the gate "
        "still judges it) instead of failing with class auto_target.",
    ),
    on_wall: str | None = typer.Option(
        None,
        "--on-wall",
        metavar="recover|fail",
        help="Hailo: when the DFC refuses the 16-bit set (NaN exponent, super-defuse, "
        "allocator, unsupported layer), narrow it and go on (recover: named layers leave "
        "16-bit, an unnamed wall is bisected; every attempt is in record.json) or end the "
        "build (fail). Default: the manifest's defaults.walls (recover).",
    ),
    no_wait: bool = typer.Option(
        False,
        "--no-wait",
        help="Exit 3 instead of waiting when another hailoc process builds the same target.",
    ),
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
    archs = split_choices("--hw-arch", hw_arch, HW_ARCHS) if hw_arch is not None else None
    precisions = (
        split_choices("--precision", precision, PRECISIONS) if precision is not None else None
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
    if retry_failed:
        targets = [
            BuildTarget(r.model, r.hw_arch, r.precision, r.backend)
            for r in read_summary(manifest.hef_dir)
            if r.status != "ok"
        ]
        if not targets:
            st.out.print("nothing failed in the last batch")
            return
    else:
        targets = expand_targets(
            manifest,
            names or [],
            all_models=all_models,
            precisions=precisions,
            hw_archs=archs,
            backend=backend,
        )
    _check_from_stage(from_stage, targets)
    records = _run(st, targets, options, jobs)
    _summary(st, records)
    if any(r.failure_class == "busy" for r in records):
        raise typer.Exit(3)  # --no-wait and another process holds a target
    if any(r.status != "ok" for r in records):
        raise typer.Exit(1)


def _check_from_stage(stage: str | None, targets: list[BuildTarget]) -> None:
    if stage is None:
        return
    for target in targets:
        stages = BACKEND_STAGES[target.backend]
        if stage not in stages:
            raise HailocError(
                f"the {target.backend} backend has no stage {stage!r}",
                where="--from-stage",
                fix=f"use one of: {', '.join(stages)}",
            )


def _backends(
    st: CliState, targets: list[BuildTarget], options: BuildOptions
) -> dict[str, Backend]:
    manifest = st.manifest()
    chosen: dict[str, Backend] = {}
    if any(t.backend == "onnxruntime" for t in targets):
        chosen["onnxruntime"] = OrtBackend()
    if any(t.backend == "hailo" for t in targets):
        from hailoc.backends.hailo.backend import open_sessions
        from hailoc.backends.hailo.doctor import preflight

        preflight(manifest)

        # Before the live view: a missing daemon or suite image is one line, not a table.
        archs = [t.hw_arch for t in targets if t.backend == "hailo"]
        chosen["hailo"] = HailoBackend(manifest, open_sessions(manifest, options, archs))
    return chosen


def _run(
    st: CliState, targets: list[BuildTarget], options: BuildOptions, jobs: int | None
) -> list[BuildRecord]:
    manifest = st.manifest()
    backends = _backends(st, targets, options)
    inputs = InputsCache(manifest)
    if len({t.model for t in targets}) == 1:
        # One model: a bad input is a one-line error with nothing written, not a failed batch.
        inputs.get(targets[0].model)
    with LiveReporter(st.err, targets) as reporter:
        context = RunContext(manifest, options, reporter, inputs, References(manifest.cache_dir))
        summary_lock = threading.Lock()

        def on_record(rows: list[SummaryRow]) -> None:
            with summary_lock:
                write_summary(manifest.hef_dir, rows)

        def cancel() -> None:
            context.cancelled.set()
            for backend in backends.values():
                backend.cancel()

        def build(target: BuildTarget, slot: Slot) -> BuildRecord:
            return build_one(context, backends[target.backend], target, slot)

        hailo = backends.get("hailo")
        engines = _engine_slots(hailo, options) if isinstance(hailo, HailoBackend) else []
        return run_batch(
            targets,
            build,
            # Default: every slot busy (one build per GPU, or per engine without GPUs).
            jobs=jobs or max(1, sum(e.capacity for e in engines)),
            pool=EnginePool(engines),
            cost=lambda t: _onnx_size(manifest, t.model),
            on_record=on_record,
            cancel=cancel,
        )


def _engine_slots(backend: HailoBackend, options: BuildOptions) -> list[EngineSlots]:
    caps = {e.name: e.jobs for e in options.engines}
    return [
        EngineSlots(
            name=s.engine,
            archs=frozenset(s.suites),
            gpus=s.gpu_indices,
            per_gpu=options.per_gpu,
            jobs=caps.get(s.engine),
        )
        for s in backend.sessions.values()
    ]


def _onnx_size(manifest: LoadedManifest, model: str) -> float:
    """What a target costs to build, roughly: its ONNX file's size."""
    try:
        return float(manifest.model(model).onnx.stat().st_size)
    except (OSError, HailocError):
        return 0.0


def _summary(st: CliState, records: list[BuildRecord]) -> None:
    manifest = st.manifest()
    table = Table(title="build summary")
    # Which engine built what matters once there is more than one.
    engines = len({r.engine for r in records if r.engine}) > 1 or any(
        r.requeued_from for r in records
    )
    columns = ["model", "hw_arch", "precision", "backend", "status", "class", "seconds"]
    if engines:
        columns.insert(4, "engine")
    for column in columns:
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for r in records:
        status = f"[green]{r.status}[/]" if r.status == "ok" else f"[red]{r.status}[/]"
        if r.all_cached:
            status += " (cached)"
        row = [r.model, r.hw_arch, r.precision, r.backend, status, r.failure_class or ""]
        if engines:
            lost = f" (lost on {r.requeued_from})" if r.requeued_from else ""
            row.insert(4, f"{r.engine or '-'}{lost}")
        table.add_row(*row, f"{r.seconds:.1f}")
    st.out.print()
    st.out.print(table)
    for r in records:
        # DFC messages hold brackets (`the exponent [[nan]] is not in range [ 7 22]`): never
        # let rich read them as markup.
        if r.recovery is not None:
            st.out.print(
                f"{escape(r.model)} ({r.hw_arch}, {r.precision}): {r.recovery.line} "
                f"({r.recovery.compiles} compiles; walls: {', '.join(r.recovery.walls)})",
                highlight=False,
            )
        if r.status != "ok":
            st.err.print(
                f"[red]{escape(r.model)}[/] ({r.precision}, {r.backend}): "
                f"{escape(r.message or '')}\n  [yellow]hint[/]: {escape(r.hint or '')}",
                highlight=False,
            )
    comparison = accuracy_table(records)
    if comparison is not None:
        st.out.print(comparison)
    json_path = manifest.hef_dir / "summary.json"
    st.out.print(f"summary: {_rel(json_path)}, {_rel(json_path.with_suffix('.md'))}")


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
