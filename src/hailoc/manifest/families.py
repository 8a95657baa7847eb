"""What each model family expects at its input, so a wrong std or colour order is caught early."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Color = Literal["RGB", "BGR"]


@dataclass(frozen=True)
class FamilyNorm:
    """The input normalization and colour order a family was trained with."""

    mean: float
    std: float
    color: Color
    source: str


# Values come from each family's reference preprocessing; keep this the only copy.
FAMILIES: dict[str, FamilyNorm] = {
    # MagFace trains on cv2 (BGR) images with ToTensor() and mean 0 / std 1, i.e. x / 255.
    "magface": FamilyNorm(0.0, 255.0, "BGR", "MagFace dataloader (ToTensor, Normalize(0, 1))"),
    # AdaFace feeds BGR and ((x / 255) - 0.5) / 0.5, i.e. (x - 127.5) / 127.5.
    "adaface": FamilyNorm(127.5, 127.5, "BGR", "AdaFace inference.to_input"),
    # faceplugin's fr_feature.onnx: (x - 127) / 128 on RGB, read off the package's JS code.
    "faceplugin": FamilyNorm(127.0, 128.0, "RGB", "faceplugin-face-recognition-js"),
}
