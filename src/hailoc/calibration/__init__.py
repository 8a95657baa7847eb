"""Calibration sets: photos -> detected, aligned, distance-augmented 112x112 faces."""

from hailoc.calibration.builder import BuildProgress, CalibParams, build_set
from hailoc.calibration.store import CalibSet, Change, list_sets, open_set, verify

__all__ = [
    "BuildProgress",
    "CalibParams",
    "CalibSet",
    "Change",
    "build_set",
    "list_sets",
    "open_set",
    "verify",
]
