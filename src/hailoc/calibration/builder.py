"""Build a calibration set from a folder of photos: detect, align, augment, write atomically."""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image

from hailoc import __version__
from hailoc.calibration import store
from hailoc.calibration.align import AlignParams, align_all
from hailoc.calibration.detect import Detector, detector_info, make_detector
from hailoc.calibration.face_size import at_distance
from hailoc.calibration.images import ImageRejected, decode_rgb, list_images, read_source
from hailoc.calibration.template import ARCFACE_TEMPLATE, SIZE
from hailoc.errors import HailocError
from hailoc.execution import usable_cores
from hailoc.locks import exclusive
from hailoc.manifest.schema import DetectorSpec, is_safe_name
from hailoc.owned_files import atomic_write_text, remove_staging, sha256_file

log = logging.getLogger(__name__)

PREVIEW_FACES = 48


@dataclass(frozen=True)
class CalibParams:
    """Everything that determines a set's content; recorded so `--all` can rebuild it."""

    images: str
    seed: int = 0
    limit: int | None = None
    distances: tuple[int, ...] = (112, 64, 40, 24)
    eval_split: float = 0.0
    min_face_px: int = 40
    max_eye_error_px: float = 3.0

    def check(self) -> None:
        """Reject parameters that cannot make a useful set."""
        bad = [d for d in self.distances if not 8 <= d <= SIZE]
        if not self.distances or bad or len(set(self.distances)) != len(self.distances):
            raise HailocError(
                f"bad distances {list(self.distances)}",
                where="--distances",
                fix=f"give distinct face sizes in pixels between 8 and {SIZE}, e.g. 112,64,40,24",
            )
        if not 0.0 <= self.eval_split < 1.0:
            raise HailocError(
                f"eval split {self.eval_split} is outside [0, 1)",
                where="--eval-split",
                fix="use a fraction such as 0.2",
            )
        if self.limit is not None and self.limit < 1:
            raise HailocError("limit must be >= 1", where="--limit", fix="drop it or give N >= 1")
        if not 0 <= self.seed < 2**32:
            raise HailocError(
                f"seed {self.seed} is outside [0, 2**32)", where="--seed", fix="give e.g. 0"
            )
        if not 1 <= self.min_face_px <= 4096:
            raise HailocError(
                f"minimum face {self.min_face_px} px is outside [1, 4096]",
                where="--min-face",
                fix="give pixels such as 40",
            )
        # NaN compares false with everything: without this it would disable the filter.
        if not (math.isfinite(self.max_eye_error_px) and self.max_eye_error_px > 0):
            raise HailocError(
                f"max eye error {self.max_eye_error_px} is not a positive number of pixels",
                where="--max-eye-error",
                fix="give pixels such as 3",
            )


class BuildProgress(Protocol):
    """Receives progress while a set is built (a rich bar in the CLI)."""

    def start(self, images: int, workers: int) -> None:
        """Called once the number of candidate images, and so of worker processes, is known."""

    def advance(self, faces: int) -> None:
        """Called after each image with the number of faces it gave."""


class _Silent:
    def start(self, images: int, workers: int) -> None:
        pass

    def advance(self, faces: int) -> None:
        pass


@dataclass
class _Outcome:
    rel: str
    sha256: str | None = None
    faces: list[tuple[bytes, float, float, float | None]] = field(default_factory=list)
    reject: str | None = None
    face_rejects: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Job:
    root: str
    rel: str


class _Worker:
    """Per-process state: the detector sessions are built once per process, not per image."""

    def __init__(self, spec: DetectorSpec, project_root: Path, align: AlignParams) -> None:
        self.detector: Detector = make_detector(spec, project_root)
        self.align = align

    def __call__(self, job: _Job) -> _Outcome:
        outcome = _Outcome(job.rel)
        try:
            data, outcome.sha256 = read_source(Path(job.root) / job.rel)
            image = decode_rgb(data)
        except ImageRejected as exc:
            outcome.reject = str(exc)
            return outcome
        faces, rejects = align_all(image, self.detector, self.align)
        outcome.face_rejects = rejects
        outcome.faces = [(f.pixels.tobytes(), f.score, f.width_px, f.eye_error_px) for f in faces]
        if not faces:
            outcome.reject = "no usable face" + (f" ({rejects[0]})" if rejects else " found")
        return outcome


