"""Calibration builder on the real example photos and on a folder of broken files."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hailoc.calibration.align import eye_error
from hailoc.calibration.detect import make_detector
from hailoc.manifest.schema import DetectorSpec
from hailoc.owned_files import sha256_file
from tests.conftest import REPO, CliResult

Cli = Callable[..., CliResult]


def _set(project: Path, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((project / "calibration" / name / "manifest.json").read_text())


def test_demo_set_is_aligned_to_the_template(project: Path, cli: Cli) -> None:
    res = cli(
        "-m",
        str(project / "models.yaml"),
        "calib",
        "build",
        "demo",
        "--images",
        str(project / "photos"),
        "--eval-split",
        "0.2",
    )
    assert res.code == 0, res.err
    manifest = _set(project, "demo")
    assert manifest["counts"]["faces"] >= 20
    calib = np.load(project / "calibration" / "demo" / "calib.npy")
    evalset = np.load(project / "calibration" / "demo" / "eval.npy")
    assert calib.dtype == np.uint8 and calib.shape[1:] == (112, 112, 3)
    distances = manifest["params"]["distances"]
    assert calib.shape[0] == manifest["counts"]["calib_faces"] * len(distances)
    assert len(evalset) == manifest["counts"]["eval_faces"] > 0
    # Re-measure landmarks on every full-resolution aligned face, independent of the builder.
    detector = make_detector(DetectorSpec(), REPO)
    faces = list(calib[:: len(distances)]) + list(evalset)
    assert len(faces) == manifest["counts"]["faces"]
    errors = [eye_error(detector.measure(Image.fromarray(f))) for f in faces]  # type: ignore[arg-type]
    assert max(errors) <= 3.0, errors
    # The held-out faces are never in the calibration array.
    calib_rows = {f.tobytes() for f in calib[:: len(distances)]}
    assert not any(f.tobytes() in calib_rows for f in evalset)
    with Image.open(project / "calibration" / "demo" / "preview.png") as preview:
        assert preview.format == "PNG" and preview.width == 8 * 112


def _messy_folder(project: Path) -> Path:
    messy = project / "messy"
    messy.mkdir()
    shutil.copy(project / "photos" / "sample1.jpg", messy / "good.jpg")
    photo = Image.open(project / "photos" / "sample3.jpg")
    # Stored rotated, with EXIF saying how to display it: only an EXIF-aware reader finds faces.
    exif = Image.Exif()
    exif[0x0112] = 6
    photo.transpose(Image.Transpose.ROTATE_90).save(messy / "rotated.jpg", exif=exif)
    photo.convert("CMYK").save(messy / "cmyk.jpg")
    gray16 = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(messy / "gray16.png")
    data = (project / "photos" / "sample2.jpg").read_bytes()
    (messy / "corrupt.jpg").write_bytes(data[:300])
    (messy / "notes.jpg").write_text("this is not an image")
    (messy / "readme.txt").write_text("hello")
    (messy / "empty.png").write_bytes(b"")
    Image.new("RGB", (640, 480), (120, 130, 140)).save(messy / "no_face.png")
    Image.new("L", (12000, 12000), 0).save(messy / "huge.png")
    (messy / "loop.jpg").symlink_to("loop.jpg")
    (messy / "again").symlink_to(".")
    return messy


def test_broken_files_are_listed_not_fatal(project: Path, cli: Cli) -> None:
    messy = _messy_folder(project)
    res = cli("-m", str(project / "models.yaml"), "calib", "build", "messy", "--images", str(messy))
    assert res.code == 0, res.err
    manifest = _set(project, "messy")
    reasons = {r["path"]: r["reason"] for r in manifest["rejected"]}
    assert "corrupt" in reasons["corrupt.jpg"]
    assert reasons["notes.jpg"] == "not a readable image"
    assert "not an image file" in reasons["readme.txt"]
    assert "empty file" in reasons["empty.png"]
    assert "no usable face" in reasons["no_face.png"]
    assert "too large" in reasons["huge.png"]
    assert "symlink" in reasons["loop.jpg"]
    assert "symlink loop" in reasons["again"]
    faces_by_source = {s["path"]: s["faces"] for s in manifest["sources"]}
    for converted in ("good.jpg", "rotated.jpg", "cmyk.jpg", "gray16.png"):
        assert faces_by_source[converted] >= 2, (converted, faces_by_source)
    skipped = manifest["counts"]["skipped"]
    assert skipped == len(manifest["rejected"]) >= 8
    assert f"{skipped} skipped" in res.out


def test_rebuild_is_byte_identical_and_verify_names_changes(project: Path, cli: Cli) -> None:
    m = str(project / "models.yaml")
    args = ("calib", "build", "fr_demo", "--images", str(project / "photos"), "--seed", "7")
    assert cli("-m", m, *args).code == 0
    first = sha256_file(project / "calibration" / "fr_demo" / "calib.npy")
    res = cli("-m", m, *args, "--workers", "2")
    assert res.code == 0
    assert sha256_file(project / "calibration" / "fr_demo" / "calib.npy") == first
    assert re.search(r"fr_demo: [0-9.]+ faces/s, [0-9.]+ images/s in [0-9.]+ s \(2 workers\)",
                     " ".join(res.err.split())), res.err  # fmt: skip
    assert _set(project, "fr_demo")["version"] == 1
    assert cli("-m", m, "calib", "verify", "fr_demo").code == 0

    # Change one photo: verify names it, and the rebuilt array differs (new version).
    changed = project / "photos" / "sample4.jpg"
    Image.open(changed).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(changed, quality=90)
    res = cli("-m", m, "calib", "verify", "fr_demo")
    assert res.code == 1
    assert "source changed" in res.err and "sample4.jpg" in res.err
    assert cli("-m", m, "calib", "build", "--all").code == 0  # rebuilds from recorded params
    assert sha256_file(project / "calibration" / "fr_demo" / "calib.npy") != first
    assert _set(project, "fr_demo")["version"] == 2
    assert (project / "calibration" / ".history" / "fr_demo" / "manifest.json").is_file()
    assert cli("-m", m, "calib", "verify", "fr_demo").code == 0


def test_export_float32_in_model_channel_order(project: Path, cli: Cli) -> None:
    m = str(project / "models.yaml")
    assert (
        cli(
            "-m",
            m,
            "calib",
            "build",
            "demo",
            "--images",
            str(project / "photos"),
            "--distances",
            "112",
        ).code
        == 0
    )
    out = project / "export.npy"
    res = cli("-m", m, "calib", "export", "demo", "--model", "fr_feature", "-o", str(out))
    assert res.code == 0, res.err
    exported = np.load(out)
    raw = np.load(project / "calibration" / "demo" / "calib.npy")
    assert exported.dtype == np.float32 and exported.shape == raw.shape
    np.testing.assert_array_equal(exported, raw.astype(np.float32))  # RGB model, raw range
    folder = project / "per_image"
    assert (
        cli(
            "-m",
            m,
            "calib",
            "export",
            "demo",
            "--model",
            "fr_feature",
            "-o",
            str(folder),
            "--per-image",
        ).code
        == 0
    )
    assert len(list(folder.glob("*.npy"))) == len(raw)


def test_killed_build_leaves_previous_set_intact(project: Path, cli: Cli) -> None:
    m = str(project / "models.yaml")
    assert cli("-m", m, "calib", "build", "demo", "--images", str(project / "photos")).code == 0
    before = {p.name: sha256_file(p) for p in (project / "calibration" / "demo").iterdir()}
    many = project / "many"
    many.mkdir()
    for i in range(40):
        shutil.copy(project / "photos" / f"sample{i % 6 + 1}.jpg", many / f"p{i:02d}.jpg")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hailoc", "-m", m, "calib", "build", "demo", "--images", str(many)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    raw = None
    while time.monotonic() < deadline and raw is None:
        found = [
            p
            for p in (project / "calibration").glob(".demo.staging-*/faces.raw")
            if p.stat().st_size > 0
        ]
        raw = found[0] if found else None
        time.sleep(0.05)
    assert raw is not None, "the build never started writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = {p.name: sha256_file(p) for p in (project / "calibration" / "demo").iterdir()}
    assert after == before
    # The next build sweeps the dead staging folder away.
    assert cli("-m", m, "calib", "build", "demo", "--images", str(project / "photos")).code == 0
    assert not list((project / "calibration").glob(".demo.staging-*"))


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (("--images", "nowhere"), "--images"),
        (("--images", "photos", "--distances", "112,0"), "--distances"),
        (("--images", "photos", "--eval-split", "1.5"), "--eval-split"),
        (("--images", "photos", "--eval-split", "nan"), "--eval-split"),
        (("--images", "photos", "--seed", "-1"), "--seed"),
        (("--images", "photos", "--max-eye-error", "nan"), "--max-eye-error"),
        (("--images", "photos", "--max-eye-error", "-2"), "--max-eye-error"),
        (("--images", "photos", "--min-face", "0"), "--min-face"),
    ],
)
def test_bad_arguments_are_one_line(
    project: Path, cli: Cli, args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.chdir(project)
    res = cli("-m", str(project / "models.yaml"), "calib", "build", "x", *args)
    assert res.code == 2
    assert where in res.err and "Traceback" not in res.err
    assert not (project / "calibration" / "x").exists()


def test_pool_size_default_is_one_per_core_for_large_folders() -> None:
    """0 = automatic: one process below 32 images (starting a second costs more than it
    saves), one per usable core from there; an explicit count never exceeds the images."""
    from hailoc.calibration.builder import POOL_FROM_IMAGES, pool_size
    from hailoc.execution import usable_cores

    assert pool_size(0, POOL_FROM_IMAGES - 1) == 1
    assert pool_size(0, POOL_FROM_IMAGES) == usable_cores()
    assert pool_size(4, 2) == 2 and pool_size(3, 100) == 3 and pool_size(1, 0) == 1
