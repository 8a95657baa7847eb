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
    """Raw embeddings of uint8 NHWC faces (already in the model's colour order).

    VStreams first (Hailo-8 family); where HailoRT answers HAILO_NOT_IMPLEMENTED (Hailo-10H),
    `VDevice.create_infer_model` with a FLOAT32 output (docs/dfc-behaviour.md, HailoRT).
    """
    hp = _platform()
    hef = hp.HEF(str(hef_path))
    try:
        device = hp.VDevice()
    except Exception as exc:
        raise NoDevice(
            f"no Hailo device available ({str(exc).splitlines()[0][:160]})",
            where="hailoc verify",
            fix="check `hailortcli scan` on this host, or free the device",
        ) from None
    with device:
        try:
            try:
                return _embed_vstreams(hp, device, hef, faces)
            except Exception as exc:
                if "HAILO_NOT_IMPLEMENTED" not in str(exc):
                    raise
            return _embed_infer_model(hp, device, hef_path, faces)
        except Exception as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "HEF format is not compatible with device" in text:
                # HailoRT's own words, so the user can search them; the fix is a rebuild.
                raise HailocError(
                    text,
                    where=str(hef_path),
                    fix="build for the device's arch (hw_arch in models.yaml or --hw-arch), "
                    "then verify that build",
                ) from None
            raise


def _embed_vstreams(
    hp: Any, device: Any, hef: Any, faces: npt.NDArray[np.uint8]
) -> npt.NDArray[np.float32]:
    input_name = hef.get_input_vstream_infos()[0].name
    output_name = hef.get_output_vstream_infos()[0].name
    params = hp.ConfigureParams.create_from_hef(hef, interface=hp.HailoStreamInterface.PCIe)
    group = device.configure(hef, params)[0]
    # make() returns a dict by vstream name; InferVStreams takes those dicts as they are.
    inputs = hp.InputVStreamParams.make(group, format_type=hp.FormatType.UINT8)
    outputs = hp.OutputVStreamParams.make(group, format_type=hp.FormatType.FLOAT32)
    out = []
    with hp.InferVStreams(group, inputs, outputs) as pipeline, group.activate():
        for start in range(0, len(faces), CHUNK):
            chunk = np.ascontiguousarray(faces[start : start + CHUNK], dtype=np.uint8)
            result = pipeline.infer({input_name: chunk})
            out.append(np.asarray(result[output_name], np.float32).reshape(len(chunk), -1))
    return np.concatenate(out)


def _embed_infer_model(
    hp: Any, device: Any, hef_path: Path, faces: npt.NDArray[np.uint8]
) -> npt.NDArray[np.float32]:
    model = device.create_infer_model(str(hef_path))
    model.input().set_format_type(hp.FormatType.UINT8)
    model.output().set_format_type(hp.FormatType.FLOAT32)
    size = int(np.prod(model.output().shape))
    out = np.zeros((len(faces), size), np.float32)
    with model.configure() as configured:
        for start in range(0, len(faces), CHUNK):
            bindings = []
            for index in range(start, min(start + CHUNK, len(faces))):
                binding = configured.create_bindings()
                binding.input().set_buffer(np.ascontiguousarray(faces[index], dtype=np.uint8))
                binding.output().set_buffer(out[index])
                bindings.append(binding)
            configured.run(bindings, 10_000)
    return out
