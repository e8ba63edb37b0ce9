"""The ERP's entities as APISmith describes them: keys, columns, Oracle types, parents."""

import re
from dataclasses import dataclass
from typing import Literal

import polars as pl

ROWVERSION = "ORA_ROWSCN"
ROWVERSION_TYPE = "NUMBER(19,0)"

ColumnKind = Literal["varchar", "char", "flag", "number", "date", "tstz"]

_VARCHAR = re.compile(r"VARCHAR2\((\d+)\)")
_CHAR = re.compile(r"CHAR\((\d+)\)")
_NUMBER = re.compile(r"NUMBER\((\d+),(\d+)\)")


@dataclass(frozen=True)
class Column:
    """One ERP column: its name, Oracle type and whether it may be null.

    ``flag`` marks a ``CHAR(1)`` yes/no column (rendered as Y/N, 1/0, T/F).
    """

    name: str
    type: str
    nullable: bool = True
    flag: bool = False

    @property
    def kind(self) -> ColumnKind:
        """What family of values the Oracle type holds."""
        if self.flag:
            return "flag"
        if self.type.startswith("VARCHAR2"):
            return "varchar"
        if self.type.startswith("CHAR"):
            return "char"
        if self.type.startswith("NUMBER"):
            return "number"
        if self.type == "DATE":
            return "date"
        if self.type == "TIMESTAMP WITH TIME ZONE":
            return "tstz"
        raise ValueError(f"column {self.name}: unsupported Oracle type {self.type!r}")

    @property
    def length(self) -> int:
        """Declared length of a VARCHAR2(n) / CHAR(n) column."""
        match = _VARCHAR.fullmatch(self.type) or _CHAR.fullmatch(self.type)
        if match is None:
            raise ValueError(f"column {self.name} ({self.type}) has no length")
        return int(match.group(1))

    @property
    def precision_scale(self) -> tuple[int, int]:
        """(precision, scale) of a NUMBER(p,s) column."""
        match = _NUMBER.fullmatch(self.type)
        if match is None:
            raise ValueError(f"column {self.name} ({self.type}) is not NUMBER(p,s)")
        return int(match.group(1)), int(match.group(2))

    @property
    def scale(self) -> int:
        """Digits after the decimal point of a NUMBER(p,s) column."""
        return self.precision_scale[1]

    @property
    def truth_dtype(self) -> pl.DataType:
        """The polars type of this column's ground-truth (normalized) values."""
        kind = self.kind
        if kind in ("varchar", "char"):
            return pl.String()
        if kind == "flag":
            return pl.Boolean()
        if kind == "number":
            precision, scale = self.precision_scale
            return pl.Int64() if scale == 0 else pl.Decimal(precision, scale)
        if kind == "date":
            return pl.Datetime("us")
        return pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class ParentRef:
    """A child's foreign key: its columns name the key of a parent entity."""

    columns: tuple[str, ...]
    parent: str


@dataclass(frozen=True)
class Entity:
    """One ERP table as APISmith exposes it."""

    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    parents: tuple[ParentRef, ...] = ()

    def column(self, name: str) -> Column:
        """The column called ``name`` (KeyError if there is none)."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name}")

    @property
    def column_names(self) -> list[str]:
        """All column names, in order."""
        return [c.name for c in self.columns]

    @property
    def key_columns(self) -> list[Column]:
        """The business-key columns, in key order."""
        return [self.column(k) for k in self.key]

    @property
    def fk_columns(self) -> set[str]:
        """Columns that name a parent."""
        return {c for ref in self.parents for c in ref.columns}

    @property
    def truth_schema(self) -> dict[str, pl.DataType]:
        """Column name -> polars type of the ground truth."""
        return {c.name: c.truth_dtype for c in self.columns}

    def describe(self) -> dict[str, object]:
        """The entity as the contract's ``Entity`` schema describes it."""
        return {
            "name": self.name,
            "key": list(self.key),
            "rowversion": ROWVERSION,
            "columns": [
                {"name": c.name, "type": c.type, "nullable": c.nullable} for c in self.columns
            ],
        }


