"""ONNX Runtime on the host: sessions and preprocessing shared by the reference and backends."""
