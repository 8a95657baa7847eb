"""Run a built HEF on a Hailo device through HailoRT's Python API (`hailo_platform`).

Only what `hailoc verify` needs: open the HEF, feed uint8 NHWC faces through UINT8 input
vstreams and read FLOAT32 output vstreams (HailoRT dequantizes on the host). API as in
hailo-ai/hailort bindings/python/platform/hailo_platform/pyhailort/pyhailort.py (listed in
../shared/DFC_NOTES.md). Without HailoRT or a device, the error says so (exit 3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hailoc.errors import HailocError

CHUNK = 64


class NoDevice(HailocError):
    """HailoRT or a Hailo device is missing on this host."""

    exit_code = 3


def require_hailort() -> Any:
    """The hailo_platform module, or NoDevice (exit 3) saying it is missing."""
    return _platform()


def _platform() -> Any:
    try:
        import hailo_platform
    except ImportError:
        raise NoDevice(
            "HailoRT's Python API (hailo_platform) is not installed on this host",
            where="hailoc verify",
            fix="run it on the device host with HailoRT and its Python wheel installed",
        ) from None
    return hailo_platform


def embed_hef(hef_path: Path, faces: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Raw embeddings of uint8 NHWC faces (already in the model's colour order)."""
    hp = _platform()
    hef = hp.HEF(str(hef_path))
    input_name = hef.get_input_vstream_infos()[0].name
    output_name = hef.get_output_vstream_infos()[0].name
    try:
        device = hp.VDevice()
    except Exception as exc:
        raise NoDevice(
            f"no Hailo device available ({str(exc).splitlines()[0][:160]})",
            where="hailoc verify",
            fix="check `hailortcli scan` on this host, or free the device",
        ) from None
    out = []
    with device:
        params = hp.ConfigureParams.create_from_hef(hef, interface=hp.HailoStreamInterface.PCIe)
        group = device.configure(hef, params)[0]
        inputs = hp.InputVStreamParams.make(group, format_type=hp.FormatType.UINT8)
        outputs = hp.OutputVStreamParams.make(group, format_type=hp.FormatType.FLOAT32)
        with hp.InferVStreams(group, inputs, outputs) as pipeline, group.activate():
            for start in range(0, len(faces), CHUNK):
                chunk = np.ascontiguousarray(faces[start : start + CHUNK], dtype=np.uint8)
                result = pipeline.infer({input_name: chunk})
                out.append(np.asarray(result[output_name], np.float32).reshape(len(chunk), -1))
    return np.concatenate(out)
