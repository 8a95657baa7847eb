"""Score layer sets on the ONNX Runtime emulation: quantize twice, then toggle.

The all-8-bit and all-16-bit QDQ models come from the stage cache (the same entries builds
use); every other plan is a mix of the two (autoplan/toggle.py), embedded at the target face
size and measured against the shared fp32 reference. Scores are memoised on disk, so a
second search with the same inputs does no model work.
"""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx

from hailoc.autoplan.objective import Depth, Measure, measure, upper_bound
from hailoc.autoplan.toggle import Toggle
from hailoc.backends.onnxruntime.backend import QDQ
from hailoc.backends.onnxruntime.qdq_plan import QdqPlan, render_qdq
from hailoc.backends.onnxruntime.quantize import (
    OPSET,
    quantize_inputs,
    quantize_key,
    upgrade_opset,
)
from hailoc.cache import StageCache, cache_key
from hailoc.calibration.face_size import batch_at_distance
from hailoc.eval.metrics import cosine_rows
from hailoc.execution import Background, usable_cores
from hailoc.faces import BySize
from hailoc.inference.preprocess import to_input
from hailoc.inference.session import SplitEmbedder, open_session, static_batch
from hailoc.inputs import BuildInputs
from hailoc.manifest.schema import AutoSearch
from hailoc.plan import PrecisionPlan
from hailoc.reference import References

# A plan's evaluation checks whether it can still reach the target after the first
# EARLY_FIRST faces (all a glance embeds), then after chunks twice as large each time.
EARLY_FIRST = 8
# A plan's measure is kept under one of these steps: on every face, stopped because it cannot
# reach, or seen at a glance (a bound that left it able to reach).
EVALUATION_STEPS = ("evaluation", "evaluation-bound", "evaluation-glance")
# Where the eval faces' hardest-first order is kept (one per search key).
ORDER_KEY = cache_key("face-order", {})
# Calibration faces used for the one-pass noise ranking.
RANKING_FACES = 16


