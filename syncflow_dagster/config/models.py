"""Typed models of an entity's YAML configuration.

One YAML file per entity under ``config/entities/``. The models check each file
on its own; :mod:`syncflow_dagster.config.loader` checks what spans entities
(parents, cycles) and turns every mistake into one error naming the file, the
entity and the field. ``docs/CONFIGURATION.md`` documents the format.
"""

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from syncflow_dagster.stages.normalize.oracle_types import parse_oracle_type

TargetType = Literal["string", "integer", "number", "boolean", "date", "datetime"]
Transform = Literal["trim", "upper", "lower"]
SyncMode = Literal["incremental", "full"]
DeletesPolicy = Literal["every_run", "daily", "never"]
Compare = Literal["rowversion", "data_hash"]

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED_FIELDS = frozenset({"bk_hash", "data_hash", "rowversion"})


def regex_problem(regex: str) -> str | None:
    """Why polars (the Rust regex engine that runs ``rules[].regex``) cannot compile it."""
    try:
        pl.select(pl.lit("").str.contains(regex))
    except pl.exceptions.PolarsError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = next((line[6:].strip() for line in lines if line.startswith("error:")), lines[0])
        hint = ""
        if "look-around" in reason or "backreference" in reason:
            hint = "; rewrite it without look-around or back-references"
        return f"regex does not compile in the Rust regex engine polars runs: {reason}{hint}"
    return None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SourceConfig(_Model):
    """Where the records come from: an APISmith entity."""

    entity: str = Field(description="APISmith entity name")
    key: tuple[str, ...] = Field(min_length=1, description="business-key columns, in order")
    rowversion: str | None = Field(
        default=None, description="rowversion column; without it every run is a full hash-compare"
    )
    timezone: str | None = Field(
        default=None, description="IANA zone of the ERP's naive dates (default: ERP_TIMEZONE)"
    )
    columns: dict[str, str] | None = Field(
        default=None,
        description="column -> Oracle type (or FLAG); taken from APISmith /entities when absent",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except Exception as exc:
                raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("columns")
    @classmethod
    def _types_parse(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            for column, type_text in value.items():
                try:
                    parse_oracle_type(type_text)
                except ValueError as exc:
                    raise ValueError(f"column {column}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _columns_known(self) -> Self:
        if self.columns is not None:
            for name in (*self.key, *([self.rowversion] if self.rowversion else [])):
                if name not in self.columns:
                    raise ValueError(f"column {name} is not among the source columns")
        if len(set(self.key)) != len(self.key):
            raise ValueError("key names a column twice")
        return self


class FieldConfig(_Model):
    """One target field: where its value comes from and how it is shaped."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    type: TargetType
    from_: str | None = Field(default=None, alias="from", description="source column")
    concat: tuple[str, ...] | None = Field(default=None, min_length=2)
    separator: str = " "
    constant: str | int | float | bool | None = None
    transforms: tuple[Transform, ...] = ()
    value_map: dict[str, str | int | float | bool] | None = None
    strict_value_map: bool = Field(
        default=False, description="a value the map does not list fails the record"
    )
    default: str | int | float | bool | None = None

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_FIELDS:
            raise ValueError(f"'{value}' is reserved for SyncFlow's own columns")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [
            name for name, v in (("from", self.from_), ("concat", self.concat)) if v is not None
        ]
        if "constant" in self.model_fields_set:
            given.append("constant")
        if len(given) != 1:
            raise ValueError(
                "a field takes its value from exactly one of 'from', 'concat', 'constant'"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.concat is not None and self.type != "string":
            raise ValueError("'concat' makes a string; set type: string")
        if self.strict_value_map and self.value_map is None:
            raise ValueError("'strict_value_map' needs a 'value_map'")
        return self

    @property
    def source_columns(self) -> tuple[str, ...]:
        """The source columns this field reads."""
        if self.from_ is not None:
            return (self.from_,)
        return self.concat or ()


class TargetConfig(_Model):
    """Where the records go: a ScheduleHub entity and its fields."""

    entity: str = Field(description="ScheduleHub entity name")
    fields: tuple[FieldConfig, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [f.name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"field names used twice: {', '.join(dupes)}")
        return self


class RuleConfig(_Model):
    """A validation rule on one normalized source column."""

    column: str
    required: bool | None = None
    min: float | None = None
    max: float | None = None
    max_length: int | None = Field(default=None, ge=1)
    regex: str | None = None
    allowed: tuple[str | int | float | bool, ...] | None = None
    not_before: str | None = Field(default=None, description="another date column")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        problem = None if value is None else regex_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _has_a_rule(self) -> Self:
        if len(self.model_fields_set - {"column"}) == 0:
            raise ValueError(f"rule on {self.column} names no check")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the rule reads."""
        return (self.column, self.not_before) if self.not_before else (self.column,)


class ParentConfig(_Model):
    """A parent entity and the child columns that carry the parent's business key."""

    entity: str = Field(description="SyncFlow entity name of the parent")
    columns: tuple[str, ...] = Field(min_length=1, description="in the parent's key order")


class ScheduleConfig(_Model):
    """When the entity's job runs on its own."""

    cron: str | None = Field(default=None, description="a regular cadence (ERP time zone)")
    nightly: bool = Field(
        default=False, description="run in the BACKGROUND_SYNC_WINDOW (big tables, multi-night)"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if self.cron is not None and self.nightly:
            raise ValueError("choose either 'cron' or 'nightly'")
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError(f"cron {self.cron!r} needs five fields")
        return self


class SyncConfig(_Model):
    """How a run of the entity behaves."""

    mode: SyncMode = "incremental"
    deletes: DeletesPolicy = Field(
        default="every_run",
        description="when a run compares APISmith's key listing with the state to find deletes",
    )
    compare: Compare = Field(
        default="rowversion",
        description="what settles a record the hub has: an equal rowversion (trusted), or "
        "only an equal data hash (every record read is normalized and mapped again)",
    )
    schedule: ScheduleConfig = ScheduleConfig()
    max_rows_per_run: int = Field(default=2_000_000, ge=1000)
    batch_size: int | None = Field(default=None, ge=1, le=1000)


class EntityConfig(_Model):
    """One synced entity, as written in its YAML file."""

    name: Annotated[str, Field(pattern=IDENTIFIER.pattern, max_length=48)]
    description: str = ""
    source: SourceConfig
    target: TargetConfig
    rules: tuple[RuleConfig, ...] = ()
    parents: tuple[ParentConfig, ...] = ()
    sync: SyncConfig = SyncConfig()
    _file: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _columns_exist(self) -> Self:
        if self.source.columns is not None:
            self.check_columns(self.source.columns.keys())
        return self

    def check_columns(self, available: Any) -> None:
        """Check every column this entity reads is among ``available``.

        Raises:
            ValueError: naming the first field, rule or parent that reads a missing column.
        """
        known = set(available)
        for name in (
            *self.source.key,
            *([self.source.rowversion] if self.source.rowversion else []),
        ):
            if name not in known:
                raise ValueError(f"source column {name} does not exist")
        for f in self.target.fields:
            for col in f.source_columns:
                if col not in known:
                    raise ValueError(f"target field {f.name}: source column {col} does not exist")
        for rule in self.rules:
            for col in rule.columns:
                if col not in known:
                    raise ValueError(f"rule on {rule.column}: column {col} does not exist")
        for parent in self.parents:
            for col in parent.columns:
                if col not in known:
                    raise ValueError(f"parent {parent.entity}: column {col} does not exist")

    @property
    def read_columns(self) -> tuple[str, ...]:
        """Every source column the pipeline reads, in a stable order."""
        seen: dict[str, None] = {}
        for name in self.source.key:
            seen[name] = None
        if self.source.rowversion:
            seen[self.source.rowversion] = None
        for f in self.target.fields:
            for col in f.source_columns:
                seen[col] = None
        for rule in self.rules:
            for col in rule.columns:
                seen[col] = None
        for parent in self.parents:
            for col in parent.columns:
                seen[col] = None
        return tuple(seen)
