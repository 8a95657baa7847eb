"""A corpus of face-embedder export variants with random weights, built with onnx.helper.

Each variant reproduces the graph shapes one export path leaves (no weights are downloaded):

- iresnet:       insightface PyTorch (Conv-BN-PReLU blocks, Flatten -> Gemm -> BatchNorm1d)
- mobilefacenet: NCHW, global depthwise conv (7x7 -> 1x1) then a linear 1x1 conv and Reshape
- tf:            TensorFlow/TFLite origin: NHWC input, Transposes, PReLU decomposed into
                 Relu/Abs/Sub/Mul, head Conv -> Transpose(to NHWC) -> Reshape
- tf_*_k04:      the TF spelling with alpha * (x - |x|) * 0.4: not a PReLU hailoc may rewrite
- mxnet:         normalization inside the graph (_minusscalar / _mulscalar as Sub/Mul),
                 BatchNorm after the fc
Any of them at a static batch (1, 2) or a dynamic one, opsets 11 to 21, embedding 128 to 512.
`resnet_shaped(layers)` makes ResNet-50/100-shaped graphs for the benchmarks.

Run `python -m tests.corpus OUTDIR` to write the default corpus.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


@dataclass(frozen=True)
class Variant:
    """One export variant of the corpus."""

    name: str
    arch: str  # iresnet | mobilefacenet | tf | mxnet
    batch: int | None = 1  # None: dynamic
    opset: int = 13
    embedding: int = 128
    width: int = 16
    input_name: str = "input"
    # mobilefacenet heads: "conv" (GDC -> 1x1 conv -> Reshape) or "linear" (arcface_torch:
    # GDC -> BN -> Flatten -> Linear -> BatchNorm1d).
    head: str = "conv"
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    # TF's PReLU spelling: one Mul by 0.5*alpha (None), or Mul(alpha) then Mul by this factor
    # (0.5 is the real decomposition; anything else is another function of x).
    prelu_half: float | None = None
    # Other exporters' activation spellings, for every PReLU of the net: "prelu" (as the arch
    # writes it), "relu6_minmax" (Min(Max(x, 0), 6)), "relu6_clip" (Clip(x, 0, 6)),
    # "hardswish" (x * Clip(x + 3, 0, 6) / 6), "leaky_max" (Max(x, 0.1 * x)).
    activation: str = "prelu"
    concat: bool = False  # a block that concatenates two branches (Inception-style)

    @property
    def layout(self) -> str:
        """How the exported graph takes its input."""
        return "NHWC" if self.arch == "tf" else "NCHW"

    @property
    def in_graph_normalization(self) -> bool:
        """True when the graph normalizes its own input."""
        return self.arch == "mxnet"


CORPUS = (
    Variant("iresnet_r18_b1_op13_e512", "iresnet", 1, 13, 512),
    Variant("mobilefacenet_b1_op11_e128", "mobilefacenet", 1, 11, 128),
    Variant("tf_mobilefacenet_b2_op11_e192", "tf", 2, 11, 192),
    Variant("tf_mobilefacenet_dyn_op13_e128", "tf", None, 13, 128),
    Variant("tf_mobilefacenet_2mul_op13_e128", "tf", 1, 13, 128, prelu_half=0.5),
    Variant("tf_mobilefacenet_k04_op13_e128", "tf", 1, 13, 128, prelu_half=0.4),
    Variant(
        "mobilefacenet_relu6_minmax_op13_e128",
        "mobilefacenet",
        1,
        13,
        128,
        activation="relu6_minmax",
    ),
    Variant(
        "mobilefacenet_relu6_clip_op13_e128", "mobilefacenet", 1, 13, 128, activation="relu6_clip"
    ),
    Variant(
        "mobilefacenet_hardswish_op14_e128", "mobilefacenet", 1, 14, 128, activation="hardswish"
    ),
    Variant(
        "mobilefacenet_leakymax_concat_op13_e128",
        "mobilefacenet",
        1,
        13,
        128,
        activation="leaky_max",
        concat=True,
    ),
    Variant("mxnet_b1_op17_e512", "mxnet", 1, 17, 512),
    Variant("iresnet_dyn_op17_e128", "iresnet", None, 17, 128),
)


class _Builder:
    """Appends nodes and He-initialised weights; names follow exporters' Op_N style."""

    def __init__(
        self, seed: int, tf_style: bool = False, half: float | None = None,
        activation: str = "prelu",
    ) -> None:  # fmt: skip
        self.half = half
        self.activation = activation
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0
        # TF style: tensors stay NHWC between convs, each conv wrapped in Transposes, BN folded
        # into the conv, PReLU decomposed.
        self.tf = tf_style

    def _name(self, op: str) -> str:
        self.count += 1
        return f"{op}_{self.count}"

    def const(self, array: np.ndarray, dtype: type = np.float32) -> str:
        name = f"w{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(array, dtype), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: object) -> str:
        name = self._name(op)
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        k: int,
        s: int = 1,
        group: int = 1,
        pad: int | None = None,
    ) -> str:
        fan_in = cin // group * k * k
        w = self.rng.normal(0, np.sqrt(2.0 / fan_in), (cout, cin // group, k, k))
        p = k // 2 if pad is None else pad
        if self.tf:
            x = self.node("Transpose", [x], perm=[0, 3, 1, 2])
        y = self.node(
            "Conv",
            [x, self.const(w), self.const(np.zeros(cout))],
            kernel_shape=[k, k],
            strides=[s, s],
            pads=[p, p, p, p],
            group=group,
        )
        return self.node("Transpose", [y], perm=[0, 2, 3, 1]) if self.tf else y

    def bn(self, x: str, c: int) -> str:
        if self.tf:
            return x  # folded into the conv by the exporter
        return self.node(
            "BatchNormalization",
            [
                x,
                self.const(np.ones(c)),
                self.const(np.zeros(c)),
                self.const(np.zeros(c)),
                self.const(np.ones(c)),
            ],
            epsilon=1e-5,
        )

    def scalar(self, value: float) -> str:
        return self.const(np.array(value))

    def prelu(self, x: str, c: int, rank: int = 4) -> str:
        if self.activation == "relu6_minmax":
            return self.node("Min", [self.node("Max", [x, self.scalar(0.0)]), self.scalar(6.0)])
        if self.activation == "relu6_clip":
            return self.node("Clip", [x, self.scalar(0.0), self.scalar(6.0)])
        if self.activation == "hardswish":
            shifted = self.node("Add", [x, self.scalar(3.0)])
            relu6 = self.node("Clip", [shifted, self.scalar(0.0), self.scalar(6.0)])
            return self.node("Div", [self.node("Mul", [x, relu6]), self.scalar(6.0)])
        if self.activation == "leaky_max":
            return self.node("Max", [x, self.node("Mul", [x, self.scalar(0.1)])])
        alpha = np.full(c, 0.25)
        if not self.tf:
            shape = (c, 1, 1) if rank == 4 else (c,)
            return self.node("PRelu", [x, self.const(alpha.reshape(shape))])
        # TF's decomposition: relu(x) + alpha * (x - |x|) * 0.5
        pos = self.node("Relu", [x])
        diff = self.node("Sub", [x, self.node("Abs", [x])])
        if self.half is None:
            neg = self.node("Mul", [diff, self.const((0.5 * alpha).reshape(1, 1, 1, c))])
        else:
            scaled = self.node("Mul", [diff, self.const(alpha.reshape(1, 1, 1, c))])
            neg = self.node("Mul", [scaled, self.const(np.array(self.half))])
        return self.node("Add", [pos, neg])


def _iresnet(b: _Builder, x: str, width: int, blocks: tuple[int, ...], emb: int) -> str:
    widths = [width * 2**i for i in range(len(blocks))]
    y = b.prelu(b.bn(b.conv(x, 3, widths[0], 3), widths[0]), widths[0])
    cin = widths[0]
    for count, cout in zip(blocks, widths, strict=True):
        for i in range(count):
            stride = 2 if i == 0 else 1
            r = b.bn(y, cin)
            r = b.prelu(b.bn(b.conv(r, cin, cout, 3), cout), cout)
            r = b.bn(b.conv(r, cout, cout, 3, stride), cout)
            short = y
            if stride != 1 or cin != cout:
                short = b.bn(b.conv(y, cin, cout, 1, stride, pad=0), cout)
            y = b.node("Add", [r, short])
            cin = cout
    y = b.bn(y, cin)
    y = b.node("Flatten", [y], axis=1)
    side = 112 // 2 ** len(blocks)
    w = b.rng.normal(0, np.sqrt(1.0 / (cin * side * side)), (emb, cin * side * side))
    y = b.node("Gemm", [y, b.const(w), b.const(np.zeros(emb))], transB=1)
    return b.bn(y, emb)


def _mobilefacenet(
    b: _Builder, x: str, width: int, emb: int, head: str, concat: bool = False
) -> str:
    y = b.prelu(b.bn(b.conv(x, 3, width, 3, 2), width), width)  # 56
    y = b.prelu(b.bn(b.conv(y, width, width, 3, 1, group=width), width), width)
    if concat:
        # Two branches joined on channels, then a 1x1 conv back to `width`.
        half = width // 2
        left = b.prelu(b.bn(b.conv(y, width, half, 1, pad=0), half), half)
        right = b.prelu(b.bn(b.conv(y, width, half, 3), half), half)
        joined = b.node("Concat", [left, right], axis=1)
        y = b.prelu(b.bn(b.conv(joined, width, width, 1, pad=0), width), width)
    cin = width
    for cout, stride in ((width * 2, 2), (width * 2, 1), (width * 4, 2), (width * 4, 2)):  # 7
        e = cin * 2
        r = b.prelu(b.bn(b.conv(y, cin, e, 1, pad=0), e), e)
        r = b.prelu(b.bn(b.conv(r, e, e, 3, stride, group=e), e), e)
        r = b.bn(b.conv(r, e, cout, 1, pad=0), cout)
        y = b.node("Add", [r, y]) if stride == 1 and cin == cout else r
        cin = cout
    wide = width * 8
    y = b.prelu(b.bn(b.conv(y, cin, wide, 1, pad=0), wide), wide)
    y = b.bn(b.conv(y, wide, wide, 7, 1, group=wide, pad=0), wide)  # GDC: 7x7 -> 1x1
    if head == "linear":
        y = b.node("Flatten", [y], axis=1)
        w = b.rng.normal(0, np.sqrt(1.0 / wide), (emb, wide))
        y = b.node("Gemm", [y, b.const(w), b.const(np.zeros(emb))], transB=1)
        return b.bn(y, emb)
    y = b.bn(b.conv(y, wide, emb, 1, pad=0), emb)
    # TF style: the last conv's output is already back in NHWC, (N, 1, 1, emb).
    return b.node("Reshape", [y, b.const(np.array([-1, emb]), np.int64)])


def build(variant: Variant, seed: int = 0) -> onnx.ModelProto:
    """The variant's ONNX model (checked)."""
    nhwc = variant.layout == "NHWC"
    b = _Builder(seed, tf_style=nhwc, half=variant.prelu_half, activation=variant.activation)
    batch: int | str = variant.batch if variant.batch is not None else "N"
    shape = [batch, 112, 112, 3] if nhwc else [batch, 3, 112, 112]
    x = variant.input_name
    if variant.in_graph_normalization:
        x = b.node("Sub", [x, b.const(np.array(127.5))])
        x = b.node("Mul", [x, b.const(np.array(0.0078125))])
    if variant.arch in ("iresnet", "mxnet"):
        out = _iresnet(b, x, variant.width, variant.blocks, variant.embedding)
    else:
        out = _mobilefacenet(b, x, variant.width, variant.embedding, variant.head, variant.concat)
    graph = helper.make_graph(
        b.nodes,
        variant.name,
        [helper.make_tensor_value_info(variant.input_name, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [batch, variant.embedding])],
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", variant.opset)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


RESNET_BLOCKS = {18: (2, 2, 2, 2), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}

# The structure each named manifest entry's public export has (models.yaml cites the sources).
NAMED = {
    "arcface_r50": Variant(
        "arcface_r50", "iresnet", 1, 13, 512, 8, "input.1", blocks=RESNET_BLOCKS[50]
    ),
    "arcface_mobilefacenet": Variant(
        "arcface_mobilefacenet", "mobilefacenet", 1, 13, 512, 8, "input.1", head="linear"
    ),
    "w600k_r50": Variant(
        "w600k_r50", "iresnet", 1, 13, 512, 8, "input.1", blocks=RESNET_BLOCKS[50]
    ),
    "w600k_mbf": Variant("w600k_mbf", "mobilefacenet", 1, 13, 512, 8, "input.1", head="linear"),
    "glintr100": Variant(
        "glintr100", "iresnet", 1, 13, 512, 8, "input.1", blocks=RESNET_BLOCKS[100]
    ),
    "magface_ir100": Variant(
        "magface_ir100", "iresnet", 1, 13, 512, 8, "input", blocks=RESNET_BLOCKS[100]
    ),
    "adaface_ir101": Variant(
        "adaface_ir101", "iresnet", 1, 13, 512, 8, "input", blocks=RESNET_BLOCKS[100]
    ),
}


def resnet_shaped(depth: int, embedding: int = 512) -> onnx.ModelProto:
    """An insightface-iresnet-shaped graph (ResNet-50: 3,4,14,3; ResNet-100: 3,13,30,3)."""
    variant = Variant(
        f"iresnet{depth}", "iresnet", 1, 13, embedding, width=64, blocks=RESNET_BLOCKS[depth]
    )
    return build(variant)


def write_project(root: Path, templates: Path, gate_sizes: list[int] | None = None) -> Path:
    """A manifest at ROOT/models.yaml with every corpus variant (models/<name>.onnx), each
    using the calibration set `tiny` (the caller writes it); the manifest's path."""
    import shutil

    import yaml

    (root / "models").mkdir()
    shutil.copytree(templates, root / "alls_templates")
    models = {}
    for variant in CORPUS:
        onnx.save(build(variant), str(root / "models" / f"{variant.name}.onnx"))
        batch = variant.batch or 1
        shape = [batch, 112, 112, 3] if variant.layout == "NHWC" else [batch, 3, 112, 112]
        models[variant.name] = {
            "onnx": f"models/{variant.name}.onnx",
            "input": {"name": "input", "shape": shape, "layout": variant.layout},
            "normalization": {"in_graph": True}
            if variant.in_graph_normalization
            else {"mean": 127.5, "std": 127.5},
            "calib_set": "tiny",
        }
    manifest: dict[str, object] = {"version": 1, "models": models}
    if gate_sizes is not None:
        manifest["defaults"] = {"gate": {"face_sizes": gate_sizes}}
    (root / "models.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root / "models.yaml"


def calibrated_corpus(
    root: Path, templates: Path, faces: int, eval_faces: int, gate_sizes: list[int] | None = None
) -> Path:
    """`write_project` plus its synthetic calibration set `tiny`; the project root."""
    from tests.synthetic import synthetic_set

    write_project(root, templates, gate_sizes)
    synthetic_set(root / "calibration", "tiny", faces=faces, eval_faces=eval_faces)
    return root


def main(out: Path) -> None:
    """Write every corpus variant as OUT/<name>.onnx."""
    out.mkdir(parents=True, exist_ok=True)
    for variant in CORPUS:
        onnx.save(build(variant), str(out / f"{variant.name}.onnx"))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "corpus"))
