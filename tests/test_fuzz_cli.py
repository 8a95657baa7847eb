"""Property-based: random option values and manifests end in exit 0/1/2, never a traceback,
and never create anything outside the project's output folders."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hailoc.cli import run
from hailoc.errors import HailocError
from hailoc.manifest import load_manifest
from tests.conftest import REPO

# hef/ and .hailoc/ are hailoc's; out/ is the working directory, where a relative -o lands.
OUTPUTS = ("hef", ".hailoc", "out")

values = st.one_of(
    st.text(max_size=24),
    st.sampled_from(["..", "../x", "/", "int8", "hailo8", "a,b", "nan", "inf", "-1", "0", "1e9"]),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(min_value=-(2**40), max_value=2**40).map(str),
)
OPTIONS = [
    "-p",
    "--hw-arch",
    "--from-stage",
    "--stage-timeout",
    "--target",
    "--budget",
    "--jobs",
    "--docker-host",
    "--suite-image",
]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project without calibration: valid options stop at 'no calibration set' (exit 2)."""
    root = tmp_path_factory.mktemp("fuzz")
    project = root / "project"
    (project / "models").mkdir(parents=True)
    shutil.copy(REPO / "models" / "fr_feature.onnx", project / "models")
    shutil.copytree(REPO / "alls_templates", project / "alls_templates")
    shutil.copy(REPO / "models.yaml", project / "models.yaml")
    return project


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _invoke(sandbox: Path, *args: str) -> tuple[int, str]:
    err = io.StringIO()
    cwd = Path.cwd()
    (sandbox / "out").mkdir(exist_ok=True)
    os.chdir(sandbox / "out")
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = run(list(args))
    finally:
        os.chdir(cwd)
    return code, err.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(option=st.sampled_from(OPTIONS), value=values)
def test_build_options(sandbox: Path, option: str, value: str) -> None:
    before = _tree(sandbox.parent)
    code, err = _invoke(
        sandbox,
        "-m",
        str(sandbox / "models.yaml"),
        "build",
        "fr_feature",
        "-b",
        "onnxruntime",
        option,
        value,
    )
    assert code in (0, 1, 2), err
    assert "Traceback" not in err
    created = _tree(sandbox.parent) - before
    assert all(path.split("/")[1] in OUTPUTS for path in created), created


@settings(max_examples=80, deadline=None)
@given(
    command=st.sampled_from(
        [
            ("plan", "fr_feature", "-p"),
            ("alls", "render", "fr_feature", "-p"),
            ("calib", "show"),
            ("calib", "verify"),
            ("calib", "export", "--model", "fr_feature", "-o", "out.npy", "x", "--split"),
            ("models", "validate"),
            ("models", "import", "--dry-run"),
            ("models", "import", "--calib-set"),
            ("eval", "fr_feature", "-p", "int8", "--identities"),
            ("eval", "fr_feature", "-p", "int8", "--identities", "people", "--face-sizes"),
            ("verify", "fr_feature", "-p"),
            ("report", "-o"),
        ]
    ),
    value=values,
)
def test_other_commands(sandbox: Path, command: tuple[str, ...], value: str) -> None:
    before = _tree(sandbox.parent)
    code, err = _invoke(sandbox, "-m", str(sandbox / "models.yaml"), *command, value)
    # 3: what the command needs is not on this host (verify without HailoRT).
    assert code in (0, 1, 2, 3), err
    assert "Traceback" not in err
    if command[-1] == "-o":
        return  # the value is a place the user asked for: anything may be written there
    created = _tree(sandbox.parent) - before
    assert all(path.split("/")[1] in OUTPUTS for path in created), created


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    document=st.one_of(
        documents,
        # Mostly-valid manifests with one random section, so the schema's depths are reached.
        st.fixed_dictionaries(
            {
                "version": st.just(1),
                "defaults": st.dictionaries(
                    st.sampled_from(["hw_arch", "precision", "gate", "auto", "hef_dir"]),
                    documents,
                    max_size=2,
                ),
                "models": st.dictionaries(st.text(max_size=8), documents, max_size=2),
            }
        ),
    )
)
def test_manifest_loader(tmp_path_factory: pytest.TempPathFactory, document: object) -> None:
    path = tmp_path_factory.mktemp("m") / "models.yaml"
    path.write_text(yaml.safe_dump(document))
    try:
        loaded = load_manifest(path)
    except HailocError as exc:
        assert "\n" not in str(exc)
        return
    for name in loaded.names():
        with contextlib.suppress(HailocError):
            loaded.model(name)
