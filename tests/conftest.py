"""Shared fixtures: a scratch project around the real example model, CLI runner helpers."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hailoc.cli import run

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
STANDIN = Path(__file__).resolve().parent / "standin"


@dataclass
class CliResult:
    """Exit code and captured output of one `hailoc` invocation."""

    code: int
    out: str
    err: str


def _untracked() -> set[str]:
    import subprocess

    proc = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    return {line[3:] for line in proc.stdout.splitlines() if line.startswith("??")}


@pytest.fixture(scope="session", autouse=True)
def repo_stays_clean() -> object:
    """No test may leave files in the checkout (outputs belong in tmp_path)."""
    before = _untracked()
    yield
    left = _untracked() - before
    assert not left, f"tests left files in the repository: {sorted(left)[:5]}"


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., CliResult]:
    """Run the real CLI entry point in-process and capture what it prints."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("HAILOC_MANIFEST", raising=False)

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        code = run(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


def scaffold(root: Path, calibration: Path | None = None) -> Path:
    """Copy the repo's manifest, templates, vendored models and photos into `root`, and the
    calibration sets in `calibration` when given."""
    (root / "models").mkdir()
    for name in ("fr_feature.onnx", "fr_detect.onnx", "fr_landmark.onnx"):
        shutil.copy(REPO / "models" / name, root / "models" / name)
    shutil.copytree(REPO / "alls_templates", root / "alls_templates")
    shutil.copytree(REPO / "examples" / "photos", root / "photos")
    shutil.copy(REPO / "models.yaml", root / "models.yaml")
    if calibration is not None:
        shutil.copytree(calibration, root / "calibration")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scratch copy of the repo's manifest, templates, example models and photos."""
    return scaffold(tmp_path)


@pytest.fixture(scope="session")
def demo_calibration(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """calibration/ holding `fr_demo` built once per session from the vendored photos."""
    from hailoc.calibration import CalibParams, build_set
    from hailoc.manifest.schema import DetectorSpec

    root = tmp_path_factory.mktemp("calibration")
    build_set(
        "fr_demo",
        # The README quickstart's set: the same photos and split.
        CalibParams(images=str(REPO / "examples" / "photos"), eval_split=0.3),
        project_root=REPO,
        calib_root=root,
        detector=DetectorSpec(),
    )
    return root


@pytest.fixture(scope="session")
def corpus_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every corpus export in one project, with the synthetic calibration set `tiny` (40
    faces, 6 eval faces). Shared: tests write their own outputs under their tmp_path."""
    from tests.corpus import calibrated_corpus

    root = tmp_path_factory.mktemp("corpus")
    return calibrated_corpus(root, REPO / "alls_templates", faces=40, eval_faces=6)


@pytest.fixture
def calibrated_project(tmp_path: Path, demo_calibration: Path) -> Path:
    """`project` with the shared fr_demo calibration set in place."""
    return scaffold(tmp_path, demo_calibration)


@pytest.fixture
def standin_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the stand-in `hailo_sdk_client` importable for this test only."""
    monkeypatch.syspath_prepend(str(STANDIN))
    for mod in [m for m in sys.modules if m.startswith("hailo_sdk_client")]:
        monkeypatch.delitem(sys.modules, mod)
    return STANDIN
