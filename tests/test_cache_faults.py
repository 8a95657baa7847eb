"""Faults in the cache: damaged entries are found, moved aside and produced again; a full disk
never leaves half an entry; two processes publishing and reading the same key never see one.
(The Hailo stages, blobs and engines are in tests/test_cache_faults_docker.py.)"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hailoc.cache import Damage, StageCache
from hailoc.owned_files import MARKER
from hailoc.reference import FACES_KIND
from tests.conftest import CliResult

Cli = Callable[..., CliResult]


def _m(project: Path) -> str:
    return str(project / "models.yaml")


def _record(project: Path, precision: str = "int8") -> dict[str, Any]:
    path = project / "hef" / "fr_feature" / "onnxruntime" / precision / "record.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _entries(project: Path, kind: str) -> list[Path]:
    entries = StageCache(project / ".hailoc" / "cache").entries()
    return [path for found, _, path in entries if found == kind]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_keeping_size_and_mtime(path: Path) -> None:
    """A bit flip no size or mtime check can see (disk rot, a faulty copy tool)."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.parametrize("damage", [_truncate, _flip_keeping_size_and_mtime])
def test_a_damaged_entry_is_moved_aside_and_built_again(
    calibrated_project: Path, cli: Cli, damage: Callable[[Path], None]
) -> None:
    project = calibrated_project
    assert cli("-m", _m(project), "build", "fr_feature", "-p", "int8").code == 0
    (quantize,) = _entries(project, "quantize")
    # fp32 references of a non-insightface model: the content-keyed entries eval shares.
    references = _entries(project, FACES_KIND)
    assert references
    damage(quantize / "model.qdq.onnx")
    damage(references[0] / "embeddings.npy")

    res = cli("-m", _m(project), "build", "fr_feature", "-p", "int8")
    assert res.code == 0, res.err
    record = _record(project)
    assert record["status"] == "ok"
    named = {(d["kind"], d["key"]) for d in record["cache_damaged"]}
    assert ("quantize", quantize.name) in named
    assert (FACES_KIND, references[0].name) in named
    damaged = project / ".hailoc" / "cache" / "damaged"
    assert any(p.name.startswith(quantize.name) for p in (damaged / "quantize").iterdir())
    assert StageCache(project / ".hailoc" / "cache").verify(quantize, full=True) is None

    # gc reports what was moved aside, then removes it.
    res = cli("-m", _m(project), "gc", "--no-containers")
    assert res.code == 0 and "damaged cache entry" in res.out
    assert not StageCache(project / ".hailoc" / "cache").damaged()


def test_gc_verify_finds_and_fixes_damage_and_doctor_counts_it(
    calibrated_project: Path, cli: Cli
) -> None:
    project = calibrated_project
    assert cli("-m", _m(project), "build", "fr_feature", "-p", "int8").code == 0
    (quantize,) = _entries(project, "quantize")
    _flip_keeping_size_and_mtime(quantize / "model.qdq.onnx")
    res = cli("-m", _m(project), "gc", "--verify", "--no-containers", "--dry-run")
    assert res.code == 1 and "1 damaged" in res.out and quantize.name in res.err
    assert quantize.is_dir()
    res = cli("-m", _m(project), "gc", "--verify", "--fix", "--no-containers")
    assert res.code == 0 and "moved aside" in res.err
    assert not quantize.exists()
    assert StageCache(project / ".hailoc" / "cache").damaged()
    from hailoc.backends.hailo.doctor import cache_check
    from hailoc.manifest import load_manifest

    row = cache_check(load_manifest(project / "models.yaml"))
    assert row.level == "warning" and "1 damaged" in row.detail


