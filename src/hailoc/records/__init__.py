"""Build records and batch summaries: typed, versioned, written atomically, read back leniently."""

from hailoc.records.io import RecordError, read_record, write_record
from hailoc.records.schema import (
    SCHEMA_VERSION,
    AccuracySection,
    AgreementNumbers,
    Artifact,
    AutoSummary,
    BuildRecord,
    DegeneracyNumbers,
    ExcludedLayer,
    GateSection,
    InputsSection,
    PairsSection,
    PlanSection,
    SideNumbers,
    SizeRow,
    StageRecord,
    VerificationNumbers,
    Versions,
)
from hailoc.records.summary import SummaryRow, read_summary, write_summary

__all__ = [
    "SCHEMA_VERSION",
    "AccuracySection",
    "AgreementNumbers",
    "Artifact",
    "AutoSummary",
    "BuildRecord",
    "DegeneracyNumbers",
    "ExcludedLayer",
    "GateSection",
    "InputsSection",
    "PairsSection",
    "PlanSection",
    "RecordError",
    "SideNumbers",
    "SizeRow",
    "StageRecord",
    "SummaryRow",
    "VerificationNumbers",
    "Versions",
    "read_record",
    "read_summary",
    "write_record",
    "write_summary",
]
