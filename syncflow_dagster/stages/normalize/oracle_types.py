"""Oracle column types as the entity description names them, and what each becomes.

``parse_oracle_type("NUMBER(12,3)")`` turns the text of a type into an
:class:`OracleType`; :attr:`OracleType.polars_dtype` says what the normalizer
makes of it. ``FLAG`` is a pseudo-type: a ``CHAR(1)`` Y/N flag.
"""

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import polars as pl

#: NUMBER(p) / NUMBER(p,0) up to this precision always fits an Int64.
INT64_SAFE_PRECISION = 18
#: Oracle's largest precision; also what ``INTEGER`` and ``NUMBER(*,s)`` mean.
MAX_PRECISION = 38

UTC_DATETIME = pl.Datetime("us", "UTC")
#: 0001-01-01 00:00:00 in microseconds since the epoch: Oracle has no year 0.
FIRST_INSTANT_US = -62_135_596_800_000_000


class OracleKind(StrEnum):
    """The families of Oracle types the normalizer reads."""

    NUMBER = "NUMBER"
    INTEGER = "INTEGER"
    DATE = "DATE"
    TIMESTAMP = "TIMESTAMP"
    TIMESTAMP_TZ = "TIMESTAMP WITH TIME ZONE"
    CHAR = "CHAR"
    VARCHAR2 = "VARCHAR2"
    FLAG = "FLAG"


@dataclass(frozen=True)
class OracleType:
    """One parsed Oracle column type.

    Attributes:
        kind: the type family.
        precision: NUMBER precision (``None`` for a bare ``NUMBER``).
        scale: NUMBER scale (``None`` for a bare ``NUMBER``; 0 for ``NUMBER(p)``).
        length: CHAR / VARCHAR2 length (1 for FLAG).
        length_semantics: ``"BYTE"`` or ``"CHAR"`` when the type says so. The
            normalizer checks lengths in characters either way (see
            docs/NORMALIZATION.md).
        fractional_seconds: TIMESTAMP precision when given, e.g. 6 for ``TIMESTAMP(6)``.
    """

    kind: OracleKind
    precision: int | None = None
    scale: int | None = None
    length: int | None = None
    length_semantics: Literal["BYTE", "CHAR"] | None = None
    fractional_seconds: int | None = None

    @property
    def is_integral(self) -> bool:
        """Whether a NUMBER-like type holds whole numbers only (scale <= 0)."""
        if self.kind is OracleKind.INTEGER:
            return True
        return self.kind is OracleKind.NUMBER and self.scale is not None and self.scale <= 0

    @property
    def polars_dtype(self) -> pl.DataType:
        """The Polars type a normalized value of this type has."""
        match self.kind:
            case OracleKind.NUMBER | OracleKind.INTEGER:
                return pl.Int64() if self.is_integral else pl.Float64()
            case OracleKind.DATE | OracleKind.TIMESTAMP | OracleKind.TIMESTAMP_TZ:
                return UTC_DATETIME
            case OracleKind.FLAG:
                return pl.Boolean()
            case _:
                return pl.String()

    def __str__(self) -> str:
        match self.kind:
            case OracleKind.NUMBER if self.precision is None:
                return "NUMBER"
            case OracleKind.NUMBER:
                return f"NUMBER({self.precision},{self.scale})"
            case OracleKind.CHAR | OracleKind.VARCHAR2:
                unit = f" {self.length_semantics}" if self.length_semantics else ""
                return f"{self.kind}({self.length}{unit})"
            case OracleKind.TIMESTAMP | OracleKind.TIMESTAMP_TZ if (
                self.fractional_seconds is not None
            ):
                zone = " WITH TIME ZONE" if self.kind is OracleKind.TIMESTAMP_TZ else ""
                return f"TIMESTAMP({self.fractional_seconds}){zone}"
            case _:
                return str(self.kind)


# Matched against the canonical text: upper case, single spaces, none around ( , ).
_NUMBER = re.compile(r"NUMBER(?:\((\*|[0-9]+)(?:,(-?[0-9]+))?\))?")
_TIMESTAMP = re.compile(r"TIMESTAMP(?:\(([0-9]+)\))?( ?WITH TIME ZONE)?")
_CHARACTER = re.compile(r"(CHAR|VARCHAR2)(?:\(([0-9]+)(?: (BYTE|CHAR))?\))?")


