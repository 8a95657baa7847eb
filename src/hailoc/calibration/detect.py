"""Face detectors that give a box, a score and 5 landmarks per face (ONNX Runtime, CPU)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from hailoc.cache import cache_key
from hailoc.calibration.template import ALIGNED_BOX, FloatArray
from hailoc.errors import HailocError
from hailoc.manifest.schema import DetectorSpec
from hailoc.owned_files import sha256_file


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
    """An ONNX Runtime CPU session; one thread so results do not depend on worker count, and
    the portable execution so landmarks (and so the aligned pixels) do not depend on the CPU."""
    import onnxruntime as ort

    from hailoc.execution import session_options

    options = session_options(threads)
    options.inter_op_num_threads = 1
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
    """SCRFD (*_kps models) through insightface's own model_zoo code: its letterbox, anchor
    decode and NMS, so detections are the ones users' insightface pipelines see."""

    def __init__(self, spec: DetectorSpec, root: Path) -> None:
        from insightface.model_zoo.scrfd import SCRFD

        path = root / spec.model
        try:
            # Our single-threaded session (results independent of worker count), used as is.
            self.model = SCRFD(
                model_file=str(path), session=session(path), static_shape_sessions=False
            )
        except HailocError:
            raise
        except Exception as exc:
            raise HailocError(
                f"insightface cannot load {path} as SCRFD: {str(exc).splitlines()[0][:200]}",
                where="defaults.detector.model",
                fix="use an SCRFD *_kps model (e.g. det_10g.onnx) or kind: ultraface",
            ) from None
        if not self.model.use_kps:
            raise HailocError(
                f"SCRFD model {spec.model} gives no keypoints: alignment needs 5 points",
                where="defaults.detector.model",
                fix="use an SCRFD *_kps model (e.g. det_10g.onnx) or kind: ultraface",
            )
        size = (spec.input_size, spec.input_size)
        self.model.prepare(
            -1, input_size=size, det_thresh=spec.score_threshold, nms_thresh=spec.nms_iou
        )
        self.landmarks = Landmarks68(root / spec.landmarks) if spec.landmarks else None

    def detect(self, image: Image.Image) -> list[Face]:
        """Faces with SCRFD's own 5 keypoints (insightface takes cv2's BGR images)."""
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8)[..., ::-1])
        boxes, points = self.model.detect(bgr)
        assert points is not None
        return [
            Face(
                (float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                float(b[4]),
                np.asarray(points[i], np.float64),
            )
            for i, b in enumerate(np.asarray(boxes))
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


def _insightface_version() -> str:
    from importlib.metadata import version

    return version("insightface")


def detector_info(spec: DetectorSpec, project_root: Path) -> dict[str, Any]:
    """What identifies a detector setting (kind, implementation, thresholds, model files'
    sha256): recorded in calibration sets, and the key of cached aligned faces."""
    info: dict[str, Any] = {
        "kind": spec.kind,
        # SCRFD runs through insightface's model_zoo; UltraFace through hailoc's decoder.
        "implementation": (
            f"insightface {_insightface_version()} model_zoo.SCRFD"
            if spec.kind == "scrfd"
            else "hailoc UltraFace + 68-point landmarks"
        ),
        "score_threshold": spec.score_threshold,
        "nms_iou": spec.nms_iou,
    }
    for key, rel in (("detector", spec.model), ("landmarks", spec.landmarks)):
        if rel is not None:
            info[key] = {"path": rel, "sha256": sha256_file(project_root / rel)}
    return info


def detector_key(spec: DetectorSpec, project_root: Path) -> str:
    """Cache key of a detector setting (faces aligned by it are cached under it)."""
    return cache_key("detector", detector_info(spec, project_root))
