"""report.md beside a build record, and the batch comparison of `hailoc report`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from hailoc.eval import plots
from hailoc.eval.sweep import EvalResult
from hailoc.owned_files import atomic_write_text
from hailoc.records import BuildRecord, RecordError, read_record
from hailoc.records.layout import all_records
from hailoc.records.schema import VerificationNumbers

log = logging.getLogger(__name__)

PLOTS = ("agreement.png", "scores.png", "pre_norm.png")
REPORT_TITLE = "# hailoc builds compared with fp32"
# Reports list builds from least to most 16-bit, then the searched plan.
PRECISION_ORDER = ("int8", "int16-final", "int16-all", "custom", "auto")


def _f(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def precision_rank(precision: str) -> int:
    """Sort key that puts int8 first and auto last."""
    return PRECISION_ORDER.index(precision) if precision in PRECISION_ORDER else 99


def sweep_table(result: EvalResult) -> list[str]:
    """The distance sweep as markdown rows, fp32 and candidate side by side."""
    lines = [
        "| face px | agreement mean | agreement worst | pre_norm fp32 | pre_norm cand "
        "| match fp32 | match cand |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result.sweep:
        lines.append(
            f"| {r.size} | {_f(r.agreement_mean)} | {_f(r.agreement_min)} | "
            f"{_f(r.pre_norm_fp32, 3)} | {_f(r.pre_norm_candidate, 3)} | "
            f"{_f(r.match_rate_fp32, 2)} | {_f(r.match_rate_candidate, 2)} |"
        )
    return lines


def _ver(numbers: VerificationNumbers | None, key: str) -> float | None:
    return None if numbers is None else float(getattr(numbers, key))


def write_build_report(out: Path, record: BuildRecord, result: EvalResult) -> None:
    """report.md and its PNG plots next to record.json."""
    label = f"{record.precision} ({record.backend})"
    plots.agreement_vs_size(result, label, out / "agreement.png")
    plots.score_histograms(result, label, out / "scores.png")
    plots.pre_norm_vs_size(result, label, out / "pre_norm.png")
    accuracy = record.accuracy
    gate = accuracy.gate if accuracy else None
    status = "PASSED" if gate and gate.passed else f"FAILED ({record.failure_class})"
    fp = accuracy.fp32 if accuracy else None
    cand = accuracy.candidate if accuracy else None
    lines = [
        f"# {record.model}: {record.precision} on {record.backend}",
        "",
        f"Gate: **{status}**" + (f": {'; '.join(gate.reasons)}" if gate and gate.reasons else ""),
        "",
        f"{result.faces} eval faces at {', '.join(str(s) for s in result.sizes)} px "
        f"({accuracy.eval_source if accuracy else ''}).",
        "",
        f"Agreement with fp32: mean {_f(result.agreement.mean)}, "
        f"worst {_f(result.agreement.min)}, p5 {_f(result.agreement.p5)}.",
        "",
        "## Distance sweep",
        "",
        *sweep_table(result),
        "",
        "## Verification (genuine: same face close vs far; impostor: different faces)",
        "",
        "| | fp32 | candidate |",
        "|---|---:|---:|",
    ]
    for key in (
        "genuine_mean",
        "impostor_mean",
        "threshold",
        "accuracy",
        "tar_at_far_1e2",
        "tar_at_far_1e3",
        "roc_auc",
    ):
        fv = _ver(fp.verification if fp else None, key)
        cv = _ver(cand.verification if cand else None, key)
        lines.append(f"| {key} | {_f(fv)} | {_f(cv)} |")
    lines += ["", "## Degeneracy", "", "| | fp32 | candidate |", "|---|---:|---:|"]
    for key in ("norm_mean", "norm_cv", "mean_pairwise_similarity", "effective_rank"):
        fd = getattr(result.fp32.degeneracy, key)
        cd = getattr(result.candidate.degeneracy, key)
        lines.append(f"| {key} | {_f(fd)} | {_f(cd)} |")
    lines += ["", *[f"![{name}]({name})" for name in PLOTS]]
    auto = record.plan.auto if record.plan else None
    if auto is not None:
        lines += [
            "",
            "## --precision auto",
            "",
            f"{auto.message}. Layers: {', '.join(auto.layers)}.",
            "",
            "![agreement vs 16-bit layers](../../auto_curve.png)",
        ]
    lines += _deploy_lines(out / "deploy.json")
    lines.append("")
    atomic_write_text(out / "report.md", "\n".join(lines))


def _deploy_lines(path: Path) -> list[str]:
    """The deploy.json summary an application developer reads first."""
    try:
        deploy = json.loads(path.read_text(encoding="utf-8"))
        spec, out = deploy["input"], deploy["output"]
        threshold, floor = deploy["threshold"], deploy["pre_norm_floor"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    inside = (
        "normalization is inside: do NOT normalize"
        if spec["normalization_inside"]
        else f"normalize first: {spec.get('application_normalizes')}"
    )
    resolved = "" if threshold["resolved"] else " (not resolved: too few impostor pairs)"
    return [
        "",
        "## Deployment ([deploy.json](deploy.json))",
        "",
        f"- input `{spec['name']}`: {spec['dtype']} {spec['layout']} {spec['shape']} "
        f"{spec['color']}; {inside}",
        f"- output `{out['name']}` ({out['dimension']}-d): request {out['request_format']}; "
        f"{out['postprocess']}",
        f"- threshold at FAR {threshold['far']:g}: {threshold['value']:.4f}{resolved} "
        f"(fp32: {_f(threshold['fp32_value'])})",
        f"- pre_norm floor: {_f(floor['value'])}",
    ]


@dataclass(frozen=True)
class Collected:
    """The readable records under hef/ and the files that were not records."""

    records: list[BuildRecord]
    unreadable: list[RecordError]


def collect_records(hef_dir: Path) -> Collected:
    """Every record.json under hef/<model>/<target>/<precision>/, in report order."""
    records: list[BuildRecord] = []
    unreadable: list[RecordError] = []
    for path in all_records(hef_dir):
        try:
            records.append(read_record(path))
        except RecordError as exc:
            unreadable.append(exc)
    records.sort(key=lambda r: (r.model, r.backend, r.hw_arch, precision_rank(r.precision)))
    return Collected(records, unreadable)


def write_batch_report(records: list[BuildRecord], out: Path) -> list[BuildRecord]:
    """report.md + comparison.png comparing the evaluated builds among `records`."""
    rows = [r for r in records if r.accuracy is not None]
    out.mkdir(parents=True, exist_ok=True)
    sizes = sorted({s for r in rows if r.accuracy for s in r.accuracy.sizes}, reverse=True)
    header = ["model", "precision", "backend", "hw_arch", "status", "mean", "worst"] + [
        f"match@{s}" for s in sizes[1:]
    ]
    lines = [
        REPORT_TITLE,
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for r in rows:
        assert r.accuracy is not None
        cells = [
            r.model,
            r.precision,
            r.backend,
            r.hw_arch,
            r.status + (f" ({r.failure_class})" if r.failure_class else ""),
            _f(r.accuracy.agreement.mean),
            _f(r.accuracy.agreement.min),
        ]
        for s in sizes[1:]:
            row = r.accuracy.at_size(s)
            cells.append(_f(row.match_rate_candidate if row else None, 2))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "![agreement](comparison.png)", ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
    if rows:
        plots.batch_comparison(rows, out / "comparison.png")
    return rows


def is_hailoc_report(path: Path) -> bool:
    """True when `path` is a report hailoc wrote (recognised by its first line)."""
    try:
        with path.open(encoding="utf-8") as fh:
            return fh.readline().startswith(REPORT_TITLE)
    except (OSError, UnicodeDecodeError):
        return False
