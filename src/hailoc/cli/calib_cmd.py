"""`hailoc calib`: build, inspect, verify and export calibration sets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from hailoc.calibration import CalibParams, build_set, list_sets, open_set, verify
from hailoc.calibration.export import export_array
from hailoc.cli.state import CliState, state
from hailoc.errors import HailocError

app = typer.Typer(
    help="Calibration sets: photos -> detected, aligned 112x112 faces under calibration/.",
    no_args_is_help=True,
)


class _FacesPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        faces = task.fields.get("faces", 0)
        elapsed = task.elapsed or 0.0
        rate = faces / elapsed if elapsed > 0 else 0.0
        return Text(f"{faces} faces, {rate:.1f} faces/s", style="cyan")


class _Bar:
    """Adapts the builder's progress callbacks to a rich progress bar."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress = progress
        self.task = progress.add_task(label, total=None, faces=0)

    def start(self, images: int) -> None:
        self.progress.update(self.task, total=images)

    def advance(self, faces: int) -> None:
        current = self.progress.tasks[self.task].fields.get("faces", 0)
        self.progress.update(self.task, advance=1, faces=current + faces)


def _parse_distances(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise HailocError(
            f"cannot read {text!r}", where="--distances", fix="give pixels like 112,64,40,24"
        ) from None


@app.command("build")
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
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Parallel worker processes."),
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
        users: dict[str, list[str]] = {}
        for cfg in manifest.models():
            if cfg.calib_set:
                users.setdefault(cfg.calib_set, []).append(cfg.name)
        jobs = []
        for set_name in sorted(users):
            if not (manifest.calibration_dir / set_name / "manifest.json").is_file():
                # Nothing recorded to rebuild from; say so and go on with the others.
                st.err.print(
                    f"[yellow]warning[/]: {set_name} (used by {', '.join(users[set_name])}) "
                    f"was never built; run `hailoc calib build {set_name} --images DIR`",
                    highlight=False,
                )
                continue
            recorded = open_set(manifest.calibration_dir, set_name).manifest["params"]
            recorded["distances"] = tuple(recorded["distances"])
            jobs.append((set_name, CalibParams(**recorded)))
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
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("images"),
        _FacesPerSecond(),
        TimeElapsedColumn(),
        console=st.err,
        transient=False,
    ) as progress:
        result = build_set(
            name,
            params,
            project_root=manifest.root,
            calib_root=manifest.calibration_dir,
            detector=manifest.data.defaults.detector,
            workers=workers,
            progress=_Bar(progress, name),
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


@app.command("list")
def list_cmd(ctx: typer.Context) -> None:
    """Show every set: version, faces, entries, eval faces, source folder."""
    st = state(ctx)
    manifest = st.manifest()
    table = Table(title=f"calibration sets in {manifest.calibration_dir}")
    for column in ("name", "version", "faces", "calib entries", "eval", "images", "used by"):
        table.add_column(column)
    users: dict[str, list[str]] = {}
    for cfg in manifest.models():
        if cfg.calib_set:
            users.setdefault(cfg.calib_set, []).append(cfg.name)
    for s in list_sets(manifest.calibration_dir):
        c = s.manifest["counts"]
        table.add_row(
            s.name,
            str(s.version),
            str(c["faces"]),
            str(c["calib_entries"]),
            str(c["eval_faces"]),
            s.manifest["params"]["images"],
            ", ".join(users.get(s.name, [])) or "-",
        )
    st.out.print(table)


@app.command("show")
def show(ctx: typer.Context, name: str = typer.Argument(..., help="Set name.")) -> None:
    """Counts, face-size histogram, per-source coverage and skip reasons of one set."""
    st = state(ctx)
    s = open_set(st.manifest().calibration_dir, name)
    m = s.manifest
    c = m["counts"]
    p = m["params"]
    st.out.print(f"[bold]{name}[/] v{s.version}  ({s.path})")
    st.out.print(
        f"  {c['images']} images, {c['images_with_faces']} with faces, {c['faces']} faces: "
        f"{c['calib_faces']} calibration x {len(p['distances'])} distances "
        f"{p['distances']} = {c['calib_entries']} entries, {c['eval_faces']} eval"
    )
    st.out.print(
        f"  detector {m['detector']['kind']}, seed {p['seed']}, min face {p['min_face_px']} px, "
        f"max eye error {p['max_eye_error_px']} px"
    )
    bins = [(0, 64), (64, 96), (96, 128), (128, 192), (192, 256), (256, 10**9)]
    widths = [f["width_px"] for f in m["faces"]]
    table = Table(title="face size in the photos (box width)")
    table.add_column("px")
    table.add_column("faces", justify="right")
    table.add_column("")
    top = max(1, *(sum(lo <= w < hi for w in widths) for lo, hi in bins))
    for lo, hi in bins:
        n = sum(lo <= w < hi for w in widths)
        label = f">= {lo}" if hi > 10**8 else f"{lo}-{hi}"
        table.add_row(label, str(n), "#" * round(30 * n / top))
    st.out.print(table)
    cover = Table(title="sources")
    for column in ("file", "faces", "calib", "eval"):
        cover.add_column(column)
    split = Counter((f["source"], f.get("split")) for f in m["faces"])
    for src in m["sources"]:
        cover.add_row(
            src["path"],
            str(src["faces"]),
            str(split[(src["path"], "calib")]),
            str(split[(src["path"], "eval")]),
        )
    st.out.print(cover)
    if m["rejected"]:
        st.out.print(f"skipped ({len(m['rejected'])}):")
        for r in m["rejected"]:
            st.out.print(f"  {r['path']}: {r['reason']}", highlight=False, markup=False)


@app.command("verify")
def verify_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Set name.")) -> None:
    """Check that the arrays and every source photo still match their recorded sha256."""
    st = state(ctx)
    manifest = st.manifest()
    s = open_set(manifest.calibration_dir, name)
    changes = verify(s, manifest.root)
    if not changes:
        st.out.print(
            f"[green]ok[/] {name} v{s.version}: arrays and {len(s.manifest['sources'])} "
            "sources match manifest.json"
        )
        return
    for change in changes:
        st.err.print(f"[red]{change.what}[/]: {change.path} ({change.detail})", highlight=False)
    st.err.print(f"{name}: {len(changes)} change(s); rebuild with `hailoc calib build --all`")
    raise typer.Exit(1)


@app.command("export")
def export(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Set name."),
    model: str = typer.Option(..., "--model", help="Model whose channel order to use."),
    output: Path = typer.Option(..., "--output", "-o", help="File (.npy) or folder to write."),
    per_image: bool = typer.Option(False, "--per-image", help="A folder of one .npy per face."),
    split: str = typer.Option("calib", "--split", help="calib or eval."),
    force: bool = typer.Option(
        False, "--force", help="Replace an existing file (never a folder hailoc did not write)."
    ),
) -> None:
    """Write the set as the DFC takes it: float32 NHWC, the model's channel order, 0-255."""
    st = state(ctx)
    manifest = st.manifest()
    cfg = manifest.model(model)
    if split not in ("calib", "eval"):
        raise HailocError(f"unknown split {split!r}", where="--split", fix="use calib or eval")
    n = export_array(
        open_set(manifest.calibration_dir, name),
        output,
        color=cfg.input.color,
        split=split,
        per_image=per_image,
        force=force,
    )
    st.out.print(f"[green]ok[/] {n} faces -> {output} (float32 NHWC {cfg.input.color}, 0-255)")
