"""`hailoc eval`: face verification on your own LFW-style pairs, fp32 vs a built candidate."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from hailoc.calibration.detect import make_detector
from hailoc.cli.state import CliState, state
from hailoc.errors import HailocError
from hailoc.eval.identities import BatchEmbed, Faces, batched
from hailoc.eval.pairs import align_images, align_largest, read_pairs, score_pairs
from hailoc.fsutil import add_owned_file
from hailoc.inference.session import Embedder, open_session
from hailoc.manifest import LoadedManifest, ModelConfig
from hailoc.manifest.schema import ALIGNED_SIZE, PRECISIONS
from hailoc.records import PairsSection, read_record, write_record
from hailoc.records.schema import IdentitiesSection, IntervalNumbers
from hailoc.targets import BACKENDS, BuildTarget, check_choice, output_dir

log = logging.getLogger(__name__)


def evaluate_pairs(
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
    sizes = _sizes(face_sizes) if identities is not None else ()
    check_choice("--backend", backend, BACKENDS)
    manifest = st.manifest()
    cfg = manifest.model(name)
    check_choice("--precision", precision, PRECISIONS)
    if backend == "hailo":
        if identities is None:
            raise HailocError(
                "-b hailo evaluates --identities only",
                where="--pairs",
                fix="use --identities DIR, or -b onnxruntime for --pairs",
            )
        hailo_build, source = _hailo_embedder(st, manifest, cfg, precision, suite_image)
        target = BuildTarget(cfg.name, cfg.hw_arch, precision, "hailo")
        _identities(
            st, manifest, cfg, precision, output_dir(manifest.hef_dir, target), hailo_build,
            source, identities, sizes,
        )  # fmt: skip
        return
    target = BuildTarget(cfg.name, cfg.hw_arch, precision, "onnxruntime")
    folder = output_dir(manifest.hef_dir, target)
    qdq = folder / f"{cfg.name}.qdq.onnx"
    if not qdq.is_file():
        raise HailocError(
            f"no ONNX Runtime build of {cfg.name} {precision} at {qdq}",
            where="--precision",
            fix=f"run `hailoc build {cfg.name} -p {precision} -b onnxruntime` first",
        )
    if identities is not None:
        build = batched(Embedder(open_session(qdq), cfg, cfg.embedding_output))
        source = f"{qdq.name} (ONNX Runtime QDQ emulation)"
        _identities(st, manifest, cfg, precision, folder, build, source, identities, sizes)
        return
    assert pairs is not None and images is not None
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
    _into_record(folder, pairs=section)
    if skipped:
        st.err.print(f"{len(skipped)} images skipped (see {folder / 'pairs.json'})")
    st.out.print(f"pairs: {folder / 'pairs.json'}")


def _hailo_embedder(
    st: CliState,
    manifest: LoadedManifest,
    cfg: ModelConfig,
    precision: str,
    suite_image: str | None,
) -> tuple[BatchEmbed, str]:
    """The build side of a Hailo build: SDK_QUANTIZED emulation of its optimized HAR (from
    the stage cache), all batches in one container stage."""
    from hailoc.backends.hailo.backend import HailoBackend, open_session
    from hailoc.backends.protocol import Job
    from hailoc.cache import StageCache
    from hailoc.inputs import gather
    from hailoc.options import BuildOptions
    from hailoc.pipeline.stages import CacheStages

    target = BuildTarget(cfg.name, cfg.hw_arch, precision, "hailo")
    folder = output_dir(manifest.hef_dir, target)
    fix = f"run `hailoc build {cfg.name} -b hailo -p {precision}` first"
    if not (folder / "record.json").is_file():
        raise HailocError(f"no Hailo build at {folder}", where="--precision", fix=fix)
    record = read_record(folder / "record.json")
    optimize = [s for s in record.stages if s.name == "optimize" and s.cache_key]
    cache = StageCache(manifest.cache_dir)
    entry = cache.lookup("optimize", optimize[-1].cache_key or "") if optimize else None
    if entry is None:
        raise HailocError(
            f"the build's optimized HAR is not in the stage cache ({folder})",
            where="--precision",
            fix=f"{fix} (it restores the cache entry)",
        )
    options = BuildOptions(suite_image=suite_image)
    session = open_session(manifest, options, [cfg.hw_arch])
    backend = HailoBackend(manifest, [session])
    job = Job(target, gather(manifest, cfg.name), options)
    stages = CacheStages(cache, manifest.work_dir, log.debug)

    def embed(batches: list[Faces]) -> list[np.ndarray[Any, np.dtype[np.float32]]]:
        sizes = [len(b) for b in batches]
        with st.err.status(f"DFC emulation of {sum(sizes)} faces in the suite container"):
            out = backend.emulate(job, entry, np.concatenate(batches), stages)
        return list(np.split(out, np.cumsum(sizes)[:-1]))

    suite = session.suite(cfg.hw_arch).info.ref
    return embed, f"DFC emulator (SDK_QUANTIZED) of the optimized HAR {entry.name[:12]}, {suite}"


def _into_record(
    folder: Path,
    *,
    pairs: PairsSection | None = None,
    identities: IdentitiesSection | None = None,
) -> None:
    """Add an evaluation's numbers to the build's record (when it has an accuracy section)."""
    record_path = folder / "record.json"
    if not record_path.is_file():
        return
    record = read_record(record_path)
    if record.accuracy is None:
        return
    if pairs is not None:
        record.accuracy.pairs = pairs
    if identities is not None:
        record.accuracy.identities = identities
    write_record(record_path, record)


def _sizes(text: str) -> tuple[int, ...]:
    """--face-sizes: distinct integers in [8, 112], largest first."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not 8 <= v <= ALIGNED_SIZE for v in values):
        raise HailocError(
            f"bad face sizes {text!r}",
            where="--face-sizes",
            fix=f"give sizes in px between 8 and {ALIGNED_SIZE}, e.g. 112,40,24",
        )
    return tuple(sorted(set(values), reverse=True))


