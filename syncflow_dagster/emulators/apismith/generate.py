"""Ground-truth values of the ERP's rows, generated vectorized from (seed, row id, salt).

Every generator works on a frame carrying ``_rid`` (a stable per-entity row id) and
returns the typed true values. A *skeleton* gives the key and foreign-key columns; a
*fill* gives the other columns. Updates re-run the fill with a new salt, so a row's
key and parents stay while its values change.
"""

from datetime import datetime

import polars as pl

from syncflow_dagster.emulators.apismith import rng

_NOUNS = [
    "Gehäuse",
    "Welle",
    "Zahnrad",
    "Flansch",
    "Dichtung",
    "Kugellager",
    "Schraube",
    "Mutter",
    "Rondelle",
    "Écrou",
    "Pièce moulée",
    "Carter",
    "Ressort",
    "Bague d'étanchéité",
    "Kühlkörper",
    "Sensor",
    "Ventil",
    "Kabelbaum",
    "Hülse",
    "Pignon",
    "Bracket",
    "Housing",
    "Shaft",
    "Gasket",
]
_VARIANTS = [
    "M8",
    "Ø12",
    "verzinkt",
    "rostfrei",
    "acier trempé",
    "Größe 3",
    "Typ A",
    "laiton",
    "gefräst",
    "série 400",
    "anodized",
    "DIN 912",
    "häßlich-grün",
    "côté gauche",
]
_WC_NAMES = [
    "Fräsen",
    "Drehen",
    "Schleifen",
    "Montage",
    "Soudure",
    "Peinture",
    "Härterei",
    "Prüfstand",
    "Découpe laser",
    "Lackierung",
    "Emballage",
    "Biegen",
    "Stanzerei",
    "Contrôle qualité",
]
_DEPARTMENTS = ["Fertigung", "Montage", "Qualität", "Logistique", "Usinage", "Vormontage"]
_NOTES = [
    "Eilauftrag",
    "Kunde Müller GmbH",
    "Priorité haute — client Lefèvre",
    "Material verspätet",
    "Nacharbeit nötig",
    "Contrôle qualité renforcé",
    "Teillieferung möglich",
    "Prüfprotokoll beilegen",
    "Société Générale d'Équipement",
    "rush order, see ticket",
]
_OP_DESCS = [
    "Sägen",
    "Drehen",
    "Fräsen",
    "Entgraten",
    "Härten",
    "Schleifen",
    "Montage",
    "Contrôle final",
    "Ébavurage",
    "Peinture",
    "Verpacken",
    "Prüfen",
    "Bohren",
    "Réglage",
]
WO_STATUSES = ["PLANNED", "FIRM", "RELEASED", "CLOSED"]
OP_STATUSES = ["PENDING", "READY", "STARTED", "COMPLETE"]

_US_PER_DAY = 86_400_000_000
_RID = pl.col("_rid")


class Draws:
    """Random draws for one entity and salt, indexed by the row id ``_rid``."""

    def __init__(self, seed: int, entity: str, salt: int = 0) -> None:
        self.seed = seed
        self.entity = entity
        self.salt = salt

    def _stream(self, name: str) -> int:
        return rng.stream(self.seed, self.entity, name, self.salt)

    def u(self, name: str) -> pl.Expr:
        """Uniform [0, 1)."""
        return rng.uniform(_RID, self._stream(name))

    def int(self, name: str, low: int | pl.Expr, high: int | pl.Expr) -> pl.Expr:
        """Uniform integer in [low, high]."""
        return rng.randint(_RID, self._stream(name), low, high)

    def pick(self, name: str, values: list[str]) -> pl.Expr:
        """One of ``values``, uniformly."""
        return rng.choice(_RID, self._stream(name), values)

    def weighted(self, name: str, options: list[tuple[object, float]]) -> pl.Expr:
        """One of the options' values, by weight."""
        return rng.weighted(self.u(name), options)

    def null_if(self, name: str, rate: float, expr: pl.Expr) -> pl.Expr:
        """``expr``, or null for a fraction ``rate`` of rows."""
        return pl.when(self.u(name + "#null") < rate).then(None).otherwise(expr)


