"""`--precision auto` cost on fr_feature: search time and model evaluations, cold and cached.

Run: python3 bench/auto_precision.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _project import demo_project

from hailoc.autoplan import search_plan
from hailoc.inputs import gather


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        manifest = demo_project(project)
        inputs = gather(manifest, "fr_feature")
        spec = inputs.config.auto
        for label in ("cold", "cached"):
            started = time.perf_counter()
            result = search_plan(inputs, project / ".hailoc" / "cache", spec=spec)
            seconds = time.perf_counter() - started
            print(
                f"{label:6s}: {seconds:6.1f} s, {result.evaluations} model evaluations "
                f"({result.reused_evaluations} reused), {len(result.layers)}/{result.candidates} "
                f"layers in 16-bit, {result.metric} agreement at {result.face_size} px "
                f"{result.score['metric']:.4f} (int8 {result.baseline['metric']:.4f})"
            )


if __name__ == "__main__":
    main()