_PROCESS_WORKER: list[_Worker] = []  # filled only inside pool processes, by _init


def _init(spec: DetectorSpec, project_root: Path, align: AlignParams) -> None:
    _PROCESS_WORKER.append(_Worker(spec, project_root, align))


def _run_in_process(job: _Job) -> _Outcome:
    return _PROCESS_WORKER[0](job)


# Below this many images a second process costs more to start (interpreter, imports,
# detector sessions: ~1 s) than it saves.
POOL_FROM_IMAGES = 32


def pool_size(workers: int, images: int) -> int:
    """Processes detecting faces in `images` images (the calling one and its helpers,
    `_outcomes`): `workers` when given (never more than the images), else one per usable
    core once the folder is large enough to pay for them."""
    if workers > 0:
        return max(1, min(workers, images))
    return usable_cores() if images >= POOL_FROM_IMAGES else 1


# Images queued per helper process: enough that it never waits for the calling process to
# finish an image of its own before it gets the next.
HELPER_QUEUE = 4


def _outcomes(
    jobs: list[_Job], spec: DetectorSpec, project_root: Path, align: AlignParams, workers: int
) -> Iterator[_Outcome]:
    """Each job's outcome, in job order. The calling process is one of the `workers`: it
    detects faces itself beside `workers - 1` helper processes, from the first image on.
    A spawned helper needs ~1 s (interpreter, imports, detector sessions) before its first
    image; a pool of helpers only would leave that second idle on every core."""
    worker = _Worker(spec, project_root, align)  # fails here, once, with a clear error
    if workers <= 1:
        yield from map(worker, jobs)
        return
    helpers = workers - 1
    # spawn: the CLI runs a progress thread, and forking a threaded process can deadlock.
    with ProcessPoolExecutor(
        helpers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init,
        initargs=(spec, project_root, align),
    ) as pool:
        pending: deque[Future[_Outcome] | _Outcome] = deque()
        for job in jobs:
            queued = sum(1 for p in pending if isinstance(p, Future) and not p.done())
            if queued < HELPER_QUEUE * helpers:
                pending.append(pool.submit(_run_in_process, job))
            else:
                pending.append(worker(job))
            while pending and (not isinstance(pending[0], Future) or pending[0].done()):
                yield _result(pending.popleft())
        while pending:
            yield _result(pending.popleft())


def _result(item: Future[_Outcome] | _Outcome) -> _Outcome:
    return item.result() if isinstance(item, Future) else item


