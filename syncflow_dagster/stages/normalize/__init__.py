"""Normalize stage: raw ERP text to typed values; unreadable values become failures.

See docs/NORMALIZATION.md for what each Oracle type becomes, every accepted
form and every failure code.
"""

from syncflow_dagster.stages.normalize.base import FailureCode
from syncflow_dagster.stages.normalize.oracle_types import (
    ColumnSpec,
    OracleKind,
    OracleType,
    parse_oracle_type,
)
from syncflow_dagster.stages.normalize.stage import (
    NormalizeResult,
    normalize,
    normalizer_for,
)

__all__ = [
    "ColumnSpec",
    "FailureCode",
    "NormalizeResult",
    "OracleKind",
    "OracleType",
    "normalize",
    "normalizer_for",
    "parse_oracle_type",
]
