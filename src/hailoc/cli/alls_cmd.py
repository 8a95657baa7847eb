"""`hailoc alls`: render the DFC model script for a model and precision."""

from __future__ import annotations

from pathlib import Path

import typer

from hailoc.choices import check_choice
from hailoc.cli.state import state
from hailoc.manifest.schema import PRECISIONS
from hailoc.owned_files import atomic_write_text, check_replaceable
from hailoc.pipeline.target_plan import alls_for

app = typer.Typer(help="Render .alls model scripts from alls_templates/.", no_args_is_help=True)

PRECISION_HELP = (
    "int8 | int16-final | int16-all | custom | auto (default: the model's precision); "
    "auto uses the plan saved by `hailoc plan NAME -p auto`."
)


@app.command("render")
def render(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name from models.yaml."),
    precision: str | None = typer.Option(None, "--precision", "-p", help=PRECISION_HELP),
    hn: Path | None = typer.Option(
        None, "--hn", help="HN JSON of the parsed network; 16-bit layers are named from it."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file (atomically) instead of stdout."
    ),
    unresolved: bool = typer.Option(
        False,
        "--unresolved",
        help="Without --hn, render ONNX node names; the file is marked NOT compilable.",
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing --output file."),
) -> None:
    """Print the .alls the DFC runs for NAME at a precision.

    quantization_param names HN layers (conv53, fc1), which exist only after parsing: pass the
    parse stage's HN JSON with --hn. int8 needs no HN.
    """
    st = state(ctx)
    manifest = st.manifest()
    cfg = manifest.model(name)
    if precision is not None:
        check_choice("--precision", precision, PRECISIONS)
    if output is not None:
        check_replaceable(output, what="--output", force_file=force)
    text = alls_for(manifest, cfg, precision, hn, unresolved=unresolved)
    if output is None:
        st.out.out(text, end="", highlight=False)
    else:
        atomic_write_text(output, text)
        st.err.print(f"wrote {output}")