class Evaluator:
    """Measures layer sets on ONNX Runtime; counts what it computed and what it reused."""

    source = "ort"
    unit = "noise_added"
    polish = 3

    def __init__(
        self,
        inputs: BuildInputs,
        cache_root: Path,
        memo: Path,
        spec: AutoSearch,
        candidates: list[str],
    ) -> None:
        self.inputs = inputs
        self.cfg = inputs.config
        self.spec = spec
        self.candidates = candidates
        memo.mkdir(parents=True, exist_ok=True)
        # Each evaluation and the ranking are verified cache entries under auto/<search key>/.
        self.kind = f"auto/{memo.name}"
        self.memo: dict[str, dict[str, object]] = {}
        self.stage_cache = StageCache(cache_root)
        self.references = References(cache_root)
        self.workdir = memo
        self.computed = 0
        self.reused = 0
        self._toggle: Toggle | None = None
        self._fp32: onnx.ModelProto | None = None
        self._probes: Any = None  # eval faces as seen at the target size, simulated once
        self._order: npt.NDArray[np.intp] | None = None
        # Embeddings of the faces a glance saw (hardest first), per plan: deciding it later
        # goes on from there.
        self._glanced: dict[tuple[str, ...], list[npt.NDArray[np.float32]]] = {}
        # Work a cold search starts early, on another thread (see `ranking`).
        self._reference: Background[BySize] | None = None
        self._all16: Background[Path] | None = None
        # One single-threaded session per core this process may use (see SplitEmbedder).
        self.workers = usable_cores()

    # -- the two quantized models ----------------------------------------------------------
    def _plan(self, layers: tuple[str, ...]) -> QdqPlan:
        return render_qdq(PrecisionPlan(self.cfg.name, "auto", layers), self.inputs.onnx_proto)

    def quantized(self, layers: tuple[str, ...]) -> Path:
        """The QDQ model of `layers` from the stage cache, quantized and stored on a miss."""
        qplan = self._plan(layers)
        key = quantize_key(self.inputs, qplan)
        entry = self.stage_cache.lookup("quantize", key)
        if entry is None:
            with tempfile.TemporaryDirectory(prefix="hailoc-auto-", dir=self.workdir) as tmp:
                path = Path(tmp) / QDQ
                quantize_inputs(self.inputs, qplan, path, self.stage_cache, self.fp32())
                entry = self.stage_cache.store("quantize", key, {QDQ: path}, {"stage": "quantize"})
        return entry / QDQ

    def materialize(self, layers: tuple[str, ...]) -> None:
        """Put the QDQ model of `layers` into the stage cache, where a build of that plan
        looks: the toggled model equals the quantizer's, so the quantizer does not run."""
        key = quantize_key(self.inputs, self._plan(layers))
        if self.stage_cache.lookup("quantize", key) is not None:
            return
        with tempfile.TemporaryDirectory(prefix="hailoc-auto-", dir=self.workdir) as tmp:
            path = Path(tmp) / QDQ
            path.write_bytes(self.toggle().model(layers))
            self.stage_cache.store("quantize", key, {QDQ: path}, {"stage": "quantize"})

    def fp32(self) -> onnx.ModelProto:
        """The model at the quantizer's opset, converted once per search (~1 s for a
        ResNet-50; the quantizer, the toggle and the ranking each need it). Never mutated."""
        if self._fp32 is None:
            self._fp32 = upgrade_opset(self.inputs.onnx_proto, OPSET)
        return self._fp32

    def toggle(self) -> Toggle:
        """The int8 / all-16-bit mixer (built on first use)."""
        if self._toggle is None:
            tensors = {c: self._plan((c,)).tensors for c in self.candidates}
            all16 = self._all16.result() if self._all16 else self.quantized(self._everything())
            self._toggle = Toggle(
                onnx.load(str(self.quantized(()))),
                onnx.load(str(all16)),
                tensors,
                self.fp32(),
            )
        return self._toggle

    def _everything(self) -> tuple[str, ...]:
        return tuple(self.candidates)

    def runs(self) -> list[dict[str, Any]]:
        """Nothing beyond the curve: evaluations here cost seconds, not stages."""
        return []

    # -- scores -------------------------------------------------------------------------------
    def score(self, layers: tuple[str, ...], depth: Depth = Depth.DECIDED) -> Measure:
        """The objective with `layers` in 16-bit and every other layer in 8-bit, measured as
        far as `depth` asks (see `Scorer.score`)."""
        target = self.spec.target
        keys = [cache_key(step, {"layers": sorted(layers)}) for step in EVALUATION_STEPS]
        for key in keys[:1] if depth is Depth.EVERY_FACE else keys:
            known = self._recall(key)
            # A partial measure is a bound: the search key leaves the target out, so one
            # stored by an earlier search may not decide this search's target.
            if known is not None and known.enough(depth, target):
                self.reused += 1
                return known
        if layers not in self._glanced:
            self.computed += 1
        result = self._measure(layers, depth)
        if result.stopped_at is None:
            key = keys[0]
        else:
            key = keys[1] if not result.may_reach(target) else keys[2]
        self.memo[key] = result.as_dict()
        data = json.dumps(self.memo[key], sort_keys=True).encode()
        self.stage_cache.store(f"{self.kind}/eval", key, {"measure.json": data})
        return result

    def _recall(self, key: str) -> Measure | None:
        if key not in self.memo:
            found = self.stage_cache.read_bytes(f"{self.kind}/eval", key, "measure.json")
            if found is None:
                return None
            self.memo[key] = json.loads(found)
        return Measure.from_dict(self.memo[key])

    def _measure(self, layers: tuple[str, ...], depth: Depth) -> Measure:
        """The plan's model, its sessions opened, measured by `_embed_measure`."""
        size = self.spec.face_size
        if self._probes is None:
            self._probes = batch_at_distance(self.inputs.eval_faces, size)
        if self._reference is not None:
            self._reference.result()  # the fp32 side computed beside the quantization
        reference = self.references.get(self.inputs, (size,))
        with tempfile.TemporaryDirectory(prefix="hailoc-plan-", dir=self.workdir) as tmp:
            # From a file, both sessions parse the model at once (from bytes, ORT copies and
            # parses them holding the GIL: one after the other).
            model = Path(tmp) / QDQ
            model.write_bytes(self.toggle().model(layers))
            embed = SplitEmbedder(model, self.cfg, self.workers)
            embed.runner.open()  # while the file exists
        return self._embed_measure(layers, depth, embed, reference)

    def _embed_measure(
        self, layers: tuple[str, ...], depth: Depth, embed: SplitEmbedder, reference: BySize
    ) -> Measure:
        """Embed the eval faces in growing chunks, hardest first (`face_order`), stopping as
        soon as the plan provably cannot reach the target (its `upper_bound` is below it), or
        after the first chunk for a glance; a plan that can reach is measured on every face.
        The faces go back to their own places before measuring: the order decides only when
        a plan stops, never its numbers."""
        size = self.spec.face_size
        total = len(self._probes)
        parts = self._glanced.pop(layers, [])
        order = self.face_order() if depth is not Depth.EVERY_FACE or parts else None
        if order is None:
            order = np.arange(total)
        start = sum(len(part) for part in parts)
        step = EARLY_FIRST * 2 ** len(parts)
        while start < total:
            share = order[start : start + step]
            parts.append(embed(self._probes[share]))
            start += len(share)
            step *= 2
            if depth is not Depth.EVERY_FACE and start < total:
                bound = upper_bound(
                    cosine_rows(reference[size][order[:start]], np.concatenate(parts)),
                    total,
                    metric=self.spec.metric,
                    face_size=size,
                    confidence=self.spec.confidence,
                    at=order[:start],
                )
                if not bound.may_reach(self.spec.target):
                    return bound
                if depth is Depth.GLANCE:
                    self._glanced[layers] = parts
                    return bound
        embedded = np.empty_like(parts[0], shape=(total, parts[0].shape[1]))
        embedded[order] = np.concatenate(parts)
        result = measure(
            reference,
            {size: embedded},
            metric=self.spec.metric,
            face_size=size,
            confidence=self.spec.confidence,
        )
        if not layers:
            self._remember_order(cosine_rows(reference[size], embedded))
        return result

    def face_order(self) -> npt.NDArray[np.intp] | None:
        """The eval faces, those the all-8-bit plan agrees with fp32 least on first: where a
        plan that cannot reach the target shows it soonest. None before int8 is measured."""
        if self._order is None:
            found = self.stage_cache.read_bytes(self.kind, ORDER_KEY, "order.json")
            if found is not None:
                self._order = np.asarray(json.loads(found), np.intp)
        return self._order

    def _remember_order(self, agreement: npt.NDArray[np.float64]) -> None:
        self._order = np.argsort(agreement, kind="stable")
        data = json.dumps(self._order.tolist()).encode()
        self.stage_cache.store(self.kind, ORDER_KEY, {"order.json": data})

    def _session(self, model: onnx.ModelProto, names: list[str]) -> Any:
        """A session of a copy of `model` that also returns the `names` tensors."""
        copy = onnx.ModelProto()
        copy.CopyFrom(model)  # in memory: ~20 ms for a ResNet-50, a round trip ~300 ms
        model = copy
        have = {o.name for o in model.graph.output}
        for name in names:
            if name not in have:
                model.graph.output.append(
                    onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                )
        return open_session(model.SerializeToString(), threads=1 if self.workers > 1 else 0)

    def ranking(self) -> list[tuple[str, float]]:
        """(layer, noise added) from one pass of the fp32 and the int8 model, most harmful
        first: how much the int8 model's noise-to-signal ratio against fp32 grows across each
        layer (the cross-model error ORT's qdq_loss_debug reports, per layer). Memoised."""
        key = cache_key("ranking", {"candidates": self.candidates})
        found = self.stage_cache.read_bytes(self.kind, key, "ranking.json")
        if found is not None:
            return [(str(layer), float(value)) for layer, value in json.loads(found)]
        # A cold search: the fp32 references (ONNX Runtime, which lets go of the GIL) run
        # beside the quantizations (Python, one core), which would otherwise leave a core idle.
        size = self.spec.face_size
        self._reference = Background(lambda: self.references.get(self.inputs, (size,)))
        ranked = self._rank()
        self.stage_cache.store(self.kind, key, {"ranking.json": json.dumps(ranked).encode()})
        return ranked

    def _rank(self) -> list[tuple[str, float]]:
        reference = self.fp32()
        nodes = {n.name: n for n in reference.graph.node}
        edges = {
            layer: (nodes[layer].input[0], nodes[layer].output[0])
            for layer in self.candidates
            if layer in nodes and nodes[layer].input and nodes[layer].output
        }
        names = sorted({t for pair in edges.values() for t in pair})
        fp32 = self._session(reference, names)
        int8 = self._session(onnx.load(str(self.quantized(()))), names)
        # The calibration ranges are cached now: the all-16-bit quantization (Python) runs
        # beside the ranking's passes (ONNX Runtime).
        everything = self._everything()
        self._all16 = Background(lambda: self.quantized(everything))
        # Sums per tensor, accumulated chunk by chunk: holding every activation of a
        # ResNet-100 for all ranking faces would take gigabytes. Each worker holds one chunk.
        signal = dict.fromkeys(names, 0.0)
        noise = dict.fromkeys(names, 0.0)
        x = to_input(np.asarray(self.inputs.calib[:RANKING_FACES]), self.cfg)
        batch = static_batch(fp32) or len(x)

        def sums(start: int) -> list[tuple[float, float]]:
            chunk = x[start : start + batch]
            real = len(chunk)
            if real < batch:  # a static batch: pad with the last face
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - real, 0)])
            feed = {self.cfg.input.name: chunk}
            found = []
            for ref_value, q_value in zip(
                fp32.run(names, feed), int8.run(names, feed), strict=True
            ):
                # float32 dot products over flat views: exact enough to rank, and far
                # cheaper than float64 copies of every activation.
                ref = np.asarray(ref_value, np.float32)[:real].ravel()
                diff = ref - np.asarray(q_value, np.float32)[:real].ravel()
                found.append((float(np.dot(ref, ref)), float(np.dot(diff, diff))))
            return found

        # Chunks run on one thread per core (ONNX Runtime's run is thread-safe; each session
        # runs single-threaded); their sums are added in chunk order, as one thread would.
        with ThreadPoolExecutor(self.workers) as pool:
            for found in pool.map(sums, range(0, len(x), batch)):
                for name, (ref_part, noise_part) in zip(names, found, strict=True):
                    signal[name] += ref_part
                    noise[name] += noise_part

        def nsr(tensor: str) -> float:
            return noise[tensor] / signal[tensor] if signal[tensor] else 0.0

        added = {layer: nsr(out) - nsr(inp) for layer, (inp, out) in edges.items()}
        ranked = sorted(added.items(), key=lambda item: (-item[1], self.candidates.index(item[0])))
        return ranked + [(c, 0.0) for c in self.candidates if c not in added]
