"""The manifest training reads: selected clips with their span and feature shard.

Columns are those of ``feature_shards`` (clip_id, speaker_id, start_frame,
end_frame, n_frames, fps, shard_uri), plus ``rank`` when the rows come from a
selection. Only clips with a feature shard (that is, a valid span) appear: a
selected clip the faces stage rejected has nothing to train on. The table names
shards relative to the warehouse; the manifest gives full paths or URIs, so a
manifest file can be read from anywhere that reaches the warehouse.
"""

from __future__ import annotations

import logging
import os

import pyarrow as pa
import pyarrow.compute as pc

from warehouse.store import Warehouse
from warehouse.tables import FEATURE_SHARDS

log = logging.getLogger(__name__)


def latest_selection_id(warehouse: Warehouse) -> str | None:
    """The ``selection_id`` with the latest ``created_at`` (ties broken by id), or None."""
    selections = warehouse.read("selections", columns=["selection_id", "created_at"])
    if selections.num_rows == 0:
        return None
    rows = selections.sort_by([("created_at", "descending"), ("selection_id", "descending")])
    return rows["selection_id"][0].as_py()



def build_manifest(warehouse: Warehouse, selection_id: str | None = None) -> pa.Table:
    """Training manifest: the selection's members joined with their feature shards.

    Args:
        warehouse: the warehouse to read.
        selection_id: which selection; default the latest one. Without any
            selection in the warehouse, every ``feature_shards`` row, by clip_id.

    Returns:
        FEATURE_SHARDS columns (+ ``rank`` for a selection, rows by rank), shard URIs resolved.

    Raises:
        ValueError: ``selection_id`` names no selection in the warehouse.
    """
    shards = warehouse.read(FEATURE_SHARDS.name)
    full = [warehouse.location.resolve(uri).uri for uri in shards["shard_uri"].to_pylist()]
    shards = shards.set_column(shards.schema.get_field_index("shard_uri"), FEATURE_SHARDS.schema.field("shard_uri"),
                               pa.array(full, pa.string()))
    chosen = selection_id or latest_selection_id(warehouse)
    if chosen is None:
        return shards.sort_by("clip_id")
    members = warehouse.read("selection_members")
    members = members.filter(pc.equal(members["selection_id"], chosen))
    if members.num_rows == 0:
        known = warehouse.read("selections", columns=["selection_id"])["selection_id"].to_pylist()
        if chosen not in known:
            raise ValueError(f"selection {chosen!r} not found in {warehouse.uri}; known: {', '.join(known) or 'none'}")
    joined = members.select(["clip_id", "rank"]).join(shards, "clip_id", join_type="inner")
    missing = members.num_rows - joined.num_rows
    if missing:
        log.warning("selection %s: %d of %d members have no feature shard (no valid span) and are left out",
                    chosen, missing, members.num_rows)
    return joined.select([*FEATURE_SHARDS.schema.names, "rank"]).sort_by("rank")


def write_manifest(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Write a manifest as Parquet."""
    import pyarrow.parquet as pq

    pq.write_table(table, os.fspath(path))
