"""The ONNX Runtime backend: the same plan emulated with QDQ quantization on the host."""
