"""Backends: what differs between building on Hailo's DFC and emulating with ONNX Runtime."""
