"""`hailoc eval --identities` at LFW's size: the first build's evaluation and the second's.

The identities (59 people, 452 images, as the issue's LFW-layout set) are generated from the
vendored photos (tests/photos.py `lfw_sized_identities`: each detected face, plain, tinted or
grey, is one person in up to 8 views). Their TARs are low by construction (the three looks of
one face are "different people"); this bench is about time, and about the second evaluation
printing exactly the numbers the first run's code printed.

Prints the first evaluation (detect + align + fp32 + int8 build), the second (int16-final:
aligned faces and fp32 embeddings from the cache, and the build run only from the deepest
tensor it shares with int8's graph, inference/shared_prefix.py), their ratio, and both
against the state before issue #30 (measured on the 2-core dev machine at c73a23e).
--profile writes the second evaluation's cProfile (top 40 by cumulative time) to
bench/profiles/eval_identities_second.txt.
Run: python3 bench/eval_identities.py [--tiny] [--profile]
(--tiny: the 42-view set of tests/photos.py `identity_folders`, 3 sizes: what CI runs)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._project import machine_probe  # noqa: E402
from hailoc.cli import run  # noqa: E402
from tests.photos import identity_folders, lfw_sized_identities  # noqa: E402

# c73a23e on the 2-core dev machine, LFW-sized set, default sizes (112/64/40/24/16).
BEFORE_FIRST_S = 100.0
BEFORE_SECOND_S = 49.5
PROFILE = REPO / "bench" / "profiles" / "eval_identities_second.txt"


def _project(root: Path) -> str:
    for name in ("models.yaml", "models", "alls_templates", "examples"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            shutil.copy(source, root / name)
    m = str(root / "models.yaml")
    run(["-m", m, "calib", "build", "fr_demo", "--images", str(root / "examples" / "photos"),
         "--eval-split", "0.3"])  # fmt: skip
    run(["-m", m, "build", "fr_feature", "-p", "int8,int16-final", "--skip-gate"])
    return m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="42 views, 3 sizes (CI)")
    parser.add_argument("--profile", action="store_true", help=f"write {PROFILE.name}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        m = _project(root)
        if args.tiny:
            people, sizes = identity_folders(root / "people"), ["--face-sizes", "112,40,24"]
        else:
            people, sizes = lfw_sized_identities(root / "people"), []
        images = sum(1 for _ in people.rglob("*.jpg"))
        print(machine_probe())
        seconds = []
        for precision in ("int8", "int16-final"):
            command = ["-m", m, "eval", "fr_feature", "-p", precision]
            command += ["--identities", str(people), *sizes]
            profiler = cProfile.Profile() if args.profile and precision != "int8" else None
            started = time.perf_counter()
            if profiler is not None:
                profiler.runcall(run, command)
            else:
                run(command)
            seconds.append(time.perf_counter() - started)
            if profiler is not None:
                text = io.StringIO()
                pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
                PROFILE.parent.mkdir(exist_ok=True)
                PROFILE.write_text(text.getvalue().replace(str(REPO), "."))
        # The same numbers as running the whole int16-final model: again without the kept
        # activations (`.hailoc/cache/activations` is hailoc's own cache, safe to delete).
        result = root / "hef/fr_feature/onnxruntime/int16-final/identities.json"
        shared = json.loads(result.read_text())["rows"]
        kept = root / ".hailoc" / "cache" / "activations"
        kept_mb = sum(f.stat().st_size for f in kept.rglob("*") if f.is_file()) / 1e6
        shutil.rmtree(kept)
        run(["-m", m, "eval", "fr_feature", "-p", "int16-final", "--identities", str(people),
             *sizes])  # fmt: skip
        same = json.loads(result.read_text())["rows"] == shared
    print(
        f"eval --identities ({'tiny' if args.tiny else 'LFW-sized'}, {images} images): "
        f"first (align + fp32 + build) {seconds[0]:.1f} s, "
        f"second (cached faces and fp32, the build from the cut it shares with int8) "
        f"{seconds[1]:.1f} s, "
        f"ratio {seconds[0] / seconds[1]:.1f}x"
    )
    print(
        f"second evaluation's numbers equal the whole build's: {same}; activations kept by "
        f"the first: {kept_mb:.0f} MB"
    )
    if not args.tiny:
        print(
            f"before #30 (c73a23e): first {BEFORE_FIRST_S:.1f} s, second {BEFORE_SECOND_S:.1f} s "
            f"(ratio {BEFORE_FIRST_S / BEFORE_SECOND_S:.1f}x); now the second is "
            f"{BEFORE_SECOND_S / seconds[1]:.1f}x faster than before"
        )


if __name__ == "__main__":
    main()
