"""Name what an export left in the graph, so `models validate` can say what it found and why."""

from __future__ import annotations

from hailoc.onnxgraph.graph import GraphInfo


def describe(graph: GraphInfo) -> list[str]:
    """One line per recognised pattern: layout, normalization, activations, head, final block."""
    nodes = graph.nodes
    ops = [n.op_type for n in nodes]
    lines = []
    layouts = sorted({graph.layouts.get(name, "unknown") for name in graph.inputs})
    transposes = ops.count("Transpose")
    lines.append(
        f"input layout {'/'.join(layouts)}"
        + (f"; {transposes} Transpose nodes (TensorFlow-style NHWC export)" if transposes else "")
    )
    if graph.in_graph_normalization:
        found = [graph.node(n) for n in graph.in_graph_normalization]
        lines.append(
            "normalization inside the graph: "
            + ", ".join(f"{n.op_type} {n.name}" for n in found if n is not None)
            + " (Sub/Mul/Div with a constant before the first conv)"
        )
    producers = {t: n for n in nodes for t in n.outputs}
    decomposed = sum(
        1
        for n in nodes
        if n.op_type == "Sub"
        and any(producers.get(i) is not None and producers[i].op_type == "Abs" for i in n.inputs)
    )
    if ops.count("PRelu"):
        lines.append(f"PReLU as an op: {ops.count('PRelu')}")
    if decomposed:
        lines.append(
            f"PReLU decomposed into Relu/Abs/Sub/Mul: {decomposed} (an activation, not "
            "normalization)"
        )
    if graph.reduction is not None:
        node = graph.node(graph.reduction)
        kind = node.op_type if node else "?"
        if node is not None and node.depthwise:
            kind = "global depthwise Conv (GDC)"
        lines.append(f"spatial reduction: {graph.reduction} ({kind})")
    head = _head(graph)
    if head:
        lines.append(f"embedding head: {head}")
    return lines


def _head(graph: GraphInfo) -> str:
    """The ops after the spatial reduction, e.g. 'Flatten -> Gemm -> BatchNormalization'."""
    if graph.reduction is None:
        return ""
    names = [n.name for n in graph.nodes]
    start = names.index(graph.reduction)
    tail = [n.op_type for n in graph.nodes[start:] if n.op_type not in ("Identity", "Dropout")]
    text = " -> ".join(tail[:8]) + (" ..." if len(tail) > 8 else "")
    if "Gemm" in tail and tail[tail.index("Gemm") + 1 :][:1] == ["BatchNormalization"]:
        text += " (BatchNorm after the fc)"
    return text
