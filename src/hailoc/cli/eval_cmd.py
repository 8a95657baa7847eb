"""`hailoc eval`: face verification on your own faces, fp32 vs a built candidate."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from hailoc.choices import BACKENDS, check_choice
from hailoc.cli.option_checks import face_sizes_option
from hailoc.cli.state import state
from hailoc.errors import HailocError
from hailoc.eval import drivers
from hailoc.eval.drivers import IdentitiesOutcome
from hailoc.eval.pairs import PairsResult
from hailoc.manifest.schema import PRECISIONS
from hailoc.pipeline.evaluation import build_side
from hailoc.records.schema import IntervalNumbers

PAIRS_ROWS = (
    "accuracy",
    "threshold",
    "tar_at_far_1e2",
    "tar_at_far_1e3",
    "roc_auc",
    "genuine_mean",
    "impostor_mean",
)


def evaluate(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name from models.yaml."),
    precision: str = typer.Option(..., "--precision", "-p", help="Which built precision."),
    pairs: Path | None = typer.Option(None, "--pairs", help="LFW-style pairs.txt."),
    images: Path | None = typer.Option(None, "--images", help="Image root the pairs refer to."),
    identities: Path | None = typer.Option(
        None,
        "--identities",
        help="A folder per person (LFW, CFP, AgeDB exports, enrolment photos): all genuine "
        "pairs and a seeded impostor sample, probes simulated at --face-sizes.",
    ),
    face_sizes: str = typer.Option(
        "112,64,40,24,16",
        "--face-sizes",
        help="--identities: probe face sizes in px (the gallery face stays at 112).",
    ),
    backend: str = typer.Option(
        "onnxruntime",
        "--backend",
        "-b",
        help="Which build: onnxruntime (its QDQ model) or hailo (--identities only: the "
        "DFC's SDK_QUANTIZED emulation of its optimized HAR, in the suite container).",
    ),
    suite_image: str | None = typer.Option(
        None, "--suite-image", help="-b hailo: the suite image (default: the manifest's)."
    ),
) -> None:
    """Verification for fp32 and the ONNX Runtime build of PRECISION, on your own faces.

    --pairs FILE --images DIR: LFW-style pairs at full size. --identities DIR: labelled people,
    probes at each of --face-sizes, TAR at FAR 1e-2 / 1e-3 (at the build's own threshold and
    at fp32's), ROC AUC and pre_norm per size, with bootstrap 95% intervals and two plots.
    Images are detected and aligned like calibration faces (largest face per image), once:
    aligned faces are cached by content. Numbers go beside the build's record and into it.
    """
    st = state(ctx)
    if (identities is None) == (pairs is None and images is None) or (
        identities is None and (pairs is None or images is None)
    ):
        raise HailocError(
            "give either --pairs FILE --images DIR, or --identities DIR",
            where="hailoc eval",
            fix="see `hailoc eval --help`",
        )
    sizes = face_sizes_option(face_sizes) if identities is not None else ()
    check_choice("--backend", backend, BACKENDS)
    check_choice("--precision", precision, PRECISIONS)
    if backend == "hailo" and identities is None:
        raise HailocError(
            "-b hailo evaluates --identities only",
            where="--pairs",
            fix="use --identities DIR, or -b onnxruntime for --pairs",
        )
    manifest = st.manifest()
    cfg = manifest.model(name)
    side = build_side(manifest, cfg, precision, backend, suite_image, st.err.status)
    if identities is not None:
        outcome = drivers.evaluate_identities(
            manifest, cfg, precision, side, identities, sizes, st.err.status
        )
        _print_identities(st.out, st.err, cfg.name, precision, outcome, side.folder)
        return
    assert pairs is not None and images is not None
    result = drivers.evaluate_pairs(manifest, cfg, side, pairs, images, st.err.status)
    _print_pairs(st.out, cfg.name, precision, result)
    if result.skipped_images:
        st.err.print(
            f"{len(result.skipped_images)} images skipped (see {side.folder / 'pairs.json'})"
        )
    st.out.print(f"pairs: {side.folder / 'pairs.json'}")


def _print_pairs(out: Console, name: str, precision: str, result: PairsResult) -> None:
    table = Table(title=f"{name} {precision}: {result.used} of {result.pairs} pairs")
    for column in ("", "fp32", precision):
        table.add_column(column, justify="right")
    for key in PAIRS_ROWS:
        fp32, cand = getattr(result.fp32, key), getattr(result.candidate, key)
        table.add_row(key, f"{fp32:.4f}", f"{cand:.4f}")
    table.add_row("accuracy at fp32's threshold", "", f"{result.candidate_at_fp32_threshold:.4f}")
    out.print(table)


def _cell(n: IntervalNumbers | None) -> str:
    return f"{n.value:.3f} [{n.low:.3f}, {n.high:.3f}]" if n is not None else "-"


def _print_identities(
    out: Console, err: Console, name: str, precision: str, outcome: IdentitiesOutcome, folder: Path
) -> None:
    section = outcome.section
    table = Table(
        title=f"{name} {precision}: {section.people} people, {section.faces} faces, "
        f"{section.genuine_pairs} genuine / {section.impostor_pairs} impostor pairs"
    )
    for column in ("probe px", "fp32 TAR@1e-3", precision, "at fp32 thr", "AUC fp32", "AUC"):
        table.add_column(column, justify="right")
    for row in section.rows:
        table.add_row(
            str(row.size),
            _cell(row.fp32.tar_at_far_1e3),
            _cell(row.build.tar_at_far_1e3),
            _cell(row.build.tar_at_far_1e3_fp32_threshold),
            f"{row.fp32.roc_auc.value:.4f}",
            f"{row.build.roc_auc.value:.4f}",
        )
    out.print(table)
    out.print(section.impostor_note, highlight=False)
    if section.skipped_images:
        err.print(f"{len(section.skipped_images)} images skipped (see identities.json)")
    out.print(
        f"identities: {folder / 'identities.json'}, tar_vs_size.png, pre_norm_cliff.png "
        f"({section.reused_faces} aligned faces reused from the cache)"
    )
