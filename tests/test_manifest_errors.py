"""Bad manifests exit non-zero with one line naming the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.onnx_variants import with_in_graph_normalization

BASE_ENTRY = {
    "family": "faceplugin",
    "onnx": "models/fr_feature.onnx",
    "input": {"name": "input", "shape": [1, 3, 112, 112], "layout": "NCHW", "color": "RGB"},
    "normalization": {"mean": 127.0, "std": 128.0},
    "embedding_output": "output",
}


def write_manifest(root: Path, models: dict[str, object], **top: object) -> Path:
    path = root / "models.yaml"
    path.write_text(yaml.safe_dump({"version": 1, **top, "models": models}, sort_keys=False))
    return path


def entry(**changes: object) -> dict[str, object]:
    return {**BASE_ENTRY, **changes}


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.code != 0
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.err
    assert "Fix:" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_shipped_manifest_validates_example(cli, monkeypatch) -> None:
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo)
    result = cli("models", "validate", "fr_feature")
    assert result.code == 0, result.err
    assert "final block (int16-final): Conv_93, Conv_94" in result.out
    assert "opset 9" in result.out


def test_unknown_key(cli, project: Path) -> None:
    path = write_manifest(project, {"fr_feature": entry(colour="RGB")})
    result = cli("-m", str(path), "models", "list")
    assert_one_line_error(
        result, "models.yaml", "models.fr_feature.colour", "unknown key", "allowed here:", "input"
    )


def test_unknown_nested_key_lists_section_keys(cli, project: Path) -> None:
    path = write_manifest(project, {"fr_feature": entry(input={**BASE_ENTRY["input"], "dtype": 1})})
    result = cli("-m", str(path), "models", "list")
    assert_one_line_error(result, "models.fr_feature.input.dtype", "color, layout, name, shape")


def test_wrong_type(cli, project: Path) -> None:
    path = write_manifest(
        project, {"fr_feature": entry(input={**BASE_ENTRY["input"], "shape": "112x112"})}
    )
    result = cli("-m", str(path), "models", "list")
    assert_one_line_error(result, "models.fr_feature.input.shape")


def test_bad_literal(cli, project: Path) -> None:
    path = write_manifest(project, {"fr_feature": entry(hw_arch="hailo9")})
    result = cli("-m", str(path), "models", "list")
    assert_one_line_error(result, "models.fr_feature.hw_arch", "hailo8l", "'hailo9'")


def test_missing_required_key(cli, project: Path) -> None:
    bad = entry()
    del bad["normalization"]
    path = write_manifest(project, {"fr_feature": bad})
    result = cli("-m", str(path), "models", "list")
    assert_one_line_error(result, "models.fr_feature.normalization", "required key is missing")


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "x..y"])
def test_model_name_with_path_characters(cli, project: Path, name: str) -> None:
    path = write_manifest(project, {name: entry()})
    result = cli("-m", str(path), "models", "list")
    assert_one_line_error(result, "models.yaml", repr(name), "rename the model")


def test_path_like_model_name_on_command_line(cli, project: Path) -> None:
    result = cli("-m", str(project / "models.yaml"), "models", "validate", "../../x")
    assert_one_line_error(result, "'../../x'", "may only use")


def test_missing_onnx_file(cli, project: Path) -> None:
    path = write_manifest(project, {"m": entry(onnx="models/nope.onnx")})
    result = cli("-m", str(path), "models", "validate", "m")
    assert_one_line_error(result, "models.yaml", "models.m.onnx", "nope.onnx", "not found")


def test_input_name_not_in_graph(cli, project: Path) -> None:
    path = write_manifest(project, {"m": entry(input={**BASE_ENTRY["input"], "name": "data"})})
    result = cli("-m", str(path), "models", "validate", "m")
    assert_one_line_error(result, "models.m.input.name", "'data'", "graph inputs: input")


def test_input_shape_not_in_graph(cli, project: Path) -> None:
    path = write_manifest(
        project, {"m": entry(input={**BASE_ENTRY["input"], "shape": [1, 3, 128, 128]})}
    )
    result = cli("-m", str(path), "models", "validate", "m")
    assert_one_line_error(result, "models.m.input.shape", "[1, 3, 112, 112]")


def test_layout_contradicts_shape(cli, project: Path) -> None:
    path = write_manifest(project, {"m": entry(input={**BASE_ENTRY["input"], "layout": "NHWC"})})
    result = cli("-m", str(path), "models", "list")
    assert_one_line_error(result, "models.m.input", "shape[3] = 112")


def test_duplicate_yaml_key(cli, project: Path) -> None:
    path = project / "models.yaml"
    path.write_text("version: 1\nmodels:\n  a: {}\n  a: {}\n")
    result = cli("-m", str(path), "models", "list")
    assert_one_line_error(result, "models.yaml:4", "duplicate key 'a'")


def test_yaml_syntax_error(cli, project: Path) -> None:
    path = project / "models.yaml"
    path.write_text("version: 1\nmodels: [\n")
    result = cli("-m", str(path), "models", "list")
    assert_one_line_error(result, "models.yaml:", "invalid YAML")


def test_missing_manifest(cli, tmp_path: Path) -> None:
    result = cli("-m", str(tmp_path / "absent.yaml"), "models", "list")
    assert_one_line_error(result, "absent.yaml", "manifest not found", "HAILOC_MANIFEST")


def test_manifest_from_environment(cli, project: Path, monkeypatch) -> None:
    monkeypatch.setenv("HAILOC_MANIFEST", str(project / "models.yaml"))
    result = cli("models", "list")
    assert result.code == 0
    assert "fr_feature" in result.out


def test_corrupt_onnx(cli, project: Path) -> None:
    (project / "models" / "bad.onnx").write_bytes(b"\x08\x07not a protobuf at all")
    path = write_manifest(project, {"m": entry(onnx="models/bad.onnx")})
    result = cli("-m", str(path), "models", "validate", "m")
    assert_one_line_error(result, "models.m.onnx", "not a valid ONNX model")


def test_sha256_mismatch(cli, project: Path) -> None:
    path = write_manifest(project, {"m": entry(sha256="0" * 64)})
    result = cli("-m", str(path), "models", "validate", "m")
    assert_one_line_error(result, "models.m.sha256", "restore the original")


def test_double_normalization_refused(cli, project: Path) -> None:
    with_in_graph_normalization(
        project / "models" / "fr_feature.onnx", project / "models" / "normed.onnx"
    )
    path = write_manifest(project, {"m": entry(onnx="models/normed.onnx")})
    result = cli("-m", str(path), "models", "validate", "m")
    assert_one_line_error(result, "double normalization", "Sub_norm, Div_norm", "in_graph: true")


def test_in_graph_declared_without_graph_normalization(cli, project: Path) -> None:
    path = write_manifest(project, {"m": entry(normalization={"in_graph": True})})
    result = cli("-m", str(path), "models", "validate", "m")
    assert_one_line_error(result, "models.m.normalization", "no Sub/Add/Mul/Div")


def test_family_mismatch_warns(cli, project: Path) -> None:
    path = write_manifest(project, {"m": entry(normalization={"mean": 127.5, "std": 127.5})})
    result = cli("-m", str(path), "models", "validate", "m")
    assert result.code == 0
    assert "warning: m: normalization mean [127.5, 127.5, 127.5]" in result.err
    assert "faceplugin family's 127.0 / 128.0" in result.err


def test_validate_all_fails_on_missing_models_unless_skipped(cli, monkeypatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert cli("models", "validate").code == 1
    result = cli("models", "validate", "--skip-missing")
    assert result.code == 0, result.err
    assert "arcface_r50: skipped" in result.err


def test_no_daemon_is_one_line(cli, project: Path) -> None:
    """Needs no engine: a socket that does not exist stands for a daemon that is not running."""
    res = cli(
        "-m",
        str(project / "models.yaml"),
        "build",
        "fr_feature",
        "-b",
        "hailo",
        "--docker-host",
        "unix:///nonexistent/docker.sock",
    )
    assert res.code == 2
    assert len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err
    assert "--backend onnxruntime" in res.err
    assert not (project / "hef").exists()


@pytest.mark.parametrize(
    ("engines", "fragments"),
    [
        ([{"name": "a"}, {"name": "a"}], ("defaults.engines", "unique", "a repeated")),
        ([{"name": "a", "host": "ftp://x"}], ("defaults.engines[0].host", "ftp")),
        (
            [{"name": "a", "host": "ssh://me@h", "context": "c"}],
            ("defaults.engines[0]", "host or context, not both"),
        ),
        ([{"name": "a", "gpus": [0, 0]}], ("defaults.engines[0]", "gpus lists an index twice")),
        ([{"name": "../x"}], ("defaults.engines[0].name",)),
        ([{"name": "a", "files": "share"}], ("defaults.engines[0].files", "mount", "copy")),
    ],
)
def test_bad_engine_entries(
    cli, project: Path, engines: list[dict[str, object]], fragments: tuple[str, ...]
) -> None:
    """Every engine value that becomes a connection or a choice is checked on load."""
    path = write_manifest(project, {"fr_feature": entry()}, defaults={"engines": engines})
    assert_one_line_error(cli("-m", str(path), "models", "list"), *fragments)


def test_unknown_engine_on_the_command_line(cli, project: Path) -> None:
    engines = [{"name": "gpu1", "host": "ssh://builder@gpu1"}]
    path = write_manifest(project, {"fr_feature": entry()}, defaults={"engines": engines})
    result = cli("-m", str(path), "build", "fr_feature", "-b", "hailo", "--engine", "gpu2")
    assert_one_line_error(result, "--engine", "'gpu2'", "gpu1")
    assert result.code == 2
    assert not (project / "hef").exists()