def decimal(scaled: pl.Expr, precision: int, scale: int) -> pl.Expr:
    """A Decimal(precision, scale) from an integer in units of 10**-scale (exact)."""
    return (scaled.cast(pl.Decimal(38, scale)) / (10**scale)).cast(pl.Decimal(precision, scale))


def day(start: datetime, offset_days: pl.Expr) -> pl.Expr:
    """A naive midnight datetime ``offset_days`` after ``start``."""
    return pl.lit(start, pl.Datetime("us")) + pl.duration(days=offset_days)


def code(prefix: str, number: pl.Expr, width: int) -> pl.Expr:
    """``prefix`` + zero-padded ``number``, e.g. ITM-000123."""
    return pl.concat_str(pl.lit(prefix), number.cast(pl.String).str.zfill(width))


def item_no(ordinal: pl.Expr) -> pl.Expr:
    """ITM-000123."""
    return code("ITM-", ordinal, 6)


def wc_code(ordinal: pl.Expr) -> pl.Expr:
    """WC-001."""
    return code("WC-", ordinal, 3)


def wo_no(ordinal: pl.Expr) -> pl.Expr:
    """WO-00000001."""
    return code("WO-", ordinal, 8)


def pick_from(frame: pl.DataFrame, pool: pl.Series, draws: Draws, name: str) -> pl.Series:
    """For each row of ``frame`` a random member of ``pool`` (all null if ``pool`` is empty)."""
    if pool.len() == 0:
        return pl.Series(name, [None] * frame.height, dtype=pool.dtype)
    idx = frame.select(draws.int(name, 0, pool.len() - 1)).to_series()
    return pool.gather(idx).alias(name)


# ---------------------------------------------------------------- items


def fill_items(df: pl.DataFrame, d: Draws) -> pl.DataFrame:
    """All columns of items except the key."""
    small = d.u("STD_COST#small") < 0.08
    four_dp = d.u("STD_COST#4dp") < 0.2
    cost_scaled = (
        pl.when(small)
        .then(d.int("STD_COST#s", 1, 9999))
        .when(four_dp)
        .then(d.int("STD_COST#f", 10_000, 50_000_000))
        .otherwise(d.int("STD_COST#c", 1, 500_000) * 100)
    )
    return df.with_columns(
        DESCRIPTION=d.null_if(
            "DESCRIPTION",
            0.04,
            pl.concat_str(
                d.pick("DESCRIPTION#n", _NOUNS),
                pl.lit(" "),
                d.pick("DESCRIPTION#v", _VARIANTS),
                pl.lit(" "),
                d.int("DESCRIPTION#i", 10, 999).cast(pl.String),
            ),
        ),
        ITEM_TYPE=d.weighted("ITEM_TYPE", [("MAKE", 0.4), ("BUY", 0.5), ("PHANTOM", 0.1)]),
        UOM=d.weighted("UOM", [("EA", 0.5), ("KG", 0.15), ("M", 0.1), ("L", 0.05), ("PC", 0.2)]),
        STD_COST=d.null_if("STD_COST", 0.02, decimal(cost_scaled, 12, 4)),
        LEAD_TIME_DAYS=d.null_if("LEAD_TIME_DAYS", 0.03, d.int("LEAD_TIME_DAYS", 0, 120)),
        ACTIVE_FLAG=d.u("ACTIVE_FLAG") < 0.9,
        CREATED_DATE=day(datetime(2005, 1, 1), d.int("CREATED_DATE", 0, 7660)),
        LAST_UPDATE_TS=d.null_if(
            "LAST_UPDATE_TS",
            0.02,
            pl.lit(datetime(2020, 1, 1), pl.Datetime("us", "UTC"))
            + pl.duration(microseconds=d.int("LAST_UPDATE_TS", 0, 2370 * _US_PER_DAY)),
        ),
    )


