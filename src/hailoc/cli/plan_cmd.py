"""`hailoc plan`: show which layers a precision runs in 16-bit, before building anything."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from hailoc.cli.alls_cmd import PRECISION_HELP
from hailoc.cli.output import warning_line
from hailoc.cli.state import state
from hailoc.plan import PRESET_HELP, build_plan, read_hn, resolve_plan
from hailoc.validate import load_graph


def plan(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name from models.yaml."),
    precision: str | None = typer.Option(None, "--precision", "-p", help=PRECISION_HELP),
    hn: Path | None = typer.Option(None, "--hn", help="Resolve against this parsed HN JSON."),
) -> None:
    """Show the precision plan for NAME: 16-bit layers in ONNX and (with --hn) HN names."""
    st = state(ctx)
    cfg = st.manifest().model(name)
    graph = load_graph(cfg)
    the_plan = build_plan(cfg, graph, precision)
    st.out.print(f"[bold]{cfg.name}[/] {the_plan.precision}: {PRESET_HELP[the_plan.precision]}")
    resolved = resolve_plan(the_plan, read_hn(hn)) if hn is not None else None
    table = Table()
    table.add_column("ONNX node")
    table.add_column("op")
    table.add_column("HN layer(s)")
    for node_name in the_plan.onnx_nodes:
        node = graph.node(node_name)
        mapped = ", ".join(resolved.mapping.get(node_name, ())) if resolved else "(needs --hn)"
        table.add_row(node_name, node.op_type if node else "?", mapped)
    for hn_name in the_plan.hn_names:
        table.add_row("-", "-", hn_name)
    if the_plan.include_output:
        outputs = [o for o in (resolved.a16_layers if resolved else ()) if o.startswith("output")]
        table.add_row("(output layer)", "-", ", ".join(outputs) or "(needs --hn)")
    if the_plan.is_int8:
        st.out.print("no 16-bit layers")
    else:
        st.out.print(table)
    for item in resolved.excluded if resolved else the_plan.excluded:
        warning_line(st.err, f"{item.name} ({item.kind}) stays 8-bit: {item.why}")
    if resolved is not None:
        st.out.print(f"quantization_param layers: {', '.join(resolved.a16_layers) or 'none'}")
