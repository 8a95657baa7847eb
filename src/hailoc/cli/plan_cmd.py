"""`hailoc plan`: show which layers a precision runs in 16-bit, before building anything."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from hailoc.choices import check_choice
from hailoc.cli.alls_cmd import PRECISION_HELP
from hailoc.cli.output import warning_line
from hailoc.cli.plan_tables import island_tables, print_auto
from hailoc.cli.progress_bars import StepsBar, steps_progress
from hailoc.cli.state import CliState, state
from hailoc.inputs import gather
from hailoc.manifest.schema import PRECISIONS
from hailoc.model_check import load_graph
from hailoc.options import BuildOptions
from hailoc.pipeline.target_plan import plan_for
from hailoc.plan import PRESET_HELP, build_plan, read_hn, resolve_plan
from hailoc.records.layout import auto_plan_path


def plan(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name from models.yaml."),
    precision: str | None = typer.Option(None, "--precision", "-p", help=PRECISION_HELP),
    hn: Path | None = typer.Option(None, "--hn", help="Resolve against this parsed HN JSON."),
    target: float | None = typer.Option(
        None, "--target", help="auto: agreement to reach (default: the manifest's auto.target)."
    ),
    budget: int | None = typer.Option(
        None, "--budget", min=1, help="auto: at most this many 16-bit layers."
    ),
) -> None:
    """Show the precision plan for NAME: 16-bit layers in ONNX and (with --hn) HN names.

    With -p auto, search the fewest 16-bit layers that reach the target agreement on the ONNX
    Runtime emulation (needs the model's calibration set) and save hef/NAME/auto_plan.json.
    """
    st = state(ctx)
    manifest = st.manifest()
    cfg = manifest.model(name)
    if precision is not None:
        check_choice("--precision", precision, PRECISIONS)
    options = BuildOptions(auto_target=target, auto_budget=budget)
    if (precision or cfg.precision) == "auto":
        _auto(st, name, options)
        return
    graph = load_graph(cfg)
    the_plan = build_plan(cfg, graph, precision)
    st.out.print(f"[bold]{cfg.name}[/] {the_plan.precision}: {PRESET_HELP[the_plan.precision]}")
    resolved = resolve_plan(the_plan, read_hn(hn), graph) if hn is not None else None
    if the_plan.is_int8:
        st.out.print("no 16-bit layers")
    for table in island_tables(the_plan, graph, resolved):
        st.out.print(table)
    for hn_name in the_plan.hn_names:
        st.out.print(f"HN layer {hn_name}: a16_w16 as named")
    if the_plan.include_output:
        outputs = [o for o in (resolved.a16_layers if resolved else ()) if o.startswith("output")]
        st.out.print(f"output layer: {', '.join(outputs) or '(needs --hn)'} in a16_w16")
    for item in resolved.excluded if resolved else the_plan.excluded:
        warning_line(st.err, f"{item.name} ({item.kind}) stays 8-bit: {item.why}")
    if resolved is not None:
        st.out.print(f"quantization_param layers: {', '.join(resolved.a16_layers) or 'none'}")


def _auto(st: CliState, name: str, options: BuildOptions) -> None:
    manifest = st.manifest()
    inputs = gather(manifest, name)
    with steps_progress(st.err) as progress:
        _, result = plan_for(manifest, inputs, "auto", options, StepsBar(progress))
    assert result is not None
    print_auto(st.out, result)
    st.out.print(f"saved {auto_plan_path(manifest.hef_dir, name)} and auto_curve.png")
    if not result.reached:
        st.err.print(f"[red]error[/]: {escape(name)}: {escape(result.message)}", highlight=False)
        raise typer.Exit(1)
