"""Generated stand-ins named and shaped like insightface model packs (no weights downloaded).

- `scrfd_like`: SCRFD's I/O signature (input.1 [1, 3, ?, ?]; 9 outputs: scores, boxes and
  keypoints at strides 8/16/32 with 2 anchors, rank 2 as insightface expects). Its scores are
  constant: one face at the centre of the 640x640 letterbox, nothing else.
- `recognition`, `landmark`, `genderage`: the input sizes insightface's router keys on
  (112 -> ArcFaceONNX, 192 -> Landmark, 96 -> Attribute).
- `buffalo_l(folder)`: det_10g, w600k_r50, 1k3d68, 2d106det, genderage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.corpus import Variant, build

SIDE = 640
STRIDES = (8, 16, 32)
# Keypoints of the one face, in strides from its anchor centre (eyes, nose, mouth corners).
KPS = np.array([[-1.0, -0.6], [1.0, -0.6], [0.0, 0.2], [-0.8, 1.0], [0.8, 1.0]], np.float32)


def _const(
    nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], name: str, a: np.ndarray
) -> str:
    inits.append(numpy_helper.from_array(np.asarray(a, np.float32), name))
    return name


def scrfd_like(path: Path) -> Path:
    """An ONNX file with SCRFD's inputs and outputs that 'detects' one centred face."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    outputs: dict[str, list[str]] = {"score": [], "bbox": [], "kps": []}
    for stride in STRIDES:
        side = SIDE // stride
        pooled = f"pool{stride}"
        nodes.append(
            helper.make_node(
                "AveragePool",
                ["input.1"],
                [pooled],
                kernel_shape=[stride, stride],
                strides=[stride, stride],
            )
        )
        for kind, channels in (("score", 2), ("bbox", 8), ("kps", 20)):
            zero = _const(nodes, inits, f"w_{kind}{stride}", np.zeros((channels, 3, 1, 1)))
            conv = f"{kind}{stride}_conv"
            nodes.append(helper.make_node("Conv", [pooled, zero], [conv]))
            plane = np.zeros((1, channels, side, side), np.float32)
            if kind == "score":
                plane[:] = -12.0
                if stride == 32:
                    plane[0, 0, side // 2, side // 2] = 6.0  # one confident anchor
            elif kind == "bbox":
                plane[:] = 3.0  # 3 strides each side: a 192 px box at stride 32
            else:
                plane[:] = np.tile(KPS.reshape(-1), 2)[:, None, None]
            offset = _const(nodes, inits, f"b_{kind}{stride}", plane)
            added = f"{kind}{stride}_add"
            nodes.append(helper.make_node("Add", [conv, offset], [added]))
            if kind == "score":
                nodes.append(helper.make_node("Sigmoid", [added], [f"{kind}{stride}_act"]))
                added = f"{kind}{stride}_act"
            moved = f"{kind}{stride}_t"
            nodes.append(helper.make_node("Transpose", [added], [moved], perm=[0, 2, 3, 1]))
            shape = _const(nodes, inits, f"s_{kind}{stride}", np.array([-1, channels // 2]))
            inits[-1] = numpy_helper.from_array(np.array([-1, channels // 2], np.int64), shape)
            out = f"{kind}_{stride}"
            nodes.append(helper.make_node("Reshape", [moved, shape], [out]))
            outputs[kind].append(out)
    graph = helper.make_graph(
        nodes,
        "scrfd_like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "?", "?"])],
        [
            helper.make_tensor_value_info(name, TensorProto.FLOAT, ["?", width])
            for kind, width in (("score", 1), ("bbox", 4), ("kps", 10))
            for name in outputs[kind]
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _head(path: Path, side: int, width: int) -> Path:
    """Conv -> GlobalAveragePool -> Flatten -> Gemm on a side x side input."""
    rng = np.random.default_rng(side)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.1, (8, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.normal(0, 0.1, (width, 8)).astype(np.float32), "g"),
    ]
    nodes = [
        helper.make_node("Conv", ["data", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "g"], ["fc1"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        path.stem,
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, width])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def recognition(path: Path) -> Path:
    """An insightface-iresnet-shaped recognition model (input.1, 112x112, 512-d)."""
    variant = Variant(path.stem, "iresnet", 1, 13, 512, input_name="input.1")
    onnx.save(build(variant), str(path))
    return path


def buffalo_l(folder: Path) -> Path:
    """A folder laid out like ~/.insightface/models/buffalo_l with generated models."""
    folder.mkdir(parents=True, exist_ok=True)
    scrfd_like(folder / "det_10g.onnx")
    recognition(folder / "w600k_r50.onnx")
    _head(folder / "1k3d68.onnx", 192, 3309)
    _head(folder / "2d106det.onnx", 192, 212)
    _head(folder / "genderage.onnx", 96, 3)
    return folder
