"""Selections as records: the JSON summary, the output Parquet file and warehouse rows.

A selection is identified by a hash of everything that determines it (method,
distance, sizes, draws, seed and the exact input: a file's content hash or
the warehouse table versions it read), so recording the same run twice
upserts one row instead of adding a duplicate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from selection.methods import Selection

METADATA_KEY = b"talkface.selection"


def selection_id(selection: Selection, input_identity: str) -> str:
    """Stable id of a selection run: same parameters and same input give the same id."""
    p = selection.params
    key = json.dumps([p.method, p.distance, p.nmin, p.nmax, p.k, p.seed, input_identity])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def file_identity(path: Path) -> str:
    """Content hash of an input file, so a selection names exactly what it read."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def summary(selection: Selection, lower_bounds: dict[str, float] | None = None,
            **extra: object) -> dict[str, object]:
    """The JSON-ready description of a selection (what ``--json`` prints)."""
    p = selection.params
    out: dict[str, object] = {
        "method": p.method,
        "distance": p.distance,
        "value": selection.value,
        "n": selection.n,
        "nmin": p.nmin,
        "nmax": p.nmax,
        "k": p.k,
        "seed": p.seed,
        "n_candidates": selection.n_candidates,
        "clamped_nmax": selection.clamped_nmax,
        "distances": selection.distances,
        "lower_bounds": lower_bounds,
        "gap": None if lower_bounds is None else selection.value - lower_bounds[p.distance],
    }
    out.update(extra)
    return out


def member_table(clip_ids: np.ndarray) -> pa.Table:
    """``clip_id`` and 0-based ``rank`` of the selected clips, in rank order."""
    return pa.table({
        "clip_id": pa.array(list(clip_ids), pa.string()),
        "rank": pa.array(np.arange(len(clip_ids), dtype=np.int64)),
    })  # fmt: skip


def write_selection_file(path: Path, clip_ids: np.ndarray, info: dict[str, object]) -> None:
    """Write the members as Parquet (``clip_id``, ``rank``) with the summary in the file metadata."""
    table = member_table(clip_ids)
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(info).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def read_selection_file(path: Path) -> tuple[list[str], dict[str, object] | None]:
    """Selected clip ids in rank order, and the summary if the file carries one."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such selection file")
    table = pq.read_table(path)
    if "clip_id" not in table.column_names:
        raise ValueError(f"{path}: a selection file needs a clip_id column")
    if "rank" in table.column_names:
        table = table.sort_by("rank")
    metadata = (table.schema.metadata or {}).get(METADATA_KEY)
    clip_ids = table["clip_id"].to_pylist()
    _check_members(path, clip_ids)
    return clip_ids, json.loads(metadata) if metadata else None


def _check_members(path: Path, clip_ids: list[object]) -> None:
    """Raise naming ``path`` if a member is null or listed twice (the report would count its phones twice)."""
    if None in clip_ids:
        raise ValueError(f"{path}: {clip_ids.count(None)} rows have no clip_id")
    seen: set[object] = set()
    twice = sorted({c for c in clip_ids if c in seen or seen.add(c)})
    if twice:
        raise ValueError(f"{path}: {len(twice)} clips are listed more than once, e.g. {twice[:3]}")


def warehouse_rows(sel_id: str, info: dict[str, object], clip_ids: np.ndarray,
                   input_versions: dict[str, int]) -> tuple[pa.Table, pa.Table]:
    """The ``selections`` row and the ``selection_members`` rows of one run."""
    from warehouse.tables import SELECTION_MEMBERS, SELECTIONS

    row = {
        "selection_id": sel_id,
        "created_at": dt.datetime.now(dt.UTC),
        **{key: info[key] for key in ("method", "distance", "value", "n", "nmin", "nmax", "k",
                                      "seed", "n_candidates", "distances", "lower_bounds")},
        "input_versions": list(input_versions.items()),
    }
    selections = pa.Table.from_pylist([row], schema=SELECTIONS.schema)
    members = member_table(clip_ids)
    members = members.add_column(0, "selection_id", pa.array([sel_id] * len(clip_ids), pa.string()))
    return selections, members.cast(SELECTION_MEMBERS.schema)


def announcement_row(sel_id: str, event_id: str) -> pa.Table:
    """The ``selection_announcements`` row of a selection whose event ``event_id`` the Prefect API holds."""
    from warehouse.tables import SELECTION_ANNOUNCEMENTS

    row = {"selection_id": sel_id, "event_id": event_id, "announced_at": dt.datetime.now(dt.UTC)}
    return pa.Table.from_pylist([row], schema=SELECTION_ANNOUNCEMENTS.schema)
