"""PNG plots of an evaluation: fp32 and the candidate side by side (matplotlib, Agg)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hailoc.eval.sweep import EvalResult
from hailoc.owned_files import atomic_write_bytes
from hailoc.records import BuildRecord
from hailoc.records.schema import IdentitySizeRow

FP32 = "#1f77b4"
CAND = "#d62728"


def _figure(cols: int = 1) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, cols, figsize=(5.5 * cols, 4), dpi=100, squeeze=False)


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def agreement_vs_size(result: EvalResult, label: str, path: Path) -> None:
    """Agreement with fp32 (mean and worst face) and genuine match rate per face size."""
    fig, axes = _figure(2)
    sizes = [r.size for r in result.sweep]
    ax = axes[0][0]
    ax.plot(sizes, [1.0] * len(sizes), "--", color=FP32, label="fp32 (reference)")
    ax.plot(
        sizes, [r.agreement_mean for r in result.sweep], "o-", color=CAND, label=f"{label} mean"
    )
    ax.plot(
        sizes, [r.agreement_min for r in result.sweep], "x:", color=CAND, label=f"{label} worst"
    )
    ax.set(xlabel="face size (px)", ylabel="cosine to fp32", title="agreement with fp32")
    ax.invert_xaxis()
    ax.legend()
    ax = axes[0][1]
    rows = [r for r in result.sweep if r.match_rate_fp32 is not None]
    ax.plot(
        [r.size for r in rows], [r.match_rate_fp32 for r in rows], "o-", color=FP32, label="fp32"
    )
    ax.plot(
        [r.size for r in rows],
        [r.match_rate_candidate for r in rows],
        "s-",
        color=CAND,
        label=label,
    )
    ax.set(
        xlabel="face size (px)",
        ylabel="genuine match rate",
        ylim=(-0.05, 1.05),
        title="match rate at fp32's threshold",
    )
    ax.invert_xaxis()
    ax.legend()
    _save(fig, path)


def score_histograms(result: EvalResult, label: str, path: Path) -> None:
    """Genuine and impostor similarity histograms, fp32 left, candidate right."""
    fig, axes = _figure(2)
    for ax, (name, color) in zip(axes[0], (("fp32", FP32), ("candidate", CAND)), strict=True):
        pairs = result.pairs[name]
        bins = [i / 25 - 1 for i in range(51)]
        ax.hist(pairs.impostor, bins=bins, alpha=0.6, color="gray", label="impostor")
        ax.hist(pairs.genuine, bins=bins, alpha=0.7, color=color, label="genuine")
        if result.fp32_threshold is not None:
            ax.axvline(result.fp32_threshold, color="black", linestyle="--", label="fp32 threshold")
        ax.set(
            xlabel="cosine similarity", ylabel="pairs", title="fp32" if name == "fp32" else label
        )
        ax.legend()
    _save(fig, path)


def pre_norm_vs_size(result: EvalResult, label: str, path: Path) -> None:
    """Mean embedding norm before normalisation per face size: weak signal shows as a drop."""
    fig, axes = _figure(1)
    ax = axes[0][0]
    sizes = [r.size for r in result.sweep]
    ax.plot(sizes, [r.pre_norm_fp32 for r in result.sweep], "o-", color=FP32, label="fp32")
    ax.plot(sizes, [r.pre_norm_candidate for r in result.sweep], "s-", color=CAND, label=label)
    ax.set(xlabel="face size (px)", ylabel="mean pre_norm", title="pre_norm vs face size")
    ax.invert_xaxis()
    ax.legend()
    _save(fig, path)


def batch_comparison(rows: list[BuildRecord], path: Path) -> None:
    """Mean and worst agreement per build (model x precision) as grouped bars."""
    fig, axes = _figure(1)
    ax = axes[0][0]
    labels = [f"{r.model}\n{r.precision}\n({r.backend})" for r in rows]
    xs = list(range(len(rows)))
    means = [r.accuracy.agreement.mean if r.accuracy else 0.0 for r in rows]
    worst = [r.accuracy.agreement.min if r.accuracy else 0.0 for r in rows]
    ax.bar([x - 0.2 for x in xs], means, 0.4, color=FP32, label="mean")
    ax.bar([x + 0.2 for x in xs], worst, 0.4, color=CAND, label="worst face")
    ax.set_xticks(xs, labels, fontsize=7)
    low = min([*worst, 0.9])
    ax.set(
        ylabel="cosine to fp32",
        ylim=(max(-1.0, low - 0.05), 1.0),
        title="agreement with fp32 per build",
    )
    ax.legend()
    _save(fig, path)


@dataclass(frozen=True)
class AutoPanel:
    """One source's auto search curve (ort: ONNX Runtime emulation; dfc: the DFC's)."""

    source: str
    curve: list[dict[str, Any]]
    target: float
    label: str


SOURCE_TITLES = {"ort": "ONNX Runtime emulation", "dfc": "Hailo DFC (SDK_QUANTIZED)"}


def auto_curves(panels: list[AutoPanel], path: Path) -> None:
    """Every plan each auto search measured: agreement (with its interval) vs 16-bit layers,
    one panel per source, side by side."""
    fig, axes = _figure(len(panels))
    for ax, panel in zip(axes[0], panels, strict=False):
        # Plans measured on part of the faces (stopped, or glanced at) give upper bounds:
        # drawn hollow, apart from the plans measured on every face.
        for partial in (False, True):
            points = [p for p in panel.curve if (p.get("stopped_at") is not None) == partial]
            if not points:
                continue
            values = [p["value"] for p in points]
            ax.errorbar(
                [p["layers"] for p in points],
                values,
                yerr=[
                    [v - p["interval"][0] for v, p in zip(values, points, strict=True)],
                    [p["interval"][1] - v for v, p in zip(values, points, strict=True)],
                ],
                fmt="o",
                color=CAND,
                mfc="none" if partial else CAND,
                capsize=3,
                label=f"{panel.label} (interval)"
                if not partial
                else "part of the faces (upper bounds)",
            )
        ax.axhline(panel.target, color="black", linestyle=":", label=f"target {panel.target}")
        ax.set(
            xlabel="16-bit layers",
            ylabel="cosine to fp32",
            title=f"auto: {SOURCE_TITLES.get(panel.source, panel.source)}",
        )
        ax.legend()
    _save(fig, path)


def tar_vs_size(rows: list[IdentitySizeRow], label: str, path: Path) -> None:
    """TAR at FAR 1e-3 per probe size, fp32 and the build, with bootstrap intervals."""
    fig, axes = _figure(1)
    ax = axes[0][0]
    sizes = [r.size for r in rows]
    for side, colour, name in (("fp32", FP32, "fp32"), ("build", CAND, label)):
        points = [getattr(r, side).tar_at_far_1e3 for r in rows]
        values = [p.value for p in points]
        ax.errorbar(
            sizes,
            values,
            yerr=[
                [v - p.low for v, p in zip(values, points, strict=True)],
                [p.high - v for v, p in zip(values, points, strict=True)],
            ],
            fmt="o-",
            color=colour,
            capsize=3,
            label=name,
        )
    ax.invert_xaxis()
    ax.set(
        xlabel="probe face size (px)", ylabel="TAR at FAR 1e-3", title="verification at distance"
    )
    ax.legend()
    _save(fig, path)


def match_vs_pre_norm(cliff: dict[str, list[tuple[float, bool]]], path: Path) -> None:
    """Genuine match rate at FAR 1e-3 against the probe's pre_norm (the far-face cliff)."""
    from hailoc.eval.metrics import match_rate_by_pre_norm

    fig, axes = _figure(1)
    ax = axes[0][0]
    for (side, points), colour in zip(cliff.items(), (FP32, CAND), strict=False):
        if not points:
            continue
        found = [
            part
            for part in match_rate_by_pre_norm([p[0] for p in points], [p[1] for p in points], 10)
            if part.count
        ]
        ax.plot(
            [p.mean_norm for p in found],
            [p.match_rate for p in found],
            "o-",
            color=colour,
            label=side,
        )
    ax.axhline(0.5, color="black", linestyle=":", label="50%")
    ax.set(xlabel="probe pre_norm", ylabel="genuine match rate", title="match rate vs pre_norm")
    ax.legend()
    _save(fig, path)