def skeleton_items(rids: pl.Series, ordinals: pl.Series) -> pl.DataFrame:
    """Item keys from ordinals."""
    return pl.DataFrame({"_rid": rids, "_ord": ordinals}).with_columns(
        ITEM_NO=item_no(pl.col("_ord"))
    )


# ---------------------------------------------------------------- work centers


def fill_work_centers(df: pl.DataFrame, d: Draws) -> pl.DataFrame:
    """All columns of work_centers except the key."""
    return df.with_columns(
        WC_NAME=pl.concat_str(
            d.pick("WC_NAME", _WC_NAMES), pl.lit(" "), d.int("WC_NAME#i", 1, 9).cast(pl.String)
        ),
        DEPARTMENT=d.null_if("DEPARTMENT", 0.05, d.pick("DEPARTMENT", _DEPARTMENTS)),
        CAPACITY_HRS=decimal(d.int("CAPACITY_HRS", 32, 640) * 25, 7, 2),
        EFFICIENCY_PCT=d.null_if(
            "EFFICIENCY_PCT", 0.03, decimal(d.int("EFFICIENCY_PCT", 6000, 11000), 5, 2)
        ),
        SHIFT_COUNT=d.int("SHIFT_COUNT", 1, 3),
        ACTIVE_FLAG=d.u("ACTIVE_FLAG") < 0.92,
    )


def skeleton_work_centers(rids: pl.Series, ordinals: pl.Series) -> pl.DataFrame:
    """Work-center keys from ordinals."""
    return pl.DataFrame({"_rid": rids, "_ord": ordinals}).with_columns(
        WC_CODE=wc_code(pl.col("_ord"))
    )


# ---------------------------------------------------------------- work orders


