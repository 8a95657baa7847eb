"""models.yaml: schema, loading and per-model resolution."""

from hailoc.manifest.loader import LoadedManifest, ModelConfig, find_manifest, load_manifest

__all__ = ["LoadedManifest", "ModelConfig", "find_manifest", "load_manifest"]
