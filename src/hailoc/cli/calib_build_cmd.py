"""`hailoc calib build`: photos -> detected, aligned faces -> a versioned calibration set."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from hailoc.calibration import CalibParams, build_set
from hailoc.calibration.usage import recorded_rebuild
from hailoc.cli.progress_bars import ImagesBar, images_progress
from hailoc.cli.state import CliState, state
from hailoc.errors import HailocError


def _parse_distances(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise HailocError(
            f"cannot read {text!r}", where="--distances", fix="give pixels like 112,64,40,24"
        ) from None


def build(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="Set name: written to calibration/NAME/."),
    images: Path | None = typer.Option(
        None, "--images", "-i", help="Folder of photos (jpg/png/webp/bmp, searched recursively)."
    ),
    all_sets: bool = typer.Option(
        False, "--all", help="Rebuild every set the manifest references, from their manifests."
    ),
    limit: int | None = typer.Option(
        None, "--limit", help="At most N aligned faces in calib.npy (before distance copies)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for the eval split and --limit sampling."),
    distances: str = typer.Option(
        "112,64,40,24",
        "--distances",
        help="Face sizes (px) to simulate: each face is added downscaled to k px and back.",
    ),
    eval_split: float = typer.Option(
        0.0, "--eval-split", help="Fraction of faces held out in eval.npy for the accuracy gate."
    ),
    min_face: int = typer.Option(40, "--min-face", help="Skip faces narrower than this (px)."),
    max_eye_error: float = typer.Option(
        3.0, "--max-eye-error", help="Skip faces whose aligned eyes miss the template by more (px)."
    ),
    workers: int = typer.Option(
        0,
        "--workers",
        "-w",
        min=0,
        help="Processes detecting and aligning faces, this one included "
        "(0: one per core from 32 images).",
    ),
) -> None:
    """Detect faces, align them to the ArcFace 112x112 template and write a versioned set.

    Writes calibration/NAME/calib.npy (N,112,112,3 uint8 RGB NHWC, raw 0-255: the DFC applies
    normalization), manifest.json (sources with sha256, parameters, rejects with reasons) and
    preview.png. Same inputs and seed give a byte-identical calib.npy.
    """
    st = state(ctx)
    manifest = st.manifest()
    if all_sets:
        if name or images:
            raise HailocError(
                "--all rebuilds from recorded parameters", where="--all", fix="drop NAME/--images"
            )
        rebuild = recorded_rebuild(manifest)
        for set_name, users in rebuild.never_built:
            # Nothing recorded to rebuild from; say so and go on with the others.
            st.err.print(
                f"[yellow]warning[/]: {set_name} (used by {', '.join(users)}) was never "
                f"built; run `hailoc calib build {set_name} --images DIR`",
                highlight=False,
            )
        jobs = rebuild.jobs
    else:
        if not name or images is None:
            raise HailocError(
                "needs a set name and --images",
                where="hailoc calib build",
                fix="run `hailoc calib build NAME --images DIR` (or --all)",
            )
        jobs = [
            (
                name,
                CalibParams(
                    images=str(images.resolve()),
                    seed=seed,
                    limit=limit,
                    distances=_parse_distances(distances),
                    eval_split=eval_split,
                    min_face_px=min_face,
                    max_eye_error_px=max_eye_error,
                ),
            )
        ]
    for set_name, params in jobs:
        _build_one(st, set_name, params, workers)


def _build_one(st: CliState, name: str, params: CalibParams, workers: int) -> None:
    manifest = st.manifest()
    started = time.perf_counter()
    with images_progress(st.err) as progress:
        bar = ImagesBar(progress, name)
        result = build_set(
            name,
            params,
            project_root=manifest.root,
            calib_root=manifest.calibration_dir,
            detector=manifest.data.defaults.detector,
            workers=workers,
            progress=bar,
            locks=manifest.locks_dir,
        )
    counts = result.manifest["counts"]
    st.out.print(
        f"[green]ok[/] {name} v{result.version}: {counts['faces']} faces from "
        f"{counts['images_with_faces']}/{counts['images']} images -> "
        f"{counts['calib_entries']} calibration entries"
        + (f", {counts['eval_faces']} eval faces" if counts["eval_faces"] else "")
        + f"; {counts['skipped']} skipped (see {result.path / 'manifest.json'})"
    )
    seconds = max(time.perf_counter() - started, 1e-9)
    used = bar.workers
    st.err.print(
        f"{name}: {counts['faces'] / seconds:.1f} faces/s, {counts['images'] / seconds:.1f} "
        f"images/s in {seconds:.1f} s ({used} worker{'s' if used > 1 else ''})"
    )
