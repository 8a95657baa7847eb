"""Read the HN (Hailo network) JSON the DFC parser writes: layer names and where they came from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hailoc.errors import PlanError


@dataclass(frozen=True)
class HnLayer:
    """One HN layer: bare name, type, and the ONNX node names it was made from."""

    name: str
    type: str
    original_names: tuple[str, ...]
    inputs: tuple[str, ...] = ()  # layers feeding this one (bare names)


@dataclass(frozen=True)
class HnNetwork:
    """The parsed network as hailoc needs it for plan resolution."""

    net_name: str
    layers: tuple[HnLayer, ...]
    output_layers: tuple[str, ...]

    @property
    def names(self) -> frozenset[str]:
        """Every layer name in the network (bare)."""
        return frozenset(layer.name for layer in self.layers)

    def layer(self, name: str) -> HnLayer | None:
        """The layer with bare or scoped name `name`."""
        bare = name.split("/", 1)[1] if "/" in name else name
        return next((layer for layer in self.layers if layer.name == bare), None)


def _bare(key: str) -> str:
    return key.split("/", 1)[1] if "/" in key else key


def hn_from_dict(data: dict[str, Any], *, source: str = "HN") -> HnNetwork:
    """Build an HnNetwork from the dict `runner.get_hn_dict()` returns."""
    raw_layers = data.get("layers")
    if not isinstance(raw_layers, dict) or not raw_layers:
        raise PlanError(
            "HN has no `layers` mapping",
            where=source,
            fix="pass the HN JSON written by the parse stage (parsed.hn.json)",
        )
    first_key = next(iter(raw_layers))
    net_name = data.get("name") or (first_key.split("/", 1)[0] if "/" in first_key else "net")
    layers = tuple(
        HnLayer(
            name=_bare(key),
            type=str(value.get("type", "")),
            original_names=tuple(str(n) for n in value.get("original_names", ())),
            inputs=tuple(_bare(str(n)) for n in value.get("input", ())),
        )
        for key, value in raw_layers.items()
    )
    # net_params.output_layers_order names the layers that FEED the outputs (net/conv68), not
    # the output layers themselves (DFC_NOTES, HN): output layers are found by their type.
    outputs = tuple(layer.name for layer in layers if layer.type == "output_layer")
    return HnNetwork(str(net_name), layers, outputs)


def read_hn(path: Path) -> HnNetwork:
    """Load an HN JSON file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(
            f"HN file {path} not found", where="--hn", fix="pass the parse stage's HN JSON"
        ) from None
    except (OSError, ValueError) as exc:
        raise PlanError(
            f"{path} is not HN JSON ({exc})", where="--hn", fix="pass the parse stage's HN JSON"
        ) from None
    if not isinstance(data, dict):
        raise PlanError(f"{path} is not an HN object", where="--hn", fix="pass an HN JSON file")
    return hn_from_dict(data, source=str(path))
