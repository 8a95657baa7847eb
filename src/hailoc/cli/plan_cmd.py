"""`hailoc plan`: show which layers a precision runs in 16-bit, before building anything."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hailoc.autoplan import AutoResult
from hailoc.choices import check_choice
from hailoc.cli.alls_cmd import PRECISION_HELP
from hailoc.cli.output import warning_line
from hailoc.cli.state import CliState, state
from hailoc.inputs import gather
from hailoc.manifest.schema import PRECISIONS
from hailoc.model_check import load_graph
from hailoc.onnxgraph import GraphInfo
from hailoc.onnxgraph.canonical import FUSED_AFTER_WEIGHTS, SHAPE_ONLY, WEIGHT_OPS
from hailoc.options import BuildOptions
from hailoc.pipeline.target_plan import plan_for
from hailoc.plan import PRESET_HELP, PrecisionPlan, ResolvedPlan, build_plan, read_hn, resolve_plan
from hailoc.plan.islands import components, of_graph, plan_nodes
from hailoc.records.layout import auto_plan_path


class _Bar:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("auto", total=None)

    def start(self, total: int, what: str) -> None:
        self.progress.update(self.task, total=total, completed=0, description=what)

    def advance(self) -> None:
        self.progress.advance(self.task)

    def finish(self) -> None:
        task = self.progress.tasks[self.task]
        self.progress.update(self.task, total=task.completed)


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


def island_tables(
    the_plan: PrecisionPlan, graph: GraphInfo, resolved: ResolvedPlan | None
) -> list[Table]:
    """One table per 16-bit island: each node, what it is in the island, its HN layer."""
    nodes = of_graph(graph)
    members = plan_nodes(the_plan, nodes)
    tables = []
    islands = components(nodes, members, graph.outputs)
    for number, island in enumerate(islands, 1):
        table = Table(
            title=f"island {number}: {len(island.nodes)} nodes",
            caption=f"enters at {', '.join(island.entries) or 'the graph input'}; leaves at "
            f"{', '.join(island.exits) or '-'}",
        )
        for column in ("ONNX node", "op", "in the island", "HN layer(s)"):
            table.add_column(column)
        carrier = ""
        for name in island.nodes:
            node = graph.node(name)
            op = node.op_type if node else "?"
            if op in WEIGHT_OPS:
                carrier = name
            if name in the_plan.onnx_nodes:
                role = "planned"
            elif op in FUSED_AFTER_WEIGHTS and carrier:
                role = f"fused into {carrier}"
            elif op in SHAPE_ONLY:
                role = "shape-only"
            else:
                role = "16-bit with the island"
            label = name
            if name in graph.merged:  # a canonical op: the user's nodes it stands for
                label = f"{name} (= {' + '.join(graph.merged[name])})"
            mapped = ", ".join(resolved.mapping.get(name, ())) if resolved else "(needs --hn)"
            table.add_row(label, op, role, mapped or "(folded)")
        tables.append(table)
    return tables


def _auto(st: CliState, name: str, options: BuildOptions) -> None:
    manifest = st.manifest()
    inputs = gather(manifest, name)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("evaluations"),
        TimeElapsedColumn(),
        console=st.err,
    ) as progress:
        _, result = plan_for(manifest, inputs, "auto", options, _Bar(progress))
    assert result is not None
    _print_auto(st, result)
    st.out.print(f"saved {auto_plan_path(manifest.hef_dir, name)} and auto_curve.png")
    if not result.reached:
        st.err.print(f"[red]error[/]: {escape(name)}: {escape(result.message)}", highlight=False)
        raise typer.Exit(1)


def _print_auto(st: CliState, result: AutoResult) -> None:
    table = Table(
        title=f"{result.model}: {result.objective} ({result.eval_faces} eval faces)",
        caption=f"ranking: noise each layer adds in the {result.ranking_source} int8 model; "
        f"target {result.target}",
    )
    for column in ("16-bit layers", "16-bit bytes", result.metric, "interval", "reaches"):
        table.add_column(column, justify="right")
    for point in result.curve:
        low, high = point["interval"]
        table.add_row(
            str(point["layers"]),
            f"{point.get('cost_bytes', 0):,}",
            f"{point['value']:.4f}",
            f"[{low:.4f}, {high:.4f}]",
            "yes" if low >= result.target else "no",
        )
    st.out.print(table)
    colour = "green" if result.reached else "red"
    st.out.print(f"[{colour}]{escape(result.message)}[/]", highlight=False)
    st.out.print(
        f"16-bit bytes {result.cost_bytes:,} (int16-all: {result.int16_all_cost_bytes:,}); "
        f"{result.evaluations} evaluations ({result.reused_evaluations} reused), "
        f"{result.seconds:.1f} s; layers: {', '.join(result.layers) or 'none'}",
        highlight=False,
    )