def _number(match: re.Match[str], text: str) -> OracleType:
    if match.group(1) is None:
        return OracleType(OracleKind.NUMBER)
    star = match.group(1) == "*"
    if star and match.group(2) is None:
        return OracleType(OracleKind.NUMBER)
    precision = MAX_PRECISION if star else int(match.group(1))
    scale = int(match.group(2)) if match.group(2) is not None else 0
    if not 1 <= precision <= MAX_PRECISION:
        raise ValueError(f"Oracle type {text!r}: precision must be 1..{MAX_PRECISION}")
    if not -84 <= scale <= 127:
        raise ValueError(f"Oracle type {text!r}: scale must be -84..127")
    return OracleType(OracleKind.NUMBER, precision=precision, scale=scale)


def _timestamp(match: re.Match[str], text: str) -> OracleType:
    digits = int(match.group(1)) if match.group(1) is not None else None
    if digits is not None and digits > 9:
        raise ValueError(f"Oracle type {text!r}: fractional seconds precision must be 0..9")
    kind = OracleKind.TIMESTAMP_TZ if match.group(2) else OracleKind.TIMESTAMP
    return OracleType(kind, fractional_seconds=digits)


def _character(match: re.Match[str], text: str) -> OracleType:
    kind = OracleKind(match.group(1))
    if match.group(2) is None:
        if kind is OracleKind.VARCHAR2:
            raise ValueError(f"Oracle type {text!r}: VARCHAR2 needs a length")
        return OracleType(kind, length=1)
    length = int(match.group(2))
    if length < 1:
        raise ValueError(f"Oracle type {text!r}: length must be at least 1")
    semantics = match.group(3)
    return OracleType(kind, length=length, length_semantics=semantics)  # type: ignore[arg-type]


def parse_oracle_type(text: str) -> OracleType:
    """Parse the text of an Oracle column type (case and spacing do not matter).

    Accepts ``NUMBER``, ``NUMBER(p)``, ``NUMBER(p,s)``, ``NUMBER(*,s)``,
    ``INTEGER``, ``DATE``, ``TIMESTAMP[(n)]``, ``TIMESTAMP[(n)] WITH TIME ZONE``,
    ``CHAR[(n [BYTE|CHAR])]``, ``VARCHAR2(n [BYTE|CHAR])`` and the pseudo-type
    ``FLAG`` (a ``CHAR(1)`` Y/N flag).

    Raises:
        ValueError: the type is unknown or malformed; the message names it.
    """
    if not isinstance(text, str):
        raise ValueError(f"Oracle type must be text, got {text!r}")
    canon = re.sub(r"\s*([(),])\s*", r"\1", " ".join(text.strip().upper().split()))
    simple = {"INTEGER": OracleKind.INTEGER, "DATE": OracleKind.DATE, "FLAG": OracleKind.FLAG}
    if canon in simple:
        kind = simple[canon]
        if kind is OracleKind.INTEGER:
            return OracleType(kind, precision=MAX_PRECISION, scale=0)
        if kind is OracleKind.FLAG:
            return OracleType(kind, length=1)
        return OracleType(kind)
    for pattern, build in ((_NUMBER, _number), (_TIMESTAMP, _timestamp), (_CHARACTER, _character)):
        match = pattern.fullmatch(canon)
        if match is not None:
            return build(match, text)
    raise ValueError(f"unknown Oracle type {text!r}")


@dataclass(frozen=True, init=False)
class ColumnSpec:
    """How to normalize one column.

    Attributes:
        name: the ERP column name.
        oracle_type: its Oracle type (text is parsed with :func:`parse_oracle_type`).
        flag: the configuration declares this character column a Y/N flag.
    """

    name: str
    oracle_type: OracleType
    flag: bool

    def __init__(self, name: str, oracle_type: OracleType | str, flag: bool = False) -> None:
        """Build a spec; ``oracle_type`` may be the text of the type.

        Raises:
            ValueError: the type is unknown, or ``flag`` is set on a non-character column.
        """
        parsed = parse_oracle_type(oracle_type) if isinstance(oracle_type, str) else oracle_type
        if not isinstance(parsed, OracleType):
            raise ValueError(f"column {name}: oracle_type must be an OracleType or text")
        character = (OracleKind.CHAR, OracleKind.VARCHAR2, OracleKind.FLAG)
        if flag and parsed.kind not in character:
            raise ValueError(f"column {name}: only a character column can be a flag, not {parsed}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "oracle_type", parsed)
        object.__setattr__(self, "flag", flag)

    @property
    def is_flag(self) -> bool:
        """Whether the column is read as a Y/N flag (FLAG type or declared flag)."""
        return self.flag or self.oracle_type.kind is OracleKind.FLAG

    @property
    def polars_dtype(self) -> pl.DataType:
        """The Polars type of the normalized column."""
        return pl.Boolean() if self.is_flag else self.oracle_type.polars_dtype
