"""report.md beside a build record, and the batch comparison of `hailoc report`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hailoc.eval import plots
from hailoc.eval.sweep import EvalResult
from hailoc.fsutil import atomic_write_text
from hailoc.records import BuildRecord

PLOTS = ("agreement.png", "scores.png", "pre_norm.png")


def _f(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


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


def write_build_report(out: Path, record: BuildRecord, result: EvalResult) -> None:
    """report.md and its PNG plots next to record.json."""
    label = f"{record.precision} ({record.backend})"
    plots.agreement_vs_size(result, label, out / "agreement.png")
    plots.score_histograms(result, label, out / "scores.png")
    plots.pre_norm_vs_size(result, label, out / "pre_norm.png")
    gate = (record.accuracy or {}).get("gate", {})
    status = "PASSED" if gate.get("passed") else f"FAILED ({record.failure_class})"
    fp, cand = result.fp32, result.candidate
    lines = [
        f"# {record.model}: {record.precision} on {record.backend}",
        "",
        f"Gate: **{status}**"
        + (f": {'; '.join(gate.get('reasons', []))}" if gate.get("reasons") else ""),
        "",
        f"{result.faces} eval faces at {', '.join(str(s) for s in result.sizes)} px "
        f"({(record.accuracy or {}).get('eval_source', '')}).",
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
    fv, cv = fp.get("verification") or {}, cand.get("verification") or {}
    for key in (
        "genuine_mean",
        "impostor_mean",
        "threshold",
        "accuracy",
        "tar_at_far_1e2",
        "tar_at_far_1e3",
        "roc_auc",
    ):
        lines.append(f"| {key} | {_f(fv.get(key))} | {_f(cv.get(key))} |")
    lines += ["", "## Degeneracy", "", "| | fp32 | candidate |", "|---|---:|---:|"]
    for key in ("norm_mean", "norm_cv", "mean_pairwise_similarity", "effective_rank"):
        lines.append(f"| {key} | {_f(fp['degeneracy'][key])} | {_f(cand['degeneracy'][key])} |")
    lines += ["", *[f"![{name}]({name})" for name in PLOTS]]
    auto = (record.plan or {}).get("auto")
    if auto:
        lines += [
            "",
            "## --precision auto",
            "",
            f"{auto.get('message', '')}. Layers: {', '.join(auto.get('layers', []))}.",
            "",
            "![agreement vs 16-bit layers](../../auto_curve.png)",
        ]
    lines.append("")
    atomic_write_text(out / "report.md", "\n".join(lines))


def collect_records(hef_dir: Path) -> list[dict[str, Any]]:
    """Every record.json under hef/, newest layout first."""
    rows = []
    for path in sorted(hef_dir.glob("*/*/*/record.json")):
        try:
            rows.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return rows


def comparison_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per build that has accuracy numbers."""
    rows = []
    for r in records:
        acc = r.get("accuracy")
        if not acc:
            continue
        rows.append(
            {
                "model": r["model"],
                "backend": r["backend"],
                "hw_arch": r["hw_arch"],
                "precision": r["precision"],
                "status": r["status"],
                "class": r.get("failure_class") or "",
                "mean": acc["agreement"]["mean"],
                "worst": acc["agreement"]["min"],
                "sweep": {str(s["size"]): s for s in acc["sweep"]},
            }
        )
    return rows


def write_batch_report(records: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """report.md + comparison.png comparing the evaluated builds among `records`."""
    rows = comparison_rows(records)
    out.mkdir(parents=True, exist_ok=True)
    sizes = sorted({int(s) for r in rows for s in r["sweep"]}, reverse=True)
    header = ["model", "precision", "backend", "hw_arch", "status", "mean", "worst"] + [
        f"match@{s}" for s in sizes if s != max(sizes, default=0)
    ]
    lines = [
        "# hailoc builds compared with fp32",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for r in rows:
        cells = [
            r["model"],
            r["precision"],
            r["backend"],
            r["hw_arch"],
            r["status"] + (f" ({r['class']})" if r["class"] else ""),
            _f(r["mean"]),
            _f(r["worst"]),
        ]
        for s in sizes[1:]:
            row = r["sweep"].get(str(s), {})
            cells.append(_f(row.get("match_rate_candidate"), 2))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "![agreement](comparison.png)", ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
    if rows:
        plots.batch_comparison(rows, out / "comparison.png")
    return rows
