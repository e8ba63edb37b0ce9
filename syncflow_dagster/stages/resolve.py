"""Resolve stage: order what is sent, and hold back children whose parents are missing.

A record to upsert names its parents by BK_HASH (one column per parent entity,
``_parent_<entity>``, null when the record names none). A parent counts as
present when the sync state says the hub has it. A child with a missing parent
goes to ``pending_children`` and is not sent; children that waited in an
earlier run are released (sent again) once all their parents are present.

Order at the hub: deletes first (wave 0), then upserts (wave 1). Parent
entities run before their children (the entity catalog's parent-first order),
and an entity may not be its own parent, so nothing inside one wave depends on
anything else in it: the batches of a wave may go concurrently.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from syncflow_dagster.stages.delta import DELETE, INSERT, OP
from syncflow_dagster.stages.encode import LINE, delete_line

WAVE = "_wave"
RELEASED = "_released"
NEW = "_new"
BLOCKED = "_blocked"
WAITING_FOR_DTYPE = pl.List(pl.Struct({"entity": pl.String, "bk_hash": pl.String}))
SEND_COLUMNS = [
    "bk_hash",
    "data_hash",
    "rowversion",
    "_row",
    OP,
    NEW,
    BLOCKED,
    LINE,
    WAVE,
    RELEASED,
    "waiting_for",
]
"""Columns of a plan's ``send`` frame; the parent columns and target fields follow.

``_new``: the delta found no state (an insert); ``_blocked``: a child that waits
for a parent (it stays in the plan but is never sent); ``_line``: the encoded
record of deletes and released children (fresh upserts are encoded on sending);
``waiting_for``: the parents a released child waited for.
"""


def parent_column(entity: str) -> str:
    """The column holding the BK_HASH of the record's parent of that entity."""
    return f"_parent_{entity}"


@dataclass(frozen=True)
class ResolvePlan:
    """What the ingest stage sends, what waits, and which waiting rows are superseded.

    ``send`` is ordered by wave (deletes, then upserts).
    """

    send: pl.DataFrame
    pending: pl.DataFrame
    superseded: pl.Series

    @property
    def released(self) -> int:
        """How many waiting children are sent in this run."""
        return int(self.send.get_column(RELEASED).sum())


def _waiting_refs(waiting: pl.DataFrame) -> pl.DataFrame:
    """One row per (waiting child, parent it waits for)."""
    return (
        waiting.select(
            "bk_hash",
            pl.col("waiting_for").str.json_decode(WAITING_FOR_DTYPE).alias("ref"),
        )
        .explode("ref")
        .unnest("ref", separator=".")
        .rename({"ref.entity": "p_entity", "ref.bk_hash": "p_hash"})
        .drop_nulls("p_hash")
    )


def parents_to_look_up(
    upserts: pl.DataFrame, waiting: pl.DataFrame, parents: Sequence[str]
) -> dict[str, pl.Series]:
    """Per parent entity, the BK_HASHes whose presence at the hub decides this run."""
    needed: dict[str, list[pl.Series]] = {p: [] for p in parents}
    for p in parents:
        needed[p].append(upserts.get_column(parent_column(p)).drop_nulls())
    if waiting.height:
        refs = _waiting_refs(waiting)
        for p in parents:
            needed[p].append(refs.filter(pl.col("p_entity") == p).get_column("p_hash"))
    return {p: pl.concat(s).unique().rename("bk_hash") for p, s in needed.items()}


def _refs(parents: Sequence[str], present: Mapping[str, pl.Series] | None) -> pl.Expr:
    """A list of {entity, bk_hash}: each parent named (and, given ``present``, not present)."""
    refs = []
    for p in parents:
        col = pl.col(parent_column(p))
        keep = col.is_not_null()
        if present is not None:
            keep = keep & ~col.is_in(present[p].implode())
        refs.append(pl.when(keep).then(pl.struct(pl.lit(p).alias("entity"), col.alias("bk_hash"))))
    if not refs:
        return pl.lit([], dtype=WAITING_FOR_DTYPE)
    return pl.concat_list(refs).list.drop_nulls().cast(WAITING_FOR_DTYPE)


def named_parents_json(parents: Sequence[str]) -> pl.Expr:
    """Every parent a record names, as ``waiting_for`` JSON (from its parent columns)."""
    return refs_json(_refs(parents, None))


def refs_json(refs: pl.Expr) -> pl.Expr:
    """A list of parent refs as JSON text (the ``waiting_for`` column)."""
    return pl.concat_str(
        pl.lit("["),
        refs.list.eval(pl.element().struct.json_encode()).list.join(","),
        pl.lit("]"),
    )


