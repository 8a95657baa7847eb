"""Run a hailoc build's HEF on a Hailo device: embed two aligned faces and match them.

Everything the program needs comes from deploy.json, which hailoc writes beside every
artifact: the input (uint8 NHWC in the model's colour order, normalization on the chip, so
the program must NOT normalize), the output to request (FLOAT32 vstreams: HailoRT
dequantizes on the host, no hand-written scale / zero point), "L2-normalize, then cosine",
the build's own threshold at FAR 1e-3 and its pre_norm floor.

HailoRT Python API used (hailo_platform; hailo-ai/hailort, bindings/python/platform/
hailo_platform/pyhailort/pyhailort.py, as listed in hailoc's ../shared/DFC_NOTES.md):
HEF, VDevice, ConfigureParams.create_from_hef, HailoStreamInterface.PCIe,
InputVStreamParams.make / OutputVStreamParams.make(format_type=FormatType...), InferVStreams,
network_group.activate(); on Hailo-10H, VDevice.create_infer_model instead.

Usage: python examples/run_hef.py BUILD_FOLDER FACE_A FACE_B
  BUILD_FOLDER: e.g. hef/fr_feature/hailo8/int16-final (holds deploy.json and the HEF)
  FACE_A/B:     aligned 112x112 face images (insightface norm_crop, or hailoc's eval faces)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def load_face(path: Path, deploy: dict) -> np.ndarray:
    """An aligned face as the HEF takes it: uint8, H x W x 3, in the model's colour order."""
    spec = deploy["input"]
    _, height, width, _ = spec["shape"]
    image = Image.open(path).convert("RGB")
    if image.size != (width, height):
        sys.exit(f"{path}: {image.size[0]}x{image.size[1]}; align faces to {width}x{height} first")
    pixels = np.asarray(image, dtype=np.uint8)
    if spec["color"] == "BGR":
        pixels = pixels[..., ::-1]
    # No normalization here: deploy.json says the HEF normalizes on the chip.
    assert spec["normalization_inside"], "deploy.json: this HEF expects normalized input"
    return np.ascontiguousarray(pixels)


def embed(hef_path: Path, faces: np.ndarray) -> np.ndarray:
    """Raw embeddings (before L2 normalization) of uint8 NHWC faces, as float32.

    Hailo-8/8L take the VStreams API; on Hailo-10H it answers HAILO_NOT_IMPLEMENTED and
    VDevice.create_infer_model is the way, so both are here.
    """
    from hailo_platform import HEF, VDevice

    with VDevice() as device:
        try:
            return embed_vstreams(device, HEF(str(hef_path)), faces)
        except Exception as exc:
            if "HAILO_NOT_IMPLEMENTED" not in str(exc):
                raise
        return embed_infer_model(device, hef_path, faces)


def embed_vstreams(device, hef, faces: np.ndarray) -> np.ndarray:
    from hailo_platform import (
        ConfigureParams,
        FormatType,
        HailoStreamInterface,
        InferVStreams,
        InputVStreamParams,
        OutputVStreamParams,
    )

    # Stream names come from the HEF (a 16-bit output is named after the layer feeding it).
    input_name = hef.get_input_vstream_infos()[0].name
    output_name = hef.get_output_vstream_infos()[0].name
    params = ConfigureParams.create_from_hef(hef, interface=HailoStreamInterface.PCIe)
    network_group = device.configure(hef, params)[0]
    inputs = InputVStreamParams.make(network_group, format_type=FormatType.UINT8)
    # FLOAT32 outputs: HailoRT dequantizes; reading UINT8 and scaling by hand is the bug.
    outputs = OutputVStreamParams.make(network_group, format_type=FormatType.FLOAT32)
    with InferVStreams(network_group, inputs, outputs) as pipeline, network_group.activate():
        result = pipeline.infer({input_name: faces})
    return np.asarray(result[output_name], dtype=np.float32).reshape(len(faces), -1)


def embed_infer_model(device, hef_path: Path, faces: np.ndarray) -> np.ndarray:
    from hailo_platform import FormatType

    model = device.create_infer_model(str(hef_path))
    model.input().set_format_type(FormatType.UINT8)
    model.output().set_format_type(FormatType.FLOAT32)  # dequantized on the host, as above
    out = np.zeros((len(faces), int(np.prod(model.output().shape))), np.float32)
    with model.configure() as configured:
        bindings = []
        for face, row in zip(faces, out, strict=True):
            binding = configured.create_bindings()
            binding.input().set_buffer(np.ascontiguousarray(face))
            binding.output().set_buffer(row)
            bindings.append(binding)
        configured.run(bindings, 10_000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", type=Path, help="folder with deploy.json and the HEF")
    parser.add_argument("face_a", type=Path)
    parser.add_argument("face_b", type=Path)
    args = parser.parse_args()
    deploy = json.loads((args.build / "deploy.json").read_text())
    if deploy["input"]["dtype"] != "uint8":
        sys.exit(f"deploy.json describes a {deploy['artifact']['kind']}, not a HEF")
    faces = np.stack([load_face(args.face_a, deploy), load_face(args.face_b, deploy)])
    raw = embed(args.build / deploy["artifact"]["file"], faces)
    norms = np.linalg.norm(raw, axis=1)
    unit = raw / np.maximum(norms[:, None], 1e-12)  # L2-normalize, then cosine
    similarity = float(unit[0] @ unit[1])
    threshold = deploy["threshold"]["value"]
    floor = deploy["pre_norm_floor"]["value"]
    for path, norm in zip((args.face_a, args.face_b), norms, strict=True):
        if floor is not None and norm < floor:
            print(f"{path.name}: pre_norm {norm:.2f} < floor {floor:.2f}: too far/blurry to match")
    same = similarity >= threshold
    print(
        f"similarity {similarity:.4f}: {'same person' if same else 'different people'} "
        f"(threshold {threshold:.4f} at FAR {deploy['threshold']['far']:g}, "
        "measured for this build)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
