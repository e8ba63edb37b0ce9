"""The shape of sync state at the API: frames of hex hashes and rowversions."""

import polars as pl

from syncflow_dagster.edges.state.types import BK_HASH_BYTES, DATA_HASH_BYTES, bad_hex, check_hex

STATE_SCHEMA = {"bk_hash": pl.String, "data_hash": pl.String, "rowversion": pl.Int64}


def state_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Check and narrow a frame to ``bk_hash, data_hash, rowversion``, sorted in key order.

    Keys are checked for repeats on the sorted 64-bit prefixes: only where two
    neighbours share a prefix (a repeat, or one chance in ~10^19 per pair) are
    the whole keys counted, which is far cheaper than counting 1M strings.

    Raises:
        ValueError: a column is missing, a hash is not lowercase hex, or a key repeats.
    """
    missing = set(STATE_SCHEMA) - set(frame.columns)
    if missing:
        raise ValueError(f"state frame lacks column(s) {sorted(missing)}")
    out = frame.select(pl.col(name).cast(dtype) for name, dtype in STATE_SCHEMA.items())
    # One select: Polars evaluates the two checks in parallel.
    bad_keys, bad_data = out.select(
        bad_hex("bk_hash", BK_HASH_BYTES).alias("bad_keys"),
        bad_hex("data_hash", DATA_HASH_BYTES).alias("bad_data"),
    ).row(0)
    if bad_keys or bad_data:
        check_hex(out["bk_hash"], BK_HASH_BYTES, "bk_hash")
        check_hex(out["data_hash"], DATA_HASH_BYTES, "data_hash")
    out = out.with_columns(key_order().alias("_order")).sort("_order")
    shared_prefix = out.select((pl.col("_order") == pl.col("_order").shift(1)).any()).item()
    if shared_prefix and out.get_column("bk_hash").n_unique() != out.height:
        raise ValueError("state frame has duplicate bk_hash values")
    return out.drop("_order")


def key_order() -> pl.Expr:
    """Sort key matching the database's key order (uuid / BLOB compare bytewise).

    The first 8 bytes as an integer: an integer sort (~0.06 s per 1M rows)
    instead of a string sort (~0.45 s). Only locality depends on it.
    """
    return pl.col("bk_hash").str.slice(0, 16).str.to_integer(base=16, dtype=pl.UInt64)


def empty_state() -> pl.DataFrame:
    """A state frame with no rows."""
    return pl.DataFrame(schema=STATE_SCHEMA)
