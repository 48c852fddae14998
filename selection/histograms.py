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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from warehouse.phones import N_PHONES, PHONES


class HistogramInputError(ValueError):
    """Histogram input that cannot be used; the message names the file and the problem."""


# Counts are held in the narrowest of these that fits them: int16 (one phone class 32,767 times in
# one clip is about five hours of speech) halves the memory and the passes over it; 2**31 is beyond any clip.
COUNT_DTYPES = (np.int16, np.int32)
_COUNT_LIMIT = int(np.iinfo(COUNT_DTYPES[-1]).max)
BATCH_ROWS = 1 << 18  # rows per Parquet batch: bounds what is held as Arrow while a file is read


@dataclass(frozen=True)
class HistogramSet:
    """Phone counts per clip: ``counts[i, j]`` is how often ``PHONES[j]`` occurs in ``clip_ids[i]``.

    ``counts`` may be any non-negative integer array; the readers return the
    narrowest of :data:`COUNT_DTYPES` that holds them (int16 for real clips, a
    quarter of int64's memory), and a wide file's counts are stored phone by
    phone (Fortran order), as the columns arrive from Parquet, which makes the
    per-phone passes of the ranking and of the prefix sums contiguous.
    """

    clip_ids: np.ndarray  # (N,) object array of str
    counts: np.ndarray  # (N, 39) integers, non-negative

    def __len__(self) -> int:
        return len(self.clip_ids)

    @property
    def totals(self) -> np.ndarray:
        """Phone count of the whole set, (39,)."""
        return self.counts.sum(axis=0, dtype=np.int64)

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
        columns.update({phone: pa.array(self.counts[:, j].astype(np.int64)) for j, phone in enumerate(PHONES)})
        return pa.table(columns)

    @classmethod
    def from_wide(cls, table: pa.Table, source: str) -> HistogramSet:
        """Validate a wide table (see module docstring); ``source`` names it in errors."""
        _require_columns(table.schema, source)
        _require_rows(table.num_rows, source)
        counts = _fill_wide(table, np.empty((N_PHONES, table.num_rows), dtype=COUNT_DTYPES[0]), 0, source)
        return cls._checked(table["clip_id"], counts.T, source)

    @classmethod
    def from_warehouse_table(cls, table: pa.Table, source: str) -> HistogramSet:
        """Validate a ``phoneme_histograms`` table; ``source`` names it in errors."""
        _require_rows(table.num_rows, source)
        ids = table["clip_id"]
        _check_clip_id_type(ids.type, source)
        lengths = pc.list_value_length(table["counts"]).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(np.nan_to_num(lengths, nan=-1) != N_PHONES)
        if bad.size:
            raise HistogramInputError(
                f"{source}: counts of clip {ids[int(bad[0])].as_py()!r} hold {lengths[bad[0]]} "
                f"entries, expected {N_PHONES}"
            )
        flat = pc.list_flatten(table["counts"])
        values, largest = _count_values(flat, f"{source}: counts", lambda i: ids[i // N_PHONES].as_py())
        return cls._checked(ids, values.astype(_dtype_for(largest)).reshape(-1, N_PHONES), source)

    @classmethod
    def _checked(cls, ids: pa.ChunkedArray | pa.Array, counts: np.ndarray, source: str) -> HistogramSet:
        """Check the clip ids (strings, present, unique; hashed by Arrow) and build the set."""
        _check_clip_id_type(ids.type, source)
        if ids.null_count:
            raise HistogramInputError(f"{source}: {ids.null_count} rows have no clip_id")
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        if not _strictly_increasing(ids) and len(pc.unique(ids)) != len(ids):
            tallies = pc.value_counts(ids)
            dupes = sorted(tallies.field("values").filter(pc.greater(tallies.field("counts"), 1)).to_pylist())
            raise HistogramInputError(f"{source}: {len(dupes)} duplicate clip ids, e.g. {dupes[:3]}")
        return cls(clip_ids=ids.to_numpy(zero_copy_only=False).astype(object, copy=False), counts=counts)


def _strictly_increasing(ids: pa.Array) -> bool:
    """Whether ``ids`` are sorted without repeats: the usual file, whose ids are then unique for free."""
    return len(ids) < 2 or pc.all(pc.greater(ids[1:], ids[:-1])).as_py()


def _require_columns(schema: pa.Schema, source: str) -> None:
    missing = [name for name in ("clip_id", *PHONES) if schema.get_field_index(name) < 0]
    if missing:
        raise HistogramInputError(
            f"{source}: missing columns {', '.join(missing)} "
            "(expected clip_id and one count column per CMU phone, AA ... ZH)"
        )


def _require_rows(n_rows: int, source: str) -> None:
    if n_rows == 0:
        raise HistogramInputError(f"{source}: no clips (the input is empty)")


def _check_clip_id_type(type_: pa.DataType, source: str) -> None:
    if not (pa.types.is_string(type_) or pa.types.is_large_string(type_)):
        raise HistogramInputError(f"{source}: clip_id must be a string column, found {type_}")


def _dtype_for(largest: int) -> type[np.integer]:
    """The narrowest of :data:`COUNT_DTYPES` that holds ``largest``."""
    return next(t for t in COUNT_DTYPES if largest <= np.iinfo(t).max)


def _fill_wide(table: pa.Table | pa.RecordBatch, counts: np.ndarray, start: int, source: str) -> np.ndarray:
    """Validate the phone columns of ``table`` and write them to ``counts[:, start:]`` (phone-major).

    Returns:
        ``counts``, or a wider copy of it when a count of ``table`` does not fit its type.
    """
    ids = table.column("clip_id")
    stop = start + table.num_rows
    for j, phone in enumerate(PHONES):
        values, largest = _count_values(table.column(phone), f"{source}: column {phone}", lambda i: ids[i].as_py())
        if largest > np.iinfo(counts.dtype).max:
            counts = counts.astype(_dtype_for(largest))
        counts[j, start:stop] = values
    return counts


def _count_values(column: pa.ChunkedArray | pa.Array, where: str,
                  clip_of: Callable[[int], str]) -> tuple[np.ndarray, int]:
    """The counts of ``column`` as numpy and the largest of them, checked.

    Integral floats are accepted, anything else raises.

    Args:
        clip_of: the clip id of a row, to name it in the error message.
    """
    type_ = column.type
    if not (pa.types.is_integer(type_) or pa.types.is_floating(type_)):
        raise HistogramInputError(f"{where}: counts must be numbers, found {type_}")
    if column.null_count:
        raise HistogramInputError(f"{where}: {column.null_count} missing (null) counts")
    if isinstance(column, pa.ChunkedArray) and column.num_chunks == 1:
        column = column.chunk(0)  # its numpy view needs no copy
    values = column.to_numpy(zero_copy_only=False)
    if values.size == 0:
        return values, 0
    if pa.types.is_floating(type_):
        _refuse_non_finite(values, where, clip_of)
        frac = np.flatnonzero(values != np.round(values))
        if frac.size:
            raise HistogramInputError(
                f"{where}: non-integer count {values[frac[0]]} for clip {clip_of(int(frac[0]))!r}"
            )
    if values.min() < 0:
        first = int(np.flatnonzero(values < 0)[0])
        raise HistogramInputError(f"{where}: negative count {values[first]} for clip {clip_of(first)!r}")
    largest = int(values.max())
    if largest > _COUNT_LIMIT:
        first = int(np.flatnonzero(values > _COUNT_LIMIT)[0])
        raise HistogramInputError(
            f"{where}: count {values[first]} for clip {clip_of(first)!r} is more than one clip can hold"
        )
    return values, largest


def _refuse_non_finite(values: np.ndarray, where: str, clip_of: Callable[[int], str]) -> None:
    """Raise naming the first NaN or infinite count: neither is a count, and infinity has no integer to hold."""
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        kind = "NaN" if np.isnan(values[bad[0]]) else "infinite"
        raise HistogramInputError(f"{where}: {kind} count for clip {clip_of(int(bad[0]))!r}")


def read_wide_parquet(path: str | Path) -> HistogramSet:
    """Read and validate a wide histogram Parquet file.

    Only ``clip_id`` and the phone columns are read, batch by batch, straight
    into one phone-major integer array: the whole file is never held as Arrow.
    """
    path = Path(path)
    if not path.exists():
        raise HistogramInputError(f"{path}: no such file")
    try:
        counts, ids = _read_wide_batches(path)
    except (pa.ArrowException, OSError) as error:
        raise HistogramInputError(f"{path}: not a readable Parquet file ({error})") from None
    histograms = HistogramSet._checked(ids, counts.T, str(path))
    del ids
    pa.default_memory_pool().release_unused()  # nothing read is held as Arrow any more: give its pages back
    return histograms


def _read_wide_batches(path: Path) -> tuple[np.ndarray, pa.ChunkedArray]:
    """The validated (39, N) phone-major counts and the clip ids of a wide file."""
    source = str(path)
    parquet = pq.ParquetFile(path)
    _require_columns(parquet.schema_arrow, source)
    n_rows = parquet.metadata.num_rows
    _require_rows(n_rows, source)
    counts = np.empty((N_PHONES, n_rows), dtype=COUNT_DTYPES[0])
    ids, start = [], 0
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=["clip_id", *PHONES]):
        _check_clip_id_type(batch.schema.field("clip_id").type, source)
        counts = _fill_wide(batch, counts, start, source)
        ids.append(batch.column("clip_id"))
        start += batch.num_rows
    return counts, pa.chunked_array(ids)
