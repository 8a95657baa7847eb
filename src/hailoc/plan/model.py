"""The precision plan: one object, rendered to .alls for Hailo and to tensor overrides for ORT."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Excluded:
    """A layer the plan wanted in 16-bit but had to leave out, and why."""

    name: str
    kind: str
    why: str


@dataclass(frozen=True)
class PrecisionPlan:
    """Which layers run a16_w16, named in ONNX terms (or HN terms for custom lists)."""

    model: str
    precision: str
    onnx_nodes: tuple[str, ...]
    hn_names: tuple[str, ...] = ()
    include_output: bool = False
    excluded: tuple[Excluded, ...] = ()
    # Narrowed after a DFC wall (pipeline/walls.py): ONNX nodes that must stay 8-bit (the
    # islands end at them), islands grown from the seeds alone even for int16-all, and HN
    # layers asked for as a16_w8 instead of a16_w16.
    barred: tuple[str, ...] = ()
    grown: bool = False
    a16_w8: tuple[str, ...] = ()

    @property
    def is_int8(self) -> bool:
        """True when nothing runs in 16-bit."""
        return not (self.onnx_nodes or self.hn_names or self.include_output)


@dataclass(frozen=True)
class ResolvedPlan:
    """A plan whose layers are HN names from a parsed network: what a .alls may name."""

    plan: PrecisionPlan
    net_name: str
    a16_layers: tuple[str, ...]
    mapping: dict[str, tuple[str, ...]] = field(default_factory=dict)
    excluded: tuple[Excluded, ...] = ()
    # Every layer name the HN already has: a model script must not declare one again.
    taken: frozenset[str] = frozenset()
    # HN layer -> the user's ONNX nodes it carries (canonical ops expanded), for comments.
    origins: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # HN layers of a16_layers the .alls asks for as a16_w8 (a NaN-exponent wall's remedy).
    a16_w8: tuple[str, ...] = ()
