"""`hailoc calib`: build, inspect, verify and export calibration sets."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from hailoc.calibration import list_sets, open_set, verify
from hailoc.calibration.export import export_array
from hailoc.calibration.usage import (
    models_by_set,
    size_histogram,
    source_coverage,
)
from hailoc.cli.calib_build_cmd import build
from hailoc.cli.state import state
from hailoc.errors import HailocError

app = typer.Typer(
    help="Calibration sets: photos -> detected, aligned 112x112 faces under calibration/.",
    no_args_is_help=True,
)
app.command("build")(build)


@app.command("list")
def list_cmd(ctx: typer.Context) -> None:
    """Show every set: version, faces, entries, eval faces, source folder."""
    st = state(ctx)
    manifest = st.manifest()
    table = Table(title=f"calibration sets in {manifest.calibration_dir}")
    for column in ("name", "version", "faces", "calib entries", "eval", "images", "used by"):
        table.add_column(column)
    users = models_by_set(manifest)
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
    table = Table(title="face size in the photos (box width)")
    table.add_column("px")
    table.add_column("faces", justify="right")
    table.add_column("")
    histogram = size_histogram(m)
    top = max(1, *(n for _, n in histogram))
    for label, n in histogram:
        table.add_row(label, str(n), "#" * round(30 * n / top))
    st.out.print(table)
    cover = Table(title="sources")
    for column in ("file", "faces", "calib", "eval"):
        cover.add_column(column)
    for row in source_coverage(m):
        cover.add_row(*(str(v) for v in row))
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