def _rv() -> Column:
    return Column(ROWVERSION, ROWVERSION_TYPE, nullable=False)


ITEMS = Entity(
    "items",
    ("ITEM_NO",),
    (
        Column("ITEM_NO", "VARCHAR2(20)", nullable=False),
        Column("DESCRIPTION", "VARCHAR2(240)"),
        Column("ITEM_TYPE", "VARCHAR2(10)", nullable=False),
        Column("UOM", "CHAR(3)", nullable=False),
        Column("STD_COST", "NUMBER(12,4)"),
        Column("LEAD_TIME_DAYS", "NUMBER(5,0)"),
        Column("ACTIVE_FLAG", "CHAR(1)", nullable=False, flag=True),
        Column("CREATED_DATE", "DATE", nullable=False),
        Column("LAST_UPDATE_TS", "TIMESTAMP WITH TIME ZONE"),
        _rv(),
    ),
)

WORK_CENTERS = Entity(
    "work_centers",
    ("WC_CODE",),
    (
        Column("WC_CODE", "VARCHAR2(10)", nullable=False),
        Column("WC_NAME", "VARCHAR2(80)", nullable=False),
        Column("DEPARTMENT", "VARCHAR2(30)"),
        Column("CAPACITY_HRS", "NUMBER(7,2)", nullable=False),
        Column("EFFICIENCY_PCT", "NUMBER(5,2)"),
        Column("SHIFT_COUNT", "NUMBER(1,0)", nullable=False),
        Column("ACTIVE_FLAG", "CHAR(1)", nullable=False, flag=True),
        _rv(),
    ),
)

WORK_ORDERS = Entity(
    "work_orders",
    ("WO_NO",),
    (
        Column("WO_NO", "VARCHAR2(20)", nullable=False),
        Column("ITEM_NO", "VARCHAR2(20)", nullable=False),
        Column("ORDER_QTY", "NUMBER(12,3)", nullable=False),
        Column("COMPLETED_QTY", "NUMBER(12,3)", nullable=False),
        Column("STATUS", "VARCHAR2(12)", nullable=False),
        Column("PRIORITY", "NUMBER(3,0)"),
        Column("START_DATE", "DATE", nullable=False),
        Column("DUE_DATE", "DATE", nullable=False),
        Column("RELEASED_TS", "TIMESTAMP WITH TIME ZONE"),
        Column("PLANNER_CODE", "CHAR(8)"),
        Column("NOTES", "VARCHAR2(400)"),
        _rv(),
    ),
    parents=(ParentRef(("ITEM_NO",), "items"),),
)

WORK_ORDER_OPERATIONS = Entity(
    "work_order_operations",
    ("WO_NO", "OP_SEQ"),
    (
        Column("WO_NO", "VARCHAR2(20)", nullable=False),
        Column("OP_SEQ", "NUMBER(4,0)", nullable=False),
        Column("WC_CODE", "VARCHAR2(10)", nullable=False),
        Column("OP_DESC", "VARCHAR2(80)"),
        Column("SETUP_HRS", "NUMBER(7,2)"),
        Column("RUN_HRS", "NUMBER(9,3)", nullable=False),
        Column("OP_STATUS", "VARCHAR2(10)", nullable=False),
        Column("SCHED_START", "DATE"),
        Column("SCHED_END", "DATE"),
        _rv(),
    ),
    parents=(
        ParentRef(("WO_NO",), "work_orders"),
        ParentRef(("WC_CODE",), "work_centers"),
    ),
)

ENTITIES: dict[str, Entity] = {
    e.name: e for e in (ITEMS, WORK_CENTERS, WORK_ORDERS, WORK_ORDER_OPERATIONS)
}
"""The entities in dependency order: every parent comes before its children."""