def fill_work_orders(df: pl.DataFrame, d: Draws) -> pl.DataFrame:
    """All columns of work_orders except the key and ITEM_NO."""
    whole = d.u("ORDER_QTY#whole") < 0.8
    qty_scaled = (
        pl.when(whole)
        .then(d.int("ORDER_QTY", 1, 5000) * 1000)
        .otherwise(d.int("ORDER_QTY#f", 1, 5_000_000))
    )
    status = d.weighted(
        "STATUS", [("PLANNED", 0.25), ("FIRM", 0.15), ("RELEASED", 0.35), ("CLOSED", 0.25)]
    )
    frame = df.with_columns(
        _qty=qty_scaled,
        STATUS=status,
        START_DATE=day(datetime(2024, 1, 1), d.int("START_DATE", 0, 1276)),
        _lead=d.int("DUE_DATE", 0, 60),
    )
    completed = (
        pl.when(pl.col("STATUS").is_in(["PLANNED", "FIRM"]))
        .then(0)
        .when(pl.col("STATUS") == "RELEASED")
        .then((pl.col("_qty") // 1000 * d.u("COMPLETED_QTY")).floor().cast(pl.Int64) * 1000)
        .otherwise(pl.col("_qty"))
    )
    released = pl.col("STATUS").is_in(["RELEASED", "CLOSED"])
    released_ts = (
        pl.col("START_DATE").dt.replace_time_zone("UTC")
        - pl.duration(days=d.int("RELEASED_TS#d", 1, 5))
        + pl.duration(microseconds=d.int("RELEASED_TS", 0, _US_PER_DAY - 1))
    )
    return frame.with_columns(
        ORDER_QTY=decimal(pl.col("_qty"), 12, 3),
        COMPLETED_QTY=decimal(completed, 12, 3),
        PRIORITY=d.null_if("PRIORITY", 0.03, d.int("PRIORITY", 1, 99)),
        DUE_DATE=pl.col("START_DATE") + pl.duration(days=pl.col("_lead")),
        RELEASED_TS=pl.when(released).then(released_ts).otherwise(None),
        PLANNER_CODE=d.null_if("PLANNER_CODE", 0.02, code("PLN", d.int("PLANNER_CODE", 1, 24), 2)),
        NOTES=d.null_if(
            "NOTES",
            0.7,
            pl.concat_str(
                d.pick("NOTES", _NOTES), pl.lit(" #"), d.int("NOTES#i", 100, 9999).cast(pl.String)
            ),
        ),
    ).drop("_qty", "_lead")


def skeleton_work_orders(
    rids: pl.Series, ordinals: pl.Series, items: pl.Series, d: Draws
) -> pl.DataFrame:
    """Keys from ordinals; each order names a random item of ``items``."""
    frame = pl.DataFrame({"_rid": rids, "_ord": ordinals}).with_columns(WO_NO=wo_no(pl.col("_ord")))
    return frame.with_columns(pick_from(frame, items, d, "ITEM_NO"))


# ---------------------------------------------------------------- operations


def fill_work_order_operations(df: pl.DataFrame, d: Draws) -> pl.DataFrame:
    """All columns of work_order_operations except the key and WC_CODE."""
    setup_scaled = d.int("SETUP_HRS", 0, 16) * 25
    run_scaled = d.int("RUN_HRS", 100, 40_000)
    hour = d.weighted("SCHED_START#h", [(0, 0.15), (6, 0.35), (14, 0.35), (22, 0.15)])
    start = day(datetime(2024, 1, 1), d.int("SCHED_START", 0, 1276)) + pl.duration(
        hours=hour.cast(pl.Int64), minutes=d.weighted("SCHED_START#m", [(0, 0.7), (30, 0.3)])
    )
    span_hours = ((setup_scaled * 10 + run_scaled) // 1000 + 1).cast(pl.Int64)
    planned = d.u("SCHED_START#null") >= 0.05
    return df.with_columns(
        OP_DESC=d.null_if("OP_DESC", 0.03, d.pick("OP_DESC", _OP_DESCS)),
        SETUP_HRS=d.null_if("SETUP_HRS", 0.03, decimal(setup_scaled, 7, 2)),
        RUN_HRS=decimal(run_scaled, 9, 3),
        OP_STATUS=d.pick("OP_STATUS", OP_STATUSES),
        SCHED_START=pl.when(planned).then(start).otherwise(None),
        SCHED_END=pl.when(planned).then(start + pl.duration(hours=span_hours)).otherwise(None),
    )


def skeleton_work_order_operations(
    orders: pl.DataFrame, first_rid: int, work_centers: pl.Series, d: Draws
) -> pl.DataFrame:
    """Operations for ``orders`` (columns WO_NO, _n: how many, _base: first OP_SEQ - 10)."""
    exploded = (
        orders.lazy()
        .filter(pl.col("_n") > 0)
        .with_columns(_i=pl.int_ranges(1, pl.col("_n") + 1))
        .explode("_i")
        .select(
            "WO_NO",
            OP_SEQ=(pl.col("_base") + pl.col("_i").cast(pl.Int64) * 10).cast(pl.Int64),
        )
        .collect()
    )
    frame = exploded.with_columns(
        _rid=pl.int_range(first_rid, first_rid + exploded.height, dtype=pl.Int64)
    )
    return frame.with_columns(pick_from(frame, work_centers, d, "WC_CODE"))


def operation_counts(orders: pl.DataFrame, per_order: float, d: Draws) -> pl.Series:
    """How many operations each order gets: uniform on 0..2*per_order, so the mean is per_order."""
    if per_order <= 0:
        return pl.Series("_n", [0] * orders.height, dtype=pl.Int64)
    return orders.select(_n=(d.u("_n") * (2 * per_order + 1)).floor().cast(pl.Int64)).to_series()


FILLERS = {
    "items": fill_items,
    "work_centers": fill_work_centers,
    "work_orders": fill_work_orders,
    "work_order_operations": fill_work_order_operations,
}
