"""Versioned, atomic, idempotent tables on a local folder or object storage.

Each logical table is a Delta Lake table under ``<warehouse uri>/<name>``.
Delta gives what the pipeline relies on: a write is one atomic commit (a crash
leaves the previous version readable), every commit is a numbered version that
can be read back, and ``merge`` upserts by key so re-running a stage never
duplicates rows. The same code serves ``s3://`` URIs; credentials come from
the usual ``AWS_*`` environment variables that delta-rs reads. Every commit
passes the fault points ``<table>.commit`` and ``<table>.committed``
(:mod:`warehouse.faults`), where the fault tests kill writers.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, QueryBuilder, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError

from warehouse.faults import fault_point
from warehouse.location import Location, default_warehouse_uri
from warehouse.tables import TableSpec, table_spec

log = logging.getLogger(__name__)

OBJECT_STORE_RETRIES = {
    "max_retries": "6",
    "retry_timeout": "30s",
    "backoff_config.init_backoff": "250ms",
    "backoff_config.max_backoff": "5s",
}
"""delta-rs's retry of object-store requests for remote warehouses (overridable by storage options):
an endpoint that resets or refuses connections is retried with jittered exponential backoff for a
few seconds (at most 30), then the command fails clearly; flows retry their warehouse tasks again
on top of this."""

Result = TypeVar("Result")


class WarehouseError(OSError):
    """A table could not be read or written: storage unreachable, or a damaged Delta log."""


def one_line(error: BaseException) -> str:
    """delta-rs's multi-line, coloured error chain as one plain line, root cause last.

    A Rust backtrace that some errors carry (lines ``0: ...``, ``1: ...``) is cut off.
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    parts = []
    for line in text.splitlines():
        if re.match(r"\s*\d+: ", line):
            break
        parts.append(line.strip(" ↳-"))
    return " > ".join(part for part in parts if part)


def _table_errors(method: Callable[..., Result]) -> Callable[..., Result]:
    """Turn a storage failure inside ``method(self, name, ...)`` into one WarehouseError naming the table."""

    @functools.wraps(method)
    def wrapper(self: Warehouse, name: str, *args: object, **kwargs: object) -> Result:
        try:
            return method(self, name, *args, **kwargs)
        except WarehouseError:
            raise
        except (OSError, DeltaError) as exc:
            raise WarehouseError(f"{self._about(name)}: {one_line(exc)}") from exc

    return wrapper

def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _is_in(column: str, values: Iterable[str]) -> str:
    """The SQL condition that ``column`` holds one of ``values``, for delta-rs's queries and predicates."""
    return f'"{column}" IN (' + ", ".join(_sql_literal(v) for v in values) + ")"


def _require_columns(spec: TableSpec, columns: Iterable[str]) -> None:
    """Raise ``ValueError`` naming the table and the ``columns`` it lacks, if any."""
    unknown = [c for c in columns if c not in spec.schema.names]
    if unknown:
        raise ValueError(f"table {spec.name!r} has no column {', '.join(unknown)}")


def _query(table: DeltaTable, spec: TableSpec, columns: list[str], where: str | None = None) -> pa.Table:
    """``columns`` of ``table`` (rows matching ``where``) in key order, read by delta-rs's engine.

    Not ``DeltaTable.to_pyarrow_table()``: that reads through a Python
    filesystem handler called from Arrow's I/O threads, and a process that has
    used it aborts at exit in about half of runs ("terminate called without an
    active exception", delta-rs issue #2184). The query engine reads in Rust,
    honours every reader feature of the table, and exits cleanly.
    """
    _require_columns(spec, columns)
    # A version written before a column was added lacks it: the column reads as nulls.
    present = {field.name for field in table.schema().fields}
    stored = [c for c in columns if c in present]
    query = ("SELECT " + ", ".join(f'"{c}"' for c in stored) + " FROM t"
             + (f" WHERE {where}" if where else "")
             + " ORDER BY " + ", ".join(f'"{k}"' for k in spec.key))
    reader = QueryBuilder().register("t", table).execute(query)
    data = pa.RecordBatchReader.from_stream(reader).read_all()
    # The engine answers with string_view columns; hand back the table's own types.
    schema = pa.schema([spec.schema.field(c) for c in columns])
    full = [data[c] if c in stored else pa.nulls(data.num_rows, schema.field(c).type) for c in columns]
    return pa.Table.from_arrays(full, schema=schema)


