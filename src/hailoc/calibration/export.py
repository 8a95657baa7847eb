"""Export a set in the form the DFC takes: float32 NHWC, the model's channel order, raw range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from hailoc.calibration.store import CalibSet
from hailoc.errors import HailocError
from hailoc.owned_files import check_replaceable, publish_dir, remove_staging, staging_sibling


def export_array(
    calib_set: CalibSet,
    out: Path,
    *,
    color: str,
    split: str = "calib",
    per_image: bool = False,
    force: bool = False,
) -> int:
    """Write float32 NHWC faces (0-255, `color` channel order) as one .npy or a folder of them.

    Replaces only what hailoc wrote: a folder from an earlier `--per-image` export, or a file
    with `force`; never a user's folder.
    """
    source = calib_set.calib if split == "calib" else calib_set.eval
    if source is None:
        raise HailocError(
            f"set {calib_set.name!r} has no eval split",
            where="--split",
            fix=f"rebuild with `hailoc calib build {calib_set.name} --eval-split 0.2 ...`",
        )
    out = out.absolute()
    if per_image and out.exists() and not out.is_dir():
        raise HailocError(
            f"{out} is a file; --per-image writes a folder", where="--output", fix="give a folder"
        )
    if not per_image and out.is_dir() and not out.is_symlink():
        raise HailocError(
            f"{out} is a folder; without --per-image the export is one .npy file",
            where="--output",
            fix="give a file name such as calib.npy, or pass --per-image",
        )
    check_replaceable(out, what="--output", force_file=force)
    faces = np.load(source, mmap_mode="r")
    # Normalization is not applied: the .alls normalization layer does it on the device.
    flip = color == "BGR"

    def convert(a: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return a[..., ::-1] if flip else a

    staged = staging_sibling(out)
    try:
        if per_image:
            for i, face in enumerate(faces):
                np.save(staged / f"{i:06d}.npy", convert(np.asarray(face, dtype=np.float32)))
            publish_dir(staged, out, what="--output")
        else:
            tmp = staged / out.name
            target = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=faces.shape)
            for start in range(0, len(faces), 256):
                target[start : start + 256] = convert(faces[start : start + 256].astype(np.float32))
            target.flush()
            del target
            tmp.chmod(0o644)
            tmp.replace(out)
    finally:
        remove_staging(staged)
    return len(faces)
