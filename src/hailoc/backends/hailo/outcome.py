"""What a finished stage container means: its failure class (timeout, OOM, a lost engine,
the DFC's own exception), its outputs checked against the worker's hashes, and the 16-bit
layers the optimized HAR really holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hailoc.backends.hailo.container import StageOutcome
from hailoc.backends.protocol import StageFailure
from hailoc.failures import ENGINE_LOST, KILLED, OOM, PLAN_NOT_APPLIED, TIMEOUT, classify
from hailoc.owned_files import sha256_file


def check_outputs(
    stage: str, files: dict[str, Path], result: dict[str, Any], logs: dict[str, Path]
) -> dict[str, str]:
    """Each output must hash to what the worker reported for it (after any download); their
    hashes by name."""
    reported = result.get("outputs_sha256") or {}
    hashes: dict[str, str] = {}
    for name, path in files.items():
        got = hashes[name] = sha256_file(path)
        if reported.get(name) != got:
            raise StageFailure(
                "transfer",
                f"{stage}: OutputChecksumError: {name} hashes to {got[:16]}, the worker "
                f"reported {str(reported.get(name))[:16]}",
                classify("OutputChecksumError", "", stage).hint,
                logs={n: p.read_bytes() for n, p in logs.items()},
            )
    return hashes


def check_applied(planned: tuple[str, ...], entry: Path) -> list[str] | None:
    """The layers the optimized HAR holds in 16-bit; a planned layer that ended 8-bit fails
    the build (None: the DFC did not say, so nothing can be checked)."""
    try:
        applied = json.loads((entry / "applied_precision.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(applied, dict) or not applied:
        return None
    sixteen = sorted(str(k) for k, v in applied.items() if str(v).startswith("a16"))
    lost = [layer for layer in planned if str(applied.get(layer, "")).startswith("a8")]
    if lost:
        raise StageFailure(
            PLAN_NOT_APPLIED.name,
            f"optimize: planned a16_w16 but 8-bit after optimization: {', '.join(lost)}",
            PLAN_NOT_APPLIED.hint,
        )
    return sixteen


def as_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def raise_if_failed(
    stage: str, outcome: StageOutcome, timeout: float, log_files: dict[str, Path]
) -> None:
    result = outcome.result or {}
    if result.get("status") == "ok" and outcome.exit_code == 0 and not outcome.timed_out:
        return
    logs = {name: path.read_bytes() for name, path in log_files.items()}
    seconds = as_float(result.get("seconds"))
    peak = as_float(result.get("peak_rss_mb"))
    if outcome.engine_lost:
        raise StageFailure(
            ENGINE_LOST.name,
            f"{stage}: the Docker engine stopped answering mid-stage",
            ENGINE_LOST.hint,
            logs=logs,
        )
    if outcome.timed_out:
        raise StageFailure(
            TIMEOUT.name, f"{stage} exceeded its {timeout:g} s timeout", TIMEOUT.hint, logs=logs
        )
    if outcome.result is None:
        if outcome.oom_killed:
            limit = f" (memory limit {outcome.memory_limit})" if outcome.memory_limit else ""
            raise StageFailure(
                OOM.name, f"{stage} container was killed out of memory{limit}", OOM.hint, logs=logs
            )
        raise StageFailure(
            KILLED.name,
            f"{stage} container died without a result: exit code {outcome.exit_code}",
            KILLED.hint,
            logs=logs,
        )
    error_type = str(result.get("error_type") or "")
    message = str(result.get("message") or "")
    known = classify(error_type, message, stage)
    raise StageFailure(
        known.name,
        f"{stage}: {error_type}: {message}",
        known.hint,
        error_type=error_type,
        detail=message,
        traceback_tail=tuple(str(t) for t in result.get("traceback_tail", [])),
        worker_seconds=seconds,
        peak_rss_mb=peak,
        logs=logs,
    )
