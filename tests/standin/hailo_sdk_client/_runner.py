"""Stand-in ClientRunner: parse, model script, optimize, compile, emulation."""

from __future__ import annotations

import contextlib
import enum
import io
import json
import os
import re
import tarfile
import time
from typing import Any

import numpy as np
import onnx

from hailo_sdk_client import _emulator, _script
from hailo_sdk_client._parser import ParsingError as _ParseFailure
from hailo_sdk_client._parser import translate
from hailo_sdk_client._version import __version__
from hailo_sdk_client.exceptions import (
    FAILURES,
    AccelerasNegativeSlopesError,
    AccelerasUnsupportedError,
    BackendAllocatorException,
    HailoNNException,
    MisspellNodeError,
    ParsingError,
    ParsingWithRecommendationException,
    SDKException,
    UnsupportedHwArchError,
)

HW_ARCHS = ("hailo8", "hailo8l", "hailo8r", "hailo15h", "hailo15m", "hailo15l", "hailo10h")
# DFC v3.x (Hailo-8 suites) builds the Hailo-8 family only; v5.x the Hailo-10/15 family only.
FAMILIES = {"3": ("hailo8", "hailo8l", "hailo8r"), "5": ("hailo10h", "hailo15h", "hailo15m", "hailo15l")}
RECOMMENDED_CALIB = 1024
# The DFC's default calibset_size (DFC_FIELD_NOTES section 3, pre_quant_algo_inspector.py).
DEFAULT_CALIBSET = 64
# Implicit 4-bit compression: layers at least this large may get 4-bit weights when the
# script does not turn it off (the threshold is the stand-in's: unverified).
IMPLICIT_4BIT_WEIGHTS = 1_000_000
_CALIBSET = re.compile(r"model_optimization_config\(\s*calibration\s*,[^)]*calibset_size\s*=\s*(\d+)")
_NO_COMPRESSION = re.compile(r"model_optimization_flavor\([^)]*compression_level\s*=\s*0\b")
_NO_AUTO_4BIT = re.compile(
    r"model_optimization_config\(\s*compression_params\s*,[^)]*auto_4bit_weights_ratio\s*=\s*0(?:\.0*)?\s*[,)]")
_NORM_DECL = re.compile(r"^\s*([\w/]+)\s*=\s*normalization\(", re.M)
_FLAVOR = re.compile(r"model_optimization_flavor\(([^)]*)\)")
_DECLARED = re.compile(r"^\s*([\w/]+(?:\s*,\s*[\w/]+)*)\s*=\s*\w+\(", re.M)
STANDIN_HEF_MAGIC = b"HAILOC-STANDIN-NOT-A-HEF\n"
_LAYER_LIST = re.compile(r"quantization_param\(\s*(\[[^\]]*\]|\{[^}]*\}|[\w/]+)\s*,")
_DIRECTIVE = re.compile(r"#\s*standin-(fail|sleep|degenerate|drop-a16|wall)\s*:\s*(.*)$")
_ANY_A16 = re.compile(r"quantization_param\(\s*(\[[^\]]*\]|[\w/]+)\s*,\s*precision_mode\s*=\s*(a16_\w+)")


class InferenceContext(enum.Enum):
    SDK_NATIVE = "native"
    SDK_FP_OPTIMIZED = "fp_optimized"
    SDK_QUANTIZED = "quantized"
    SDK_BIT_EXACT = "bit_exact"


def _log(name: str, line: str) -> None:
    """The real SDK writes its logs into the current directory; so does the stand-in, and it
    fails as the real one would when that directory is not writable."""
    with open(os.path.join(os.getcwd(), name), "a", encoding="utf-8") as fh:
        fh.write(line.rstrip("\n") + "\n")


def _has_gpu() -> bool:
    return os.environ.get("CUDA_VISIBLE_DEVICES", "") != "" and os.path.exists("/dev/nvidia0")


