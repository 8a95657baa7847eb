"""`--precision auto` on a backend's own quantizer: the Hailo DFC ranks and measures plans.

The ranking comes from the DFC's layer noise analysis of the int8 optimize (SNR per layer,
lowest first); every plan the search measures is an optimize stage (the build's own stage,
cached like any other) whose SDK_QUANTIZED embeddings of the eval faces are compared with
fp32 at every face size. Optimizing is the expensive step on the real DFC, so the search
polishes once: at most 2 + ceil(log2 L) + 1 optimize stages, each listed in auto_plan.dfc.json
and in the build record's stages.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hailoc.autoplan.objective import Depth, Measure, measure
from hailoc.backends.protocol import Backend, Candidate, Job, StageFailure, StageOutput, Stages
from hailoc.cache import Damage
from hailoc.errors import PlanError
from hailoc.failures import WALL_CLASSES
from hailoc.plan import PrecisionPlan
from hailoc.reference import References

T = TypeVar("T")
Run = dict[str, Any]  # one stage the search asked for, as auto_plan.dfc.json lists it


class _Watched:
    """Passes stages through and notes which ones ran and which came from the cache."""

    def __init__(self, inner: Stages) -> None:
        self.inner = inner
        self.ran: list[tuple[str, str, bool]] = []  # (stage, key, cache hit)

    def run(self, name: str, key: str, produce: Callable[[Path], StageOutput]) -> Path:
        """Delegate, noting whether `produce` had to run."""
        produced = False

        def wrapped(workdir: Path) -> StageOutput:
            nonlocal produced
            produced = True
            return produce(workdir)

        entry = self.inner.run(name, key, wrapped)
        self.ran.append((name, key, not produced))
        return entry

    def phase(self, name: str) -> None:
        """Delegate."""
        self.inner.phase(name)

    def damaged(self, damage: Damage) -> None:
        """Forwarded."""
        self.inner.damaged(damage)

    def log(self, line: str) -> None:
        """Delegate."""
        self.inner.log(line)


# The measure of a layer set the DFC refused: below any target.
REFUSED = Measure(value=-1.0, low=-1.0, high=-1.0, mean_all_sizes=-1.0, per_size={})


class BackendScorer:
    """Scores layer sets with `backend.quantize` and ranks with `backend.layer_noise`."""

    source = "dfc"
    unit = "snr_db"
    polish = 1

    def __init__(
        self,
        backend: Backend,
        job: Job,
        prepared: Path | None,
        stages: Stages,
        references: References,
    ) -> None:
        self.backend = backend
        self.job = job
        self.prepared = prepared
        self.stages = _Watched(stages)
        self.references = references
        self.spec = job.inputs.config.auto
        self.computed = 0
        self.reused = 0
        self._runs: list[Run] = []
        self._memo: dict[tuple[str, ...], Measure] = {}
        # Each quantized plan with the stage runs it took (its numbers are added to them).
        self._quantized: dict[tuple[str, ...], tuple[Candidate, list[Run]]] = {}

    def _watch(self, layers: tuple[str, ...], action: Callable[[], T]) -> tuple[T, list[Run]]:
        """Run `action`, recording every stage it asked for under `layers`."""
        before = len(self.stages.ran)
        value = action()
        runs = [
            {"stage": stage, "layers": len(layers), "cache_key": key, "cache_hit": hit}
            for stage, key, hit in self.stages.ran[before:]
        ]
        self._runs += runs
        return value, runs

    def _candidate(self, layers: tuple[str, ...]) -> tuple[Candidate, list[Run]]:
        if layers not in self._quantized:
            plan = PrecisionPlan(self.job.inputs.config.name, "auto", layers)
            found = self._watch(
                layers, lambda: self.backend.quantize(self.job, plan, self.prepared, self.stages)
            )
            for run in found[1]:
                if run["cache_hit"]:
                    self.reused += 1
                else:
                    self.computed += 1
            self._quantized[layers] = found
        return self._quantized[layers]

    def ranking(self) -> list[tuple[str, float]]:
        """ONNX layers by the SNR the DFC's noise analysis gives the int8 model, lowest first."""
        int8, _ = self._candidate(())
        snr, _ = self._watch((), lambda: self.backend.layer_noise(self.job, int8, self.stages))
        if snr is None:
            raise PlanError(
                f"the {self.backend.name} backend has no layer noise analysis",
                where="--precision auto",
                fix="use -b onnxruntime for the auto search",
            )
        return sorted(snr.items(), key=lambda item: (item[1], item[0]))

    def score(self, layers: tuple[str, ...], depth: Depth = Depth.DECIDED) -> Measure:
        """Optimize with `layers` in 16-bit; the SDK_QUANTIZED embeddings against fp32 (every
        face, always: the emulation embeds them in one stage)."""
        if layers in self._memo:
            return self._memo[layers]
        try:
            candidate, runs = self._candidate(layers)
        except StageFailure as exc:
            if not layers or exc.failure_class not in WALL_CLASSES:
                raise
            # The DFC refuses this 16-bit set: the search may only choose sets it takes, so
            # this one reaches no target (the build's own recovery handles the plan chosen).
            self.stages.log(f"auto: {len(layers)} layers meet a wall ({exc.failure_class})")
            self._memo[layers] = REFUSED
            return REFUSED
        inputs = self.job.inputs
        found = measure(
            self.references.get(inputs, inputs.config.gate.face_sizes),
            candidate.embeddings,
            metric=self.spec.metric,
            face_size=self.spec.face_size,
            confidence=self.spec.confidence,
        )
        for run in runs:
            run.update(plan=list(layers), **found.as_dict())
        self._memo[layers] = found
        return found

    def materialize(self, layers: tuple[str, ...]) -> None:
        """Nothing: the build's optimize of the chosen plan is already in the stage cache."""

    def runs(self) -> list[dict[str, Any]]:
        """Every optimize and noise stage the search asked for, with its numbers."""
        return list(self._runs)