def table_root(location: Location) -> Location:
    """``location`` as a warehouse root, refused where delta-rs would keep its tables elsewhere.

    delta-rs parses an object-store table URI as a URL, where ``?`` or ``#``
    ends the path: ``s3://b/run#1`` and ``s3://b/run#2`` would both hold their
    tables in ``s3://b/run``, each reading the other's rows. Written ``%23`` or
    ``%3F`` the character stays in the key, for the tables and the shards alike.
    In a local path delta-rs writes a table's first log entry under the name as
    it is but reads ``%20`` (any ``%`` and two hex digits) as an escape, so the
    table it has just written is never found again.

    Raises:
        ValueError: naming the URI, where its tables would go, and how to write it or what to rename.
    """
    if location.is_local:
        escape = re.search(r"%[0-9A-Fa-f]{2}", location.uri)
        if escape is not None:
            raise ValueError(f"warehouse {location.uri}: delta-rs reads {escape.group()!r} in a local path as an "
                             f"escape and would not find its own tables; rename the folder")
        return location
    end = re.search(r"[?#]", location.uri)
    if end is not None:
        raise ValueError(f"warehouse {location.uri}: {end.group()!r} ends an object-store path for delta-rs, "
                         f"so the tables would go to {location.uri[:end.start()]}; "
                         f"write it as {quote(end.group())!r} to keep it in the name")
    return location


