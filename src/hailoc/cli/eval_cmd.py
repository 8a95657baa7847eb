"""`hailoc eval`: face verification on your own LFW-style pairs, fp32 vs a built candidate."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import typer
from rich.table import Table

from hailoc.calibration.detect import make_detector
from hailoc.cli.state import state
from hailoc.errors import HailocError
from hailoc.eval.pairs import align_images, read_pairs, score_pairs
from hailoc.fsutil import add_owned_file
from hailoc.inference.session import Embedder, open_session
from hailoc.manifest.schema import PRECISIONS
from hailoc.records import PairsSection, read_record, write_record
from hailoc.targets import BuildTarget, check_choice, output_dir


def evaluate_pairs(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name from models.yaml."),
    precision: str = typer.Option(..., "--precision", "-p", help="Which built precision."),
    pairs: Path = typer.Option(..., "--pairs", help="LFW-style pairs.txt."),
    images: Path = typer.Option(..., "--images", help="Image root the pairs refer to."),
) -> None:
    """Verification accuracy on real pairs for fp32 and the ONNX Runtime build of PRECISION.

    Images are detected and aligned like calibration faces (largest face per image). The
    numbers go to pairs.json beside the build's record and into record.json's accuracy.
    """
    st = state(ctx)
    manifest = st.manifest()
    cfg = manifest.model(name)
    check_choice("--precision", precision, PRECISIONS)
    target = BuildTarget(cfg.name, cfg.hw_arch, precision, "onnxruntime")
    folder = output_dir(manifest.hef_dir, target)
    qdq = folder / f"{cfg.name}.qdq.onnx"
    if not qdq.is_file():
        raise HailocError(
            f"no ONNX Runtime build of {cfg.name} {precision} at {qdq}",
            where="--precision",
            fix=f"run `hailoc build {cfg.name} -p {precision} -b onnxruntime` first",
        )
    if not images.is_dir():
        raise HailocError(f"{images} is not a folder", where="--images", fix="give the image root")
    wanted = read_pairs(pairs)
    names = sorted({n for p in wanted for n in (p.a, p.b)})
    detector = make_detector(manifest.data.defaults.detector, manifest.root)
    with st.err.status(f"aligning {len(names)} images"):
        faces, skipped = align_images(images, names, detector)
    result = score_pairs(
        wanted,
        faces,
        Embedder(open_session(cfg.onnx), cfg, cfg.embedding_output),
        Embedder(open_session(qdq), cfg, cfg.embedding_output),
    )
    if result is None:
        raise HailocError(
            f"too few usable pairs ({len(skipped)} of {len(names)} images had no usable face)",
            where=str(pairs),
            fix="pairs need both same-person and different-person examples with visible faces",
        )
    result = replace(result, skipped_images=skipped)
    table = Table(title=f"{cfg.name} {precision}: {result.used} of {result.pairs} pairs")
    for column in ("", "fp32", precision):
        table.add_column(column, justify="right")
    for key in (
        "accuracy",
        "threshold",
        "tar_at_far_1e2",
        "tar_at_far_1e3",
        "roc_auc",
        "genuine_mean",
        "impostor_mean",
    ):
        table.add_row(
            key, f"{getattr(result.fp32, key):.4f}", f"{getattr(result.candidate, key):.4f}"
        )
    table.add_row("accuracy at fp32's threshold", "", f"{result.candidate_at_fp32_threshold:.4f}")
    st.out.print(table)
    section = PairsSection.model_validate(
        asdict(result) | {"pairs_file": str(pairs), "images": str(images)}
    )
    add_owned_file(folder, "pairs.json", (section.model_dump_json(indent=1) + "\n").encode())
    record_path = folder / "record.json"
    if record_path.is_file():
        record = read_record(record_path)
        if record.accuracy is not None:
            record.accuracy.pairs = section
            write_record(record_path, record)
    if skipped:
        st.err.print(f"{len(skipped)} images skipped (see {folder / 'pairs.json'})")
    st.out.print(f"pairs: {folder / 'pairs.json'}")
