"""`hailoc build`: compile models (Hailo DFC in Docker) or emulate them (ONNX Runtime)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from hailoc.build.batch import failed_targets, plan_targets, run_batch
from hailoc.build.inputs import InputsCache
from hailoc.build.layout import BuildTarget
from hailoc.build.options import STAGES, BuildOptions
from hailoc.cli.live import LiveReporter
from hailoc.cli.state import CliState, state
from hailoc.cli.tables import accuracy_table
from hailoc.errors import HailocError
from hailoc.manifest import LoadedManifest
from hailoc.records import BuildRecord, write_summary

BACKENDS = ("hailo", "onnxruntime")


def build(
    ctx: typer.Context,
    names: list[str] = typer.Argument(None, help="Models to build (see `hailoc models list`)."),
    all_models: bool = typer.Option(False, "--all", help="Build every model in the manifest."),
    precision: str | None = typer.Option(
        None,
        "--precision",
        "-p",
        help="int8 | int16-final | int16-all | custom | auto; several as int8,int16-final.",
    ),
    hw_arch: str | None = typer.Option(
        None, "--hw-arch", help="Override the target, e.g. hailo8 or hailo8,hailo8l."
    ),
    backend: str | None = typer.Option(
        None, "--backend", "-b", help="hailo | onnxruntime (default: defaults.backend)."
    ),
    force: bool = typer.Option(False, "--force", help="Ignore the stage cache."),
    from_stage: str | None = typer.Option(
        None,
        "--from-stage",
        help="Re-run this stage and the ones after it: parse|optimize|compile.",
    ),
    stage_timeout: float = typer.Option(
        6 * 3600.0, "--stage-timeout", help="Seconds one stage may take before it is killed."
    ),
    gpus: bool | None = typer.Option(
        None, "--gpus/--cpu", help="Use the NVIDIA GPUs (default: when Docker offers them)."
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Models built at once (one GPU each)."),
    retry_failed: bool = typer.Option(
        False,
        "--retry-failed",
        help="Re-run only what failed in the last batch (hef/summary.json).",
    ),
    suite_image: str | None = typer.Option(
        None, "--suite-image", help="Suite image tag (default: defaults.suite_image)."
    ),
    docker_host: str | None = typer.Option(
        None, "--docker-host", help="Docker engine URL, e.g. ssh://user@gpu-host."
    ),
    docker_context: str | None = typer.Option(
        None, "--docker-context", help="Named Docker context to use instead of the default."
    ),
    target: float | None = typer.Option(
        None, "--target", help="auto: agreement to reach (default: the manifest's auto.target)."
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
) -> None:
    """Build models: parse -> optimize -> compile with the Hailo DFC, or emulate with ORT.

    Every build is checked against the fp32 model by the accuracy gate (agreement per
    simulated face size, degeneracy). Hailo outputs land in hef/<model>/<hw_arch>/<precision>/,
    ONNX Runtime ones in hef/<model>/onnxruntime/<precision>/, each with record.json and
    report.md. Writes hef/summary.json and hef/summary.md; exits 1 when any build failed.
    """
    st = state(ctx)
    manifest = st.manifest()
    if from_stage is not None and from_stage not in STAGES:
        raise HailocError(
            f"unknown stage {from_stage!r}", where="--from-stage", fix=f"use {', '.join(STAGES)}"
        )
    if backend is not None and backend not in BACKENDS:
        raise HailocError(
            f"unknown backend {backend!r}", where="--backend", fix=f"use {' or '.join(BACKENDS)}"
        )
    archs = [a.strip() for a in hw_arch.split(",") if a.strip()] if hw_arch else None
    if retry_failed:
        targets = failed_targets(manifest.hef_dir)
        if not targets:
            st.out.print("nothing failed in the last batch")
            return
    else:
        precisions = [p.strip() for p in precision.split(",") if p.strip()] if precision else None
        targets = plan_targets(
            manifest,
            names or [],
            all_models=all_models,
            precision=precisions,
            hw_archs=archs,
            backend=backend,
        )
    options = BuildOptions(
        force=force,
        from_stage=from_stage,
        stage_timeout=stage_timeout,
        gpus=gpus,
        suite_image=suite_image,
        docker_host=docker_host,
        docker_context=docker_context,
        skip_gate=skip_gate,
        auto_target=target,
        auto_budget=budget,
    )
    inputs = InputsCache(manifest)
    if len({t.model for t in targets}) == 1:
        # One model: a bad input is a one-line error with nothing written, not a failed batch.
        inputs.get(targets[0].model)
    records = _run(st, manifest, targets, options, jobs, inputs)
    _summary(st, manifest, records)
    if any(r.status != "ok" for r in records):
        raise typer.Exit(1)


def _run(
    st: CliState,
    manifest: LoadedManifest,
    targets: list[BuildTarget],
    options: BuildOptions,
    jobs: int,
    inputs: InputsCache,
) -> list[BuildRecord]:
    hailo_targets = [t for t in targets if t.backend == "hailo"]
    ort_targets = [t for t in targets if t.backend == "onnxruntime"]
    session = None
    if hailo_targets:
        from hailoc.backend.hailo.pipeline import open_session

        # Before the live view: a missing daemon or suite image is one line, not a table.
        session = open_session(manifest, options)
    records: list[BuildRecord] = []
    with LiveReporter(st.err, targets) as reporter:
        if ort_targets:
            from hailoc.backend.onnxruntime.pipeline import OrtBuilder

            ort = OrtBuilder(manifest, options, reporter, inputs)
            records += run_batch(ort_targets, ort.build, 1)
        if session is not None:
            from hailoc.backend.hailo.pipeline import HailoBuilder

            hailo = HailoBuilder(manifest, options, session, reporter, inputs)
            records += run_batch(hailo_targets, hailo.build, jobs)
    return records


def _summary(st: CliState, manifest: LoadedManifest, records: list[BuildRecord]) -> None:
    json_path, md_path = write_summary(manifest.hef_dir, records)
    table = Table(title="build summary")
    for column in ("model", "hw_arch", "precision", "backend", "status", "class", "seconds"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for r in records:
        status = f"[green]{r.status}[/]" if r.status == "ok" else f"[red]{r.status}[/]"
        if r.all_cached:
            status += " (cached)"
        table.add_row(
            r.model,
            r.hw_arch if r.backend == "hailo" else "-",
            r.precision,
            r.backend,
            status,
            r.failure_class or "",
            f"{r.seconds:.1f}",
        )
    st.out.print(table)
    for r in records:
        if r.status != "ok":
            st.err.print(
                f"[red]{r.model}[/] ({r.precision}, {r.backend}): {r.message}\n"
                f"  [yellow]hint[/]: {r.hint}",
                highlight=False,
            )
    comparison = accuracy_table(records)
    if comparison is not None:
        st.out.print(comparison)
    st.out.print(f"summary: {_rel(json_path)}, {_rel(md_path)}")


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
