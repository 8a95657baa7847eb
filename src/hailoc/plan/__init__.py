"""Precision plans: which layers run in 16-bit, in ONNX terms and resolved to HN names."""

from hailoc.plan.hn import HnLayer, HnNetwork, hn_from_dict, read_hn
from hailoc.plan.model import Excluded, PrecisionPlan, ResolvedPlan
from hailoc.plan.presets import PRESET_HELP, build_plan
from hailoc.plan.resolve import resolve_plan

__all__ = [
    "PRESET_HELP",
    "Excluded",
    "HnLayer",
    "HnNetwork",
    "PrecisionPlan",
    "ResolvedPlan",
    "build_plan",
    "hn_from_dict",
    "read_hn",
    "resolve_plan",
]