class Warehouse:
    """The set of pipeline tables under one root URI (a folder or ``s3://bucket/prefix``)."""

    def __init__(self, uri: str | os.PathLike[str] | None = None,
                 storage_options: Mapping[str, str] | None = None) -> None:
        # A local folder appears with the first write, never on a failed command.
        self.location = table_root(Location.of(uri if uri is not None else default_warehouse_uri()))
        self.uri = self.location.uri
        remote = {} if self.location.is_local else OBJECT_STORE_RETRIES
        self.storage_options = {**remote, **(storage_options or {})}

    def __repr__(self) -> str:
        return f"Warehouse({self.uri!r})"

    def table_uri(self, name: str) -> str:
        table_spec(name)
        return f"{self.uri}/{name}"

    def _open(self, name: str, version: int | None = None) -> DeltaTable | None:
        """The Delta table ``name`` (at ``version``), or ``None`` if it was never written.

        A version is opened by reading the log only up to it, so a damaged
        later log entry does not hide the versions before it.
        """
        if version is not None and version < 0:
            raise ValueError(f"table {name!r}: versions start at 0, got {version}")
        try:
            return DeltaTable(self.table_uri(name), version=version, storage_options=self.storage_options or None)
        except TableNotFoundError:
            if version is not None:
                raise ValueError(f"table {name!r} does not exist in {self.uri}") from None
            return None
        except (OSError, DeltaError) as exc:
            if version is not None and "specified end version" in str(exc):
                raise ValueError(f"table {name!r} has no version {version} in {self.uri} "
                                 f"(latest is {self.version(name)})") from None
            raise WarehouseError(self._explain(name, exc)) from exc

    def _about(self, name: str) -> str:
        """How an error names the table it is about."""
        return f"warehouse {self.uri}, table {name}"

    def _explain(self, name: str, error: BaseException) -> str:
        """What went wrong opening ``name``, naming the damaged log entry when one is."""
        message = f"{self._about(name)}: {one_line(error)}"
        if "Json error" not in str(error):
            return message
        from pyarrow import fs

        try:  # listing the log must not hide the error being explained
            filesystem, path = self.location.join(name, "_delta_log").filesystem()
            entries = filesystem.get_file_info(fs.FileSelector(path))
        except OSError:
            return message
        versions = sorted(int(e.base_name[:-5]) for e in entries if re.fullmatch(r"\d{20}\.json", e.base_name))
        for version in reversed([v for v in versions if v > 0]):
            try:
                DeltaTable(self.table_uri(name), version=version - 1, storage_options=self.storage_options or None)
            except (OSError, DeltaError):
                continue
            return (f"{self._about(name)}: log entry {version} (_delta_log/{version:020d}.json) "
                    f"is damaged ({one_line(error)}); versions 0 to {version - 1} are readable")
        return message

    @_table_errors
    def version(self, name: str) -> int | None:
        """The latest version of table ``name``, or ``None`` if it was never written."""
        table = self._open(name)
        return None if table is None else table.version()

    def versions(self) -> dict[str, int]:
        """Latest version of every table that exists."""
        from warehouse.tables import TABLES

        found = {name: self.version(name) for name in TABLES}
        return {name: v for name, v in found.items() if v is not None}

    @_table_errors
    def read(self, name: str, version: int | None = None,
             columns: list[str] | None = None) -> pa.Table:
        """Table ``name`` at ``version`` (latest by default), in key order; empty if absent."""
        spec = table_spec(name)
        table = self._open(name, version)
        wanted = columns or spec.schema.names
        if table is None:
            return spec.empty().select(wanted)
        return _query(table, spec, wanted)

    @_table_errors
    def read_clips(self, name: str, clip_ids: Iterable[str], columns: list[str] | None = None) -> pa.Table:
        """The rows of the given clips only, for a stage working on a batch of clips.

        The filter runs in delta-rs's query engine, which skips the files whose
        statistics rule the clips out, so a batch does not load the whole table.
        """
        spec = table_spec(name)
        ids = sorted(set(clip_ids))
        table = self._open(name)
        wanted = columns or spec.schema.names
        if table is None or not ids:
            return spec.empty().select(wanted)
        return _query(table, spec, wanted, _is_in("clip_id", ids))

    @_table_errors
    def upsert(self, name: str, data: pa.Table) -> int:
        """Insert or update rows of ``data`` by the table key, in one atomic commit.

        Returns:
            The table version after the commit.
        """
        spec = table_spec(name)
        data = conform(spec, data)
        if data.num_rows == 0:
            return self.version(name) if self.version(name) is not None else self._create(spec)
        table = self._open(name)
        if table is None:
            self._create(spec)
            table = self._open(name)
        predicate = " AND ".join(f"t.{k} = s.{k}" for k in spec.key)
        fault_point(f"{name}.commit")
        (
            table.merge(data, predicate=predicate, source_alias="s", target_alias="t", merge_schema=True)
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )
        fault_point(f"{name}.committed")
        return table.version()

    def replace_clips(self, name: str, data: pa.Table, clip_ids: Iterable[str]) -> int:
        """Replace every row of the given clips with ``data``, in one atomic commit.

        For child tables (several rows per clip, such as phones or poses): a
        clip processed again may produce fewer rows than before, and an upsert
        would leave the extra old rows behind.
        """
        return self.replace_groups(name, data, "clip_id", clip_ids)

    @_table_errors
    def replace_groups(self, name: str, data: pa.Table, column: str, values: Iterable[str]) -> int:
        """Replace every row whose ``column`` is one of ``values`` with ``data``, in one atomic commit.

        Returns:
            The table version after the commit.
        """
        spec = table_spec(name)
        data = conform(spec, data)
        wanted = sorted(set(values))
        if not wanted:
            return self.version(name) if self.version(name) is not None else self._create(spec)
        outside = pc.invert(pc.is_in(data[column], value_set=pa.array(wanted, pa.string())))
        if data.num_rows and pc.any(outside).as_py():
            raise ValueError(f"replace_groups({name!r}): data holds {column} values outside the ones replaced")
        if self._open(name) is None:
            self._create(spec)
        fault_point(f"{name}.commit")
        write_deltalake(self.table_uri(name), data, mode="overwrite", predicate=_is_in(column, wanted),
                        schema_mode="merge", storage_options=self.storage_options or None)
        fault_point(f"{name}.committed")
        return self.version(name)

    @_table_errors
    def delete(self, name: str, match: Mapping[str, Iterable[str]]) -> int:
        """Delete the rows whose every column named in ``match`` holds one of its values (no column
        named: every row), in one atomic commit. The table's history keeps the deleted rows readable at
        the versions before it.

        Returns:
            How many rows were deleted.
        """
        _require_columns(table_spec(name), match)
        wanted = {column: sorted(set(values)) for column, values in match.items()}
        table = self._open(name)
        if table is None or not all(wanted.values()):
            return 0
        fault_point(f"{name}.commit")
        metrics = table.delete(" AND ".join(_is_in(c, v) for c, v in wanted.items()) or None)
        fault_point(f"{name}.committed")
        return int(metrics.get("num_deleted_rows", 0))

    def _create(self, spec: TableSpec) -> int:
        log.debug("creating table %s in %s", spec.name, self.uri)
        write_deltalake(self.table_uri(spec.name), spec.empty(), mode="append",
                        storage_options=self.storage_options or None)
        return self.version(spec.name)


def conform(spec: TableSpec, data: pa.Table) -> pa.Table:
    """``data`` with the spec's columns, order and types; rejects missing columns and duplicate keys."""
    missing = [f.name for f in spec.schema if f.name not in data.column_names]
    if missing:
        raise ValueError(f"table {spec.name!r}: missing columns {', '.join(missing)}")
    data = data.select(spec.schema.names).cast(spec.schema)
    for key in spec.key:
        if data[key].null_count:
            raise ValueError(f"table {spec.name!r}: null key column {key!r}")
    if data.num_rows:
        keys = data.group_by(list(spec.key)).aggregate([([], "count_all")])
        if keys.num_rows != data.num_rows:
            raise ValueError(f"table {spec.name!r}: duplicate keys {spec.key} in one write")
    return data
