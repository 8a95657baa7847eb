"""Reading ONNX face models: graph facts hailoc plans and validates against."""

from hailoc.onnxgraph.graph import GraphInfo, NodeInfo, inspect_model, load_onnx

__all__ = ["GraphInfo", "NodeInfo", "inspect_model", "load_onnx"]
