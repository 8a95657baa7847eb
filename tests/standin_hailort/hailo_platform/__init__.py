"""STAND-IN for HailoRT's Python API (`hailo_platform`), for hailoc's tests only.

Mirrors the calls examples/run_hef.py and `hailoc verify` make, with the shapes given in
hailo-ai/hailort bindings/python/platform/hailo_platform/pyhailort/pyhailort.py (as listed in
../shared/DFC_NOTES.md): HEF, VDevice, ConfigureParams, InputVStreamParams,
OutputVStreamParams, InferVStreams, FormatType, HailoStreamInterface. It opens only the
stand-in DFC's marked output (never a real HEF) and "runs" it as a fixed random projection
of the pixels: a program's logic can be tested, no accuracy can. Strict where unknown:
inference outside `network_group.activate()` and wrong input dtypes or shapes raise.

HAILO_STANDIN_NO_DEVICE=1 makes VDevice() fail as on a host without a device;
HAILO_STANDIN_DEVICE_ARCH=hailo8l|hailo10h|... sets the device's arch (default hailo8): a HEF
built for another arch fails at configure with HailoRT's message, and on Hailo-10H the
VStreams API answers HAILO_NOT_IMPLEMENTED (use VDevice.create_infer_model);
HAILO_STANDIN_LOG=path appends one JSON line per infer (formats requested, shapes).
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

MAGIC = b"HAILOC-STANDIN-NOT-A-HEF\n"
DIM = 128
SIDE = 112


class HailoRTException(Exception):
    pass


class FormatType(enum.Enum):
    AUTO = 0
    UINT8 = 1
    UINT16 = 2
    FLOAT32 = 3


class HailoStreamInterface(enum.Enum):
    PCIe = 0
    ETH = 1


@dataclass(frozen=True)
class QuantInfo:
    qp_scale: float
    qp_zp: float


@dataclass(frozen=True)
class VStreamInfo:
    name: str
    shape: tuple[int, ...]
    format: FormatType
    quant_info: QuantInfo


def _device_arch() -> str:
    return os.environ.get("HAILO_STANDIN_DEVICE_ARCH", "hailo8")


def _check_arch(hef: HEF) -> None:
    # HailoRT's words for a HEF of another arch (DFC_FIELD_NOTES / field reports).
    built = str(hef.summary.get("hw_arch", "hailo8"))
    if built != _device_arch():
        raise HailoRTException(
            "HEF format is not compatible with device. Device arch: "
            f"{_device_arch().upper()}, HEF arch: {built.upper()}")


def _embed(hef: HEF, x: np.ndarray, float_out: bool) -> np.ndarray:
    rng = np.random.default_rng(hef._seed)
    out = hef.get_output_vstream_infos()[0]
    projection = rng.standard_normal((SIDE * SIDE * 3 // 16, out.shape[0])).astype(np.float32)
    pooled = x.astype(np.float32).reshape(len(x), SIDE // 4, 4, SIDE // 4, 4, 3).mean((2, 4))
    emb = (pooled.reshape(len(x), -1) / 255.0 - 0.5) @ projection / 40.0
    if float_out:
        return emb.astype(np.float32)
    # raw quantized values: what a program gets when it forgets FLOAT32
    q = np.round(emb / out.quant_info.qp_scale + out.quant_info.qp_zp)
    if out.format == FormatType.UINT16:
        return np.clip(q, 0, 65535).astype(np.uint16)
    return np.clip(q, 0, 255).astype(np.uint8)


class HEF:
    def __init__(self, path: str) -> None:
        with open(path, "rb") as fh:
            data = fh.read()
        if not data.startswith(MAGIC):
            raise HailoRTException(f"{path} is not a stand-in output (the stand-in runs no HEF)")
        self.summary = json.loads(data[len(MAGIC) :])
        self.net = str(self.summary.get("net", "net"))
        self._seed = int.from_bytes(data[-8:].ljust(8, b"\0"), "little") % (2**32)

    def get_input_vstream_infos(self) -> list[VStreamInfo]:
        return [
            VStreamInfo(
                f"{self.net}/input_layer1", (SIDE, SIDE, 3), FormatType.UINT8, QuantInfo(1.0, 0.0)
            )
        ]

    def get_output_vstream_infos(self) -> list[VStreamInfo]:
        # The stand-in DFC's output lists its output layers with their shapes.
        default = [{"name": f"{self.net}/output_layer1", "shape": [DIM]}]
        outputs = self.summary.get("outputs") or default
        dim = int(np.prod(outputs[0]["shape"])) or DIM
        if outputs[0].get("format") == "UINT16":
            # A 16-bit output layer: raw values are uint16 around a zero point.
            return [VStreamInfo(outputs[0]["name"], (dim,), FormatType.UINT16,
                                QuantInfo(0.05 / 256, 32768.0))]
        return [VStreamInfo(outputs[0]["name"], (dim,), FormatType.UINT8, QuantInfo(0.05, 128.0))]


class ConfigureParams:
    @staticmethod
    def create_from_hef(hef: HEF, interface: HailoStreamInterface) -> dict[str, Any]:
        if not isinstance(interface, HailoStreamInterface):
            raise HailoRTException("interface must be a HailoStreamInterface")
        return {"hef": hef, "interface": interface}


class _NetworkGroup:
    def __init__(self, hef: HEF) -> None:
        self.hef = hef
        self.active = False

    @contextlib.contextmanager
    def activate(self, params: Any = None):
        self.active = True
        try:
            yield self
        finally:
            self.active = False


class VDevice:
    def __init__(self, params: Any = None) -> None:
        if os.environ.get("HAILO_STANDIN_NO_DEVICE") == "1":
            raise HailoRTException("Failed to create vdevice. there are not enough free devices")

    def __enter__(self) -> VDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def configure(self, hef: HEF, params: dict[str, Any]) -> list[_NetworkGroup]:
        if params.get("hef") is not hef:
            raise HailoRTException("configure params were made for another HEF")
        _check_arch(hef)
        return [_NetworkGroup(hef)]

    def create_infer_model(self, hef_path: str) -> _InferModel:
        hef = HEF(hef_path)
        _check_arch(hef)
        return _InferModel(hef)


class _Stream:
    def __init__(self, info: VStreamInfo) -> None:
        self.name = info.name
        self.shape = info.shape
        self.format_type = FormatType.AUTO

    def set_format_type(self, format_type: FormatType) -> None:
        if not isinstance(format_type, FormatType):
            raise HailoRTException("format_type must be a FormatType")
        self.format_type = format_type


class _Buffer:
    def __init__(self) -> None:
        self.buffer: np.ndarray | None = None

    def set_buffer(self, buffer: np.ndarray) -> None:
        self.buffer = buffer

    def get_buffer(self) -> np.ndarray:
        if self.buffer is None:
            raise HailoRTException("no buffer set")
        return self.buffer


class _Bindings:
    def __init__(self) -> None:
        self._input, self._output = _Buffer(), _Buffer()

    def input(self, name: str | None = None) -> _Buffer:
        return self._input

    def output(self, name: str | None = None) -> _Buffer:
        return self._output


class _Configured:
    def __init__(self, model: _InferModel) -> None:
        self.model = model

    def __enter__(self) -> _Configured:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def create_bindings(self) -> _Bindings:
        return _Bindings()

    def run(self, bindings: list[_Bindings], timeout: int) -> None:
        model = self.model
        float_out = model.output().format_type == FormatType.FLOAT32
        for binding in bindings:
            x = binding.input().get_buffer()
            if x.dtype != np.uint8 or tuple(x.shape) != model.input().shape:
                raise HailoRTException(
                    f"input buffer {x.dtype} {x.shape}; expected uint8 {model.input().shape}")
            out = binding.output().get_buffer()
            want = np.float32 if float_out else np.uint8
            if out.dtype != want or out.size != model.output().shape[0]:
                raise HailoRTException(f"output buffer {out.dtype} {out.shape}")
            out.reshape(-1)[:] = _embed(model.hef, x[None], float_out).reshape(-1)


class _InferModel:
    """VDevice.create_infer_model (the API Hailo-10H supports; call shape from public uses of
    hailort's infer_model_api: configure() -> create_bindings() -> run([bindings], timeout))."""

    def __init__(self, hef: HEF) -> None:
        self.hef = hef
        self._input = _Stream(hef.get_input_vstream_infos()[0])
        self._output = _Stream(hef.get_output_vstream_infos()[0])
        self.input_names = [self._input.name]
        self.output_names = [self._output.name]

    def input(self, name: str | None = None) -> _Stream:
        return self._input

    def output(self, name: str | None = None) -> _Stream:
        return self._output

    def configure(self) -> _Configured:
        return _Configured(self)


class _VStreamParams:
    def __init__(self, group: _NetworkGroup, format_type: FormatType) -> None:
        if not isinstance(format_type, FormatType):
            raise HailoRTException("format_type must be a FormatType")
        self.group = group
        self.format_type = format_type


class InputVStreamParams:
    @staticmethod
    def make(
        network_group: _NetworkGroup, format_type: FormatType = FormatType.AUTO, **kwargs: Any
    ) -> dict[str, _VStreamParams]:
        # A dict by vstream name, as pyhailort.py returns it.
        infos = network_group.hef.get_input_vstream_infos()
        return {i.name: _VStreamParams(network_group, format_type) for i in infos}


class OutputVStreamParams:
    @staticmethod
    def make(
        network_group: _NetworkGroup, format_type: FormatType = FormatType.AUTO, **kwargs: Any
    ) -> dict[str, _VStreamParams]:
        infos = network_group.hef.get_output_vstream_infos()
        return {i.name: _VStreamParams(network_group, format_type) for i in infos}


class InferVStreams:
    def __init__(
        self,
        network_group: _NetworkGroup,
        input_params: dict[str, _VStreamParams],
        output_params: dict[str, _VStreamParams],
    ) -> None:
        if not isinstance(input_params, dict) or not isinstance(output_params, dict):
            raise HailoRTException("vstream params are dicts by vstream name (make() returns them)")
        if _device_arch().startswith("hailo10"):
            raise HailoRTException("HAILO_NOT_IMPLEMENTED: the VStreams API is not supported on "
                                   "this device; use VDevice.create_infer_model")
        self.group = network_group
        self.inputs = next(iter(input_params.values()))
        self.outputs = next(iter(output_params.values()))

    def __enter__(self) -> InferVStreams:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def infer(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self.group.active:
            raise HailoRTException("network group is not activated")
        hef = self.group.hef
        ((name, info),) = [(i.name, i) for i in hef.get_input_vstream_infos()]
        if set(data) != {name}:
            raise HailoRTException(f"expected input {name}, got {sorted(data)}")
        x = np.asarray(data[name])
        if x.ndim != 4 or tuple(x.shape[1:]) != info.shape:
            raise HailoRTException(f"input shape {x.shape}; expected (N, {info.shape})")
        want = {FormatType.UINT8: np.uint8, FormatType.FLOAT32: np.float32}.get(
            self.inputs.format_type, np.uint8
        )
        if x.dtype != want:
            raise HailoRTException(
                f"input dtype {x.dtype}; the input vstream takes {want.__name__}"
            )
        out = hef.get_output_vstream_infos()[0]
        result = _embed(hef, x, self.outputs.format_type == FormatType.FLOAT32)
        log = os.environ.get("HAILO_STANDIN_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(
                    json.dumps(
                        {
                            "input_format": self.inputs.format_type.name,
                            "output_format": self.outputs.format_type.name,
                            "faces": len(x),
                        }
                    )
                    + "\n"
                )
        return {out.name: result}
