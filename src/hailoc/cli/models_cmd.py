"""`hailoc models`: list and validate the manifest's models."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from hailoc.cli.output import error_line, warning_line
from hailoc.cli.state import state
from hailoc.model_check import ModelCheck, check_model
from hailoc.onnxgraph.patterns import describe

app = typer.Typer(
    help="List the models in models.yaml and validate them against their ONNX graphs.",
    no_args_is_help=True,
)


@app.command("list")
def list_models(ctx: typer.Context) -> None:
    """Show every model: family, target, precision, calibration set, whether its ONNX exists."""
    st = state(ctx)
    manifest = st.manifest()
    table = Table(title=f"models in {manifest.path}")
    for column in ("name", "family", "hw_arch", "precision", "calib_set", "onnx"):
        # Names are never cut: similar names must stay tellable apart.
        table.add_column(column, no_wrap=column == "name", overflow="fold")
    for cfg in manifest.models():
        present = "[green]present[/]" if cfg.onnx.is_file() else "[red]missing[/]"
        table.add_row(
            cfg.name,
            cfg.family,
            cfg.hw_arch,
            cfg.precision,
            cfg.calib_set or "-",
            f"{present} {cfg.onnx_field}",
        )
    st.out.print(table)


@app.command("import")
def import_models(
    ctx: typer.Context,
    folder: Path = typer.Argument(
        ...,
        help="A local insightface model pack (e.g. ~/.insightface/models/buffalo_l), any "
        "folder of ONNX files, or one ONNX file.",
    ),
    calib_set: str = typer.Option(
        "faces", "--calib-set", help="Calibration set the new entries use."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; write nothing."),
) -> None:
    """Add a model pack's recognition models to models.yaml as insightface routes them.

    Recognition models become `family: insightface` entries (sha256, input, the normalization
    insightface applies, embedding output); an SCRFD model with keypoints becomes the
    calibration detector. Weights stay where they are (never copied or downloaded). Running
    it again adds nothing: entries are matched by sha256.
    """
    from hailoc.cli.option_checks import name_option
    from hailoc.interop.model_pack import import_pack

    name_option("--calib-set", calib_set)
    st = state(ctx)
    manifest = st.manifest()
    result = import_pack(manifest.path, folder, calib_set=calib_set, dry_run=dry_run)
    verb = "would add" if dry_run else "added"
    for name, item in result.added:
        st.out.print(f"{verb} {name}: {item.path} ({item.why})", highlight=False)
    for name, item in result.present:
        st.out.print(f"already present as {name}: {item.path}", highlight=False)
    if result.detector:
        st.out.print(f"{'would set' if dry_run else 'set'} defaults.detector: {result.detector}")
    for item in result.skipped:
        st.out.print(f"skipped {item.path.name}: {item.why}", highlight=False)
    if not (result.added or result.detector):
        st.out.print("models.yaml unchanged")


@app.command("validate")
def validate(
    ctx: typer.Context,
    names: list[str] = typer.Argument(None, help="Models to check (default: all)."),
    skip_missing: bool = typer.Option(
        False, "--skip-missing", help="Skip models whose ONNX file is not there yet."
    ),
) -> None:
    """Check each model's ONNX against its entry: input name/shape, normalization, nodes.

    Fails on double normalization (graph normalizes and the manifest adds mean/std), warns
    when mean/std or colour differ from the model family's known values, and reports static
    batch, opset and the final embedding block that int16-final runs in 16-bit.
    """
    st = state(ctx)
    manifest = st.manifest()
    failed = 0
    for cfg in manifest.models(names or None):
        if skip_missing and not cfg.onnx.is_file():
            st.err.print(f"[dim]{cfg.name}: skipped, {cfg.onnx_field} not present[/]")
            continue
        check = check_model(cfg)
        _report(st.out, st.err, check, manifest.path.name)
        failed += not check.ok
    if failed:
        raise typer.Exit(1)


def _report(out: Console, err: Console, check: ModelCheck, manifest_name: str) -> None:
    cfg = check.config
    for problem in check.problems:
        error_line(err, problem, prefix=f"{manifest_name}: ")
    for warning in check.warnings:
        warning_line(err, f"{cfg.name}: {warning}")
    for note in check.notes:
        err.print(f"note: {cfg.name}: {note}", highlight=False, soft_wrap=True)
    graph = check.graph
    if graph is None or check.problems:
        return
    batch = graph.static_batch(cfg.input.name)
    norm = (
        f"in graph ({', '.join(graph.in_graph_normalization)})"
        if graph.in_graph_normalization
        else "by the DFC (mean/std in .alls)"
    )
    out.print(f"[bold green]ok[/] {cfg.name}: {cfg.onnx_field}")
    out.print(
        f"  opset {graph.opset}, IR {graph.ir_version}, "
        f"batch {'static ' + str(batch) if batch else 'dynamic'}, "
        f"{len(graph.nodes)} nodes, {len(graph.weight_nodes)} weight layers"
    )
    out.print(
        f"  input {cfg.input.name} {list(cfg.input.shape)} {cfg.input.layout} "
        f"{cfg.input.color}; normalization {norm}"
    )
    for line in describe(graph):
        out.print(f"  found: {line}", highlight=False)
    out.print(
        f"  embedding output {graph.embedding_output}; final block (int16-final): "
        f"{', '.join(graph.final_block) or 'none found'}",
        highlight=False,
    )