def _owned_plot(folder: Path, name: str, draw: Callable[[Path], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="hailoc-plot-") as tmp:
        path = Path(tmp) / name
        draw(path)
        add_owned_file(folder, name, path.read_bytes())


def _identities(
    st: CliState,
    manifest: LoadedManifest,
    cfg: ModelConfig,
    precision: str,
    folder: Path,
    build: BatchEmbed,
    build_source: str,
    root: Path,
    sizes: tuple[int, ...],
) -> None:
    from hailoc.eval import identities as ident
    from hailoc.eval import plots

    people = ident.scan(root)
    spec = manifest.data.defaults.detector
    files = [manifest.root / p for p in (spec.model, spec.landmarks) if p is not None]
    cache = ident.AlignedCache(
        manifest.cache_dir, ident.detector_key(spec.model_dump_json(), files)
    )
    detector = make_detector(spec, manifest.root)

    count = sum(len(v) for v in people.values())
    with st.err.status(f"aligning {count} images of {len(people)} people"):
        labelled = ident.align_people(people, lambda data: align_largest(data, detector), cache)
    with st.err.status(f"embedding {len(labelled.faces)} faces at {len(sizes)} sizes"):
        run = ident.evaluate_identities(
            labelled,
            sizes,
            batched(Embedder(open_session(cfg.onnx), cfg, cfg.embedding_output)),
            build,
        )
    section = IdentitiesSection(
        folder=str(root),
        people=len(set(labelled.people)),
        faces=len(labelled.faces),
        genuine_pairs=run.genuine_pairs,
        impostor_pairs=run.impostor_pairs,
        impostor_note=run.note,
        build_source=build_source,
        reused_faces=labelled.reused,
        skipped_images=labelled.skipped,
        rows=run.rows,
    )
    table = Table(
        title=f"{cfg.name} {precision}: {section.people} people, {section.faces} faces, "
        f"{section.genuine_pairs} genuine / {section.impostor_pairs} impostor pairs"
    )
    for column in ("probe px", "fp32 TAR@1e-3", precision, "at fp32 thr", "AUC fp32", "AUC"):
        table.add_column(column, justify="right")

    def cell(n: IntervalNumbers | None) -> str:
        return f"{n.value:.3f} [{n.low:.3f}, {n.high:.3f}]" if n is not None else "-"

    for row in run.rows:
        table.add_row(
            str(row.size),
            cell(row.fp32.tar_at_far_1e3),
            cell(row.build.tar_at_far_1e3),
            cell(row.build.tar_at_far_1e3_fp32_threshold),
            f"{row.fp32.roc_auc.value:.4f}",
            f"{row.build.roc_auc.value:.4f}",
        )
    st.out.print(table)
    st.out.print(run.note, highlight=False)
    add_owned_file(folder, "identities.json", (section.model_dump_json(indent=1) + "\n").encode())
    _owned_plot(folder, "tar_vs_size.png", lambda p: plots.tar_vs_size(run.rows, precision, p))
    _owned_plot(folder, "pre_norm_cliff.png", lambda p: plots.match_vs_pre_norm(run.cliff, p))
    _into_record(folder, identities=section)
    if labelled.skipped:
        st.err.print(f"{len(labelled.skipped)} images skipped (see identities.json)")
    st.out.print(
        f"identities: {folder / 'identities.json'}, tar_vs_size.png, pre_norm_cliff.png "
        f"({labelled.reused} aligned faces reused from the cache)"
    )
