"""Read models.yaml, turn validation failures into one-line errors, resolve model configs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from hailoc.errors import ManifestError
from hailoc.manifest.schema import (
    AutoSearch,
    Backend,
    Family,
    Gate,
    HwArch,
    InputSpec,
    Manifest,
    ModelEntry,
    Normalization,
    Optimization,
    Precision,
    family_of,
    is_safe_name,
)

DEFAULT_MANIFEST = Path("models.yaml")
MANIFEST_ENV = "HAILOC_MANIFEST"


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass(frozen=True)
class ModelConfig:
    """A model entry with defaults applied and every path absolute."""

    name: str
    family: Family
    onnx: Path
    onnx_field: str
    sha256: str | None
    input: InputSpec
    normalization: Normalization
    hw_arch: HwArch
    calib_set: str | None
    precision: Precision
    start_nodes: tuple[str, ...]
    end_nodes: tuple[str, ...]
    embedding_output: str | None
    a16_layers: tuple[str, ...]
    alls_template: str | None
    alls_extra: tuple[str, ...]
    optimization: Optimization
    gate: Gate
    auto: AutoSearch
    backend: Backend
    suite_image: str
    canonicalize: bool = True


@dataclass(frozen=True)
class LoadedManifest:
    """A validated manifest and the folder its relative paths start from."""

    path: Path
    data: Manifest

    @property
    def root(self) -> Path:
        """Folder that relative paths in the manifest are resolved against."""
        return self.path.parent

    @property
    def calibration_dir(self) -> Path:
        """Where calibration sets live."""
        return self.root / self.data.defaults.calibration_dir

    @property
    def hef_dir(self) -> Path:
        """Where build outputs and records live."""
        return self.root / self.data.defaults.hef_dir

    def suite_image_for(
        self, hw_arch: str, override: str | None = None, engine: str | None = None
    ) -> str:
        """The one choice of the suite image that builds `hw_arch`: --suite-image, then the
        engine's own suite_images, then defaults.suite_images, then defaults.suite_image."""
        if override or engine:
            return str(override or engine)
        defaults = self.data.defaults
        chosen: str = defaults.suite_images.get(family_of(hw_arch), defaults.suite_image)  # type: ignore[call-overload]
        return chosen

    @property
    def state_dir(self) -> Path:
        """hailoc's own working state (.hailoc/): cache, work folders, temp files."""
        return self.root / ".hailoc"

    @property
    def locks_dir(self) -> Path:
        """Lock files of builds, calibration sets and cache stages (.hailoc/locks/)."""
        return self.state_dir / "locks"

    @property
    def cache_dir(self) -> Path:
        """The content-addressed stage cache."""
        return self.state_dir / "cache"

    @property
    def work_dir(self) -> Path:
        """Per-stage scratch folders, removed when the stage ends."""
        return self.state_dir / "work"

    @property
    def templates_dir(self) -> Path:
        """Where the project's .alls templates live."""
        return self.root / self.data.defaults.alls_templates

    def names(self) -> list[str]:
        """Model names in manifest order."""
        return list(self.data.models)

    def model(self, name: str) -> ModelConfig:
        """Resolve one model entry, or raise a ManifestError naming the known models."""
        if not is_safe_name(name):
            raise ManifestError(
                f"model name {name!r} may only use letters, digits, '_', '-' and '.'",
                where=str(self.path),
                fix="use a plain model name from `hailoc models list`",
            )
        entry = self.data.models.get(name)
        if entry is None:
            known = ", ".join(self.names()) or "none"
            raise ManifestError(
                f"no model named {name!r} (known: {known})",
                where=str(self.path),
                fix="add it under models: or pick a listed name",
            )
        return _resolve(self, name, entry)

    def models(self, names: list[str] | None = None) -> list[ModelConfig]:
        """Resolve the named models, or all of them when `names` is empty."""
        return [self.model(n) for n in (names or self.names())]


def _merge(base: BaseModel, override: BaseModel | None) -> Any:
    # Only the keys a model entry actually wrote override the defaults, field by field.
    if override is None:
        return base
    return base.model_copy(update=override.model_dump(exclude_unset=True))


