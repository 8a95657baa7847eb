"""`hailoc verify`: the HEF on a Hailo device vs the DFC's emulator vs fp32, per face size."""

from __future__ import annotations

import typer
from rich.table import Table

from hailoc.choices import check_choice
from hailoc.cli.alls_cmd import PRECISION_HELP
from hailoc.cli.state import state
from hailoc.deploy.hailort import require_hailort
from hailoc.deploy.verify import verify_build
from hailoc.manifest.schema import HW_ARCHS, PRECISIONS


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
    path, report = verify_build(manifest, name, arch, precision)
    table = Table(title=f"{name} {precision}: HEF on the device vs emulator vs fp32")
    for column in ("face px", "HEF vs fp32", "HEF vs emulator", "emulator vs fp32"):
        table.add_column(column, justify="right")
    for row in report.rows:
        values = (row.hef_vs_fp32, row.hef_vs_emulator, row.emulator_vs_fp32)
        table.add_row(str(row.size), *(f"{v:.4f}" if v is not None else "-" for v in values))
    st.out.print(table)
    st.out.print(f"saved {path}")