def _display_path(path: Path, project_root: Path) -> str:
    try:
        return path.resolve().relative_to(project_root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def build_set(
    name: str,
    params: CalibParams,
    *,
    project_root: Path,
    calib_root: Path,
    detector: DetectorSpec,
    workers: int = 1,
    progress: BuildProgress | None = None,
    locks: Path | None = None,
) -> store.CalibSet:
    """Build calibration/<name> from params.images; the old set stays until the new one is whole.
    `workers` 0 picks the pool's size (`pool_size`); a pool needs the calling script's
    `if __name__ == "__main__"` guard (processes are spawned), so 1 is the default here."""
    params.check()
    if not is_safe_name(name):
        raise HailocError(
            f"bad set name {name!r}", where="NAME", fix="use letters, digits, '_', '-' or '.'"
        )
    progress = progress or _Silent()
    images_dir = Path(params.images)
    if not images_dir.is_absolute():
        images_dir = project_root / images_dir
    if not images_dir.is_dir():
        raise HailocError(
            f"image folder {images_dir} not found",
            where="--images",
            fix="point --images at a folder of photos",
        )
    listing = list_images(images_dir)
    if not listing.files:
        raise HailocError(
            f"no .jpg/.png/.webp/.bmp files under {images_dir}",
            where="--images",
            fix="point --images at a folder of photos",
        )
    align = AlignParams(params.min_face_px, params.max_eye_error_px)
    workers = pool_size(workers, len(listing.files))
    progress.start(len(listing.files), workers)
    calib_root.mkdir(parents=True, exist_ok=True)
    # One build of a set at a time: two would otherwise race on its staging and history.
    # The lock lives in the project's .hailoc/locks/ (by default beside calib_root), never in
    # the published calibration folder.
    locks = locks or calib_root.parent / ".hailoc" / "locks"
    with exclusive(calib_root / name, what=f"calibration/{name}", locks=locks):
        previous = _previous(calib_root, name)
        staged = store.staging_dir(calib_root, name)
        try:
            result = _collect(
                staged, listing, images_dir, detector, project_root, align, workers, progress
            )
            manifest = _write_set(
                staged, name, params, result, detector, project_root, images_dir, previous
            )
            log.info("calibration set %s: %d faces", name, manifest["counts"]["faces"])
            changed = manifest["version"] != previous.get("version")
            store.publish(staged, calib_root, name, keep_previous=changed)
        finally:
            remove_staging(staged)
    return store.open_set(calib_root, name)


@dataclass
class _Collected:
    sources: list[dict[str, Any]]
    rejected: list[dict[str, str]]
    faces: list[dict[str, Any]]
    raw: Path


def _collect(
    staged: Path,
    listing: Any,
    images_dir: Path,
    spec: DetectorSpec,
    project_root: Path,
    align: AlignParams,
    workers: int,
    progress: BuildProgress,
) -> _Collected:
    jobs = [_Job(str(images_dir), rel) for rel in listing.files]
    sources: list[dict[str, Any]] = []
    rejected = [{"path": p, "reason": r} for p, r in listing.skipped]
    faces: list[dict[str, Any]] = []
    raw = staged / "faces.raw"
    # Faces stream to disk in file order: memory stays flat whatever the folder's size.
    with raw.open("wb") as sink:
        for outcome in _outcomes(jobs, spec, project_root, align, workers):
            for reason in outcome.face_rejects:
                rejected.append({"path": outcome.rel, "reason": f"face skipped: {reason}"})
            if outcome.reject is not None and not outcome.faces:
                rejected.append({"path": outcome.rel, "reason": outcome.reject})
            if outcome.sha256 is not None:
                sources.append(
                    {"path": outcome.rel, "sha256": outcome.sha256, "faces": len(outcome.faces)}
                )
            for pixels, score, width, error in outcome.faces:
                sink.write(pixels)
                faces.append(
                    {
                        "source": outcome.rel,
                        "score": round(score, 4),
                        "width_px": round(width, 1),
                        "eye_error_px": None if error is None else round(error, 2),
                    }
                )
            progress.advance(len(outcome.faces))
    return _Collected(sources, rejected, faces, raw)


def _split(total: int, params: CalibParams) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Seeded (eval, calibration) face indices, each sorted; --limit caps calibration."""
    rng = np.random.default_rng(params.seed)
    order = rng.permutation(total)
    n_eval = round(total * params.eval_split)
    if params.eval_split > 0 and (n_eval == 0 or n_eval == total):
        raise HailocError(
            f"{total} faces cannot be split {params.eval_split:g} into calibration and eval",
            where="--eval-split",
            fix="add photos or change the split",
        )
    eval_idx = np.sort(order[:n_eval])
    calib_idx = np.sort(order[n_eval:])
    if params.limit is not None and len(calib_idx) > params.limit:
        calib_idx = np.sort(rng.choice(calib_idx, params.limit, replace=False))
    return eval_idx, calib_idx


def _write_arrays(
    staged: Path,
    source: npt.NDArray[np.uint8],
    calib_idx: npt.NDArray[np.intp],
    eval_idx: npt.NDArray[np.intp],
    distances: list[int],
) -> dict[str, dict[str, Any]]:
    """calib.npy (every calibration face at every distance, streamed to disk) and eval.npy;
    what manifest.json says about each."""
    arrays: dict[str, dict[str, Any]] = {}
    calib = np.lib.format.open_memmap(
        staged / store.CALIB,
        mode="w+",
        dtype=np.uint8,
        shape=(len(calib_idx) * len(distances), SIZE, SIZE, 3),
    )
    for row, idx in enumerate(calib_idx):
        for k, px in enumerate(distances):
            calib[row * len(distances) + k] = at_distance(np.asarray(source[idx]), px)
    calib.flush()
    del calib
    arrays[store.CALIB] = {"shape": [len(calib_idx) * len(distances), SIZE, SIZE, 3]}
    if len(eval_idx):
        np.save(staged / store.EVAL, np.asarray(source[eval_idx]))
        arrays[store.EVAL] = {"shape": [len(eval_idx), SIZE, SIZE, 3]}
    for fname, info in arrays.items():
        info.update(
            dtype="uint8",
            layout="NHWC",
            color="RGB",
            range="0-255",
            sha256=sha256_file(staged / fname),
        )
    return arrays


def _write_set(
    staged: Path,
    name: str,
    params: CalibParams,
    got: _Collected,
    spec: DetectorSpec,
    project_root: Path,
    images_dir: Path,
    previous: dict[str, Any],
) -> dict[str, Any]:
    total = len(got.faces)
    if total == 0:
        raise HailocError(
            f"no usable faces in {images_dir} ({len(got.rejected)} files or faces skipped)",
            where="--images",
            fix="use photos with frontal faces of at least "
            f"{params.min_face_px} px (or lower --min-face)",
        )
    eval_idx, calib_idx = _split(total, params)
    n_eval = len(eval_idx)
    source = np.memmap(got.raw, dtype=np.uint8, mode="r", shape=(total, SIZE, SIZE, 3))
    distances = sorted(params.distances, reverse=True)
    arrays = _write_arrays(staged, source, calib_idx, eval_idx, distances)
    _preview(
        np.asarray(source[calib_idx[:: max(1, len(calib_idx) // PREVIEW_FACES)][:PREVIEW_FACES]]),
        staged / store.PREVIEW,
    )
    del source
    got.raw.unlink()
    in_eval, in_calib = set(eval_idx.tolist()), set(calib_idx.tolist())
    for i, face in enumerate(got.faces):
        face["split"] = "eval" if i in in_eval else ("calib" if i in in_calib else "unused")
    digest = arrays[store.CALIB]["sha256"]
    version = previous.get("version", 0) + (0 if previous.get("calib_sha256") == digest else 1)
    manifest = {
        "format": 1,
        "name": name,
        "version": max(version, 1),
        "hailoc_version": __version__,
        "params": asdict(params)
        | {
            "images": _display_path(images_dir, project_root),
            "distances": distances,
        },
        "detector": detector_info(spec, project_root),
        "template": {"size": SIZE, "points": ARCFACE_TEMPLATE.tolist()},
        "counts": {
            "images": len(got.sources),
            "images_with_faces": sum(1 for s in got.sources if s["faces"]),
            "faces": total,
            "calib_faces": len(calib_idx),
            "calib_entries": len(calib_idx) * len(distances),
            "eval_faces": int(n_eval),
            "skipped": len(got.rejected),
        },
        "arrays": arrays,
        "sources": got.sources,
        "rejected": sorted(got.rejected, key=lambda r: (r["path"], r["reason"])),
        "faces": got.faces,
    }
    atomic_write_text(staged / store.MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return manifest


def _previous(calib_root: Path, name: str) -> dict[str, Any]:
    try:
        old = store.open_set(calib_root, name).manifest
    except HailocError:
        return {}
    return {"version": old.get("version", 1), "calib_sha256": old["arrays"][store.CALIB]["sha256"]}


def _preview(faces: np.ndarray[Any, Any], path: Path, columns: int = 8) -> None:
    rows = max(1, -(-len(faces) // columns))
    sheet = Image.new("RGB", (columns * SIZE, rows * SIZE), (32, 32, 32))
    for i, face in enumerate(faces):
        sheet.paste(Image.fromarray(face), ((i % columns) * SIZE, (i // columns) * SIZE))
    sheet.save(path, format="PNG")
