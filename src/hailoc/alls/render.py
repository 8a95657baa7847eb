"""Render a model's .alls from its manifest entry and a (resolved or unresolved) plan."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2

from hailoc import __version__
from hailoc.alls.flavor import Flavor
from hailoc.errors import HailocError
from hailoc.manifest import ModelConfig
from hailoc.plan import PrecisionPlan, ResolvedPlan

BASE_TEMPLATE = "base.alls.j2"


def templates_search_path(project_dir: Path) -> list[Path]:
    """Project templates first, then the copy shipped inside the wheel."""
    paths = [project_dir]
    packaged = Path(str(resources.files("hailoc"))) / "alls_templates"
    if packaged.is_dir():
        paths.append(packaged)
    return [p for p in paths if p.is_dir()]


def _fmt(value: float) -> str:
    return repr(float(value))


def normalization_name(taken: frozenset[str]) -> str:
    """A name for the input normalization layer that the parsed network does not have.

    Model-zoo scripts use normalization1, or new_normalization1, ... where the HN already has
    a normalization1 (docs/dfc-behaviour.md); declaring an existing name is an error.
    """
    if "normalization1" not in taken:
        return "normalization1"
    index = 1
    while f"new_normalization{index}" in taken:
        index += 1
    return f"new_normalization{index}"


def calibset_size(configured: int, entries: int | None) -> int:
    """The calibset_size a script states: the manifest's cap, or fewer when the set is smaller."""
    return configured if entries is None else max(1, min(configured, entries))


def _template(cfg: ModelConfig, templates_dir: Path) -> jinja2.Template:
    """The model's template (alls_template, else its family's, else base.alls.j2)."""
    search = templates_search_path(templates_dir)
    if not search:
        raise HailocError(
            f"no .alls templates at {templates_dir}",
            where="defaults.alls_templates",
            fix="point it at a folder holding base.alls.j2 (the repo's alls_templates/)",
        )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in search]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    name = cfg.alls_template or f"{cfg.family}.alls.j2"
    if not name.endswith(".j2"):
        name = f"{name}.alls.j2"
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound:
        if cfg.alls_template:
            raise HailocError(
                f"template {name} not found in {', '.join(map(str, search))}",
                where=f"models.{cfg.name}.alls_template",
                fix="add the template or remove the key to use the family default",
            ) from None
        return env.get_template(BASE_TEMPLATE)


@dataclass(frozen=True)
class _Layers:
    """What a script says about 16-bit: the a16_w16 and a16_w8 layers, the user's nodes
    each stands for, and the HN names already taken."""

    a16: tuple[str, ...]
    w8: tuple[str, ...]
    origins: list[str]
    taken: frozenset[str]
    unresolved: bool
    precision: str


def _layers(plan: ResolvedPlan | PrecisionPlan) -> _Layers:
    if isinstance(plan, ResolvedPlan):
        w8 = plan.a16_w8
        layers = tuple(layer for layer in plan.a16_layers if layer not in w8)
        # What each 16-bit HN layer is in the user's graph (canonical ops expanded).
        origins = [
            f"{layer} <- {', '.join(plan.origins[layer])}"
            for layer in layers
            if plan.origins.get(layer)
        ]
        return _Layers(layers, w8, origins, plan.taken, False, plan.plan.precision)
    layers = plan.onnx_nodes + plan.hn_names
    if plan.include_output:
        layers += ("<output layer>",)
    return _Layers(layers, (), [], frozenset(), not plan.is_int8, plan.precision)


def render_alls(
    cfg: ModelConfig,
    plan: ResolvedPlan | PrecisionPlan,
    templates_dir: Path,
    flavor: Flavor | None = None,
    calibration_entries: int | None = None,
) -> str:
    """Render the .alls text; an unresolved plan is marked as not compilable.

    Without `flavor` (previews), a numeric manifest level is written and `auto` is shown as
    the DFC's default. `calibration_entries` (the size of the set a build hands the DFC) caps
    `calibset_size`, so the script never claims statistics over more entries than it gets.
    """
    template = _template(cfg, templates_dir)
    if flavor is None:
        level = cfg.optimization.optimization_level
        flavor = (
            Flavor(None, "auto: decided per stage (GPU, calibration size)")
            if level == "auto"
            else Flavor(level, "set in the manifest")
        )
    found = _layers(plan)
    norm = cfg.normalization
    normalization = None
    if not norm.in_graph and norm.mean is not None and norm.std is not None:
        normalization = {
            "name": normalization_name(found.taken),
            "mean": [_fmt(v) for v in norm.mean],
            "std": [_fmt(v) for v in norm.std],
        }
    try:
        return template.render(
            version=__version__,
            model=cfg.name,
            family=cfg.family,
            precision=found.precision,
            hw_arch=cfg.hw_arch,
            unresolved=found.unresolved,
            normalization=normalization,
            a16_layers=list(found.a16),
            a16_w8_layers=list(found.w8),
            a16_origins=found.origins,
            optimization=cfg.optimization,
            calibset_size=calibset_size(cfg.optimization.calibset_size, calibration_entries),
            flavor=flavor,
            extra=list(cfg.alls_extra),
        )
    except jinja2.TemplateError as exc:
        raise HailocError(
            f"template {template.name} failed to render: {exc}",
            where=str(templates_dir),
            fix="fix the template",
        ) from None
