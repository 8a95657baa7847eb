"""`hailoc verify`: the HEF on a Hailo device vs the DFC's emulator vs fp32, per face size."""

from __future__ import annotations

import json

import numpy as np
import typer
from rich.table import Table

from hailoc.cache import StageCache
from hailoc.calibration.face_size import batch_at_distance
from hailoc.choices import check_choice
from hailoc.cli.alls_cmd import PRECISION_HELP
from hailoc.cli.state import state
from hailoc.errors import HailocError
from hailoc.eval.metrics import cosine_rows
from hailoc.hailort import embed_hef, require_hailort
from hailoc.inputs import gather
from hailoc.manifest.schema import HW_ARCHS, PRECISIONS
from hailoc.owned_files import atomic_write_text
from hailoc.records import read_record
from hailoc.reference import References


def verify(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name from models.yaml."),
    precision: str = typer.Option(..., "--precision", "-p", help=PRECISION_HELP),
    hw_arch: str | None = typer.Option(None, "--hw-arch", help="Target (default: the model's)."),
) -> None:
    """Run NAME's HEF on a Hailo device and compare it with the emulator and fp32.

    Needs HailoRT's Python API (hailo_platform) and a device on this host; without them it
    says so in one line and exits 3. Writes verify.json beside the build's record.
    """
    st = state(ctx)
    check_choice("--precision", precision, PRECISIONS)
    require_hailort()  # before anything else: without HailoRT nothing here can run
    manifest = st.manifest()
    cfg = manifest.model(name)
    arch = check_choice("--hw-arch", hw_arch, HW_ARCHS) if hw_arch else cfg.hw_arch
    folder = manifest.hef_dir / name / arch / precision
    record_path = folder / "record.json"
    if not record_path.is_file():
        raise HailocError(
            f"no build at {folder}",
            where=name,
            fix=f"run `hailoc build {name} -b hailo -p {precision}` first",
        )
    record = read_record(record_path)
    artifact = record.artifacts.get("hef") or record.artifacts.get("standin_output")
    if record.backend != "hailo" or record.status != "ok" or artifact is None:
        raise HailocError(
            f"{folder} holds no finished Hailo build ({record.backend}, {record.status})",
            where=name,
            fix=f"run `hailoc build {name} -b hailo -p {precision}`",
        )
    inputs = gather(manifest, name)
    sizes = inputs.config.gate.face_sizes
    faces = inputs.eval_faces
    probes = np.concatenate([batch_at_distance(faces, s) for s in sizes])
    if cfg.input.color == "BGR":
        probes = probes[..., ::-1]
    device = embed_hef(folder / artifact.path.rsplit("/", 1)[-1], probes)
    reference = References(manifest.cache_dir).get(inputs, sizes)
    optimize = next(s for s in reversed(record.stages) if s.name == "optimize")
    entry = StageCache(manifest.cache_dir).lookup("optimize", optimize.cache_key or "")
    emulated = np.load(entry / "emulate_q.npy") if entry is not None else None
    table = Table(title=f"{name} {precision}: HEF on the device vs emulator vs fp32")
    for column in ("face px", "HEF vs fp32", "HEF vs emulator", "emulator vs fp32"):
        table.add_column(column, justify="right")
    rows = []
    n = len(faces)
    for i, size in enumerate(sizes):
        hef = device[i * n : (i + 1) * n]
        emu = emulated[i * n : (i + 1) * n] if emulated is not None else None
        row = {
            "size": size,
            "hef_vs_fp32": float(cosine_rows(reference[size], hef).mean()),
            "hef_vs_emulator": float(cosine_rows(emu, hef).mean()) if emu is not None else None,
            "emulator_vs_fp32": (
                float(cosine_rows(reference[size], emu).mean()) if emu is not None else None
            ),
        }
        rows.append(row)
        table.add_row(
            str(size),
            *(f"{row[k]:.4f}" if row[k] is not None else "-" for k in list(row)[1:]),
        )
    st.out.print(table)
    source = "stand-in hailo_platform (NOT a device)" if "standin" in artifact.path else "device"
    atomic_write_text(
        folder / "verify.json",
        json.dumps(
            {"model": name, "precision": precision, "ran_on": source, "rows": rows}, indent=1
        )
        + "\n",
    )
    st.out.print(f"saved {folder / 'verify.json'}")
