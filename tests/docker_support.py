"""Docker fixtures for the end-to-end tests: a real engine and the stand-in suite image."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
STANDIN_IMAGE = "hailoc-standin-suite:latest"  # DFC v3-like: the Hailo-8 family
STANDIN_V5_IMAGE = "hailoc-standin-suite-v5:latest"  # DFC v5-like: Hailo-10H/15
VERSIONS = {STANDIN_IMAGE: "3.33.0+standin", STANDIN_V5_IMAGE: "5.1.0+standin"}


def engine_or_skip() -> Any:
    """A connected Docker client; in CI (HAILOC_REQUIRE_DOCKER=1) a missing engine fails."""
    required = os.environ.get("HAILOC_REQUIRE_DOCKER") == "1"
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:
        if required:
            pytest.fail(f"HAILOC_REQUIRE_DOCKER=1 but no Docker engine: {exc}")
        pytest.skip(f"no Docker engine: {exc}")
    return client


def ensure_standin_image(tag: str = STANDIN_IMAGE) -> str:
    """Build (or refresh, when tests/standin changed) a stand-in suite image."""
    proc = subprocess.run(
        [str(REPO / "scripts" / "build-standin-image"), tag, VERSIONS[tag]],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        message = f"scripts/build-standin-image failed: {proc.stderr.strip()[-500:]}"
        if os.environ.get("HAILOC_REQUIRE_DOCKER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return tag


def add_models(project: Path, **entries: dict[str, Any]) -> None:
    """Add models to the project's manifest, each a copy of fr_feature with overrides."""
    path = project / "models.yaml"
    data = yaml.safe_load(path.read_text())
    for name, overrides in entries.items():
        data["models"][name] = {**data["models"]["fr_feature"], **overrides}
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def only_models(project: Path, *names: str) -> None:
    """Drop every other model from the project's manifest (keeps `--all` small)."""
    path = project / "models.yaml"
    data = yaml.safe_load(path.read_text())
    data["models"] = {k: v for k, v in data["models"].items() if k in names}
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def start_hailoc(project: Path, *args: str) -> subprocess.Popen[str]:
    """`hailoc -m <project>/models.yaml ARGS` in its own process (for signal tests)."""
    return subprocess.Popen(
        [sys.executable, "-m", "hailoc", "-m", str(project / "models.yaml"), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module", name="suite")
def suite_fixture() -> Iterator[str]:
    """A running engine and the stand-in suite image (refreshed when tests/standin changed)."""
    client = engine_or_skip()
    yield ensure_standin_image()
    client.close()
