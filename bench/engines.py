"""A 6-target Hailo batch on one Docker engine vs two (the second its own dockerd, reached as
a remote engine: files copied, never mounted). Stand-in DFC; every optimize stage sleeps
(`# standin-sleep: optimize N`) as a real one would compute, so the batch is stage-bound as
on a GPU host. Prints both wall times and the speed-up; the target is >= 1.8x.
Both engines share this machine's cores: the stand-in's own CPU work (emulation, the host's
accuracy gate) of two builds competes here, where two real hosts would not.
Needs root, dockerd and the stand-in suite image (scripts/build-standin-image).
Run: python3 bench/engines.py [--sleep SECONDS]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _project import demo_project  # noqa: E402

from hailoc.cli import run  # noqa: E402
from tests.docker_support import ensure_standin_image  # noqa: E402
from tests.second_engine import start_second_engine  # noqa: E402

MODELS = 3  # x 2 precisions = 6 targets


def _project(root: Path, sleep: float, engines: list[dict[str, str]]) -> str:
    demo_project(root)
    path = root / "models.yaml"
    data = yaml.safe_load(path.read_text())
    base = data["models"]["fr_feature"]
    for i in range(MODELS):
        data["models"][f"face{i}"] = {**base, "alls_extra": [f"# standin-sleep: optimize {sleep}"]}
    data["defaults"]["engines"] = engines
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def _batch(manifest: str, suite: str) -> float:
    started = time.perf_counter()
    code = run(
        [
            "-m",
            manifest,
            "build",
            *[f"face{i}" for i in range(MODELS)],
            "-b",
            "hailo",
            "-p",
            "int8,int16-final",
            "--suite-image",
            suite,
            "--skip-gate",
        ]
    )
    if code != 0:
        raise SystemExit(f"the batch failed (exit {code})")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    # A real optimize takes minutes; 30 s keeps the run short while the stage still dominates.
    parser.add_argument("--sleep", type=float, default=30.0, help="seconds per optimize stage")
    parser.add_argument("--tiny", action="store_true", help="1 s per optimize stage (CI)")
    args = parser.parse_args()
    if args.tiny:
        args.sleep = 1.0
    suite = ensure_standin_image_or_exit()
    remote = start_second_engine([suite])
    try:
        times = {}
        for label, engines in (
            ("one engine", [{"name": "local"}]),
            ("two engines", [{"name": "local"}, {"name": "remote", "host": remote.url}]),
        ):
            root = Path(tempfile.mkdtemp(prefix="hailoc-bench-"))
            try:
                manifest = _project(root, args.sleep, engines)
                # Warm each engine's DFC image first: the comparison is of the batch.
                run(["-m", manifest, "build", "fr_feature", "-b", "hailo", "-p", "int8,int16-final",
                     "--suite-image", suite, "--skip-gate"])  # fmt: skip
                times[label] = _batch(manifest, suite)
            finally:
                shutil.rmtree(root, ignore_errors=True)
        one, two = times["one engine"], times["two engines"]
        print(
            f"6-target batch (optimize sleeps {args.sleep:g} s): one engine {one:.1f} s, "
            f"two engines {two:.1f} s, speed-up {one / two:.2f}x (target >= 1.8x)"
        )
    finally:
        remote.stop()


def ensure_standin_image_or_exit() -> str:
    """The stand-in suite image, built when missing."""
    try:
        return ensure_standin_image()
    except BaseException as exc:  # pytest.skip/fail outside pytest
        raise SystemExit(f"no stand-in suite image: {exc}") from None


if __name__ == "__main__":
    main()