def test_a_full_disk_while_an_entry_is_written_leaves_no_half_entry(
    calibrated_project: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hailoc.cache

    project = calibrated_project
    real = shutil.copyfile

    def half_then_full(src: Any, dst: Any, **kwargs: Any) -> Any:
        data = Path(src).read_bytes()
        Path(dst).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(hailoc.cache.shutil, "copyfile", half_then_full)
    res = cli("-m", _m(project), "build", "fr_feature", "-p", "int8")
    assert res.code == 1 and "Traceback" not in res.err
    assert _record(project)["failure_class"] == "disk_full"
    cache = project / ".hailoc" / "cache"
    assert not _entries(project, "quantize")
    assert not [p for p in cache.rglob(".*") if p.is_dir() and p.name != ".hailoc"]
    monkeypatch.setattr(hailoc.cache.shutil, "copyfile", real)
    assert cli("-m", _m(project), "build", "fr_feature", "-p", "int8").code == 0


def test_output_folders_hold_only_what_their_marker_lists(
    calibrated_project: Path, cli: Cli
) -> None:
    project = calibrated_project
    for precision in ("int8", "int16-final"):
        assert cli("-m", _m(project), "build", "fr_feature", "-p", precision).code == 0
    roots = [project / "hef", project / "calibration"]
    assert not [p for root in roots for p in root.rglob("*.lock")]
    for marker in (project / "hef").rglob(MARKER):
        listed = set(json.loads(marker.read_text())["files"])
        folder = marker.parent
        present = {
            str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p != marker
        }
        assert present <= listed, present - listed
    assert list((project / ".hailoc" / "locks").glob("*.lock"))


def _publish(root: str, keys: list[str], payload: int) -> None:
    cache = StageCache(Path(root))
    for key in keys:
        cache.store("race", key, {"data.bin": bytes([payload % 251]) * (2 << 20)})


def _read(root: str, keys: list[str], out: Any) -> None:
    cache = StageCache(Path(root), on_damage=lambda d: out.put(f"damaged {d}"))
    pending = list(keys)
    while pending:
        for key in list(pending):
            entry = cache.lookup("race", key)
            if entry is not None:
                data = (entry / "data.bin").read_bytes()
                out.put("ok" if len(data) == 2 << 20 and len(set(data)) == 1 else "torn")
                pending.remove(key)


def test_two_processes_publishing_and_reading_the_same_keys(tmp_path: Path) -> None:
    root = str(tmp_path / "cache")
    keys = [f"{i:064x}" for i in range(24)]
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_read, args=(root, keys, out)),
        ctx.Process(target=_publish, args=(root, keys, 7)),
        ctx.Process(target=_publish, args=(root, list(reversed(keys)), 7)),
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    seen = [out.get(timeout=5) for _ in keys]
    assert seen == ["ok"] * len(keys)
    cache = StageCache(Path(root))
    assert [cache.verify(p, full=True) for _, _, p in cache.entries()] == [None] * len(keys)
    assert not [p for p in (tmp_path / "cache" / "race").iterdir() if p.name.startswith(".")]


def test_an_entry_without_checksums_is_not_trusted(tmp_path: Path) -> None:
    cache_root = tmp_path / "cache"
    old = cache_root / "parse" / ("a" * 64)
    old.mkdir(parents=True)
    (old / "parsed.har").write_bytes(b"x" * 10)
    (old / "stage.json").write_text(json.dumps({"stage": "parse"}))  # an older hailoc's index
    seen: list[Damage] = []
    cache = StageCache(cache_root, on_damage=seen.append)
    assert cache.lookup("parse", "a" * 64) is None
    assert seen and "no checksums" in seen[0].reason
    assert not old.exists() and cache.damaged()


KINDS = [
    *("parse", "optimize", "noise", "compile", "emulate", "quantize", "reference"),
    *("aligned/0123456789abcdef", "probe", "canonical", "auto/k/eval", "walls/compile"),
    *("reference/faces", "activations", "ort-ranges"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("damage", [_truncate, _flip_keeping_size_and_mtime])
def test_every_kind_of_entry_is_verified(
    tmp_path: Path, kind: str, damage: Callable[[Path], None]
) -> None:
    """The same check guards every writer: a damaged file of any kind of entry is missed,
    moved aside and reported, whichever process reads it first."""
    key = "f" * 64
    StageCache(tmp_path).store(kind, key, {"a.bin": os.urandom(4096), "logs/x.log": b"log\n"})
    seen: list[Damage] = []
    fresh = StageCache(tmp_path, on_damage=seen.append)  # another build: nothing hashed yet
    entry = fresh.lookup(kind, key)
    assert entry is not None
    damage(entry / "a.bin")
    assert StageCache(tmp_path, on_damage=seen.append).lookup(kind, key) is None
    assert [(d.kind, d.key) for d in seen] == [(kind, key)]
    assert seen[0].moved_to is not None and (seen[0].moved_to / "damage.txt").is_file()
    assert not entry.exists()
