"""16-bit walls: when the DFC refuses a plan's 16-bit set, narrow the set and try again.

A wall that names its layer (a NaN exponent, `needs super-defuse`, the unsupported layers
listed in the log, a request the optimizer dropped) takes that layer out of 16-bit, with
whatever its island carried; a NaN exponent is first tried once as a16_w8 where the target's
DFC has that mode. A wall that names none (the allocator's crash) bisects the planned weight
layers, ranked as `auto` ranks them, for the longest prefix that compiles: ceil(log2 L)
probes at most, the last one that compiled is the plan built (its stages are cached). A wall
the int8 plan meets too does not depend on the 16-bit set: the build ends with it.

Every wall is the DFC's answer to exactly the stage's inputs, so StageRunner keeps it in the
stage cache (cache/walls/) and a second run replays the attempts without running a stage.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hailoc.backends.protocol import StageFailure
from hailoc.cache import StageCache, cache_key
from hailoc.failures import wall_layers
from hailoc.manifest.schema import family_of
from hailoc.onnxgraph import GraphInfo
from hailoc.plan import PrecisionPlan, resolve_plan
from hailoc.plan.hn import HnNetwork
from hailoc.plan.model import Excluded
from hailoc.plan.narrow import as_a16_w8, drop_layers, keep_prefix, nodes_of, weight_seeds

# a16_w8 appears only in the model zoo's Hailo-15 scripts (DFC_FIELD_NOTES section 1): tried
# only on the family whose DFC (v5) builds Hailo-15 and Hailo-10H.
A16_W8_FAMILIES = ("hailo10h",)


@dataclass(frozen=True)
class Step:
    """The next plan to try, and whether only its compilability is being asked."""

    plan: PrecisionPlan
    probe: bool
    removed: tuple[Excluded, ...] = ()
    note: str = ""


class WallRecovery:
    """Decides the next plan after each wall (and, while bisecting, after each compile)."""

    def __init__(
        self,
        hn: HnNetwork,
        graph: GraphInfo,
        hw_arch: str,
        rank: Callable[[list[str]], list[str]],
    ) -> None:
        self.hn = hn
        self.graph = graph
        self.hw_arch = hw_arch
        self.rank = rank
        self.bisecting = False
        self._base: PrecisionPlan | None = None  # the plan prefixes are cut from
        self._units: list[str] = []  # its weight layers, most harmed by int8 first
        self._lo = 0  # the longest prefix known to compile (0: assumed)
        self._hi = 0  # the shortest prefix known to fail
        self._probe = 0
        self._w8_tried: set[str] = set()
        self._saved: tuple[PrecisionPlan | None, tuple[str, ...], int, int, bool, int] | None = None

    def a16_of(self, plan: PrecisionPlan) -> tuple[str, ...]:
        """The HN layers `plan` asks 16-bit."""
        return resolve_plan(plan, self.hn, self.graph).a16_layers

    def after_wall(self, plan: PrecisionPlan, failure: StageFailure, stage: str) -> Step:
        """The next plan after `plan` met `failure` in `stage`; raises `failure` when no
        narrower plan can help (the plan is already int8)."""
        in_plan = set(self.a16_of(plan))
        if not in_plan:
            raise failure
        logs = "\n".join(data.decode("utf-8", "replace") for data in failure.logs.values())
        text = failure.detail or failure.message
        named = [
            layer
            for layer in wall_layers(failure.failure_class, text, logs, self.hn.net_name)
            if layer in in_plan
        ]
        first_line = (text.strip().splitlines() or [""])[0][:200]
        if named:
            layer = named[0]
            if (
                failure.failure_class == "nan_exponent"
                and family_of(self.hw_arch) in A16_W8_FAMILIES
                and layer not in self._w8_tried
            ):
                self._w8_tried.add(layer)
                return Step(
                    as_a16_w8(plan, layer),
                    self.bisecting,
                    note=f"{layer}: NaN exponent in a16_w16, trying a16_w8",
                )
            why = f"{failure.failure_class} in {stage}: {first_line}"
            step = self._drop(plan, named, why)
            if layer not in self.a16_of(step.plan):
                return step
            # Nothing of the plan carries it (a layer the DFC added): as if unnamed.
            self._undo_drop()
        return self._unnamed(plan)

    def _unnamed(self, plan: PrecisionPlan) -> Step:
        if not self.bisecting:
            self._base = plan
            self._units = self.rank(weight_seeds(plan, self.graph))
            self._lo, self._hi = 0, len(self._units)
            self.bisecting = True
        else:
            self._hi = self._probe
        return self._next()

    def after_compile(self, plan: PrecisionPlan) -> Step | None:
        """While bisecting: the next probe after `plan` compiled, or the plan to build."""
        if not self.bisecting:
            return None
        self._lo = self._probe
        return self._next()

    def _undo_drop(self) -> None:
        if self._saved is not None:
            base, units, self._lo, self._hi, self.bisecting, self._probe = self._saved
            self._base, self._units = base, list(units)

    def _drop(self, plan: PrecisionPlan, layers: Sequence[str], why: str) -> Step:
        self._saved = (
            self._base,
            tuple(self._units),
            self._lo,
            self._hi,
            self.bisecting,
            self._probe,
        )
        narrowed = drop_layers(plan, self.hn, layers, why)
        removed = narrowed.excluded[len(plan.excluded) :]
        if not self.bisecting:
            return Step(narrowed, False, removed)
        assert self._base is not None
        self._base = drop_layers(self._base, self.hn, layers, why)
        barred = set(self._base.barred)
        self._units = [u for u in self._units if u not in barred]
        self._hi = min(self._hi, len(self._units))
        self._lo = min(self._lo, self._hi)
        step = self._next()
        return Step(step.plan, step.probe, removed, step.note)

    def _next(self) -> Step:
        assert self._base is not None
        if self._hi - self._lo <= 1:
            self.bisecting = False
            final = keep_prefix(self._base, self._units, self._lo)
            why = (
                f"allocator: kept the {self._lo} weight layers ranked first; "
                f"{self._lo + 1} did not compile"
            )
            kept = set(self.a16_of(final))
            removed = tuple(
                Excluded(layer, "bisected", why)
                for layer in self.a16_of(self._base)
                if layer not in kept
            )
            return Step(final, False, removed, f"bisection: {self._lo} weight layers compile")
        self._probe = (self._lo + self._hi) // 2
        return Step(
            keep_prefix(self._base, self._units, self._probe),
            True,
            note=f"bisection: trying the first {self._probe} of {len(self._units)} weight "
            f"layers (known: {self._lo} compile, {self._hi} do not)",
        )


@dataclass(frozen=True)
class KnownWalls:
    """The layers walls named for one ONNX model on one hw_arch and one suite image (DFC
    version), kept in the cache (one entry per wall) so that `auto` never chooses them."""

    cache: StageCache
    kind: str

    @classmethod
    def of(cls, cache_dir: Path, onnx_sha256: str, hw_arch: str, suite_image_id: str) -> KnownWalls:
        """The walls known for one model, target and DFC."""
        key = cache_key(
            "walls",
            {"onnx_sha256": onnx_sha256, "hw_arch": hw_arch, "suite_image_id": suite_image_id},
        )
        return cls(StageCache(cache_dir), f"walls/known/{key[:32]}")

    def read(self) -> dict[str, str]:
        """ONNX node -> why it must stay 8-bit (empty when nothing is known)."""
        known: dict[str, str] = {}
        folder = self.cache.root / self.kind
        for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
            data = self.cache.read_bytes(self.kind, entry.name, "walls.json")
            if data is not None:
                known.update({str(k): str(v) for k, v in json.loads(data).items()})
        return known

    def add(self, hn: HnNetwork, removed: Sequence[Excluded]) -> None:
        """Remember the named layers among `removed` (a bisection's cut is a limit of the
        set, not of a layer: it is not kept here)."""
        found = {
            node: f"a DFC wall in an earlier build: {layer.why}"
            for layer in removed
            if layer.kind != "bisected"
            for node in nodes_of(hn, layer.name)
        }
        if found:
            data = json.dumps(found, indent=1, sort_keys=True).encode()
            self.cache.store(self.kind, cache_key("wall", found), {"walls.json": data})
