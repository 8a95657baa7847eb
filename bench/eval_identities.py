"""`hailoc eval --identities`: the second build's evaluation reuses the aligned faces.

Labelled identities are made from the vendored photos (each photo's face one person, its
views mirrored, rotated, relit and cropped: tests/photos.py); real labelled photos behave
the same way. Prints the first evaluation (detect + align + embed) and the second (embed
only, aligned faces from the cache) and their ratio.
Run: python3 bench/eval_identities.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hailoc.cli import run  # noqa: E402
from tests.photos import identity_folders  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("models.yaml", "models", "alls_templates", "examples"):
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, root / name)
            else:
                shutil.copy(source, root / name)
        m = str(root / "models.yaml")
        people = identity_folders(root / "people")
        run(["-m", m, "calib", "build", "fr_demo", "--images", str(root / "examples" / "photos"),
             "--eval-split", "0.3"])  # fmt: skip
        run(["-m", m, "build", "fr_feature", "-p", "int8,int16-final", "--skip-gate"])
        seconds = []
        for precision in ("int8", "int16-final"):
            started = time.perf_counter()
            run(["-m", m, "eval", "fr_feature", "-p", precision, "--identities", str(people),
                 "--face-sizes", "112,40,24"])  # fmt: skip
            seconds.append(time.perf_counter() - started)
        print(
            f"eval --identities: first (align + embed) {seconds[0]:.1f} s, second "
            f"(cached faces, embed only) {seconds[1]:.1f} s, ratio {seconds[0] / seconds[1]:.1f}x"
        )


if __name__ == "__main__":
    main()
