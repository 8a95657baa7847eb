"""Classify build failures into known DFC walls with a remedy hint."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class FailureClass:
    """A known way a build fails, how to recognise it, and what to do about it."""

    name: str
    pattern: str
    hint: str


# Order matters: specific messages before the exception types that also carry them.
KNOWN: tuple[FailureClass, ...] = (
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
        r"AllocatorScriptParserException|Cannot find layer",
        "the .alls names a layer the parsed network does not have: re-render it from the HN",
    ),
    FailureClass(
        "parse",
        r"ParsingError|Unable to find node|UnsupportedModelError",
        "the parser rejected the ONNX: check start_nodes/end_nodes and the model's opset",
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
UNKNOWN = FailureClass("unknown", "", "read build.log beside the record")


def classify(error_type: str, message: str) -> FailureClass:
    """The known failure class matching an error's type and message, else `unknown`."""
    text = f"{error_type}: {message}"
    for known in KNOWN:
        if re.search(known.pattern, text):
            return known
    return UNKNOWN
