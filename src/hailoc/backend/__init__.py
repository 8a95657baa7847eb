"""Build backends: hailo (the DFC in the suite container) and onnxruntime (host emulation)."""
