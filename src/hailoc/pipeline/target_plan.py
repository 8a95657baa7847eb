"""The precision plan of one build: a preset, or the `auto` search (shared by both backends)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from hailoc.alls import render_alls
from hailoc.autoplan import AutoResult, SearchProgress, save_outputs, search_plan, with_overrides
from hailoc.autoplan.search import Scorer
from hailoc.errors import HailocError, PlanError
from hailoc.inputs import BuildInputs
from hailoc.manifest import LoadedManifest, ModelConfig
from hailoc.model_check import load_graph
from hailoc.options import BuildOptions
from hailoc.plan import PrecisionPlan, ResolvedPlan, build_plan, read_hn, resolve_plan
from hailoc.records.layout import auto_plan_path

AUTO_HINT = (
    "build the best plan found with --accept-best (the gate still judges it), or lower "
    "--target / raise --budget; auto_plan.json has the curve"
)


def plan_for(
    manifest: LoadedManifest,
    inputs: BuildInputs,
    precision: str,
    options: BuildOptions,
    progress: SearchProgress | None = None,
    scorer: Scorer | None = None,
    avoid: Mapping[str, str] | None = None,
) -> tuple[PrecisionPlan, AutoResult | None]:
    """The plan for `precision`; `auto` runs (or reuses) the search and saves its outputs.

    `scorer` measures plans on a backend's own quantizer (Hailo); by default the search
    runs on the ONNX Runtime emulation. `avoid`: ONNX layers the search must not choose
    (walls earlier builds met on this target), with why.
    """
    if precision != "auto":
        return build_plan(inputs.config, inputs.graph, precision), None
    cfg = inputs.config
    spec = with_overrides(cfg.auto, options.auto_target, options.auto_budget)
    result = search_plan(
        inputs, manifest.cache_dir, spec=spec, progress=progress, scorer=scorer, avoid=avoid
    )
    save_outputs(result, manifest.hef_dir / cfg.name)
    return result.plan(), result


def saved_auto_plan(hef_dir: Path, model: str) -> PrecisionPlan:
    """The plan of the last `auto` search for `model` (hef/<model>/auto_plan.json)."""
    path = auto_plan_path(hef_dir, model)
    fix = f"run `hailoc plan {model} -p auto` first"
    if not path.is_file():
        raise PlanError(f"no auto plan for {model} at {path}", where="--precision auto", fix=fix)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        layers = tuple(str(layer) for layer in data["layers"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PlanError(f"unreadable auto plan ({exc})", where=str(path), fix=fix) from None
    return PrecisionPlan(model, "auto", layers)


def alls_for(
    manifest: LoadedManifest,
    cfg: ModelConfig,
    precision: str | None,
    hn: Path | None,
    *,
    unresolved: bool = False,
) -> str:
    """The .alls a build of `precision` would hand the DFC (`hailoc alls render`): 16-bit
    layers named from the parsed HN; without it only int8, or a marked non-compilable
    preview with `unresolved`."""
    if (precision or cfg.precision) == "auto":
        plan = saved_auto_plan(manifest.hef_dir, cfg.name)
        graph = load_graph(cfg) if hn is not None else None
    else:
        graph = load_graph(cfg)
        plan = build_plan(cfg, graph, precision)
    chosen: ResolvedPlan | PrecisionPlan
    if hn is not None:
        chosen = resolve_plan(plan, read_hn(hn), graph)
    elif plan.is_int8 or unresolved:
        chosen = plan
    else:
        raise HailocError(
            f"precision {plan.precision} names 16-bit layers, which need the parsed HN",
            where="--hn",
            fix="pass --hn parsed.hn.json, or --unresolved for a non-compilable preview",
        )
    return render_alls(cfg, chosen, manifest.templates_dir)
