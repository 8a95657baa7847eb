"""Run many builds: one after another (or N at once), surviving any single failure."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hailoc.build.layout import BuildTarget
from hailoc.errors import HailocError
from hailoc.manifest import LoadedManifest
from hailoc.records import BuildRecord

log = logging.getLogger(__name__)

BuildFn = Callable[[BuildTarget, int], BuildRecord]


def plan_targets(
    manifest: LoadedManifest,
    names: list[str],
    *,
    all_models: bool,
    precision: str | list[str] | None,
    hw_archs: list[str] | None,
    backend: str | None,
) -> list[BuildTarget]:
    """Expand the command line into build targets (model x hw_arch)."""
    if all_models and names:
        raise HailocError(
            "give model names or --all, not both", where="hailoc build", fix="drop one"
        )
    if not all_models and not names:
        raise HailocError(
            "no models named",
            where="hailoc build",
            fix="name models (see `hailoc models list`) or pass --all",
        )
    configs = manifest.models(None if all_models else names)
    precisions = [precision] if isinstance(precision, str) else precision
    targets = []
    for cfg in configs:
        for arch in hw_archs or [cfg.hw_arch]:
            for chosen in precisions or [cfg.precision]:
                targets.append(BuildTarget(cfg.name, arch, chosen, backend or cfg.backend))
    return targets


def failed_targets(hef_dir: Path) -> list[BuildTarget]:
    """Targets that failed in the last batch, read from hef/summary.json."""
    path = hef_dir / "summary.json"
    if not path.is_file():
        raise HailocError(
            f"no previous batch summary at {path}",
            where="--retry-failed",
            fix="run `hailoc build --all` first",
        )
    rows = json.loads(path.read_text(encoding="utf-8")).get("results", [])
    return [
        BuildTarget(r["model"], r["hw_arch"], r["precision"], r["backend"])
        for r in rows
        if r.get("status") == "failed"
    ]


def _guarded(build: BuildFn, target: BuildTarget, slot: int) -> BuildRecord:
    try:
        return build(target, slot)
    except HailocError as exc:
        record = BuildRecord(target.model, target.backend, target.hw_arch, target.precision)
        record.fail("input", str(exc), exc.fix or "fix the input named in the message")
        return record
    except Exception as exc:  # one broken model must not end the batch
        log.debug("unexpected failure", exc_info=True)
        record = BuildRecord(target.model, target.backend, target.hw_arch, target.precision)
        record.fail("internal", f"{type(exc).__name__}: {exc}", "report this as a hailoc bug")
        record.log_tail = traceback.format_exc().splitlines()[-12:]
        return record


def run_batch(targets: list[BuildTarget], build: BuildFn, jobs: int = 1) -> list[BuildRecord]:
    """Build every target; with jobs > 1, each worker slot gets its own index (GPU)."""
    if jobs <= 1 or len(targets) <= 1:
        return [_guarded(build, t, 0) for t in targets]
    slots = list(range(jobs))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(_guarded, build, target, slots[i % jobs])
            for i, target in enumerate(targets)
        ]
        return [f.result() for f in futures]
