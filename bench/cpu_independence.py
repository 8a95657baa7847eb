"""Is the emulation CPU-independent? The same QDQ model on this CPU and on an emulated older one.

Builds fr_feature int8 and int16-final, then hashes the raw outputs of the fp32 model and of
each QDQ model for a few calibration faces under both executions (hailoc/execution.py), once
natively and once under `qemu-x86_64 -cpu Haswell-v4` (AVX2 + FMA, no AVX-512, no VNNI: the
CPUs whose U8S8 kernels use VPMADDUBSW). PORTABLE must hash the same on both; FUSED is shown
for contrast. qemu-user comes from Debian's `qemu-user`; without it only the native hashes
print. Under TCG emulation one face costs ~20 s: keep --faces small.
Run: python3 bench/cpu_independence.py [--faces N] [--cpu Haswell-v4]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))


def hashes(models: list[str], faces_path: str) -> dict[str, str]:
    """sha256 of each model's outputs under each execution."""
    from hailoc.inference.session import Execution, open_session

    faces = np.load(faces_path).astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0
    found = {}
    for model in models:
        for execution in Execution:
            session = open_session(Path(model), threads=1, execution=execution)
            name = session.get_inputs()[0].name
            out = np.concatenate([session.run(None, {name: f[None]})[0] for f in faces])
            found[f"{Path(model).parent.name}/{Path(model).name} {execution.value}"] = (
                hashlib.sha256(np.ascontiguousarray(out).tobytes()).hexdigest()[:16]
            )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=2)
    parser.add_argument(
        "--cpu", default="Haswell-v4", help="qemu CPU model to compare with ('none': native only)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(hashes(args.child[1:], args.child[0])))
        return

    from bench._project import demo_project
    from hailoc.cli import run

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        demo_project(root)
        run(["-m", str(root / "models.yaml"), "build", "fr_feature", "-p", "int8,int16-final",
             "--skip-gate"])  # fmt: skip
        faces = root / "faces.npy"
        np.save(faces, np.load(root / "calibration" / "fr_demo" / "calib.npy")[: args.faces])
        models = [str(root / "models" / "fr_feature.onnx")] + [
            str(root / "hef" / "fr_feature" / "onnxruntime" / p / "fr_feature.qdq.onnx")
            for p in ("int8", "int16-final")
        ]
        native = hashes(models, str(faces))
        qemu = shutil.which("qemu-x86_64") if args.cpu != "none" else None
        emulated: dict[str, str] = {}
        if qemu:
            proc = subprocess.run(
                [qemu, "-cpu", args.cpu, sys.executable, __file__, "--child", str(faces), *models],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if proc.returncode == 0:
                emulated = json.loads(proc.stdout.strip().splitlines()[-1])
            else:
                print(f"qemu run failed: {proc.stderr.strip().splitlines()[-1:]}")
        for key, value in native.items():
            other = emulated.get(key)
            verdict = "" if other is None else ("same" if other == value else f"DIFFERS {other}")
            print(f"{key:45s} native {value}  {args.cpu if other else ''} {verdict}".rstrip())


if __name__ == "__main__":
    main()
