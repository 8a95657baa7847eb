"""Where a build's files live: one place that knows the folder layout under hef/.

    hef/<model>/<hw_arch | onnxruntime>/<precision>/record.json, build.log, report.md,
        <model>.hef | <model>.standin-not-a-hef | <model>.qdq.onnx, verify.json, ...
    hef/<model>/auto_plan.json, auto_plan.dfc.json, auto_curve.png
    hef/summary.json, summary.md

verify, eval, report and the runner all find files through these functions.
"""

from __future__ import annotations

from pathlib import Path

from hailoc.records.io import read_record, write_record
from hailoc.records.schema import BuildRecord, IdentitiesSection, PairsSection
from hailoc.targets import BuildTarget

RECORD = "record.json"
# The artifacts a deployment may load, by the record's artifacts key.
DEPLOYABLE = ("hef", "standin_output", "qdq_onnx")
# auto_plan.json from the ORT emulation's ranking, auto_plan.dfc.json from the DFC's.
AUTO_PLAN_FILES = {"ort": "auto_plan.json", "dfc": "auto_plan.dfc.json"}


def output_dir(hef_dir: Path, target: BuildTarget) -> Path:
    """Folder holding the record, the log and the artifact of a build."""
    return hef_dir / target.model / target.arch_folder / target.precision


def record_path(folder: Path) -> Path:
    """A build folder's record."""
    return folder / RECORD


def all_records(hef_dir: Path) -> list[Path]:
    """Every build folder's record under hef/, in path order."""
    return sorted(hef_dir.glob(f"*/*/*/{RECORD}"))


def artifact_name(key: str, model: str) -> str:
    """The file name of a build's artifact: `hef`, `standin_output` or `qdq_onnx`."""
    suffix = {"hef": "hef", "standin_output": "standin-not-a-hef", "qdq_onnx": "qdq.onnx"}[key]
    return f"{model}.{suffix}"


def model_dir(hef_dir: Path, model: str) -> Path:
    """hef/<model>/: the auto search's plans and curve."""
    return hef_dir / model


def auto_plan_path(hef_dir: Path, model: str, source: str = "ort") -> Path:
    """The saved plan of the last auto search ranked by `source` (ort | dfc)."""
    return model_dir(hef_dir, model) / AUTO_PLAN_FILES[source]


def optimize_key(record: BuildRecord) -> str | None:
    """The cache key of the optimize stage that made the build (its last attempt's)."""
    for stage in reversed(record.stages):
        if stage.name == "optimize" and stage.cache_key:
            return stage.cache_key
    return None


def add_evaluation(
    folder: Path,
    *,
    pairs: PairsSection | None = None,
    identities: IdentitiesSection | None = None,
) -> None:
    """Add an evaluation's numbers to the build's record (when it has an accuracy section)."""
    path = record_path(folder)
    if not path.is_file():
        return
    record = read_record(path)
    if record.accuracy is None:
        return
    if pairs is not None:
        record.accuracy.pairs = pairs
    if identities is not None:
        record.accuracy.identities = identities
    write_record(path, record)
