"""Face detectors that give a box, a score and 5 landmarks per face (ONNX Runtime, CPU)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from hailoc.calibration.template import ALIGNED_BOX, FloatArray
from hailoc.errors import HailocError
from hailoc.manifest.schema import DetectorSpec


@dataclass(frozen=True)
class Face:
    """One detection in image pixels."""

    box: tuple[float, float, float, float]
    score: float
    points: FloatArray  # (5, 2): left eye, right eye, nose, left and right mouth corners

    @property
    def width(self) -> float:
        """Box width in pixels: the face size used for thresholds and histograms."""
        return self.box[2] - self.box[0]


class Detector(Protocol):
    """What the calibration builder needs from a detector."""

    def detect(self, image: Image.Image) -> list[Face]:
        """Faces in an RGB image."""

    def measure(self, face: Image.Image) -> FloatArray | None:
        """5 points re-measured on an aligned 112x112 face, or None when unsupported."""


def session(path: Path, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session; one thread so results do not depend on worker count."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise HailocError(
            f"cannot load detector model {path}: {str(exc).splitlines()[0]}",
            where="defaults.detector",
            fix="point model/landmarks at valid ONNX files",
        ) from None


def nms(boxes: FloatArray, scores: FloatArray, iou: float) -> list[int]:
    """Greedy non-maximum suppression; indices of kept boxes, best first."""
    order = np.argsort(-scores, kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(
        boxes[:, 3] - boxes[:, 1], 0, None
    )
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.clip(
            np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]),
            0,
            None,
        )
        h = np.clip(
            np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]),
            0,
            None,
        )
        inter = w * h
        union = areas[i] + areas[rest] - inter
        order = rest[inter <= iou * np.maximum(union, 1e-9)]
    return keep


class Landmarks68:
    """fr_landmark.onnx: 68 points from a 64x64 grayscale crop of the face box (value / 256)."""

    def __init__(self, path: Path) -> None:
        self.sess = session(path)
        self.input = self.sess.get_inputs()[0].name

    def five(self, image: Image.Image, box: tuple[float, float, float, float]) -> FloatArray:
        """5 alignment points in image pixels for the face in `box`."""
        x1, y1, x2, y2 = (round(v) for v in box)
        x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
        crop = image.convert("L").crop((x1, y1, x2, y2)).resize((64, 64), Image.Resampling.BILINEAR)
        data = (np.asarray(crop, dtype=np.float32) / 256.0)[None, None]
        pts = self.sess.run(None, {self.input: data})[0].reshape(68, 2).astype(np.float64)
        pts = pts * [x2 - x1, y2 - y1] + [x1, y1]
        return np.stack(
            [
                pts[[37, 38, 40, 41]].mean(0),
                pts[[43, 44, 46, 47]].mean(0),
                pts[30],
                pts[[48, 60]].mean(0),
                pts[[54, 64]].mean(0),
            ]
        )


class UltraFace:
    """fr_detect.onnx (Ultra-Light RFB-320): 320x240 RGB (x - 127) / 128, decoded boxes."""

    def __init__(self, spec: DetectorSpec, root: Path) -> None:
        self.sess = session(root / spec.model)
        self.input = self.sess.get_inputs()[0].name
        assert spec.landmarks is not None
        self.landmarks = Landmarks68(root / spec.landmarks)
        self.threshold = spec.score_threshold
        self.iou = spec.nms_iou

    def detect(self, image: Image.Image) -> list[Face]:
        """Faces with 5 points from the landmark model."""
        width, height = image.size
        small = np.asarray(image.resize((320, 240), Image.Resampling.BILINEAR), dtype=np.float32)
        data = ((small - 127.0) / 128.0).transpose(2, 0, 1)[None]
        scores, boxes = self.sess.run(None, {self.input: data})
        face_scores = scores[0, :, 1].astype(np.float64)
        mask = face_scores > self.threshold
        found = boxes[0][mask].astype(np.float64) * [width, height, width, height]
        found_scores = face_scores[mask]
        faces = []
        for i in nms(found, found_scores, self.iou):
            box = tuple(float(v) for v in found[i])
            faces.append(Face(box, float(found_scores[i]), self.landmarks.five(image, box)))  # type: ignore[arg-type]
        return faces

    def measure(self, face: Image.Image) -> FloatArray | None:
        """Re-measure points on an aligned face in the fixed aligned-face box."""
        return self.landmarks.five(face, ALIGNED_BOX)


class Scrfd:
    """insightface SCRFD (*_kps models): letterboxed square input, 3 strides x 2 anchors."""

    STRIDES = (8, 16, 32)
    ANCHORS = 2

    def __init__(self, spec: DetectorSpec, root: Path) -> None:
        self.sess = session(root / spec.model)
        self.input = self.sess.get_inputs()[0].name
        outputs = self.sess.get_outputs()
        if len(outputs) != 9:
            raise HailocError(
                f"SCRFD model {spec.model} has {len(outputs)} outputs, expected 9 "
                "(scores, boxes and keypoints at strides 8/16/32)",
                where="defaults.detector.model",
                fix="use an SCRFD *_kps model or kind: ultraface",
            )
        self.size = spec.input_size
        self.threshold = spec.score_threshold
        self.iou = spec.nms_iou
        self.landmarks = Landmarks68(root / spec.landmarks) if spec.landmarks else None

    def detect(self, image: Image.Image) -> list[Face]:
        """Faces with SCRFD's own 5 keypoints."""
        width, height = image.size
        scale = self.size / max(width, height)
        resized = image.resize(
            (max(1, round(width * scale)), max(1, round(height * scale))),
            Image.Resampling.BILINEAR,
        )
        canvas = np.zeros((self.size, self.size, 3), dtype=np.float32)
        canvas[: resized.height, : resized.width] = np.asarray(resized, dtype=np.float32)
        data = ((canvas - 127.5) / 128.0).transpose(2, 0, 1)[None]
        outs = self.sess.run(None, {self.input: data})
        all_boxes, all_scores, all_points = [], [], []
        for level, stride in enumerate(self.STRIDES):
            scores = np.asarray(outs[level]).reshape(-1).astype(np.float64)
            dist = np.asarray(outs[level + 3]).reshape(-1, 4).astype(np.float64) * stride
            kps = np.asarray(outs[level + 6]).reshape(-1, 10).astype(np.float64) * stride
            side = self.size // stride
            ys, xs = np.mgrid[:side, :side]
            centers = np.stack([xs, ys], -1).reshape(-1, 2).astype(np.float64) * stride
            centers = np.repeat(centers, self.ANCHORS, axis=0)
            keep = scores >= self.threshold
            c = centers[keep]
            d = dist[keep]
            all_boxes.append(np.concatenate([c - d[:, :2], c + d[:, 2:]], axis=1))
            all_points.append(kps[keep].reshape(-1, 5, 2) + c[:, None, :])
            all_scores.append(scores[keep])
        boxes = np.concatenate(all_boxes) / scale
        points = np.concatenate(all_points) / scale
        scores_all = np.concatenate(all_scores)
        return [
            Face(tuple(float(v) for v in boxes[i]), float(scores_all[i]), points[i])  # type: ignore[arg-type]
            for i in nms(boxes, scores_all, self.iou)
        ]

    def measure(self, face: Image.Image) -> FloatArray | None:
        """Re-measure with the optional landmark model; SCRFD alone does not refine."""
        return self.landmarks.five(face, ALIGNED_BOX) if self.landmarks else None


def make_detector(spec: DetectorSpec, root: Path) -> Detector:
    """Instantiate the detector the manifest describes (paths relative to `root`)."""
    for rel in (spec.model, spec.landmarks):
        if rel is not None and not (root / rel).is_file():
            raise HailocError(
                f"detector model {root / rel} not found",
                where="defaults.detector",
                fix="put the model there or point defaults.detector at your ONNX files",
            )
    if spec.kind == "scrfd":
        return Scrfd(spec, root)
    return UltraFace(spec, root)
