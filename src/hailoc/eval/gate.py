"""The accuracy gate: a build whose embeddings stray from fp32, or collapse, is a failed build."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hailoc.eval.sweep import EvalResult
from hailoc.manifest.schema import Gate


@dataclass(frozen=True)
class GateVerdict:
    """Passed, or failed with a class (`degenerate` beats `accuracy`) and the reasons."""

    passed: bool
    failure_class: str | None
    reasons: tuple[str, ...]

    @property
    def message(self) -> str:
        """One line for records and the terminal."""
        return "; ".join(self.reasons) if self.reasons else "gate passed"

    @property
    def skipped_note(self) -> str:
        """The record's message when --skip-gate kept a build that failed the gate."""
        return f"gate skipped by --skip-gate: {self.message}"


def accuracy_record(result: EvalResult, verdict: GateVerdict, **extra: Any) -> dict[str, Any]:
    """The `accuracy` section of a build record: every number, the verdict, and extras."""
    gate = {
        "passed": verdict.passed,
        "class": verdict.failure_class,
        "reasons": list(verdict.reasons),
    }
    return result.as_dict() | {"gate": gate} | extra


DEGENERATE_HINT = (
    "embeddings collapsed (constant norm / every face alike): check normalization "
    "(std 127.5 vs 128, mean/std given while the graph normalizes) and the 16-bit set"
)
ACCURACY_HINT = (
    "quantized embeddings drift from fp32: try --precision int16-final (or auto), a larger "
    "aligned calibration set with small faces, or finetune in the optimization settings"
)


def judge(result: EvalResult, gate: Gate) -> GateVerdict:
    """Apply the model's thresholds to an evaluation."""
    degenerate: list[str] = []
    accuracy: list[str] = []
    deg = result.candidate["degeneracy"]
    if deg["norm_cv"] < gate.min_norm_cv:
        degenerate.append(
            f"embedding norm nearly constant (cv {deg['norm_cv']:.4f} < {gate.min_norm_cv})"
        )
    if deg["mean_pairwise_similarity"] > gate.max_impostor_similarity:
        degenerate.append(
            f"different faces look alike (mean similarity {deg['mean_pairwise_similarity']:.3f}"
            f" > {gate.max_impostor_similarity})"
        )
    if result.agreement.mean < gate.min_mean_agreement:
        accuracy.append(
            f"mean agreement with fp32 {result.agreement.mean:.4f} < {gate.min_mean_agreement}"
        )
    if result.agreement.min < gate.min_worst_agreement:
        worst = min(result.sweep, key=lambda r: r.agreement_min)
        accuracy.append(
            f"worst-face agreement {result.agreement.min:.4f} < {gate.min_worst_agreement} "
            f"(at {worst.size} px)"
        )
    if degenerate:
        return GateVerdict(False, "degenerate", tuple(degenerate + accuracy))
    if accuracy:
        return GateVerdict(False, "accuracy", tuple(accuracy))
    return GateVerdict(True, None, ())


def hint_for(failure_class: str) -> str:
    """The remedy printed with a gate failure."""
    return DEGENERATE_HINT if failure_class == "degenerate" else ACCURACY_HINT
