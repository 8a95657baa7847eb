"""Stand-in model-script validation: the real DFC parses the whole .alls when it is loaded.

Strict where the evidence is silent (docs/dfc-behaviour.md says which rows are unverified):
- a command or a keyword argument not seen in Hailo's own scripts or docs is refused;
- a precision mode is checked against the HN layer's type: the real DFC rejects a mode a
  layer type does not support at load ("Unsupported value [<PrecisionMode.a16_w16>]",
  DFC_FIELD_NOTES section 2); with no public table, the stand-in allows a mode only on the
  types Hailo's scripts (or, for fc, a third-party compiled HEF) use it on;
- a glob (`{conv*}`) is matched against HN layer names and must match at least one.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from hailo_sdk_client.exceptions import HailoNNException

# Model-modification commands (RidgeRun's summary of the guide): their arguments are not
# documented publicly, so only the command name is checked.
MODIFICATION = {"input_conversion", "transpose", "normalization", "nms_postprocess",
                "change_output_activation", "logits_layer", "set_seed", "resize"}
# command -> first positional -> allowed keyword arguments (hailo_model_zoo cfg/alls, the
# diagnostic tool, community threads: DFC_FIELD_NOTES sections 1, 3 and 8).
KEYWORDS: dict[str, dict[str | None, set[str]]] = {
    "quantization_param": {None: {"precision_mode", "force_range_out"}},
    "model_optimization_config": {
        "calibration": {"batch_size", "calibset_size"},
        "compression_params": {"auto_4bit_weights_ratio", "auto_16bit_weights_ratio"},
        "globals": {"output_encoding_vector"},
    },
    "model_optimization_flavor": {None: {"optimization_level", "compression_level"}},
    "post_quantization_optimization": {
        "finetune": {"policy", "learning_rate", "epochs", "dataset_size"},
        "bias_correction": {"policy"},
        "adaround": {"policy", "dataset_size", "epochs"},
    },
    "pre_quantization_optimization": {
        "equalization": {"policy"},
        "activation_clipping": {"layers", "mode", "clipping_values"},
    },
    "performance_param": {None: {"compiler_optimization_level", "optimize_for_batch"}},
    "resources_param": {None: {"max_utilization", "max_compute_utilization"}},
    "allocator_param": {None: {"timeout"}},
    "context_switch_param": {None: {"mode"}},
    "compilation_param": {None: {"no_contexts"}},
}
# The PrecisionMode enum as one third-party source lists it (DFC_FIELD_NOTES section 1).
MODES = {"a8_w8", "a8_w4", "a16_w16", "a16_w8", "a16_w4", "a8_w4_exp", "a16_w16_non_zero",
         "native", "a8_w8_a8", "a8_w8_a16", "a8_w4_a8", "a8_w4_a16", "a16_w16_a8", "a16_w16_a16",
         "a16_w8_a8", "a16_w8_a16", "a16_w4_a16", "a16_w4_a8"}
A16_TYPES = {"conv", "dw", "deconv", "fc", "ew_add", "input_layer", "output_layer",
             "normalization", "concat", "slice", "maxpool", "reduce_sum", "format_conversion",
             "feature_splitter", "conv_feature_splitter",
             # Accepted at load; lost in optimize when fused into an fc (field report).
             "batch_norm"}
WEIGHTED = {"conv", "dw", "deconv", "fc"}
# mode -> (HN types, hw_arch prefixes or None for every arch)
SUPPORT: dict[str, tuple[set[str] | None, tuple[str, ...] | None]] = {
    "a8_w8": (None, None),
    "a16_w16": (A16_TYPES, None),
    # The 16-bit notebook's entry into a 16-bit chain: the producer (a conv) outputs 16 bits.
    "a8_w8_a16": (WEIGHTED | {"ew_add"}, None),
    "a8_w4": (WEIGHTED, None),
    # Seen only in the zoo's hailo15l CLIP scripts.
    "a16_w8": (WEIGHTED, ("hailo15", "hailo10")),
    "a16_w8_a16": (WEIGHTED, ("hailo15", "hailo10")),
}
_COMMAND = re.compile(r"^(?:([\w/, ]+?)\s*=\s*)?(\w+)\((.*)\)\s*$")


def _split_args(text: str) -> list[str]:
    depth, start, parts = 0, 0, []
    for i, ch in enumerate(text):
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    if text[start:].strip():
        parts.append(text[start:].strip())
    return parts


def _layers(spec: str, known: dict[str, str]) -> list[str]:
    """HN layer names a layer argument names (bare, scoped, list or glob)."""
    spec = spec.strip()
    if spec.startswith("{"):
        found = []
        for pattern in re.findall(r"[\w/*?]+", spec):
            bare = pattern.split("/", 1)[-1]
            hits = [name for name in known if fnmatch.fnmatchcase(name, bare)]
            if not hits:
                raise HailoNNException(f"No layer in the HN matches the pattern {pattern}")
            found += hits
        return found
    return [name.split("/", 1)[-1] for name in re.findall(r"[\w/]+", spec)]


def validate(text: str, hn: dict[str, Any], hw_arch: str) -> None:
    """Raise as the real DFC does at load time for anything it would not accept."""
    known = {k.split("/", 1)[1]: v["type"] for k, v in hn["layers"].items()}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _COMMAND.match(line)
        if not match:
            raise HailoNNException(f"Model script line {number}: cannot parse {line!r}")
        command, args = match.group(2), _split_args(match.group(3))
        if command in MODIFICATION:
            continue
        if command not in KEYWORDS:
            raise HailoNNException(f"Model script line {number}: unknown command {command}")
        positional = [a for a in args if "=" not in a]
        keywords = dict(a.split("=", 1) for a in args if "=" in a)
        table = KEYWORDS[command]
        section = None if None in table else (positional[0] if positional else "")
        if section not in table:
            raise HailoNNException(
                f"Model script line {number}: {command} has no section {section!r} "
                f"(known: {', '.join(sorted(str(k) for k in table))})")
        for key in keywords:
            if key.strip() not in table[section]:
                raise HailoNNException(
                    f"Model script line {number}: unexpected argument {key.strip()} for "
                    f"{command}({section or ''})")
        if command == "quantization_param" and "precision_mode" in {k.strip() for k in keywords}:
            mode = next(v.strip() for k, v in keywords.items() if k.strip() == "precision_mode")
            _check_mode(mode, _layers(positional[0], known), known, hw_arch)


def _check_mode(mode: str, layers: list[str], known: dict[str, str], hw_arch: str) -> None:
    if mode not in MODES:
        raise HailoNNException(f"Unsupported value [{mode}] for precision_mode")
    types, archs = SUPPORT.get(mode, (set(), None))
    if archs is not None and not hw_arch.startswith(archs):
        raise HailoNNException(f"Unsupported value [<PrecisionMode.{mode}>] on {hw_arch}")
    for layer in layers:
        kind = known.get(layer)
        if kind is None:
            continue  # a name the script declares itself (checked by load_model_script)
        if types is not None and kind not in types:
            raise HailoNNException(
                f"Unsupported value [<PrecisionMode.{mode}>] for layer {layer} of type {kind}")
