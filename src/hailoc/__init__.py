"""hailoc: reproducible Hailo HEF builds for face-recognition ONNX models."""

__version__ = "0.1.0"
