"""The one thin adapter over the Hailo DFC (`hailo_sdk_client`).

Runs inside the suite container. Uses only the API surface listed in DFC_NOTES.md; every
other file talks to the DFC through these functions. Standard library + numpy only.
"""

from __future__ import annotations

import json
from typing import Any


def parse(
    onnx_path: str,
    net_name: str,
    hw_arch: str,
    start_nodes: list[str],
    end_nodes: list[str],
    input_name: str,
    input_shape: list[int],
    har_out: str,
) -> dict[str, Any]:
    """Translate the ONNX into a HAR; return the HN dict."""
    from hailo_sdk_client import ClientRunner

    runner = ClientRunner(hw_arch=hw_arch)
    kwargs: dict[str, Any] = {"net_input_shapes": {input_name: list(input_shape)}}
    if start_nodes:
        kwargs["start_node_names"] = list(start_nodes)
    if end_nodes:
        kwargs["end_node_names"] = list(end_nodes)
    runner.translate_onnx_model(onnx_path, net_name, **kwargs)
    runner.save_har(har_out)
    hn = runner.get_hn_dict() if hasattr(runner, "get_hn_dict") else runner.get_hn()
    return hn if isinstance(hn, dict) else json.loads(hn)


def optimize(har_in: str, hw_arch: str, alls_text: str, calib: Any, har_out: str) -> Any:
    """Load the model script, quantize with the calibration array, save the optimized HAR."""
    from hailo_sdk_client import ClientRunner

    runner = ClientRunner(hw_arch=hw_arch, har=har_in)
    runner.load_model_script(alls_text)
    runner.optimize_full_precision(calib)
    runner.optimize(calib)
    runner.save_har(har_out)
    return runner


def applied_precisions(runner: Any) -> dict[str, str]:
    """Each HN layer's precision after optimize, where the optimized HN says it (the
    `precision_mode` field of a layer: the stand-in's; unverified for the real DFC, whose
    layers without it are left out, so hailoc cannot check them)."""
    hn = runner.get_hn_dict() if hasattr(runner, "get_hn_dict") else runner.get_hn()
    layers = (hn if isinstance(hn, dict) else json.loads(hn)).get("layers", {})
    found: dict[str, str] = {}
    for key, layer in layers.items():
        mode = layer.get("precision_mode") if isinstance(layer, dict) else None
        if isinstance(mode, str):
            found[str(key).split("/", 1)[-1]] = mode
    return found


def emulate(runner: Any, faces: Any) -> tuple[Any, Any]:
    """Embeddings of `faces` under SDK_FP_OPTIMIZED and SDK_QUANTIZED emulation."""
    from hailo_sdk_client import InferenceContext

    outputs = []
    for context in (InferenceContext.SDK_FP_OPTIMIZED, InferenceContext.SDK_QUANTIZED):
        with runner.infer_context(context) as ctx:
            outputs.append(runner.infer(ctx, faces))
    return outputs[0], outputs[1]


def emulate_quantized(har_in: str, hw_arch: str, faces: Any) -> Any:
    """SDK_QUANTIZED embeddings of `faces` from an optimized HAR (no optimize run)."""
    from hailo_sdk_client import ClientRunner, InferenceContext

    runner = ClientRunner(hw_arch=hw_arch, har=har_in)
    with runner.infer_context(InferenceContext.SDK_QUANTIZED) as ctx:
        return runner.infer(ctx, faces)


NOISE_KEYS = {
    "advanced": ("layer_noise_analysis/snr", "layer_noise_analysis/partial_snr"),
    "simple": ("layer_noise_analysis/partial_snr",),
}


def analyze_noise(
    har_in: str, hw_arch: str, calib: Any, data_count: int, mode: str
) -> dict[str, float]:
    """Per-layer SNR (dB, lowest over the model's outputs) from the DFC's layer noise analysis.

    Call and read-back as in DFC_NOTES ("Layer noise analysis"): analyze_noise on a quantized
    model, then get_params_statistics()[hn_layer].get("layer_noise_analysis/snr"), falling
    back to "partial_snr" (Hailo-Application-Code-Examples high_precision_inspector.py).
    """
    import numpy as np
    from hailo_sdk_client import ClientRunner

    runner = ClientRunner(hw_arch=hw_arch, har=har_in)
    # `dataset=` as public callers pass it (DFC_FIELD_NOTES section 7).
    runner.analyze_noise(dataset=calib, batch_size=2, data_count=data_count, analyze_mode=mode)
    stats = runner.get_params_statistics()
    hn = runner.get_hn_dict() if hasattr(runner, "get_hn_dict") else runner.get_hn()
    layers = (hn if isinstance(hn, dict) else json.loads(hn))["layers"]
    found: dict[str, float] = {}
    for layer in layers:
        try:
            entry = stats[layer]
        except KeyError:
            continue
        for key in NOISE_KEYS[mode]:
            value = entry.get(key) if hasattr(entry, "get") else None
            if value is not None:
                found[layer] = float(np.min(np.asarray(value, dtype=np.float64)))
                break
    return found


def compile_hef(har_in: str, hw_arch: str, alls_text: str) -> bytes:
    """Compile an optimized HAR and return the HEF bytes.

    The model script is loaded again first, as hailomz does (hailo_model_zoo
    core/main_utils.py, compile_model): performance_param / resources_param lines act here.
    """
    from hailo_sdk_client import ClientRunner

    runner = ClientRunner(hw_arch=hw_arch, har=har_in)
    if alls_text:
        runner.load_model_script(alls_text)
    return bytes(runner.compile())


def version() -> str:
    """The DFC's version string."""
    import hailo_sdk_client

    return str(getattr(hailo_sdk_client, "__version__", "unknown"))
