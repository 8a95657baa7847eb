"""`hailoc verify`: the HEF on a Hailo device vs the DFC's emulator vs fp32, per face size,
written to verify.json beside the build's record."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from hailoc.cache import StageCache
from hailoc.deploy.hailort import embed_hef
from hailoc.errors import HailocError
from hailoc.eval.metrics import cosine_rows
from hailoc.faces import split_sizes, stack_sizes
from hailoc.inputs import gather
from hailoc.manifest import LoadedManifest
from hailoc.owned_files import add_owned_file
from hailoc.records import read_record
from hailoc.records.layout import optimize_key, output_dir, record_path
from hailoc.reference import References
from hailoc.targets import BuildTarget


class VerifyRow(BaseModel):
    """Mean cosine agreement at one face size (None: the emulator's output is not cached)."""

    model_config = ConfigDict(extra="forbid")

    size: int
    hef_vs_fp32: float
    hef_vs_emulator: float | None
    emulator_vs_fp32: float | None


class VerifyReport(BaseModel):
    """verify.json."""

    model_config = ConfigDict(extra="forbid")

    model: str
    precision: str
    ran_on: Literal["device", "stand-in hailo_platform (NOT a device)"]
    rows: list[VerifyRow]


def verify_build(
    manifest: LoadedManifest, name: str, hw_arch: str, precision: str
) -> tuple[Path, VerifyReport]:
    """Run the build's HEF on the device; verify.json (listed in the folder's marker) and
    what it holds."""
    folder = output_dir(manifest.hef_dir, BuildTarget(name, hw_arch, precision, "hailo"))
    if not record_path(folder).is_file():
        raise HailocError(
            f"no build at {folder}",
            where=name,
            fix=f"run `hailoc build {name} -b hailo -p {precision}` first",
        )
    record = read_record(record_path(folder))
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
    probes = stack_sizes(faces, sizes)
    if inputs.config.input.color == "BGR":
        probes = probes[..., ::-1]
    device = embed_hef(folder / artifact.path.rsplit("/", 1)[-1], probes)
    reference = References(manifest.cache_dir).get(inputs, sizes)
    key = optimize_key(record)
    entry = StageCache(manifest.cache_dir).lookup("optimize", key) if key else None
    emulated = np.load(entry / "emulate_q.npy") if entry is not None else None
    on_device = split_sizes(device, sizes)
    by_emulator = split_sizes(emulated, sizes) if emulated is not None else None
    rows = []
    for size in sizes:
        hef = on_device[size]
        emu = by_emulator[size] if by_emulator is not None else None
        rows.append(
            VerifyRow(
                size=size,
                hef_vs_fp32=float(cosine_rows(reference[size], hef).mean()),
                hef_vs_emulator=float(cosine_rows(emu, hef).mean()) if emu is not None else None,
                emulator_vs_fp32=(
                    float(cosine_rows(reference[size], emu).mean()) if emu is not None else None
                ),
            )
        )
    standin = "standin" in artifact.path
    report = VerifyReport(
        model=name,
        precision=precision,
        ran_on="stand-in hailo_platform (NOT a device)" if standin else "device",
        rows=rows,
    )
    add_owned_file(folder, "verify.json", (report.model_dump_json(indent=1) + "\n").encode())
    return folder / "verify.json", report
