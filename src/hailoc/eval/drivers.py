"""`hailoc eval`'s two evaluations from aligned faces to files: pairs.txt verification and
identities at face sizes. The build side arrives as an embedder (the pipeline opens the ONNX
Runtime QDQ model or the DFC's emulation); the results go beside the build's record and
into it."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from hailoc.calibration.align import AlignParams
from hailoc.calibration.detect import detector_key, make_detector
from hailoc.errors import HailocError
from hailoc.eval import identities as ident
from hailoc.eval import plots
from hailoc.eval.aligned import AlignedCache, AlignedImages, align_images, align_largest
from hailoc.eval.pairs import PairsResult, read_pairs, score_pairs
from hailoc.faces import BatchEmbed
from hailoc.inputs import toolchain_versions
from hailoc.manifest import LoadedManifest, ModelConfig
from hailoc.owned_files import add_owned_file
from hailoc.records import PairsSection
from hailoc.records.layout import add_evaluation
from hailoc.records.schema import IdentitiesSection
from hailoc.reference import cached_fp32

# A long step's progress: the CLI shows a spinner with the text while the block runs.
Step = Callable[[str], AbstractContextManager[object]]


@dataclass(frozen=True)
class BuildSide:
    """The build an evaluation compares with fp32: its folder and how it embeds faces."""

    folder: Path
    embed: BatchEmbed
    source: str  # what computed the build's embeddings, for the record


def _fp32(manifest: LoadedManifest, cfg: ModelConfig) -> BatchEmbed:
    # The fp32 side of every evaluation of these faces is the same: computed once, cached.
    return cached_fp32(manifest.cache_dir, cfg, toolchain_versions())


def _align(
    manifest: LoadedManifest, images: dict[str, Path], step: Step, what: str
) -> AlignedImages:
    spec = manifest.data.defaults.detector
    params = AlignParams()  # calibration's face filters
    cache = AlignedCache(manifest.cache_dir, detector_key(spec, manifest.root), params)
    detector = make_detector(spec, manifest.root)
    with step(f"aligning {what}"):
        return align_images(images, lambda data: align_largest(data, detector, params), cache)


def evaluate_pairs(
    manifest: LoadedManifest,
    cfg: ModelConfig,
    side: BuildSide,
    pairs_file: Path,
    images: Path,
    step: Step,
) -> PairsResult:
    """Verification of fp32 and the build on LFW-style pairs; pairs.json and the record."""
    if not images.is_dir():
        raise HailocError(f"{images} is not a folder", where="--images", fix="give the image root")
    wanted = read_pairs(pairs_file)
    names = sorted({n for p in wanted for n in (p.a, p.b)})
    aligned = _align(manifest, {n: images / n for n in names}, step, f"{len(names)} images")
    fp32 = _fp32(manifest, cfg)
    result = score_pairs(
        wanted, aligned.faces, lambda f: fp32([f])[0], lambda f: side.embed([f])[0]
    )
    if result is None:
        raise HailocError(
            f"too few usable pairs ({len(aligned.skipped)} of {len(names)} images had no "
            "usable face)",
            where=str(pairs_file),
            fix="pairs need both same-person and different-person examples with visible faces",
        )
    result = replace(result, skipped_images=aligned.skipped)
    section = PairsSection.model_validate(
        asdict(result) | {"pairs_file": str(pairs_file), "images": str(images)}
    )
    data = (section.model_dump_json(indent=1) + "\n").encode()
    add_owned_file(side.folder, "pairs.json", data)
    add_evaluation(side.folder, pairs=section)
    return result


@dataclass(frozen=True)
class IdentitiesOutcome:
    """The section written to identities.json and the record, and the run behind it."""

    section: IdentitiesSection
    run: ident.IdentityRun


def evaluate_identities(
    manifest: LoadedManifest,
    cfg: ModelConfig,
    precision: str,
    side: BuildSide,
    root: Path,
    sizes: tuple[int, ...],
    step: Step,
) -> IdentitiesOutcome:
    """TAR at FAR per probe size for fp32 and the build; identities.json, two plots and
    the record."""
    people = ident.scan(root)
    count = sum(len(v) for v in people.values())
    aligned = _align(
        manifest, ident.image_paths(people), step, f"{count} images of {len(people)} people"
    )
    labelled = ident.label_faces(people, aligned)
    with step(f"embedding {len(labelled.faces)} faces at {len(sizes)} sizes"):
        run = ident.evaluate_identities(labelled, sizes, _fp32(manifest, cfg), side.embed)
    section = IdentitiesSection(
        folder=str(root),
        people=len(set(labelled.people)),
        faces=len(labelled.faces),
        genuine_pairs=run.genuine_pairs,
        impostor_pairs=run.impostor_pairs,
        impostor_note=run.note,
        build_source=side.source,
        reused_faces=labelled.reused,
        skipped_images=labelled.skipped,
        rows=run.rows,
    )
    folder = side.folder
    data = (section.model_dump_json(indent=1) + "\n").encode()
    add_owned_file(folder, "identities.json", data)
    _owned_plot(folder, "tar_vs_size.png", lambda p: plots.tar_vs_size(run.rows, precision, p))
    _owned_plot(folder, "pre_norm_cliff.png", lambda p: plots.match_vs_pre_norm(run.cliff, p))
    add_evaluation(folder, identities=section)
    return IdentitiesOutcome(section, run)


def _owned_plot(folder: Path, name: str, draw: Callable[[Path], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="hailoc-plot-") as tmp:
        path = Path(tmp) / name
        draw(path)
        add_owned_file(folder, name, path.read_bytes())