def _resolve(manifest: LoadedManifest, name: str, entry: ModelEntry) -> ModelConfig:
    defaults = manifest.data.defaults
    optimization: Optimization = _merge(defaults.optimization, entry.optimization)
    if entry.optimization is not None and entry.optimization.finetune is not None:
        optimization = optimization.model_copy(update={"finetune": entry.optimization.finetune})
    return ModelConfig(
        name=name,
        family=entry.family,
        onnx=(manifest.root / entry.onnx).resolve(),
        onnx_field=entry.onnx,
        sha256=entry.sha256,
        input=entry.input,
        normalization=entry.normalization,
        hw_arch=entry.hw_arch or defaults.hw_arch,
        calib_set=entry.calib_set,
        precision=entry.precision or defaults.precision,
        start_nodes=entry.start_nodes,
        end_nodes=entry.end_nodes,
        embedding_output=entry.embedding_output,
        a16_layers=entry.a16_layers,
        alls_template=entry.alls_template,
        alls_extra=entry.alls_extra,
        optimization=optimization,
        gate=_merge(defaults.gate, entry.gate),
        auto=_merge(defaults.auto, entry.auto),
        backend=defaults.backend,
        suite_image=defaults.suite_image,
        canonicalize=entry.canonicalize,
    )


def find_manifest(explicit: Path | None) -> Path:
    """The manifest path from the option, $HAILOC_MANIFEST, or ./models.yaml."""
    if explicit is not None:
        return explicit
    env = os.environ.get(MANIFEST_ENV)
    return Path(env) if env else DEFAULT_MANIFEST


def load_manifest(path: Path) -> LoadedManifest:
    """Read and validate a manifest; every problem becomes one ManifestError line."""
    if not path.is_file():
        raise ManifestError(
            "manifest not found",
            where=str(path),
            fix=f"run from the folder holding models.yaml, or pass --manifest / set {MANIFEST_ENV}",
        )
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = exc.problem or str(exc)
        raise ManifestError(
            f"invalid YAML: {problem}", where=where, fix="correct the YAML at that line"
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ManifestError(
            f"invalid YAML: {exc}", where=str(path), fix="correct the YAML"
        ) from None
    if not isinstance(raw, dict):
        raise ManifestError(
            "top level must be a mapping with `models:`",
            where=str(path),
            fix="start the file with `version: 1` and a `models:` mapping",
        )
    try:
        data = Manifest.model_validate(raw)
    except ValidationError as exc:
        raise _one_line(path, exc) from None
    return LoadedManifest(path=path.resolve(), data=data)


def _dotted(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item == "[key]":
            continue
        elif not item.isprintable() or not item or " " in item:
            # Keys come from the user's file: never print control characters raw.
            parts.append(f"[{item!r}]")
        elif parts:
            parts.append(f".{item}")
        else:
            parts.append(str(item))
    return "".join(parts)


def _section_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _section_model(arg)
        if found is not None:
            return found
    return None


def _fields_at(loc: tuple[int | str, ...]) -> list[str]:
    """Allowed keys of the schema section that holds the key at `loc`."""
    model: type[BaseModel] = Manifest
    parts = list(loc[:-1])
    while parts:
        item = parts.pop(0)
        if isinstance(item, int):
            continue
        field = model.model_fields.get(item)
        section = _section_model(field.annotation) if field is not None else None
        if field is None or section is None:
            return []
        if get_origin(field.annotation) is dict and parts:
            parts.pop(0)  # the mapping key (a model name), not a schema field
        model = section
    return sorted(model.model_fields)


_FIXES = {
    "missing": "add the key",
    "literal_error": "use one of the listed values",
    "string_pattern_mismatch": "use only letters, digits, '_', '-' and '.' (no path characters)",
}


def _one_line(path: Path, exc: ValidationError) -> ManifestError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"])
    field = _dotted(loc) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        allowed = _fields_at(loc)
        message = f"unknown key {loc[-1]!r}"
        fix = "remove it or fix its spelling" + (
            f" (allowed here: {', '.join(allowed)})" if allowed else ""
        )
    elif kind == "missing":
        message = "required key is missing"
        fix = _FIXES[kind]
    else:
        got = first.get("input")
        shown = f" (got {got!r})" if got is not None and not isinstance(got, dict | list) else ""
        message = f"{first['msg']}{shown}"
        fix = _FIXES.get(kind, "correct the value")
        if "[key]" in loc:
            message = f"model name {loc[1]!r} is not allowed: {first['msg']}"
            fix = "rename the model with letters, digits, '_', '-' and '.' only"
    more = len(errors) - 1
    if more:
        fix = f"{fix} ({more} more problem{'s' if more > 1 else ''} after this one)"
    return ManifestError(message, where=f"{path}: {field}", fix=fix)
