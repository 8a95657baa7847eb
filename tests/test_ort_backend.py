"""The ONNX Runtime backend on the real example model: QDQ graph, gate, reports, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import yaml
from PIL import Image

from hailoc.eval.gate import judge
from hailoc.eval.sweep import evaluate
from hailoc.faces import embed_sizes
from hailoc.inference.preprocess import to_input
from hailoc.inference.session import Embedder, open_session
from hailoc.manifest import load_manifest
from hailoc.owned_files import sha256_file
from tests.conftest import CliResult
from tests.onnx_variants import with_in_graph_normalization

Cli = Callable[..., CliResult]
SIXTEEN_BIT = {onnx.TensorProto.UINT16, onnx.TensorProto.INT16}


def _record(project: Path, precision: str) -> dict[str, Any]:
    path = project / "hef" / "fr_feature" / "onnxruntime" / precision / "record.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _sixteen_bit_tensors(path: Path) -> set[str]:
    """Tensors whose Q/DQ pair uses a 16-bit zero point, under their original names."""
    model = onnx.load(str(path))
    zero_points = {i.name: i.data_type for i in model.graph.initializer}
    found = set()
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(node.input) < 3:
            continue
        if zero_points.get(node.input[2]) in SIXTEEN_BIT:
            name = node.input[0] if node.op_type == "QuantizeLinear" else node.output[0]
            for suffix in ("_QuantizeLinear_Input", "_DequantizeLinear_Output", "_quantized"):
                name = name.removesuffix(suffix)
            found.add(name)
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, demo_calibration: Path) -> Path:
    """One project with fr_feature built int8 and int16-final by the real CLI."""
    from hailoc.cli import run
    from tests.conftest import scaffold

    project = scaffold(tmp_path_factory.mktemp("ort"), demo_calibration)
    # --skip-gate: these tests read the artifacts; whether int8's worst face at 16 px clears
    # the gate on 2 eval faces is not what they check (its verdict stays in the record).
    code = run(
        [
            "-m", str(project / "models.yaml"), "build", "fr_feature", "-p", "int8,int16-final",
            "--skip-gate",
        ]
    )  # fmt: skip
    assert code in (0, 1)
    return project


def test_int16_final_is_16_bit_exactly_on_the_plan(built: Path) -> None:
    int8, int16 = _record(built, "int8"), _record(built, "int16-final")
    out = built / "hef" / "fr_feature" / "onnxruntime"
    assert _sixteen_bit_tensors(out / "int8" / "fr_feature.qdq.onnx") == set()
    assert int16["plan"]["a16_kind"] == "qdq_tensors"
    planned = set(int16["plan"]["a16_layers"])
    assert planned  # the final block's weights and activations
    assert _sixteen_bit_tensors(out / "int16-final" / "fr_feature.qdq.onnx") == planned
    # 16-bit on the final block must not cost accuracy; the tolerance absorbs the last digits
    # that differ between onnxruntime builds and CPUs.
    tolerance = 0.005
    mean8, mean16 = (r["accuracy"]["agreement"]["mean"] for r in (int8, int16))
    assert mean16 >= mean8 - tolerance
    # Emulation outputs are never named or presented as HEFs.
    assert not list((built / "hef").rglob("*.hef"))
    assert "NOT a HEF" in int16["artifacts"]["qdq_onnx"]["note"]


def test_records_and_reports(built: Path) -> None:
    record = _record(built, "int16-final")
    assert record["status"] == "ok" and record["accuracy"]["gate"]["passed"]
    sweep = {row["size"]: row for row in record["accuracy"]["sweep"]}
    assert set(sweep) == {112, 64, 40, 24, 16}
    assert sweep[16]["pre_norm_fp32"] < sweep[112]["pre_norm_fp32"]  # far faces: weaker signal
    folder = built / "hef" / "fr_feature" / "onnxruntime" / "int16-final"
    report = (folder / "report.md").read_text()
    assert "| 24 |" in report and "Gate: **PASSED**" in report
    for name in ("agreement.png", "scores.png", "pre_norm.png"):
        with Image.open(folder / name) as image:
            assert image.format == "PNG"
            pixels = np.asarray(image.convert("RGB")).astype(int)
        blue = (pixels[..., 2] - pixels[..., 0]) > 80
        red = (pixels[..., 0] - pixels[..., 2]) > 80
        # fp32 (blue) and the candidate (red) are both drawn.
        assert blue.sum() > 50 and red.sum() > 50, name
        if name == "scores.png":
            # Side by side: fp32's histogram on the left, the candidate's on the right.
            half = pixels.shape[1] // 2
            assert blue[:, :half].sum() > 10 * blue[:, half:].sum()
            assert red[:, half:].sum() > 10 * red[:, :half].sum()


def test_double_normalization_is_caught_and_the_correct_model_passes(
    tmp_path: Path, demo_calibration: Path
) -> None:
    from tests.conftest import REPO

    manifest = load_manifest(REPO / "models.yaml")
    cfg = manifest.model("fr_feature")
    faces = np.load(demo_calibration / "fr_demo" / "eval.npy")
    sizes = cfg.gate.face_sizes
    reference = embed_sizes(Embedder(open_session(cfg.onnx), cfg), faces, sizes)

    baked = with_in_graph_normalization(cfg.onnx, tmp_path / "baked.onnx")
    twice = Embedder(open_session(baked), cfg)  # cfg still says mean 127 / std 128
    verdict = judge(evaluate(reference, embed_sizes(twice, faces, sizes)), cfg.gate)
    assert not verdict.passed and verdict.failure_class in ("degenerate", "accuracy")

    session = open_session(baked)

    def once(batch: np.ndarray) -> np.ndarray:
        x = to_input(batch, cfg, normalize=False)
        return np.concatenate(
            [session.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))]
        )

    assert judge(evaluate(reference, embed_sizes(once, faces, sizes)), cfg.gate).passed


def _edit(project: Path, **changes: Any) -> None:
    data = yaml.safe_load((project / "models.yaml").read_text())
    data["models"]["fr_feature"].update(changes)
    (project / "models.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("case", ["corrupt_onnx", "input_mismatch", "empty_calibration"])
def test_bad_inputs_are_one_line_and_leave_nothing(
    calibrated_project: Path, cli: Cli, case: str
) -> None:
    project = calibrated_project
    if case == "corrupt_onnx":
        (project / "models" / "fr_feature.onnx").write_bytes(b"\x08\x07garbage" * 100)
        _edit(project, sha256=None)
        expected = "fr_feature.onnx"
    elif case == "input_mismatch":
        _edit(project, input={"name": "data", "shape": [1, 3, 112, 112]})
        expected = "input"
    else:
        folder = project / "calibration" / "fr_demo"
        empty = np.zeros((0, 112, 112, 3), np.uint8)
        np.save(folder / "calib.npy", empty)
        # Recorded as if the set were built empty: the bytes match, the content is wrong.
        meta = json.loads((folder / "manifest.json").read_text())
        meta["arrays"]["calib.npy"]["sha256"] = sha256_file(folder / "calib.npy")
        (folder / "manifest.json").write_text(json.dumps(meta))
        expected = "calibration set is empty"
    res = cli("-m", str(project / "models.yaml"), "build", "fr_feature", "-p", "int8")
    assert res.code == 2, res.err
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0]
    assert not (project / "hef").exists()


def test_batch_report_compares_builds(built: Path, cli: Cli) -> None:
    res = cli("-m", str(built / "models.yaml"), "report")
    assert res.code == 0, res.err
    assert "int8" in res.out and "int16-final" in res.out
    text = (built / "hef" / "report.md").read_text()
    assert "| fr_feature | int8 | onnxruntime |" in text
    assert "| fr_feature | int16-final | onnxruntime |" in text
    with Image.open(built / "hef" / "comparison.png") as image:
        assert image.format == "PNG"


def _lfw_folder(root: Path) -> tuple[Path, Path]:
    from tests.conftest import REPO

    images = root / "lfw"
    for person, sample in (("ann", 1), ("bea", 3), ("cat", 6)):
        folder = images / person
        folder.mkdir(parents=True)
        photo = Image.open(REPO / "examples" / "photos" / f"sample{sample}.jpg")
        photo.save(folder / f"{person}_0001.jpg")
        # The same people, mirrored and slightly smaller: a genuine pair for the largest face.
        small = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        small.resize((photo.width * 4 // 5, photo.height * 4 // 5)).save(
            folder / f"{person}_0002.jpg"
        )
    pairs = root / "pairs.txt"
    pairs.write_text("1 3\nann 1 2\nbea 1 2\ncat 1 2\nann 1 bea 2\nbea 1 cat 2\ncat 1 ann 2\n")
    return images, pairs


def test_eval_on_lfw_style_pairs(built: Path, cli: Cli, tmp_path: Path) -> None:
    images, pairs = _lfw_folder(tmp_path)
    m = str(built / "models.yaml")
    res = cli(
        "-m", m, "eval", "fr_feature", "-p", "int8", "--pairs", str(pairs), "--images", str(images)
    )
    assert res.code == 0, res.err
    assert "fp32" in res.out and "roc_auc" in res.out
    folder = built / "hef" / "fr_feature" / "onnxruntime" / "int8"
    data = json.loads((folder / "pairs.json").read_text())
    assert data["used"] == 6
    assert data["fp32"]["genuine_mean"] > data["fp32"]["impostor_mean"]
    assert json.loads((folder / "record.json").read_text())["accuracy"]["pairs"]["used"] == 6

    pairs.write_text("ann 1 2\nnot a pair line at all\n")
    res = cli(
        "-m", m, "eval", "fr_feature", "-p", "int8", "--pairs", str(pairs), "--images", str(images)
    )
    assert res.code == 2 and "line 2 is not a pair" in res.err


def test_pairs_use_the_one_aligned_cache_and_calibrations_face_filters(
    built: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pairs align through the same loop as identities: faces are cached by content (a
    second evaluation aligns nothing), and a face calibration would reject is skipped with
    calibration's reason."""
    from PIL import Image

    from hailoc.eval import drivers

    images, pairs = _lfw_folder(tmp_path)
    for path in images.glob("*/*.jpg"):
        # New bytes: the aligned cache is shared with the other tests' copies of these photos.
        Image.open(path).save(path, quality=85)
    photo = Image.open(images / "ann" / "ann_0001.jpg")
    # Largest face under 40 px: under calibration's minimum face size.
    photo.resize((photo.width // 6, photo.height // 6)).save(images / "ann" / "ann_0003.jpg")
    pairs.write_text(pairs.read_text() + "ann 1 3\n")
    aligned: list[bytes] = []
    real = drivers.align_largest

    def counting(data: bytes, *args: object) -> object:
        aligned.append(data)
        return real(data, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(drivers, "align_largest", counting)
    m = str(built / "models.yaml")
    args = ("-m", m, "eval", "fr_feature", "-p", "int8", "--pairs", str(pairs))
    res = cli(*args, "--images", str(images))
    assert res.code == 0, res.err
    folder = built / "hef" / "fr_feature" / "onnxruntime" / "int8"
    first = json.loads((folder / "pairs.json").read_text())
    assert list(first["skipped_images"]) == ["ann/ann_0003.jpg"]
    reason = first["skipped_images"]["ann/ann_0003.jpg"]
    assert reason.startswith("face too small (") and reason.endswith(" px < 40 px)"), reason
    assert len(aligned) == 7
    res = cli(*args, "--images", str(images))
    assert res.code == 0, res.err
    assert len(aligned) == 7  # every face (and the skip) came from the cache
    assert json.loads((folder / "pairs.json").read_text()) == first
