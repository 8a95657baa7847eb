"""Write records atomically; read records of this and older schema versions."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from hailoc.errors import HailocError
from hailoc.owned_files import atomic_write_text
from hailoc.records.schema import FAILURE_CLASSES, SCHEMA_VERSION, BuildRecord


class RecordError(HailocError):
    """A record.json that is not a hailoc build record."""


def write_record(path: Path, record: BuildRecord) -> None:
    """Write record.json atomically."""
    atomic_write_text(path, record.to_json())


def _upgrade_v1(data: dict[str, object]) -> dict[str, object]:
    """Version-1 records (hailoc 0.1 before the typed schema) into the current shape."""
    plan = data.get("plan")
    if isinstance(plan, dict):
        # v1 had `a16_tensors` on ONNX Runtime and `a16_layers` on Hailo.
        if "a16_tensors" in plan:
            plan["a16_layers"] = plan.pop("a16_tensors")
            plan["a16_kind"] = "qdq_tensors"
        plan.setdefault("precision", data.get("precision", ""))
        for item in plan.get("excluded", []) or []:
            if isinstance(item, dict) and "kind" not in item:
                item["kind"] = item.get("op", "")
    inputs = data.get("inputs")
    if isinstance(inputs, dict):
        backend = {
            key: str(inputs.pop(key))
            for key in list(inputs)
            if key in ("suite_image", "suite_image_id", "dfc_image", "worker_sha256")
            or key.endswith("_version")
        }
        inputs["backend"] = backend
    data["schema_version"] = SCHEMA_VERSION
    return data


def read_record(path: Path) -> BuildRecord:
    """Load a record.json of any schema version, or raise RecordError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RecordError(
            f"cannot read a build record ({exc})",
            where=str(path),
            fix="delete the folder and rebuild the target",
        ) from None
    if not isinstance(data, dict):
        raise RecordError(
            "not a build record (not a JSON object)",
            where=str(path),
            fix="delete the folder and rebuild the target",
        )
    if data.get("schema_version", 1) == 1:
        data = _upgrade_v1(data)
    if data.get("failure_class") not in (None, *FAILURE_CLASSES):
        # A class an older hailoc wrote that this one no longer knows: keep the record.
        data["failure_class"] = "unknown"
    try:
        return BuildRecord.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        raise RecordError(
            f"not a build record: {field}: {first['msg']}",
            where=str(path),
            fix="delete the folder and rebuild the target",
        ) from None
