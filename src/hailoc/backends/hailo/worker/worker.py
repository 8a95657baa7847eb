"""hailoc's in-container worker: run one DFC stage from a job file, report a result file.

Standard library + numpy + hailo_sdk_client only, so it runs in the suite's Python without
hailoc's host dependencies. Usage: python3 worker.py /path/to/job.json

Every artifact is written to a temp name and renamed when whole; a failed stage removes what
it wrote, so the host never sees a partial HAR or HEF. The result file is the contract with
the host: status, seconds, peak memory, error type, message and the traceback's tail.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dfc

MARK = "@@hailoc"


def say(stage: str, event: str, **fields: Any) -> None:
    """A line the host parses from the log stream to follow stage progress."""
    extra = " ".join(f"{k}={v}" for k, v in fields.items())
    print(f"{MARK} stage={stage} event={event} {extra}".rstrip(), flush=True)


def atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.partial"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_save_npy(path: str, array: Any) -> None:
    tmp = f"{path}.partial.npy"
    np.save(tmp, array)
    os.replace(tmp, path)


class InputChecksumError(Exception):
    """An input's bytes are not the ones the host hashed (a damaged upload or blob)."""


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_inputs(expected: dict[str, str]) -> None:
    """Every input the host named must hash to what the host recorded for it."""
    for path, want in sorted(expected.items()):
        got = sha256_file(path)
        if got != want:
            raise InputChecksumError(
                f"{path}: sha256 {got[:16]} is not the {want[:16]} the host recorded"
            )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_faces(path: str, channel_order: str) -> Any:
    """uint8 NHWC RGB faces -> float32 NHWC in the model's channel order, raw pixel range."""
    faces = np.load(path, mmap_mode="r")
    if faces.ndim != 4 or faces.shape[-1] != 3:
        raise ValueError(f"calibration array {path} has shape {faces.shape}, expected (N,H,W,3)")
    faces = np.asarray(faces, dtype=np.float32)
    return faces[..., ::-1].copy() if channel_order == "BGR" else faces


def stage_parse(job: dict[str, Any], out: str) -> dict[str, Any]:
    har = os.path.join(out, "parsed.har")
    hn = dfc.parse(
        job["onnx"],
        job["net_name"],
        job["hw_arch"],
        job.get("start_nodes", []),
        job.get("end_nodes", []),
        job["input_name"],
        job["input_shape"],
        har + ".tmp",
    )
    os.replace(har + ".tmp", har)
    atomic_write(os.path.join(out, "parsed.hn.json"), json.dumps(hn, indent=1).encode())
    return {"artifacts": ["parsed.har", "parsed.hn.json"]}


def stage_optimize(job: dict[str, Any], out: str) -> dict[str, Any]:
    with open(job["alls"], encoding="utf-8") as fh:
        alls = fh.read()
    calib = load_faces(job["calib"], job.get("channel_order", "RGB"))
    har = os.path.join(out, "optimized.har")
    runner = dfc.optimize(job["har_in"], job["hw_arch"], alls, calib, har + ".tmp")
    os.replace(har + ".tmp", har)
    applied = dfc.applied_precisions(runner)
    atomic_write(os.path.join(out, "applied_precision.json"), json.dumps(applied).encode())
    artifacts = ["optimized.har", "applied_precision.json"]
    if job.get("eval"):
        faces = load_faces(job["eval"], job.get("channel_order", "RGB"))
        say("optimize", "emulate", faces=len(faces))
        fp, quant = dfc.emulate(runner, faces)
        atomic_save_npy(os.path.join(out, "emulate_fp.npy"), np.asarray(fp).reshape(len(faces), -1))
        atomic_save_npy(
            os.path.join(out, "emulate_q.npy"), np.asarray(quant).reshape(len(faces), -1)
        )
        artifacts += ["emulate_fp.npy", "emulate_q.npy"]
    return {"artifacts": artifacts}


def stage_noise(job: dict[str, Any], out: str) -> dict[str, Any]:
    calib = load_faces(job["calib"], job.get("channel_order", "RGB"))
    count = min(int(job["data_count"]), len(calib))
    say("noise", "analyze", images=count, mode=job["mode"])
    snr = dfc.analyze_noise(job["har_in"], job["hw_arch"], calib, count, job["mode"])
    atomic_write(os.path.join(out, "noise.json"), json.dumps(snr, indent=1).encode())
    return {"artifacts": ["noise.json"], "layers": len(snr)}


def stage_emulate(job: dict[str, Any], out: str) -> dict[str, Any]:
    faces = load_faces(job["faces"], job.get("channel_order", "RGB"))
    say("emulate", "emulate", faces=len(faces))
    quant = dfc.emulate_quantized(job["har_in"], job["hw_arch"], faces)
    atomic_save_npy(os.path.join(out, "emulate_q.npy"), np.asarray(quant).reshape(len(faces), -1))
    return {"artifacts": ["emulate_q.npy"]}


def stage_compile(job: dict[str, Any], out: str) -> dict[str, Any]:
    alls = ""
    if job.get("alls"):
        with open(job["alls"], encoding="utf-8") as fh:
            alls = fh.read()
    hef = dfc.compile_hef(job["har_in"], job["hw_arch"], alls)
    atomic_write(os.path.join(out, "model.hef"), hef)
    return {"artifacts": ["model.hef"]}


STAGES: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "parse": stage_parse,
    "optimize": stage_optimize,
    "compile": stage_compile,
    "noise": stage_noise,
    "emulate": stage_emulate,
}


def run(job_path: str) -> int:
    with open(job_path, encoding="utf-8") as fh:
        job = json.load(fh)
    stage, out = job["stage"], job["out_dir"]
    os.makedirs(out, exist_ok=True)
    if job.get("cwd"):
        # The DFC writes its logs and scratch folders into the current directory: give it a
        # private writable one (the host keeps its *.log files as build artifacts).
        os.makedirs(job["cwd"], exist_ok=True)
        os.chdir(job["cwd"])
    before = set(os.listdir(out))
    result: dict[str, Any] = {"stage": stage, "status": "running"}
    say(stage, "start")
    started = time.monotonic()
    try:
        check_inputs(job.get("sha256", {}))
        result.update(STAGES[stage](job, out))
        # The host checks what it received against these (after a download, too).
        result["outputs_sha256"] = {
            name: sha256_file(os.path.join(out, name))
            for name in sorted(set(os.listdir(out)) - before)
            if os.path.isfile(os.path.join(out, name))
        }
        result["status"] = "ok"
    except BaseException as exc:  # the host classifies; the worker only reports
        for name in set(os.listdir(out)) - before:
            try:
                os.remove(os.path.join(out, name))
            except OSError:
                pass
        tail = traceback.format_exc().strip().splitlines()[-12:]
        result.update(
            status="failed",
            error_type=type(exc).__name__,
            message=str(exc).strip()[:2000],
            traceback_tail=tail,
        )
        traceback.print_exc()
    result["seconds"] = round(time.monotonic() - started, 3)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    atomic_write(os.path.join(out, "result.json"), json.dumps(result, indent=1).encode())
    say(stage, "end", status=result["status"], seconds=result["seconds"])
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
