"""`hailoc eval --identities` (issue #18): verification at distance on labelled people.

No labelled data set is downloaded: each vendored photo's face is one identity and its views
are made by a mirror, rotations, lighting and a crop (tests/photos.py). That exercises the
evaluation; the real measure is any folder of real labelled photos."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import CliResult, scaffold
from tests.photos import identity_folders

Cli = Callable[..., CliResult]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, demo_calibration: Path) -> Path:
    from hailoc.cli import run

    root = scaffold(tmp_path_factory.mktemp("identities"), demo_calibration)
    identity_folders(root / "people")
    code = run(
        ["-m", str(root / "models.yaml"), "build", "fr_feature", "-p", "int8,int16-final",
         "--skip-gate"]
    )  # fmt: skip
    assert code in (0, 1)
    return root


def test_identities_per_size_with_intervals_and_cache(
    project: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = str(project / "models.yaml")
    people = str(project / "people")
    res = cli("-m", m, "eval", "fr_feature", "-p", "int8", "--identities", people,
              "--face-sizes", "112,40,24")  # fmt: skip
    assert res.code == 0, res.err
    folder = project / "hef" / "fr_feature" / "onnxruntime" / "int8"
    section = json.loads((folder / "identities.json").read_text())
    assert [row["size"] for row in section["rows"]] == [112, 40, 24]
    assert section["people"] == 6 and section["genuine_pairs"] > 0
    # 6 people give far fewer than 10 / 1e-3 impostor pairs: the note says so.
    assert section["impostor_pairs"] < 10_000 and "only" in section["impostor_note"]
    for row in section["rows"]:
        for side in ("fp32", "build"):
            tar = row[side]["tar_at_far_1e3"]
            assert tar["low"] <= tar["value"] <= tar["high"]
            assert 0.0 <= tar["value"] <= 1.0 and 0.0 <= row[side]["roc_auc"]["value"] <= 1.0
        assert row["fp32"]["tar_at_far_1e3_fp32_threshold"] is None
        assert row["build"]["tar_at_far_1e3_fp32_threshold"] is not None
    said = " ".join(res.out.split())
    for size in ("112", "40", "24"):
        assert f"│ {size} │" in res.out or f" {size} " in said
    assert (folder / "tar_vs_size.png").is_file() and (folder / "pre_norm_cliff.png").is_file()
    record = json.loads((folder / "record.json").read_text())
    assert record["accuracy"]["identities"]["rows"] == section["rows"]
    # A second build's evaluation aligns nothing again and runs no fp32 model: every face
    # and every fp32 embedding comes from the cache, with the same numbers.
    import hailoc.reference
    from hailoc.inference.session import SplitEmbedder

    opened: list[int] = []

    class Counting(SplitEmbedder):
        def __call__(self, faces: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
            opened.append(len(faces))
            return super().__call__(faces)

    monkeypatch.setattr(hailoc.reference, "SplitEmbedder", Counting)
    res = cli("-m", m, "eval", "fr_feature", "-p", "int16-final", "--identities", people,
              "--face-sizes", "112,40,24")  # fmt: skip
    assert res.code == 0, res.err
    second = json.loads(
        (project / "hef/fr_feature/onnxruntime/int16-final/identities.json").read_text()
    )
    assert second["reused_faces"] == second["faces"] + len(second["skipped_images"])
    assert opened == []
    assert [r["fp32"] for r in second["rows"]] == [r["fp32"] for r in section["rows"]]
    # The build side started from the body int8's evaluation kept (shared_prefix.py), and
    # gives exactly what running the whole int16-final model gives.
    activations = project / ".hailoc" / "cache" / "activations"
    assert any(activations.iterdir())
    shutil.rmtree(activations)
    res = cli("-m", m, "eval", "fr_feature", "-p", "int16-final", "--identities", people,
              "--face-sizes", "112,40,24")  # fmt: skip
    assert res.code == 0, res.err
    whole = json.loads(
        (project / "hef/fr_feature/onnxruntime/int16-final/identities.json").read_text()
    )
    assert whole["rows"] == second["rows"]


def test_eval_needs_one_mode_and_valid_sizes(project: Path, cli: Cli) -> None:
    m = str(project / "models.yaml")
    res = cli("-m", m, "eval", "fr_feature", "-p", "int8")
    assert res.code == 2 and "--identities" in res.err
    res = cli("-m", m, "eval", "fr_feature", "-p", "int8", "--identities",
              str(project / "people"), "--face-sizes", "112,4")  # fmt: skip
    assert res.code == 2 and "--face-sizes" in res.err
