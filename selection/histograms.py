"""Per-clip phone histograms as the selection methods see them.

Two interchange forms are read:

- *wide*: a ``clip_id`` string column plus one integer column per CMU phone,
  named ``AA`` ... ``ZH`` (other columns are ignored) -- the ``--input`` format;
- *warehouse*: the ``phoneme_histograms`` table, whose ``counts`` column holds a
  list of 39 counts per clip in ``warehouse.phones.PHONES`` order.

Both are validated into a :class:`HistogramSet` before any method runs, so a bad
file fails with one message that names it and the offending clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from warehouse.phones import N_PHONES, PHONES


class HistogramInputError(ValueError):
    """Histogram input that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class HistogramSet:
    """Phone counts per clip: ``counts[i, j]`` is how often ``PHONES[j]`` occurs in ``clip_ids[i]``."""

    clip_ids: np.ndarray  # (N,) object array of str
    counts: np.ndarray  # (N, 39) int64, non-negative

    def __len__(self) -> int:
        return len(self.clip_ids)

    @property
    def totals(self) -> np.ndarray:
        """Phone count of the whole set, (39,)."""
        return self.counts.sum(axis=0)

    def subset(self, clip_ids: np.ndarray | list[str]) -> HistogramSet:
        """The histograms of ``clip_ids``, in that order; raises if one is unknown."""
        index = {clip: i for i, clip in enumerate(self.clip_ids)}
        missing = [c for c in clip_ids if c not in index]
        if missing:
            raise HistogramInputError(
                f"{len(missing)} selected clips are not in the histograms, e.g. {missing[:3]}"
            )
        rows = np.fromiter((index[c] for c in clip_ids), dtype=np.int64, count=len(clip_ids))
        return HistogramSet(self.clip_ids[rows], self.counts[rows])

    def to_wide(self) -> pa.Table:
        """The wide interchange table: ``clip_id`` then one int64 column per phone."""
        columns = {"clip_id": pa.array(self.clip_ids.tolist(), pa.string())}
        columns.update({phone: pa.array(self.counts[:, j]) for j, phone in enumerate(PHONES)})
        return pa.table(columns)

    @classmethod
    def from_wide(cls, table: pa.Table, source: str) -> HistogramSet:
        """Validate a wide table (see module docstring); ``source`` names it in errors."""
        missing = [name for name in ("clip_id", *PHONES) if name not in table.column_names]
        if missing:
            raise HistogramInputError(
                f"{source}: missing columns {', '.join(missing)} "
                "(expected clip_id and one count column per CMU phone, AA ... ZH)"
            )
        _require_rows(table, source)
        clip_ids = _clip_ids(table["clip_id"], source)
        counts = np.empty((table.num_rows, N_PHONES), dtype=np.int64)
        for j, phone in enumerate(PHONES):
            counts[:, j] = _count_column(table[phone], f"{source}: column {phone}", clip_ids)
        return cls._checked(clip_ids, counts, source)

    @classmethod
    def from_warehouse_table(cls, table: pa.Table, source: str) -> HistogramSet:
        """Validate a ``phoneme_histograms`` table; ``source`` names it in errors."""
        _require_rows(table, source)
        clip_ids = _clip_ids(table["clip_id"], source)
        lengths = pc.list_value_length(table["counts"]).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(np.nan_to_num(lengths, nan=-1) != N_PHONES)
        if bad.size:
            raise HistogramInputError(
                f"{source}: counts of clip {clip_ids[bad[0]]!r} hold {lengths[bad[0]]} "
                f"entries, expected {N_PHONES}"
            )
        flat = pc.list_flatten(table["counts"])
        values = _count_column(flat, f"{source}: counts", np.repeat(clip_ids, N_PHONES))
        return cls._checked(clip_ids, values.reshape(-1, N_PHONES), source)

    @classmethod
    def _checked(cls, clip_ids: np.ndarray, counts: np.ndarray, source: str) -> HistogramSet:
        if len(clip_ids) == 0:
            raise HistogramInputError(f"{source}: no clips (the input is empty)")
        unique, first, seen = np.unique(clip_ids, return_index=True, return_counts=True)
        if unique.size != clip_ids.size:
            dupes = unique[seen > 1]
            raise HistogramInputError(
                f"{source}: {dupes.size} duplicate clip ids, e.g. {dupes[:3].tolist()}"
            )
        return cls(clip_ids=clip_ids, counts=counts)


def _require_rows(table: pa.Table, source: str) -> None:
    if table.num_rows == 0:
        raise HistogramInputError(f"{source}: no clips (the input is empty)")


def _clip_ids(column: pa.ChunkedArray, source: str) -> np.ndarray:
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise HistogramInputError(f"{source}: clip_id must be a string column, found {column.type}")
    if column.null_count:
        raise HistogramInputError(f"{source}: {column.null_count} rows have no clip_id")
    return np.asarray(column.to_pylist(), dtype=object)


def _count_column(column: pa.ChunkedArray | pa.Array, where: str, clip_ids: np.ndarray) -> np.ndarray:
    """Integer counts of ``column``; integral floats are accepted, anything else raises."""
    type_ = column.type
    if not (pa.types.is_integer(type_) or pa.types.is_floating(type_)):
        raise HistogramInputError(f"{where}: counts must be numbers, found {type_}")
    values = column.to_numpy(zero_copy_only=False) if column.null_count == 0 else None
    if values is None:
        raise HistogramInputError(f"{where}: {column.null_count} missing (null) counts")
    if pa.types.is_floating(type_):
        nan = np.flatnonzero(np.isnan(values))
        if nan.size:
            raise HistogramInputError(f"{where}: NaN count for clip {clip_ids[nan[0]]!r}")
        frac = np.flatnonzero(values != np.round(values))
        if frac.size:
            raise HistogramInputError(
                f"{where}: non-integer count {values[frac[0]]} for clip {clip_ids[frac[0]]!r}"
            )
    negative = np.flatnonzero(values < 0)
    if negative.size:
        raise HistogramInputError(
            f"{where}: negative count {values[negative[0]]} for clip {clip_ids[negative[0]]!r}"
        )
    return values.astype(np.int64)


def read_wide_parquet(path: str | Path) -> HistogramSet:
    """Read and validate a wide histogram Parquet file."""
    path = Path(path)
    if not path.exists():
        raise HistogramInputError(f"{path}: no such file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise HistogramInputError(f"{path}: not a readable Parquet file ({error})") from None
    return HistogramSet.from_wide(table, str(path))
