"""Rewrite exporter spellings of one layer into the ops the Hailo parser fuses.

Exporters write the same layer many ways (TF/TFLite: PReLU as Relu/Abs/Sub/Mul/Add, ReLU6 as
Min(Max(x, 0), 6), convolutions wrapped in NHWC Transposes, batch norm as Mul + Add). The Hailo
parser fuses a conv with its batch norm and activation into one layer only when it recognises
them; otherwise every element-wise op becomes a layer on the chip with its own quantization.

Each rule matches structure and checks its constants (the 0.5, the slope's shape, the 3 and
the 6); node names are never read, only kept: a rewritten op takes the name of the node whose
output it replaces, and `merged` maps it back to every original node it stands for. This
module only rewrites; hailoc/canonicalize.py proves each result exact before it is used.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper, numpy_helper

# Bump when a rule changes what it produces: part of the canonical graph's cache key.
RULES_VERSION = 2

Array = npt.NDArray[np.float32]

# Element-wise ops a transpose can move across (constants permuted along).
_SINKABLE = frozenset(
    {"Relu", "Abs", "Neg", "Sigmoid", "Clip", "HardSwish", "HardSigmoid", "LeakyRelu",
     "PRelu", "Add", "Sub", "Mul", "Div", "Max", "Min"}
)  # fmt: skip
_RESHAPES = frozenset({"Reshape", "Flatten"})
# What the Hailo parser folds into a neighbour (shape-only) or fuses after a conv / fc.
WEIGHT_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
# Fused into the weight layer before them by the Hailo parser when each tensor of the chain is
# read by the next op alone (NOTES, HN: a conv carries its batch norm and activation).
FUSED_AFTER_WEIGHTS = frozenset(
    {"BatchNormalization", "Relu", "PRelu", "LeakyRelu", "Clip", "Sigmoid", "HardSwish"}
)
# Shape-only ops: the Hailo parser folds them into a neighbour.
SHAPE_ONLY = frozenset(
    {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Dropout", "Cast"}
)
FOLDED = SHAPE_ONLY | {"Constant"}


@dataclass
class Rewrite:
    """A graph being rewritten: the model, and what each rule did."""

    model: onnx.ModelProto
    applied: dict[str, int] = field(default_factory=dict)
    # canonical node name -> the original nodes it replaces (itself included)
    merged: dict[str, list[str]] = field(default_factory=dict)
    _inits: dict[str, onnx.TensorProto] = field(default_factory=dict, repr=False)

    # -- graph access -----------------------------------------------------------------------
    @property
    def nodes(self) -> list[onnx.NodeProto]:
        return list(self.model.graph.node)

    def constant(self, name: str) -> Array | None:
        if not self._inits:
            self._inits.update({i.name: i for i in self.model.graph.initializer})
        init = self._inits.get(name)
        if init is not None:
            return np.asarray(numpy_helper.to_array(init))
        for node in self.model.graph.node:
            if node.op_type == "Constant" and node.output and node.output[0] == name:
                for attr in node.attribute:
                    if attr.name == "value":
                        return np.asarray(numpy_helper.to_array(attr.t))
        return None

    def producers(self) -> dict[str, onnx.NodeProto]:
        return {t: n for n in self.model.graph.node for t in n.output}

    def consumers(self) -> dict[str, list[onnx.NodeProto]]:
        found: dict[str, list[onnx.NodeProto]] = {}
        for node in self.model.graph.node:
            for tensor in node.input:
                found.setdefault(tensor, []).append(node)
        return found

    def is_output(self, tensor: str) -> bool:
        return any(o.name == tensor for o in self.model.graph.output)

    def add_constant(self, base: str, value: npt.NDArray[np.generic]) -> str:
        taken = {i.name for i in self.model.graph.initializer}
        name, index = f"{base}_canonical", 0
        while name in taken:
            index += 1
            name = f"{base}_canonical{index}"
        self.model.graph.initializer.append(numpy_helper.from_array(value, name))
        self._inits.clear()  # rebuilt on the next lookup
        return name

    def note(self, rule: str, name: str, originals: list[str]) -> None:
        self.applied[rule] = self.applied.get(rule, 0) + 1
        found: list[str] = []
        for original in originals:
            for item in self.merged.pop(original, [original]):
                if item not in found:
                    found.append(item)
        self.merged[name] = found

    def replace(
        self, remove: list[onnx.NodeProto], new: onnx.NodeProto, at: onnx.NodeProto
    ) -> None:
        """Put `new` where `at` stands and drop `remove` (which may include `at`)."""
        graph = self.model.graph
        nodes = list(graph.node)
        position = next(i for i, n in enumerate(nodes) if n is at)
        gone = {id(n) for n in remove}
        kept = [n for i, n in enumerate(nodes) if id(n) not in gone or i == position]
        out = [new if n is at else n for n in kept]
        del graph.node[:]
        graph.node.extend(out)

    def rename_input(self, old: str, new: str) -> None:
        """Every consumer of `old` reads `new` instead (graph outputs keep their names)."""
        for node in self.model.graph.node:
            for index, tensor in enumerate(node.input):
                if tensor == old:
                    node.input[index] = new

    def drop_dead(self) -> None:
        """Remove nodes none of whose outputs are read (graph outputs count as read)."""
        graph = self.model.graph
        while True:
            read = {t for n in graph.node for t in n.input} | {o.name for o in graph.output}
            dead = [n for n in graph.node if not any(t in read for t in n.output)]
            if not dead:
                break
            keep = [n for n in graph.node if n not in dead]
            del graph.node[:]
            graph.node.extend(keep)
        used = {t for n in graph.node for t in n.input}
        if any(i.name not in used for i in graph.initializer):
            inits = [i for i in graph.initializer if i.name in used]
            del graph.initializer[:]
            graph.initializer.extend(inits)
            self._inits.clear()


def _single(consumers: dict[str, list[onnx.NodeProto]], tensor: str) -> onnx.NodeProto | None:
    found = consumers.get(tensor, [])
    return found[0] if len(found) == 1 else None


def _attr(node: onnx.NodeProto, name: str, default: object = None) -> object:
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _scalar(value: Array | None, want: float) -> bool:
    return value is not None and value.size == 1 and abs(float(value.reshape(-1)[0]) - want) < 1e-6


# -- rules ---------------------------------------------------------------------------------
def fuse_decomposed_prelu(rw: Rewrite) -> bool:
    """relu(x) + c * (x - |x|)  ->  PRelu(x, 2c); also relu(x) + alpha * (x - |x|) * 0.5.

    The five-op form TF/TFLite exporters write. With two multipliers one must be exactly the
    scalar 0.5 (else the node is not this spelling and stays as it is)."""
    producers, consumers = rw.producers(), rw.consumers()
    for add in rw.nodes:
        if add.op_type != "Add" or len(add.input) != 2:
            continue
        for relu_t, mul_t in (add.input, tuple(reversed(add.input))):
            relu, mul = producers.get(relu_t), producers.get(mul_t)
            if relu is None or mul is None or relu.op_type != "Relu" or mul.op_type != "Mul":
                continue
            x = relu.input[0]
            slope, chain = _prelu_slope(rw, mul, x, producers)
            if slope is None:
                continue
            inner = [relu, *chain]
            if any(_single(consumers, n.output[0]) is None for n in inner if n is not relu):
                continue
            if _single(consumers, relu.output[0]) is not add:
                continue
            name = rw.add_constant(f"{add.name}_slope", slope.astype(np.float32))
            prelu = helper.make_node("PRelu", [x, name], [add.output[0]], name=add.name)
            rw.replace([*inner, add], prelu, add)
            rw.note("prelu_decomposed", add.name, [n.name for n in (*inner, add)])
            return True
    return False


def _prelu_slope(
    rw: Rewrite, mul: onnx.NodeProto, x: str, producers: dict[str, onnx.NodeProto]
) -> tuple[Array | None, list[onnx.NodeProto]]:
    """The PReLU slope a Mul(-chain) over (x - |x|) stands for, and the nodes it covers."""
    factors: list[Array] = []
    chain = [mul]
    node = mul
    for _ in range(2):
        values = [rw.constant(t) for t in node.input]
        const = next((v for v in values if v is not None), None)
        data = next((t for t, v in zip(node.input, values, strict=True) if v is None), None)
        if const is None or data is None:
            return None, []
        factors.append(const.astype(np.float32))
        source = producers.get(data)
        if source is not None and source.op_type == "Mul" and len(factors) == 1:
            chain.append(source)
            node = source
            continue
        break
    sub = producers.get(data) if data is not None else None
    if sub is None or sub.op_type != "Sub" or sub.input[0] != x:
        return None, []
    absolute = producers.get(sub.input[1])
    if absolute is None or absolute.op_type != "Abs" or absolute.input[0] != x:
        return None, []
    if len(factors) == 2:
        halves = [i for i, f in enumerate(factors) if _scalar(f, 0.5)]
        if not halves:
            return None, []  # alpha * (x - |x|) * k with k != 0.5: not this spelling
        alpha = factors[1 - halves[0]]
        slope = alpha
    else:
        slope = 2.0 * factors[0]
    return slope, [*chain, sub, absolute]


def fuse_relu6(rw: Rewrite) -> bool:
    """Min(Max(x, 0), 6), Max(Min(x, 6), 0) and Min(Relu(x), 6) -> Clip(x, 0, 6)."""
    producers, consumers = rw.producers(), rw.consumers()
    for outer in rw.nodes:
        if outer.op_type not in ("Min", "Max") or len(outer.input) != 2:
            continue
        bound = 6.0 if outer.op_type == "Min" else 0.0
        other_op, other_bound = ("Max", 0.0) if outer.op_type == "Min" else ("Min", 6.0)
        for data, const in (outer.input, tuple(reversed(outer.input))):
            if not _scalar(rw.constant(const), bound):
                continue
            inner = producers.get(data)
            if inner is None or _single(consumers, inner.output[0]) is not outer:
                continue
            if inner.op_type == "Relu" and outer.op_type == "Min":
                x = inner.input[0]
            elif inner.op_type == other_op and len(inner.input) == 2:
                pair = [(a, b) for a, b in (inner.input, tuple(reversed(inner.input)))
                        if _scalar(rw.constant(b), other_bound)]  # fmt: skip
                if not pair:
                    continue
                x = pair[0][0]
            else:
                continue
            lo = rw.add_constant(f"{outer.name}_min", np.array(0.0, np.float32))
            hi = rw.add_constant(f"{outer.name}_max", np.array(6.0, np.float32))
            clip = helper.make_node("Clip", [x, lo, hi], [outer.output[0]], name=outer.name)
            rw.replace([inner, outer], clip, outer)
            rw.note("relu6", outer.name, [inner.name, outer.name])
            return True
    return False


def fuse_leaky_max(rw: Rewrite) -> bool:
    """Max(x, a * x) with a scalar 0 < a < 1 -> LeakyRelu(x, alpha=a)."""
    producers, consumers = rw.producers(), rw.consumers()
    for top in rw.nodes:
        if top.op_type != "Max" or len(top.input) != 2:
            continue
        for x, scaled in (top.input, tuple(reversed(top.input))):
            mul = producers.get(scaled)
            if mul is None or mul.op_type != "Mul" or x not in mul.input:
                continue
            other = mul.input[1] if mul.input[0] == x else mul.input[0]
            alpha = rw.constant(other)
            if alpha is None or alpha.size != 1 or not 0.0 < float(alpha.reshape(-1)[0]) < 1.0:
                continue
            if _single(consumers, mul.output[0]) is not top:
                continue
            leaky = helper.make_node(
                "LeakyRelu", [x], [top.output[0]], name=top.name,
                alpha=float(alpha.reshape(-1)[0]),
            )  # fmt: skip
            rw.replace([mul, top], leaky, top)
            rw.note("leaky_max", top.name, [mul.name, top.name])
            return True
    return False


def fuse_hardswish(rw: Rewrite) -> bool:
    """x * Clip(x + 3, 0, 6) / 6 (as Div by 6 or Mul by 1/6, in either order) -> HardSwish."""
    if _opset(rw.model) < 14:
        return False  # HardSwish is an ONNX op from opset 14
    producers, consumers = rw.producers(), rw.consumers()
    for last in rw.nodes:
        if last.op_type not in ("Div", "Mul") or len(last.input) != 2:
            continue
        covered = _hardswish(rw, last, producers, consumers)
        if covered is None:
            continue
        x, nodes = covered
        swish = helper.make_node("HardSwish", [x], [last.output[0]], name=last.name)
        rw.replace([*nodes, last], swish, last)
        rw.note("hardswish", last.name, [n.name for n in (*nodes, last)])
        return True
    return False


def _hardswish(
    rw: Rewrite,
    last: onnx.NodeProto,
    producers: dict[str, onnx.NodeProto],
    consumers: dict[str, list[onnx.NodeProto]],
) -> tuple[str, list[onnx.NodeProto]] | None:
    def scale_of(node: onnx.NodeProto) -> tuple[str, bool] | None:
        """(data input, True) when `node` divides by 6 or multiplies by 1/6."""
        a, b = node.input
        if node.op_type == "Div" and _scalar(rw.constant(b), 6.0):
            return a, True
        if node.op_type == "Mul":
            for data, const in ((a, b), (b, a)):
                if _scalar(rw.constant(const), 1.0 / 6.0):
                    return data, True
        return None

    def clip_of(tensor: str) -> tuple[str, list[onnx.NodeProto]] | None:
        clip = producers.get(tensor)
        if clip is None or clip.op_type != "Clip" or len(clip.input) < 3:
            return None
        if not (
            _scalar(rw.constant(clip.input[1]), 0.0) and _scalar(rw.constant(clip.input[2]), 6.0)
        ):
            return None
        add = producers.get(clip.input[0])
        if add is None or add.op_type != "Add":
            return None
        for data, const in (add.input, tuple(reversed(add.input))):
            if _scalar(rw.constant(const), 3.0):
                return data, [add, clip]
        return None

    scaled = scale_of(last)
    if scaled is None:
        return None
    data = producers.get(scaled[0])
    if data is None:
        return None
    if data.op_type == "Mul":  # (x * relu6(x + 3)) / 6
        for x, other in (data.input, tuple(reversed(data.input))):
            found = clip_of(other)
            if found is not None and found[0] == x:
                nodes = [*found[1], data]
                if all(_single(consumers, n.output[0]) is not None for n in nodes):
                    return x, nodes
    # x * (relu6(x + 3) / 6): matched when the outer Mul is `last`.
    if last.op_type == "Mul":
        for x, other in (last.input, tuple(reversed(last.input))):
            inner = producers.get(other)
            if inner is None or scale_of(inner) is None:
                continue
            found = clip_of(scale_of(inner)[0])  # type: ignore[index]
            if found is not None and found[0] == x:
                nodes = [*found[1], inner]
                if all(_single(consumers, n.output[0]) is not None for n in nodes):
                    return x, nodes
    return None


def fold_conv_scale_bias(rw: Rewrite) -> bool:
    """Conv -> Mul(per-channel c) [-> Add(per-channel d)] -> one Conv with scaled weights and
    bias: batch norm as TF exports it."""
    consumers = rw.consumers()
    for conv in rw.nodes:
        if conv.op_type != "Conv":
            continue
        follower = _single(consumers, conv.output[0])
        if follower is None or follower.op_type not in ("Mul", "Add"):
            continue
        weight = rw.constant(conv.input[1])
        bias = rw.constant(conv.input[2]) if len(conv.input) > 2 and conv.input[2] else None
        if weight is None or (len(conv.input) > 2 and conv.input[2] and bias is None):
            continue
        channels = weight.shape[0]
        if rw.is_output(conv.output[0]):
            continue
        scale = np.ones(channels, np.float32)
        shift = np.zeros(channels, np.float32)
        chain: list[onnx.NodeProto] = []
        node: onnx.NodeProto | None = follower
        for op in ("Mul", "Add"):
            if node is None or node.op_type != op or len(node.input) != 2:
                continue
            current = chain[-1].output[0] if chain else conv.output[0]
            const_name = node.input[1] if node.input[0] == current else node.input[0]
            value = _per_channel(rw.constant(const_name), channels)
            if value is None:
                break
            if op == "Mul":
                scale, shift = scale * value, shift * value
            else:
                shift = shift + value
            chain.append(node)
            if rw.is_output(node.output[0]):
                break
            node = _single(consumers, node.output[0])
        if not chain:
            continue
        new_w = (weight * scale.reshape(-1, *([1] * (weight.ndim - 1)))).astype(weight.dtype)
        base = bias if bias is not None else np.zeros(channels, np.float32)
        new_b = (base * scale + shift).astype(np.float32)
        w_name = rw.add_constant(conv.input[1], new_w)
        b_name = rw.add_constant(conv.input[2] if len(conv.input) > 2 else f"{conv.name}_B", new_b)
        folded = helper.make_node(
            "Conv", [conv.input[0], w_name, b_name], [chain[-1].output[0]], name=conv.name
        )
        folded.attribute.extend(copy.deepcopy(list(conv.attribute)))
        rw.replace([conv, *chain], folded, chain[-1])
        rw.note("conv_scale_bias", conv.name, [conv.name, *(n.name for n in chain)])
        return True
    return False


def _per_channel(value: Array | None, channels: int) -> Array | None:
    """A constant that scales or shifts output channels of an NCHW conv, as a (C,) vector."""
    if value is None:
        return None
    if value.size == 1:
        return np.full(channels, float(value.reshape(-1)[0]), np.float32)
    squeezed = value.reshape(-1)
    shape = tuple(value.shape)
    ok = shape in ((channels, 1, 1), (1, channels, 1, 1))
    return squeezed.astype(np.float32) if ok and squeezed.size == channels else None


def sink_transposes(rw: Rewrite) -> bool:
    """NHWC Transpose pairs around convolutions: move a Transpose down across element-wise ops
    (constants permuted with it), cancel it against its inverse, and drop an order-keeping one
    before a Reshape/Flatten."""
    producers, consumers = rw.producers(), rw.consumers()
    for node in rw.nodes:
        if node.op_type != "Transpose":
            continue
        perm = list(_attr(node, "perm") or [])  # type: ignore[call-overload]
        source = producers.get(node.input[0])
        if source is not None and source.op_type == "Transpose":
            first = list(_attr(source, "perm") or [])  # type: ignore[call-overload]
            if len(first) == len(perm) and [first[p] for p in perm] == list(range(len(perm))):
                if rw.is_output(node.output[0]):
                    continue
                rw.rename_input(node.output[0], source.input[0])
                rw.drop_dead()
                rw.note("nhwc_transposes", source.name, [source.name, node.name])
                return True
    for node in rw.nodes:
        if node.op_type not in _SINKABLE or rw.is_output(node.output[0]):
            continue
        if _sink_through(rw, node, producers):
            return True
    shapes = _shapes(rw.model)
    for node in rw.nodes:
        if node.op_type != "Transpose":
            continue
        users = consumers.get(node.output[0], [])
        if not users or any(u.op_type not in _RESHAPES for u in users):
            continue
        dims = shapes.get(node.input[0])
        perm = list(_attr(node, "perm") or [])  # type: ignore[call-overload]
        if dims is None or not perm or perm[0] != 0 or len(dims) != len(perm):
            continue
        order = [axis for axis in perm[1:] if dims[axis] != 1]
        if any(d <= 0 for d in dims[1:]) or order != sorted(order):
            continue
        rw.rename_input(node.output[0], node.input[0])
        rw.drop_dead()
        rw.note("nhwc_transposes", node.name, [node.name])
        return True
    return False


def _sink_through(rw: Rewrite, node: onnx.NodeProto, producers: dict[str, onnx.NodeProto]) -> bool:
    perm: list[int] | None = None
    sources: dict[int, str] = {}
    constants: dict[int, Array] = {}
    for index, tensor in enumerate(node.input):
        if not tensor:
            continue
        value = rw.constant(tensor)
        if value is not None:
            constants[index] = value
            continue
        source = producers.get(tensor)
        if source is None or source.op_type != "Transpose":
            return False
        this = list(_attr(source, "perm") or [])  # type: ignore[call-overload]
        if perm is not None and this != perm:
            return False
        perm = this
        sources[index] = source.input[0]
    if perm is None or len(perm) != 4:
        return False
    inverse = list(np.argsort(perm))
    for index, value in constants.items():
        if node.op_type == "Clip" or value.ndim == 0:
            continue  # scalars broadcast the same in either layout
        if value.ndim > 4:
            return False
        full = value.reshape((1,) * (4 - value.ndim) + value.shape)
        sources[index] = rw.add_constant(node.input[index], np.transpose(full, inverse).copy())
    inner = helper.make_node(
        node.op_type,
        [sources.get(i, t) for i, t in enumerate(node.input)],
        [f"{node.output[0]}__nchw"],
        name=node.name,
    )
    inner.attribute.extend(copy.deepcopy(list(node.attribute)))
    outer = helper.make_node(
        "Transpose", [inner.output[0]], [node.output[0]], name=f"{node.name}__to_nhwc", perm=perm
    )
    graph = rw.model.graph
    nodes = list(graph.node)
    position = next(i for i, n in enumerate(nodes) if n is node)
    nodes[position : position + 1] = [inner, outer]
    del graph.node[:]
    graph.node.extend(nodes)
    rw.drop_dead()
    return True


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except Exception:
        return {}
    found: dict[str, list[int]] = {}
    for value in (*inferred.value_info, *inferred.input, *inferred.output):
        dims = value.type.tensor_type.shape.dim
        found[value.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]
    return found


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


@dataclass(frozen=True)
class Rule:
    """One exporter pattern and the function that rewrites one occurrence of it."""

    name: str
    canonical: str
    apply: Callable[[Rewrite], bool]


RULES: tuple[Rule, ...] = (
    Rule("prelu_decomposed", "PRelu (same slopes)", fuse_decomposed_prelu),
    Rule("relu6", "Clip(0, 6)", fuse_relu6),
    Rule("leaky_max", "LeakyRelu", fuse_leaky_max),
    Rule("hardswish", "HardSwish", fuse_hardswish),
    Rule("nhwc_transposes", "NCHW between convolutions", sink_transposes),
    Rule("conv_scale_bias", "folded into the Conv", fold_conv_scale_bias),
)
RULE_NAMES = tuple(rule.name for rule in RULES)

# A rewrite loop that has not converged by then is a bug in a rule, not a big model.
_MAX_STEPS = 100_000


def _candidates(model: onnx.ModelProto) -> bool:
    """Whether any rule could match: a cheap look at op types first, so a graph with nothing
    to rewrite (an R100 of 250 MB) is not copied."""
    ops = {n.op_type for n in model.graph.node}
    if ops & {"Abs", "Min", "Max", "Transpose"}:
        return True
    if "Clip" in ops and ops & {"Mul", "Div"}:
        return True
    producer_ops = {t: n.op_type for n in model.graph.node for t in n.output}
    return any(
        n.op_type in ("Mul", "Add") and any(producer_ops.get(t) == "Conv" for t in n.input)
        for n in model.graph.node
    )


def rewrite(model: onnx.ModelProto, rules: tuple[str, ...] = RULE_NAMES) -> Rewrite:
    """A canonical copy of `model` with `rules` applied until none matches."""
    if not _candidates(model):
        return Rewrite(model)  # nothing matches: no copy (the caller does not mutate it)
    rw = Rewrite(copy.deepcopy(model))
    chosen = [r for r in RULES if r.name in rules]
    for _ in range(_MAX_STEPS):
        if not any(rule.apply(rw) for rule in chosen):
            break
    rw.drop_dead()  # constants only the rewritten spellings read
    rw.applied = {k: v for k, v in rw.applied.items() if v}
    return rw


def hailo_layers(model: onnx.ModelProto) -> int:
    """How many layers the Hailo parser makes of `model`, estimated the way it fuses: a conv /
    fc carries the batch norm and activations that follow it alone; shape-only ops fold."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for tensor in node.input:
            consumers.setdefault(tensor, []).append(node)
    absorbed: set[str] = set()
    count = 0
    for node in model.graph.node:
        if node.name in absorbed or node.op_type in FOLDED:
            continue
        count += 1
        if node.op_type in WEIGHT_OPS:
            out = node.output[0]
            while len(consumers.get(out, [])) == 1:
                nxt = consumers[out][0]
                if nxt.op_type not in FUSED_AFTER_WEIGHTS:
                    break
                absorbed.add(nxt.name)
                out = nxt.output[0]
    return count
