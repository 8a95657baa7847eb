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
from typing import Any

from hailoc.autoplan.objective import Measure, measure
from hailoc.backends.protocol import Backend, Candidate, Job, StageOutput, Stages
from hailoc.errors import PlanError
from hailoc.plan import PrecisionPlan
from hailoc.reference import References


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

    def log(self, line: str) -> None:
        """Delegate."""
        self.inner.log(line)


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
        self._runs: list[dict[str, Any]] = []
        self._memo: dict[tuple[str, ...], Measure] = {}
        self._int8: Candidate | None = None

    def _quantize(self, layers: tuple[str, ...]) -> Candidate:
        cfg = self.job.inputs.config
        before = len(self.stages.ran)
        candidate = self.backend.quantize(
            self.job, PrecisionPlan(cfg.name, "auto", layers), self.prepared, self.stages
        )
        for stage, key, hit in self.stages.ran[before:]:
            self._runs.append(
                {"stage": stage, "layers": len(layers), "cache_key": key, "cache_hit": hit}
            )
            if hit:
                self.reused += 1
            else:
                self.computed += 1
        return candidate

    def ranking(self) -> list[tuple[str, float]]:
        """ONNX layers by the SNR the DFC's noise analysis gives the int8 model, lowest first."""
        if self._int8 is None:
            self._int8 = self._quantize(())
        before = len(self.stages.ran)
        snr = self.backend.layer_noise(self.job, self._int8, self.stages)
        for stage, key, hit in self.stages.ran[before:]:
            self._runs.append({"stage": stage, "layers": 0, "cache_key": key, "cache_hit": hit})
        if snr is None:
            raise PlanError(
                f"the {self.backend.name} backend has no layer noise analysis",
                where="--precision auto",
                fix="use -b onnxruntime for the auto search",
            )
        return sorted(snr.items(), key=lambda item: (item[1], item[0]))

    def score(self, layers: tuple[str, ...]) -> Measure:
        """Optimize with `layers` in 16-bit; the SDK_QUANTIZED embeddings against fp32."""
        if layers in self._memo:
            return self._memo[layers]
        candidate = self._int8 if not layers and self._int8 is not None else None
        candidate = candidate or self._quantize(layers)
        inputs = self.job.inputs
        sizes = inputs.config.gate.face_sizes
        found = measure(
            self.references.get(inputs, sizes),
            candidate.embeddings,
            metric=self.spec.metric,
            face_size=self.spec.face_size,
            confidence=self.spec.confidence,
        )
        for run in reversed(self._runs):
            if run["stage"] != "noise" and run["layers"] == len(layers) and "value" not in run:
                run.update(plan=list(layers), **found.as_dict())
                break
        self._memo[layers] = found
        return found

    def materialize(self, layers: tuple[str, ...]) -> None:
        """Nothing: the build's optimize of the chosen plan is already in the stage cache."""

    def runs(self) -> list[dict[str, Any]]:
        """Every optimize and noise stage the search asked for, with its numbers."""
        return list(self._runs)
