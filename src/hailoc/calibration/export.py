"""Export a set in the form the DFC takes: float32 NHWC, the model's channel order, raw range."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hailoc.calibration.store import CalibSet
from hailoc.errors import HailocError


def export_array(
    calib_set: CalibSet, out: Path, *, color: str, split: str = "calib", per_image: bool = False
) -> int:
    """Write float32 NHWC faces (0-255, `color` channel order) as one .npy or a folder of them."""
    source = calib_set.calib if split == "calib" else calib_set.eval
    if source is None:
        raise HailocError(
            f"set {calib_set.name!r} has no eval split",
            where="--split",
            fix=f"rebuild with `hailoc calib build {calib_set.name} --eval-split 0.2 ...`",
        )
    faces = np.load(source, mmap_mode="r")
    # Normalization is not applied: the .alls normalization layer does it on the device.
    flip = color == "BGR"

    def convert(a: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return a[..., ::-1] if flip else a

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        if per_image:
            tmp.mkdir()
            for i, face in enumerate(faces):
                np.save(tmp / f"{i:06d}.npy", convert(np.asarray(face, dtype=np.float32)))
        else:
            target = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=faces.shape)
            for start in range(0, len(faces), 256):
                target[start : start + 256] = convert(faces[start : start + 256].astype(np.float32))
            target.flush()
            del target
        if out.is_dir():
            shutil.rmtree(out)
        tmp.replace(out)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    return len(faces)
