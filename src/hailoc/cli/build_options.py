"""The options of `hailoc build`, declared once: what each flag means and its default."""

from __future__ import annotations

import typer

from hailoc.manifest.schema import HW_ARCHS, PRECISIONS
from hailoc.options import DEFAULT_STAGE_TIMEOUT

NAMES = typer.Argument(None, help="Models to build (see `hailoc models list`).")

ALL_MODELS = typer.Option(False, "--all", help="Build every model in the manifest.")

PRECISION = typer.Option(
    None,
    "--precision",
    "-p",
    help=f"{' | '.join(PRECISIONS)}; several as int8,int16-final (default: the model's).",
)

HW_ARCH = typer.Option(
    None, "--hw-arch", help=f"Target(s): {', '.join(HW_ARCHS)}; several as hailo8,hailo8l."
)

BACKEND = typer.Option(
    None, "--backend", "-b", help="hailo | onnxruntime (default: defaults.backend)."
)

FORCE = typer.Option(False, "--force", help="Ignore the stage cache.")

FROM_STAGE = typer.Option(
    None,
    "--from-stage",
    help="Re-run this stage and the ones after it: parse|optimize|compile (Hailo), "
    "quantize (ONNX Runtime).",
)

STAGE_TIMEOUT = typer.Option(
    DEFAULT_STAGE_TIMEOUT, "--stage-timeout", help="Seconds one stage may take (> 0)."
)

GPUS = typer.Option(
    None, "--gpus/--cpu", help="Use the NVIDIA GPUs (default: when Docker offers them)."
)

JOBS = typer.Option(
    None,
    "--jobs",
    "-j",
    min=1,
    max=64,
    help="Targets built at once (default: every slot: one per GPU, or per engine "
    "without GPUs); each build holds a free GPU slot when its engine has GPUs.",
)

PER_GPU = typer.Option(1, "--per-gpu", min=1, max=8, help="Builds one GPU may hold at once.")

RETRY_FAILED = typer.Option(
    False,
    "--retry-failed",
    help="Re-run only what failed or did not run in the last batch (hef/summary.json).",
)

SUITE_IMAGE = typer.Option(
    None, "--suite-image", help="Suite image tag (default: defaults.suite_image)."
)

ENGINE = typer.Option(
    None,
    "--engine",
    metavar="NAME",
    help="Build on this engine of defaults.engines (repeatable; default: all listed, "
    "else this machine's Docker).",
)

DOCKER_HOST = typer.Option(
    None,
    "--docker-host",
    metavar="URL",
    help="Build on the Docker engine at this URL: unix://, tcp:// or ssh://user@host "
    "(repeatable; files are copied, never mounted).",
)

DOCKER_CONTEXT = typer.Option(
    None,
    "--docker-context",
    metavar="NAME",
    help="Build on this named Docker context (repeatable).",
)

TARGET = typer.Option(
    None, "--target", help="auto: agreement to reach, in (0, 1] (default: auto.target)."
)

BUDGET = typer.Option(None, "--budget", min=1, help="auto: at most this many 16-bit layers.")

SKIP_GATE = typer.Option(
    False,
    "--skip-gate",
    help="Keep the artifact (and compile) even when the accuracy gate fails; "
    "the record still says it failed the gate.",
)

ACCEPT_BEST = typer.Option(
    False,
    "--accept-best",
    help="auto: when the target is not reached, build the best plan found (the gate "
    "still judges it) instead of failing with class auto_target.",
)

ON_WALL = typer.Option(
    None,
    "--on-wall",
    metavar="recover|fail",
    help="Hailo: when the DFC refuses the 16-bit set (NaN exponent, super-defuse, "
    "allocator, unsupported layer), narrow it and go on (recover: named layers leave "
    "16-bit, an unnamed wall is bisected; every attempt is in record.json) or end the "
    "build (fail). Default: the manifest's defaults.walls (recover).",
)

NO_WAIT = typer.Option(
    False,
    "--no-wait",
    help="Exit 3 instead of waiting when another hailoc process builds the same target.",
)
