"""Classify build failures into known DFC walls with a remedy hint."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hailoc.records.schema import FAILURE_CLASSES, FailureClassName


@dataclass(frozen=True)
class FailureClass:
    """A known way a build fails, how to recognise it, and what to do about it."""

    name: FailureClassName
    pattern: str
    hint: str


# Order matters: specific messages before the exception types that also carry them.
KNOWN: tuple[FailureClass, ...] = (
    FailureClass(
        "transfer",
        r"InputChecksumError|OutputChecksumError",
        "a file changed on its way to or from the engine: run the same command again; if it "
        "repeats, remove the engine's blob volume (`docker volume rm hailoc-blobs` there)",
    ),
    FailureClass(
        "super_defuse",
        r"needs super-defuse",
        "16-bit on a wide non-conv layer: drop it from the 16-bit set",
    ),
    FailureClass(
        "nan_exponent",
        r"arange: cannot compute length|AccelerasNegativeSlopesError|Negative slopes",
        "NaN exponent in an a16 conv: drop that conv from the 16-bit set or try a16_w8",
    ),
    FailureClass(
        "unsupported_16bit",
        r"AccelerasUnsupportedError|Unsupported layers for the provided optimization target",
        "a layer in the 16-bit set has no 16-bit support: remove it (see hailoc plan NAME)",
    ),
    FailureClass(
        "nan_params",
        r"Unsupported NaN values were found in params",
        "the model's weights hold NaN: re-export the ONNX or check the calibration set",
    ),
    FailureClass(
        "allocator",
        r"BackendAllocatorException|could not find a valid partition",
        "the allocator could not place the network: fewer 16-bit layers (never a 16-bit "
        "softmax), or a larger target (hailo8 instead of hailo8l)",
    ),
    FailureClass(
        "script",
        r"AllocatorScriptParserException|Cannot find layer|"
        r"HailoNNException: The layer named .* doesn't exist in the HN|"
        r"doesn't exist in the HN|already exists in the HN",
        "the .alls names a layer the parsed network does not have (or redeclares one it "
        "has): re-render it from the HN",
    ),
    FailureClass(
        "parse",
        r"ParsingError|Unable to find node|UnsupportedModelError|"
        r"ParsingWithRecommendationException|MisspellNodeError",
        "the parser rejected the ONNX: check start_nodes/end_nodes (the DFC's recommendation "
        "is in build.log) and the model's opset",
    ),
    FailureClass(
        "calibration",
        r"[Cc]alibration data",
        "the calibration array does not fit the model: rebuild it with hailoc calib build",
    ),
)

TIMEOUT = FailureClass("timeout", "", "raise --stage-timeout, or run on a GPU host")
KILLED = FailureClass(
    "killed", "", "the container was killed (out of memory?): give Docker 16 GB RAM, 32 advised"
)
OOM = FailureClass(
    "oom", "", "the stage ran out of memory: give Docker (or the container) 16 GB RAM, 32 advised"
)
ENGINE_LOST = FailureClass(
    "engine_lost",
    "",
    "the Docker engine went away (restarted, host down, ssh dropped): run the same command "
    "again; finished stages are cached",
)
UNKNOWN = FailureClass("unknown", "", "read build.log beside the record")
PLAN_NOT_APPLIED = FailureClass(
    "plan_not_applied",
    "",
    "the DFC ended these planned layers 8-bit (a request on a layer fused away, or one it "
    "ignored): plan on the layer that carries it (`hailoc plan NAME --hn parsed.hn.json`) and "
    "read acceleras.log in dfc-logs/optimize/",
)

# What to look at when a stage fails with a message hailoc does not know.
_BY_STAGE = {
    "parse": "the parse stage failed: check start_nodes/end_nodes and the opset; build.log "
    "has the DFC's message",
    "optimize": "the optimize stage failed: check the calibration set and the 16-bit layers; "
    "build.log and dfc-logs/ have the DFC's messages",
    "compile": "the compile stage failed: fewer 16-bit layers or a larger target; build.log "
    "and dfc-logs/ have the allocator's messages",
}


def classify(error_type: str, message: str, stage: str | None = None) -> FailureClass:
    """The known failure class matching an error's type and message (and stage), else
    `unknown` with a hint for the stage it happened in."""
    text = f"{error_type}: {message}"
    for known in KNOWN:
        if re.search(known.pattern, text):
            return known
    if stage in _BY_STAGE:
        return FailureClass(UNKNOWN.name, "", _BY_STAGE[stage])
    return UNKNOWN


# Failures that depend on the 16-bit set: a Hailo build narrows the set and tries again
# (pipeline/walls.py). A cached failure of one of these replays without running the stage.
WALL_CLASSES = frozenset(
    {"nan_exponent", "super_defuse", "unsupported_16bit", "allocator", PLAN_NOT_APPLIED.name}
)

# The field's texts name layers as `<net>/<layer>[/<sub-layer>...]`: thread 19530 (NaN
# exponent: `for layer <net>/conv4/conv_low_sub_layer/act_op`; `Assignment of normalization1
# needs super-defuse`), thread 9698 (the unsupported layers listed in the log, one
# `<net>/<layer>:` line each, followed by their quantization settings).
_NAMED = {
    "nan_exponent": re.compile(r"for layer ([\w./-]+)"),
    "super_defuse": re.compile(r"Assignment of ([\w./-]+) needs super-defuse"),
    "unsupported_16bit": re.compile(
        r"Unsupported layers for the provided optimization target:\s*([\w/, .-]+)$"
    ),
    PLAN_NOT_APPLIED.name: re.compile(r"8-bit after optimization:\s*([\w/, .-]+)$"),
}
_LOG_LISTED = re.compile(r"Unsupported layers for the target[^:]*:\s*(.*)", re.S)
_LISTED_LAYER = re.compile(r"^\s*([\w.-]+/[\w./-]+):\s*$", re.M)


def _bare(name: str, net: str | None) -> str:
    """`<net>/conv4/conv_low_sub_layer/act_op` -> `conv4`; `conv4` -> `conv4`."""
    parts = [p for p in name.strip().split("/") if p]
    if len(parts) > 1 and (net is None or parts[0] == net or len(parts) > 2):
        parts = parts[1:]
    return parts[0] if parts else ""


def wall_layers(
    failure_class: str, message: str, logs: str = "", net: str | None = None
) -> tuple[str, ...]:
    """The HN layers (bare names) a 16-bit wall's message or the DFC's log names; empty
    when the wall names none (the allocator's crash, `arange: cannot compute length`)."""
    names: list[str] = []
    pattern = _NAMED.get(failure_class)
    found = pattern.search(message.strip()) if pattern is not None else None
    if found is not None:
        if failure_class in ("unsupported_16bit", PLAN_NOT_APPLIED.name):
            names = [n for n in re.split(r"[,\s]+", found.group(1)) if n]
        else:
            names = [found.group(1)]
    if failure_class == "unsupported_16bit" and not names:
        listed = _LOG_LISTED.search(logs)
        if listed is not None:
            names = _LISTED_LAYER.findall(listed.group(1))
    bare = [_bare(n, net) for n in names]
    return tuple(dict.fromkeys(b for b in bare if b))


def failure_class_of(name: str) -> FailureClassName:
    """A class read back from a file (a cached wall, an older record): one hailoc knows,
    else `unknown`."""
    for known in FAILURE_CLASSES:
        if known == name:
            return known  # type: ignore[return-value]
    return "unknown"
