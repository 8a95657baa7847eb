"""Deployment: deploy.json beside every build (how an application feeds the model and which
threshold to use), and `hailoc verify` of a built HEF on a Hailo device through HailoRT."""

from hailoc.deploy.manifest import DeployArtifact, deploy_for, json_schema

__all__ = ["DeployArtifact", "deploy_for", "json_schema"]
