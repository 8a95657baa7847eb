"""`hailoc models import`: a local insightface model pack into models.yaml entries.

Each ONNX file is routed as insightface routes it (model_zoo.ModelRouter: >= 5 outputs ->
detection, 192x192 input -> landmark, 96x96 -> genderage, square >= 112 -> recognition).
Recognition models become `family: insightface` entries with the normalization insightface
decides for the graph; an SCRFD model with keypoints becomes the calibration detector.
Weights are never copied or downloaded; entries point at the files where they are. The
manifest is edited round-trip (comments kept), validated, and replaced in one rename.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hailoc.errors import HailocError
from hailoc.owned_files import atomic_write_text, sha256_file

KINDS = {
    "ArcFaceONNX": "recognition",
    "SCRFD": "detection",
    "RetinaFace": "detection",
    "Landmark": "landmark",
    "Attribute": "genderage",
    "INSwapper": "swapper",
}
UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class PackFile:
    """One file of the pack and what insightface makes of it."""

    path: Path
    kind: str  # recognition | detection | landmark | genderage | swapper | skipped
    why: str
    sha256: str = ""
    keypoints: bool = False


@dataclass
class ImportResult:
    """What `import_pack` changed (or would change, with dry_run)."""

    added: list[tuple[str, PackFile]] = field(default_factory=list)
    present: list[tuple[str, PackFile]] = field(default_factory=list)
    skipped: list[PackFile] = field(default_factory=list)
    detector: str | None = None  # the new detector setting, when it changed
    written: bool = False


def route(path: Path) -> PackFile:
    """How insightface's ModelRouter would load `path`; a broken .onnx is an error."""
    import onnx

    if path.suffix.lower() != ".onnx":
        return PackFile(path, "skipped", "not an .onnx file")
    try:
        onnx.load(str(path), load_external_data=False)
    except Exception:
        raise HailocError(
            "not an ONNX model (onnx cannot parse it)",
            where=str(path),
            fix="remove it from the folder or replace it with the pack's original file",
        ) from None
    from insightface.model_zoo.model_zoo import ModelRouter

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ModelRouter(str(path)).get_model(providers=["CPUExecutionProvider"])
    except Exception as exc:
        return PackFile(path, "skipped", f"insightface cannot load it ({str(exc)[:120]})")
    if model is None:
        return PackFile(path, "skipped", "insightface does not route it (input size)")
    kind = KINDS.get(type(model).__name__, "skipped")
    why = f"insightface loads it as {type(model).__name__}"
    keypoints = bool(getattr(model, "use_kps", False))
    return PackFile(path, kind, why, sha256_file(path), keypoints)


def scan(folder: Path) -> list[PackFile]:
    """Every file of a pack folder (or one file), routed, in name order."""
    if folder.is_file():
        return [route(folder)]
    if not folder.is_dir():
        raise HailocError(
            "no such folder",
            where=str(folder),
            fix="give the pack's folder, e.g. ~/.insightface/models/buffalo_l",
        )
    return [route(p) for p in sorted(folder.iterdir()) if p.is_file()]


def _where(path: Path, root: Path) -> str:
    """The path as models.yaml should hold it: relative to the manifest when inside it."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def _recognition_entry(item: PackFile, root: Path, calib_set: str) -> dict[str, Any]:
    from ruamel.yaml.comments import CommentedMap

    from hailoc.inference.session import open_session
    from hailoc.interop.insightface import convention

    session = open_session(item.path)
    spec = session.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in spec.shape]
    conv = convention(item.path)
    entry = CommentedMap()
    entry["family"] = "insightface"
    entry["onnx"] = _where(item.path, root)
    entry["sha256"] = item.sha256
    flow = CommentedMap(name=spec.name, shape=[1, *shape[1:]], layout="NCHW", color="RGB")
    flow.fa.set_flow_style()
    flow["shape"] = _flow_list(flow["shape"])
    entry["input"] = flow
    norm = (
        CommentedMap(in_graph=True) if conv.in_graph else CommentedMap(mean=conv.mean, std=conv.std)
    )
    norm.fa.set_flow_style()
    entry["normalization"] = norm
    entry["embedding_output"] = session.get_outputs()[0].name
    entry["calib_set"] = calib_set
    entry["notes"] = f"imported by `hailoc models import` ({item.why}; normalization: {conv.why})"
    return entry


def _flow_list(values: list[int]) -> Any:
    from ruamel.yaml.comments import CommentedSeq

    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq


def _name_for(item: PackFile, taken: set[str]) -> str:
    base = UNSAFE.sub("_", item.path.stem).lstrip("._-")[:55] or "model"
    return base if base not in taken else f"{base}_{item.sha256[:8]}"


def import_pack(
    manifest_path: Path, folder: Path, *, calib_set: str, dry_run: bool = False
) -> ImportResult:
    """Add the pack's recognition models (and its SCRFD detector) to models.yaml; idempotent."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    from hailoc.manifest import load_manifest

    files = scan(folder)
    root = manifest_path.parent
    yaml = YAML()
    yaml.width = 4096  # keep the user's long lines as they are
    yaml.preserve_quotes = True
    data = yaml.load(manifest_path.read_text(encoding="utf-8"))
    models = data.setdefault("models", CommentedMap())
    known = {str(entry.get("sha256")): name for name, entry in models.items() if entry}
    result = ImportResult()
    for item in files:
        if item.kind == "recognition":
            if item.sha256 in known:
                result.present.append((known[item.sha256], item))
                continue
            name = _name_for(item, set(models))
            models[name] = _recognition_entry(item, root, calib_set)
            known[item.sha256] = name
            result.added.append((name, item))
        elif item.kind == "detection" and item.keypoints and result.detector is None:
            defaults = data.setdefault("defaults", CommentedMap())
            current = defaults.get("detector") or {}
            where = _where(item.path, root)
            if current.get("kind") != "scrfd" or current.get("model") != where:
                detector = CommentedMap(kind="scrfd", model=where, landmarks=None)
                defaults["detector"] = detector
                result.detector = f"scrfd {where}"
        else:
            why = item.why if item.kind == "skipped" else f"{item.kind} model: not compiled"
            result.skipped.append(PackFile(item.path, item.kind, why))
    if (result.added or result.detector) and not dry_run:
        buffer = io.StringIO()
        yaml.dump(data, buffer)
        text = buffer.getvalue()
        # Validate the edited manifest before it replaces the user's file.
        handle, name = tempfile.mkstemp(prefix=".hailoc-import-", suffix=".yaml", dir=root)
        staged = Path(name)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as fh:
                fh.write(text)
            load_manifest(staged)
        finally:
            staged.unlink(missing_ok=True)
        atomic_write_text(manifest_path, text)
        result.written = True
    return result