class ClientRunner:
    def __init__(self, hw_arch: str | None = None, har: str | None = None) -> None:
        if hw_arch is None:
            # Taken from the HAR when one is given (DFC_FIELD_NOTES section 5, luxonis exporter).
            hw_arch = _har_arch(har) if har is not None else "hailo8"
        _log("hailo_sdk.client.log", f"[info] ClientRunner(hw_arch={hw_arch}) DFC {__version__}")
        if hw_arch not in HW_ARCHS:
            raise UnsupportedHwArchError(f"Unsupported hw_arch {hw_arch}")
        family = FAMILIES.get(__version__.split(".", 1)[0], HW_ARCHS)
        if hw_arch not in family:
            raise UnsupportedHwArchError(
                f"hw_arch {hw_arch} is not supported by Dataflow Compiler {__version__}; "
                f"supported: {', '.join(family)}")
        self.hw_arch = hw_arch
        self._hn: dict[str, Any] | None = None
        self._onnx: bytes = b""
        self._script = ""
        self._applied_script = ""
        self._state = "empty"
        self._quant: dict[str, Any] = {}
        self._noise: dict[str, dict[str, list[float]]] = {}
        self._script_layers: list[str] = []  # layers model-script commands added to the HN
        self.optimization: dict[str, Any] = {}
        if har is not None:
            self.load_har(har)

    # --- parse -----------------------------------------------------------------------------
    def translate_onnx_model(self, model: str, net_name: str, start_node_names=None,
                             end_node_names=None, net_input_shapes=None):
        with open(model, "rb") as fh:
            self._onnx = fh.read()
        try:
            self._hn = translate(onnx.load_from_string(self._onnx), net_name, start_node_names,
                                 end_node_names, net_input_shapes)
        except _ParseFailure as exc:
            if "UnsupportedOperationError" in str(exc):
                raise ParsingWithRecommendationException(str(exc)) from None
            if "Unable to find" in str(exc):
                raise MisspellNodeError(str(exc)) from None
            raise ParsingError(str(exc)) from None
        self._state = "hailo_model"
        return self._hn, {}

    # --- HAR -------------------------------------------------------------------------------
    def _net(self) -> str:
        if self._hn is None:
            raise SDKException("No model loaded; call translate_onnx_model or load_har first")
        return str(self._hn["name"])

    def save_har(self, path: str) -> None:
        net = self._net()
        members = {
            f"{net}.hn": json.dumps(self._hn).encode(),
            f"{net}.metadata.json": json.dumps(
                {"state": self._state, "hw_arch": self.hw_arch, "standin": True,
                 "script_layers": self._script_layers,
                 "optimization": self.optimization}).encode(),
            f"{net}.alls": (self._script or self._applied_script).encode(),
            f"{net}.q.json": json.dumps(self._quant).encode(),
            f"{net}.noise.json": json.dumps(self._noise).encode(),
            f"{net}.onnx": self._onnx,
        }
        with tarfile.open(path, "w") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = 0
                tar.addfile(info, io.BytesIO(data))

    def load_har(self, path: str) -> None:
        with tarfile.open(path, "r") as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
        hn_name = next(n for n in files if n.endswith(".hn"))
        net = hn_name[: -len(".hn")]
        self._hn = json.loads(files[hn_name])
        metadata = json.loads(files[f"{net}.metadata.json"])
        self._state = metadata["state"]
        self._script_layers = list(metadata.get("script_layers", []))
        self.optimization = dict(metadata.get("optimization", {}))
        # Strict (unverified): a loaded HAR does not bring back the model script, so compile
        # honours performance_param only when the script is loaded again (as hailomz does).
        self._script = ""
        self._applied_script = files.get(f"{net}.alls", b"").decode()
        self._quant = json.loads(files.get(f"{net}.q.json", b"{}") or b"{}")
        self._onnx = files.get(f"{net}.onnx", b"")
        self._noise = json.loads(files.get(f"{net}.noise.json", b"{}") or b"{}")

    # --- HN --------------------------------------------------------------------------------
    def get_hn_dict(self) -> dict[str, Any]:
        self._net()
        return json.loads(json.dumps(self._hn))

    def get_hn(self) -> dict[str, Any]:
        return self.get_hn_dict()

    # --- model script ----------------------------------------------------------------------
    @property
    def model_script(self) -> str:
        return self._script

    def load_model_script(self, text: str, append: bool = False) -> None:
        self._net()
        if "\n" not in text and "(" not in text and os.path.isfile(text):
            # A path to a .alls file is accepted as well as its text (DFC_FIELD_NOTES; hailomz).
            with open(text, encoding="utf-8") as fh:
                text = fh.read()
        known = {k.split("/", 1)[1] for k in self._hn["layers"]}
        declared: set[str] = set()
        for match in _DECLARED.finditer(text):
            for name in re.split(r"\s*,\s*", match.group(1)):
                bare = name.split("/", 1)[-1]
                # hailomz compile loads the full script again onto the optimized HAR, which
                # holds the layers the script added: declaring those again is accepted.
                if bare in known and bare not in self._script_layers:
                    raise HailoNNException(
                        f"The layer named {bare} already exists in the HN; a model script "
                        "command cannot declare it again")
                declared.add(bare)
        for match in _LAYER_LIST.finditer(text):
            group = match.group(1)
            if group.startswith("{"):
                continue  # glob patterns match lazily in the real DFC too
            for name in re.findall(r"[\w/]+", group):
                bare = name.split("/", 1)[-1]
                if bare not in known and bare not in declared:
                    raise HailoNNException(f"The layer named {bare} doesn't exist in the HN")
        _script.validate(text, self._hn, self.hw_arch)
        self._script = (self._script + "\n" + text) if append else text

    def _directives(self, kind: str) -> list[list[str]]:
        found = []
        for line in self._script.splitlines():
            match = _DIRECTIVE.search(line)
            if match and match.group(1) == kind:
                found.append(match.group(2).split())
        return found

    def _maybe_fail(self, stage: str) -> None:
        for args in self._directives("sleep"):
            if args and args[0] == stage:
                time.sleep(float(args[1]))
        for args in self._directives("fail"):
            if args and args[0] == stage:
                cls, message = FAILURES[args[1]]
                raise cls(message)

    # --- 16-bit walls (DFC_FIELD_NOTES section 2; community.hailo.ai threads 19530, 9698) ---
    def _a16_modes(self) -> dict[str, str]:
        """HN layer (bare) -> the a16 mode the script asks for it."""
        modes: dict[str, str] = {}
        for match in _ANY_A16.finditer(self._script):
            for name in re.findall(r"[\w/]+", match.group(1)):
                modes[name.split("/")[-1]] = match.group(2)
        return modes

    def _walls(self, stage: str) -> None:
        """`# standin-wall: <kind> <args>` lines, each a wall the field reports, raised when
        the script's 16-bit set reaches it:
        - `nan_exponent <layer>` (optimize): any a16 mode on the layer; whether a16_w8 avoids
          the NaN is unverified, so the stand-in is strict and raises for it too;
        - `unsupported <layer>` (optimize): the layer in 16-bit, listed in acceleras.log;
        - `super_defuse <layer>` (compile): the layer in 16-bit;
        - `allocator <K>` (compile): more than K conv layers in 16-bit, no layer named."""
        net = self._net()
        modes = self._a16_modes()
        rules = self._directives("wall")
        if stage == "optimize":
            for args in rules:
                if args[0] == "nan_exponent" and args[1] in modes:
                    raise AccelerasNegativeSlopesError(
                        f"the exponent [[nan]] is not in range [ 7 22] for layer "
                        f"{net}/{args[1]}/conv_low_sub_layer/act_op")
            listed = [a[1] for a in rules if a[0] == "unsupported" and a[1] in modes]
            if listed:
                _log("acceleras.log", "[error] Unsupported layers for the target sage: " + "".join(
                    f"{net}/{name}:\nbias_mode: single_scale_decomposition\n"
                    f"precision_mode: {modes[name]}\nquantization_groups: 1\n"
                    "signed_output: true\n" for name in listed))
                raise AccelerasUnsupportedError(
                    "Unsupported layers for the provided optimization target. Review the log "
                    "to see exact layers and configurations")
            return
        for args in rules:
            if args[0] == "super_defuse" and args[1] in modes:
                raise BackendAllocatorException(
                    f"Compilation failed: Assignment of {args[1]} needs super-defuse")
        for args in rules:
            if args[0] != "allocator":
                continue
            convs = [k for k, v in self._hn["layers"].items()
                     if v["type"] == "conv" and k.split("/", 1)[1] in modes]
            if len(convs) > int(args[1]):
                _log("allocator.log", "[error] could not find a valid partition to contexts")
                raise BackendAllocatorException("Compilation failed with unexpected crash")

    # --- optimize --------------------------------------------------------------------------
    def _check_calib(self, data: Any) -> np.ndarray:
        if isinstance(data, str):
            data = np.load(data)
        inputs = [v for v in self._hn["layers"].values() if v["type"] == "input_layer"]
        if isinstance(data, dict):
            # Keyed by the HN input layer's name (DFC_NOTES: {"<net>/input_layer1": array}).
            names = [k for k, v in self._hn["layers"].items() if v["type"] == "input_layer"]
            unknown = [k for k in data if k not in names and f"{self._net()}/{k}" not in names]
            if unknown or len(data) != len(names):
                raise SDKException(
                    f"Calibration data keys {sorted(data)} do not match the input layers "
                    f"{names}")
            data = next(iter(data.values()))
        array = np.asarray(data)
        want = inputs[0]["output_shapes"][0][1:]
        if array.ndim != 4 or list(array.shape[1:]) != list(want):
            raise SDKException(
                f"Calibration data shape {list(array.shape)} does not match the input "
                f"shape [N, {', '.join(map(str, want))}] (NHWC)")
        if array.dtype != np.float32:
            raise SDKException(f"Calibration data must be float32, got {array.dtype}")
        if len(array) == 0:
            raise SDKException("Calibration data is empty")
        return array

    def optimize_full_precision(self, calib_data: Any = None) -> None:
        self._net()
        self._maybe_fail("optimize_full_precision")
        self._state = "fp_optimized_model"

    def _optimization_level(self, entries: int) -> tuple[int, str]:
        flavor = _FLAVOR.search(self._script)
        level = None
        if flavor:
            found = re.search(r"optimization_level\s*=\s*(\d+)", flavor.group(1))
            level = int(found.group(1)) if found else None
        if level is not None:
            return level, "set by the model script"
        # Only an implicit level drops (DFC_FIELD_NOTES section 3, third-party logs).
        gpu = _has_gpu()
        if not gpu:
            # Below 1024 entries this is the field's log line; with more and no GPU the drop
            # is the diagnostic tool's reading of level 0 ("no GPU"): unverified, strict.
            _log("acceleras.log", "[warning] Reducing optimization level to 0 (the accuracy won't "
                 "be optimized and compression won't be used) because there's less data than the "
                 f"recommended amount ({RECOMMENDED_CALIB}), and there's no available GPU")
            return 0, "default, reduced: no GPU"
        if entries < RECOMMENDED_CALIB:
            _log("acceleras.log", "[warning] Reducing optimization level to 1 (the accuracy won't "
                 "be optimized and compression won't be used) because there's less data than the "
                 f"recommended amount ({RECOMMENDED_CALIB})")
            return 1, "default, reduced: fewer than 1024 entries"
        _log("acceleras.log", "[info] Using default optimization level of 2")
        return 2, "default"

    def _calibset(self, array: np.ndarray) -> np.ndarray:
        found = _CALIBSET.search(self._script)
        size = int(found.group(1)) if found else DEFAULT_CALIBSET
        if size > len(array):
            # What the real DFC does with fewer entries than calibset_size is unverified:
            # strict, so a script that claims more statistics than it gets fails here.
            raise SDKException(
                f"calibset_size={size} is larger than the {len(array)} calibration entries "
                "given")
        return array[:size]

    def _implicit_4bit(self) -> list[str]:
        """Weight layers the optimizer may compress to 4 bits when the script allows it
        (DFC_FIELD_NOTES section 3: the diagnostic tool's "might have implicit compression")."""
        if _NO_COMPRESSION.search(self._script) and _NO_AUTO_4BIT.search(self._script):
            return []
        model = onnx.load_from_string(self._onnx)
        sizes = {i.name: int(np.prod(i.dims)) for i in model.graph.initializer}
        nodes = [n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")
                 and len(n.input) > 1 and sizes.get(n.input[1], 0) >= IMPLICIT_4BIT_WEIGHTS]
        if nodes:
            _log("acceleras.log", f"[warning] {len(nodes)} layers were compressed to 4-bit "
                 "weights (compression_level was not set to 0)")
        return nodes

    def _add_script_layers(self) -> None:
        """After optimize the HN holds the layers the script added (DFC_FIELD_NOTES section
        4): the normalization layer sits between the input layer and its consumers."""
        net = self._net()
        for name in _NORM_DECL.findall(self._script):
            bare = name.split("/", 1)[-1]
            key = f"{net}/{bare}"
            if key in self._hn["layers"]:
                continue
            source_key = next(k for k, v in self._hn["layers"].items()
                              if v["type"] == "input_layer")
            source = self._hn["layers"][source_key]
            for consumer in source["output"]:
                layer = self._hn["layers"][consumer]
                layer["input"] = [key if i == source_key else i for i in layer["input"]]
            self._hn["layers"][key] = {
                "type": "normalization", "input": [source_key], "output": list(source["output"]),
                "input_shapes": source["output_shapes"], "output_shapes": source["output_shapes"],
                "original_names": [], "params": {}}
            source["output"] = [key]
            self._script_layers.append(bare)

    def optimize(self, calib_data: Any) -> None:
        array = self._check_calib(calib_data)
        self._maybe_fail("optimize")
        self._walls("optimize")
        level, why = self._optimization_level(len(array))
        if level >= 2 and not _has_gpu():
            _log("acceleras.log", f"[warning] optimization_level={level} on the CPU: AdaRound and "
                 "fine-tuning take hours without a GPU")
        self.optimization = {"level": level, "why": why, "gpu": _has_gpu()}
        os.makedirs(os.path.join(os.getcwd(), ".stats_collection"), exist_ok=True)
        calib = self._calibset(array)
        self._fuse_bn_into_fc()
        self._quant = _emulator.calibrate(self._onnx, self._hn, self._script, calib)
        self._quant["w4_nodes"] = self._implicit_4bit()
        self._applied_script = self._script
        self._add_script_layers()
        self._record_precisions()
        self._state = "quantized_model"

    def _fuse_bn_into_fc(self) -> None:
        """A batch_norm right after an fc is fused into it during optimization; a 16-bit
        request on the batch_norm is lost with a warning (DFC_FIELD_NOTES sections 5, 11)."""
        net = self._net()
        requested = set(_emulator.a16_layer_names(self._script))
        for key, layer in list(self._hn["layers"].items()):
            if layer["type"] != "batch_norm" or len(layer["input"]) != 1:
                continue
            source = self._hn["layers"].get(layer["input"][0])
            if source is None or source["type"] != "fc":
                continue
            bare = key.split("/", 1)[1]
            if bare in requested:
                _log("acceleras.log", f"[warning] layers ['{key}'] could not be found in scope")
            source["original_names"] += layer["original_names"]
            source["output"] = list(layer["output"])
            source["output_shapes"] = layer["output_shapes"]
            for consumer in layer["output"]:
                self._hn["layers"][consumer]["input"] = [
                    layer["input"][0] if i == key else i
                    for i in self._hn["layers"][consumer]["input"]]
            del self._hn["layers"][key]
            order = self._hn["net_params"].get("output_layers_order", [])
            self._hn["net_params"]["output_layers_order"] = [
                layer["input"][0] if o == key else o for o in order]
        del net

    def _record_precisions(self) -> None:
        """Each layer's precision after optimize, in the optimized HN (`precision_mode` in the
        layer: the stand-in's field; where the real DFC keeps it is unverified). A layer a
        `# standin-drop-a16: <layer>` directive names ends 8-bit silently, as a lost request
        does in the field."""
        dropped = {a for args in self._directives("drop-a16") for a in args}
        requested = set(_emulator.a16_layer_names(self._script)) - dropped
        for key, layer in self._hn["layers"].items():
            bare = key.split("/", 1)[1]
            layer["precision_mode"] = "a16_w16" if bare in requested else "a8_w8"
        if dropped:
            self._quant["a16_nodes"] = sorted(
                set(self._quant["a16_nodes"]) - {
                    o for k, v in self._hn["layers"].items() if k.split("/", 1)[1] in dropped
                    for o in v.get("original_names", [])})

    # --- layer noise analysis (DFC_NOTES "Layer noise analysis") ----------------------------
    def analyze_noise(self, *, dataset: Any, batch_size: int = 2, data_count: int = 64,
                      analyze_mode: str = "simple") -> None:
        """Per-layer SNR into the runner's params statistics; returns None (results live in
        the quantized model, as the evidence says)."""
        if self._state != "quantized_model":
            raise SDKException(f"Layer noise analysis needs a quantized model (state {self._state})")
        if analyze_mode not in ("simple", "advanced"):
            raise SDKException(f"analyze_mode must be 'simple' or 'advanced', got {analyze_mode!r}")
        array = self._check_calib(dataset)
        if data_count > len(array):
            # Unverified: strict rather than silently analysing fewer images.
            raise SDKException(f"data_count {data_count} exceeds the {len(array)} images given")
        self._maybe_fail("analyze_noise")
        script = self._script or self._applied_script
        by_node = _emulator.layer_snr(self._onnx, script, self._quant, array[:data_count],
                                      analyze_mode)
        key = "layer_noise_analysis/snr" if analyze_mode == "advanced" else \
            "layer_noise_analysis/partial_snr"
        self._noise = {}
        for name, layer in self._hn["layers"].items():
            values = [by_node[o] for o in layer.get("original_names", []) if o in by_node]
            if values:
                self._noise[name] = {key: [min(values)]}
        _log("hailo_sdk.client.log", f"[info] layer noise analysis ({analyze_mode}) of "
             f"{len(self._noise)} layers on {data_count} images")

    def get_params_statistics(self) -> "_ParamsStatistics":
        self._net()
        return _ParamsStatistics(self._noise)

    # --- compile ---------------------------------------------------------------------------
    def compile(self) -> bytes:
        if self._state != "quantized_model":
            raise SDKException(f"Model must be quantized before compile (state {self._state})")
        self._maybe_fail("compile")
        self._walls("compile")
        performance = re.findall(r"^\s*performance_param\(([^)]*)\)", self._script, re.M)
        _log("allocator.log", f"[info] compiling {self._net()} for {self.hw_arch}; "
             f"performance_param: {performance or 'none loaded'}")
        # The output vstream is named after the layer FEEDING the output layer, and is
        # UINT16 when the output layer is 16-bit (DFC_FIELD_NOTES section 9).
        outputs = [{"name": layer["input"][0] if layer["input"] else name,
                    "shape": layer["output_shapes"][0][1:],
                    "format": "UINT16" if layer.get("precision_mode", "").startswith("a16")
                    else "UINT8"}
                   for name, layer in self._hn["layers"].items()
                   if layer["type"] == "output_layer"]
        summary = {"net": self._net(), "hw_arch": self.hw_arch, "standin": True,
                   "outputs": outputs,
                   "dfc_version": __version__, "layers": len(self._hn["layers"]),
                   "performance_param": performance}
        return STANDIN_HEF_MAGIC + json.dumps(summary).encode()

    # --- emulation -------------------------------------------------------------------------
    @contextlib.contextmanager
    def infer_context(self, context: InferenceContext):
        yield context

    def infer(self, context: InferenceContext, data: Any) -> np.ndarray:
        array = np.asarray(data, dtype=np.float32)
        quantized = context in (InferenceContext.SDK_QUANTIZED, InferenceContext.SDK_BIT_EXACT)
        if quantized and self._state != "quantized_model":
            raise SDKException("SDK_QUANTIZED inference needs an optimized model")
        script = self._script or self._applied_script
        out = _emulator.run(self._onnx, script, self._quant if quantized else None, array)
        if quantized and self._directives("degenerate"):
            # Mimic a collapsed build: every face maps to nearly the same embedding.
            out = np.tile(out.mean(axis=0, keepdims=True), (len(out), 1)) + 1e-3 * out
        return out


class _ParamsStatistics:
    """Indexed by HN layer name only, as the evidence uses it (`stats[layer.name].get(key)`);
    no iteration: hailoc must ask for the layers it knows."""

    def __init__(self, noise: dict[str, dict[str, list[float]]]) -> None:
        self._noise = noise

    def __getitem__(self, layer: str) -> dict[str, Any]:
        if not isinstance(layer, str):
            raise TypeError("layer names are strings")
        return {k: np.asarray(v, dtype=np.float32) for k, v in self._noise.get(layer, {}).items()}


def _har_arch(path: str) -> str:
    with tarfile.open(path, "r") as tar:
        for member in tar.getmembers():
            if member.name.endswith(".metadata.json"):
                return str(json.loads(tar.extractfile(member).read()).get("hw_arch", "hailo8"))
    return "hailo8"
