"""Calibration throughput: images/s and faces/s for 1 and 2 workers, and peak RSS.

The six example photos are repeated to ~200 images (660 faces). Prints each worker count's
rate, the speed-up of the last over the first, and the state before issue #30 (c73a23e, the
2-core dev machine: 33.6 faces/s with 1 worker, 63.4 with 2; the issue measured 76.9 and
111.3 elsewhere, before detection ran ONNX Runtime's portable path).
Run: python3 bench/calib_throughput.py [--tiny]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from hailoc.calibration import CalibParams, build_set
from hailoc.manifest.schema import DetectorSpec

REPO = Path(__file__).resolve().parents[1]


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=198)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--tiny", action="store_true", help="8 images (CI)")
    args = parser.parse_args()
    if args.tiny:
        args.images = 8
    photos = sorted((REPO / "examples" / "photos").glob("*.jpg"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for i in range(args.images):
            shutil.copy(photos[i % len(photos)], folder / f"img{i:04d}.jpg")
        print(f"{args.images} images ({len(photos)} example photos repeated)")
        rates: list[float] = []
        for workers in (int(w) for w in args.workers.split(",")):
            started = time.perf_counter()
            result = build_set(
                f"bench{workers}",
                CalibParams(images=str(folder)),
                project_root=REPO,
                calib_root=Path(tmp) / "calibration",
                detector=DetectorSpec(),
                workers=workers,
            )
            seconds = time.perf_counter() - started
            faces = result.manifest["counts"]["faces"]
            rates.append(faces / seconds)
            print(
                f"workers={workers}: {seconds:6.1f} s  {args.images / seconds:6.1f} images/s  "
                f"{faces / seconds:6.1f} faces/s  ({faces} faces)  peak RSS {_peak_rss_mb():.0f} MB"
            )

        if len(rates) > 1:
            print(
                f"speed-up {args.workers.split(',')[-1]} workers over {args.workers.split(',')[0]}:"
                f" {rates[-1] / rates[0]:.2f}x (before #30 on the dev machine: 1.89x, "
                f"33.6 -> 63.4 faces/s)"
            )


if __name__ == "__main__":
    main()