def resolve(
    upserts: pl.DataFrame,
    deletes: pl.DataFrame,
    waiting: pl.DataFrame,
    fetched: pl.Series,
    parents: Sequence[str],
    present: Mapping[str, pl.Series],
    encode: pl.Expr,
) -> ResolvePlan:
    """Split this run's changes into what is sent now and what waits for a parent.

    The plan's ``send`` frame carries fresh upserts as their mapped fields
    (``_line`` null: they are encoded when their batch goes out, with
    ``encode``); deletes and released children carry their line.

    Args:
        upserts: records to insert or update, with bk_hash, data_hash, rowversion,
            ``_row``, the target fields and one parent column per parent.
        deletes: keys to delete (bk_hash, rowversion).
        waiting: this entity's children waiting from earlier runs (bk_hash,
            rowversion, payload, waiting_for).
        fetched: BK_HASHes of every record this run fetched; a waiting child
            among them is superseded by its fresh version.
        parents: the parent entity names of this entity.
        present: per parent entity, which of the looked-up BK_HASHes the hub has.
        encode: the expression that makes an upsert's ingest line from its fields.
    """
    parent_cols = [parent_column(p) for p in parents]
    carried = {"bk_hash", "data_hash", "rowversion", "_row", OP, *parent_cols}
    fields = [c for c in upserts.columns if c not in carried and not c.startswith("_")]
    blocked = (
        pl.any_horizontal(
            [
                pl.col(parent_column(p)).is_not_null()
                & ~pl.col(parent_column(p)).is_in(present[p].implode())
                for p in parents
            ]
        )
        if parents
        else pl.lit(False)
    )
    # Children that wait stay in the plan, flagged: they are not sent, and the wide
    # frame is not copied to leave them out.
    ready = upserts.with_columns(blocked.alias(BLOCKED))
    held = ready.filter(pl.col(BLOCKED)).with_columns(_refs(parents, present).alias("_missing"))
    no_parents = [pl.lit(None, dtype=pl.String).alias(c) for c in parent_cols]

    # Probe the (large) fetched keys against the (small) waiting set, not the other way.
    superseded = fetched.filter(fetched.is_in(waiting.get_column("bk_hash").implode())).unique()
    still_waiting = waiting.filter(~pl.col("bk_hash").is_in(superseded.implode()))
    released_keys: pl.Series = pl.Series("bk_hash", [], dtype=pl.String)
    if still_waiting.height:
        refs = _waiting_refs(still_waiting)
        absent = pl.concat(
            [
                refs.filter(
                    (pl.col("p_entity") == p) & ~pl.col("p_hash").is_in(present[p].implode())
                )
                for p in parents
            ]
            + [refs.filter(~pl.col("p_entity").is_in(list(parents)))]
        )
        released_keys = still_waiting.join(
            absent.select("bk_hash").unique(), on="bk_hash", how="anti"
        ).get_column("bk_hash")

    released = still_waiting.filter(pl.col("bk_hash").is_in(released_keys.implode())).select(
        "bk_hash",
        pl.col("payload").str.json_path_match("$.data_hash").alias("data_hash"),
        pl.col("rowversion").cast(pl.Int64),
        pl.lit(None, dtype=pl.UInt32).alias("_row"),
        pl.col("payload").str.json_path_match("$.op").alias(OP),
        # a waiting child was never acknowledged, so it has no state row
        (pl.col("payload").str.json_path_match("$.op") != DELETE).alias(NEW),
        pl.lit(False).alias(BLOCKED),
        pl.col("payload").alias(LINE),
        pl.when(pl.col("payload").str.json_path_match("$.op") == DELETE)
        .then(pl.lit(0, dtype=pl.Int8))
        .otherwise(pl.lit(1, dtype=pl.Int8))
        .alias(WAVE),
        pl.lit(True).alias(RELEASED),
        "waiting_for",
        *no_parents,
    )
    send = pl.concat(
        [
            deletes.select(
                "bk_hash",
                pl.lit(None, dtype=pl.String).alias("data_hash"),
                pl.col("rowversion").cast(pl.Int64),
                pl.lit(None, dtype=pl.UInt32).alias("_row"),
                pl.lit(DELETE).alias(OP),
                pl.lit(False).alias(NEW),
                pl.lit(False).alias(BLOCKED),
                delete_line(),
                pl.lit(0, dtype=pl.Int8).alias(WAVE),
                pl.lit(False).alias(RELEASED),
                pl.lit("[]").alias("waiting_for"),
                *no_parents,
            ),
            ready.select(
                "bk_hash",
                "data_hash",
                pl.col("rowversion").cast(pl.Int64),
                pl.col("_row").cast(pl.UInt32),
                pl.lit("upsert").alias(OP),
                (pl.col(OP) == INSERT).alias(NEW),
                BLOCKED,
                pl.lit(None, dtype=pl.String).alias(LINE),
                pl.lit(1, dtype=pl.Int8).alias(WAVE),
                pl.lit(False).alias(RELEASED),
                pl.lit(None, dtype=pl.String).alias("waiting_for"),
                *parent_cols,
                *fields,
            ),
        ],
        how="diagonal_relaxed",
    )
    # Released children join their wave (deletes first, upserts last), so that every
    # wave is one contiguous run of rows: the ingest step slices it without a copy.
    if released.height:
        released_deletes = released.filter(pl.col(WAVE) == 0)
        released_upserts = released.filter(pl.col(WAVE) == 1)
        n_deletes = deletes.height
        send = pl.concat(
            [send.head(n_deletes), released_deletes, send.slice(n_deletes), released_upserts],
            how="diagonal_relaxed",
        )
    pending = held.select(
        "bk_hash",
        pl.col("rowversion").cast(pl.Int64),
        encode.alias("payload"),
        refs_json(pl.col("_missing")).alias("waiting_for"),
        pl.col("_row").cast(pl.UInt32),
    )
    return ResolvePlan(send=send, pending=pending, superseded=superseded)
