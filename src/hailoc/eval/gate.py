"""The accuracy gate: a build whose embeddings stray from fp32, or collapse, is a failed build."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hailoc.eval.metrics import Agreement
from hailoc.eval.sweep import EvalResult, Side
from hailoc.manifest.schema import Gate
from hailoc.records import (
    AccuracySection,
    AgreementNumbers,
    DegeneracyNumbers,
    GateSection,
    SideNumbers,
    SizeRow,
)
from hailoc.records.schema import FailureClassName


@dataclass(frozen=True)
class GateVerdict:
    """Passed, or failed with a class (`degenerate` beats `accuracy`) and the reasons."""

    passed: bool
    failure_class: FailureClassName | None
    reasons: tuple[str, ...]

    @property
    def message(self) -> str:
        """One line for records and the terminal."""
        return "; ".join(self.reasons) if self.reasons else "gate passed"


def _side(side: Side) -> SideNumbers:
    return SideNumbers(
        degeneracy=DegeneracyNumbers(**asdict(side.degeneracy)),
        verification=side.verification,
        pre_norm_ratio=side.pre_norm_ratio,
    )


def agreement_numbers(agreement: Agreement) -> AgreementNumbers:
    """The record form of an Agreement."""
    return AgreementNumbers(**asdict(agreement))


def accuracy_section(
    result: EvalResult,
    verdict: GateVerdict,
    *,
    eval_source: str,
    emulator_fp: Agreement | None = None,
) -> AccuracySection:
    """The record's `accuracy` section: every number and the verdict."""
    return AccuracySection(
        faces=result.faces,
        sizes=list(result.sizes),
        agreement=agreement_numbers(result.agreement),
        sweep=[SizeRow(**asdict(r)) for r in result.sweep],
        fp32_threshold=result.fp32_threshold,
        fp32=_side(result.fp32),
        candidate=_side(result.candidate),
        gate=GateSection(
            passed=verdict.passed,
            failure_class=verdict.failure_class,
            reasons=list(verdict.reasons),
        ),
        eval_source=eval_source,
        emulator_fp_agreement=agreement_numbers(emulator_fp) if emulator_fp else None,
    )


DEGENERATE_HINT = (
    "embeddings collapsed (constant norm / every face alike): check normalization "
    "(std 127.5 vs 128, mean/std given while the graph normalizes) and the 16-bit set"
)
ACCURACY_HINT = (
    "quantized embeddings drift from fp32: try --precision int16-final (or auto), a larger "
    "aligned calibration set with small faces, or finetune in the optimization settings"
)
FP_EMULATION = (
    "the DFC's full-precision emulation already differs from the ONNX model "
    "(agreement {:.4f}): check normalization and colour order"
)


def judge(result: EvalResult, gate: Gate, emulator_fp: Agreement | None = None) -> GateVerdict:
    """Apply the model's thresholds to an evaluation (and to the emulator's fp32, if any)."""
    degenerate: list[str] = []
    accuracy: list[str] = []
    deg = result.candidate.degeneracy
    if deg.norm_cv < gate.min_norm_cv:
        degenerate.append(
            f"embedding norm nearly constant (cv {deg.norm_cv:.4f} < {gate.min_norm_cv})"
        )
    if deg.mean_pairwise_similarity > gate.max_impostor_similarity:
        degenerate.append(
            f"different faces look alike (mean similarity {deg.mean_pairwise_similarity:.3f}"
            f" > {gate.max_impostor_similarity})"
        )
    if emulator_fp is not None and emulator_fp.mean < gate.min_mean_agreement:
        # Whatever quantization did, the emulator's fp32 must match ONNX: if not, the .alls
        # normalization or colour order is wrong.
        accuracy.append(FP_EMULATION.format(emulator_fp.mean))
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


def hint_for(failure_class: str, precision: str = "") -> str:
    """The remedy printed with a gate failure (never suggesting the precision that failed)."""
    if failure_class == "degenerate":
        return DEGENERATE_HINT
    if precision == "int8":
        return ACCURACY_HINT
    more = "--precision int16-all or auto" if precision == "int16-final" else "more 16-bit layers"
    return (
        f"quantized embeddings drift from fp32 even with 16-bit layers: try {more}, a larger "
        "aligned calibration set with small faces, or finetune in the optimization settings"
    )
