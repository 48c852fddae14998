"""One way to run a stage: a stage is a record, and one runner moves every stage's clips.

A :class:`Stage` names the tables it reads per clip, the tables it writes (the
last one marks a clip done) and a pure ``compute`` that turns a batch of
:class:`ClipWork` (the clip's corpus entry and its rows of the input tables:
plain records, never a warehouse) into :class:`ClipResult` s: rows per table,
or a :class:`Reject`. The runner around it is the same for every stage:

- :func:`pending`: clips the stage has neither written nor rejected whose inputs are there;
- :func:`read_work`: their input rows, read in one pass per table;
- ``stage.compute``: anywhere (a thread, a Dask worker); it touches no table;
- :func:`write_results`: each written table in the stage's order (one-row-per-clip
  tables upserted, the others replaced per clip), rejects last, each one
  atomic commit; a run killed in between redoes the clip, and the replace makes
  the redo land once.

:mod:`pipeline.refresh_stages` lists the refresh's stages; ``flows/refresh.py``
runs them under Prefect, :func:`run_stages` without it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.corpus import ClipSpec
from warehouse.store import Warehouse
from warehouse.tables import table_spec

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Reject:
    """A clip a stage dropped; a ``rejects`` row."""

    clip_id: str
    stage: str
    reason: str  # short and stable: bad_media, no_audio, no_subtitles, low_coverage, no_face, ...
    detail: str  # for a person: names the file or cue and what is wrong

    def to_row(self, at: datetime) -> dict[str, object]:
        return {"clip_id": self.clip_id, "stage": self.stage, "reason": self.reason,
                "detail": self.detail, "at": at}


@dataclass(frozen=True)
class ClipWork:
    """What a stage computes one clip from: its corpus entry and its rows of the stage's input tables."""

    clip: ClipSpec
    rows: Mapping[str, list[dict[str, object]]] = field(default_factory=dict)

    @property
    def clip_id(self) -> str:
        return self.clip.clip_id


@dataclass(frozen=True)
class ClipResult:
    """A stage's output for one clip: rows per table it writes (replacing the clip's rows), and a reject or not.

    A rejected clip may still carry rows (the cue outcomes of a clip whose
    alignment fell below the coverage threshold, the poses of a clip without a
    valid span): they are written, and the reject marks the clip done.
    """

    clip_id: str
    rows: Mapping[str, list[dict[str, object]]] = field(default_factory=dict)
    reject: Reject | None = None


Compute = Callable[[Sequence[ClipWork], object], list[ClipResult | None]]
"""``compute(batch, settings)``: one result per clip, ``None`` for a clip that must wait (nothing written)."""


@dataclass(frozen=True)
class Stage:
    """One stage of the refresh, as data."""

    name: str
    inputs: tuple[str, ...]  # tables read per clip; a clip waits until each holds its rows
    writes: tuple[str, ...]  # tables written, in this order; the last marks a clip done
    compute: Compute
    # False when compute writes files (shards, shared media) a cached result would not restore, or may answer
    # otherwise on a later run with the same inputs (a clip waiting for an unavailable source)
    cacheable: bool = True
    spread: bool = False  # costly per clip: a batch is computed as tasks of a few clips, spread over workers
    # fetches per source: a batch holds every pending clip of a source, so that two batches on two workers
    # never both download it (the segments of one video either side of a batch boundary did)
    whole_sources: bool = False

    @property
    def output(self) -> str:
        return self.writes[-1]


def _clip_ids(warehouse: Warehouse, table: str) -> set[str]:
    return set(warehouse.read(table, columns=["clip_id"])["clip_id"].to_pylist())


def pending(warehouse: Warehouse, stage: Stage, clip_ids: Sequence[str]) -> list[str]:
    """Clips of ``clip_ids``, in order, that ``stage`` has neither written nor rejected and can run on."""
    rejects = warehouse.read("rejects", columns=["clip_id", "stage"])
    done = _clip_ids(warehouse, stage.output)
    done |= set(rejects.filter(pc.equal(rejects["stage"], stage.name))["clip_id"].to_pylist())
    ready = [_clip_ids(warehouse, table) for table in stage.inputs]
    return [c for c in clip_ids if c not in done and all(c in have for have in ready)]


def done_clips(warehouse: Warehouse, stages: Sequence[Stage]) -> set[str]:
    """Clips no stage takes again unless asked to: written by the last of ``stages``, or rejected by any."""
    return _clip_ids(warehouse, stages[-1].output) | _clip_ids(warehouse, "rejects")


def read_work(warehouse: Warehouse, stage: Stage, clips: Sequence[ClipSpec]) -> list[ClipWork]:
    """Each clip's rows of the stage's input tables (one read per table for the whole batch)."""
    ids = [c.clip_id for c in clips]
    grouped: dict[str, dict[str, list[dict[str, object]]]] = {c: {t: [] for t in stage.inputs} for c in ids}
    for table in stage.inputs:
        for row in warehouse.read_clips(table, ids).to_pylist():
            grouped[row["clip_id"]][table].append(row)
    return [ClipWork(clip, grouped[clip.clip_id]) for clip in clips]


def write_results(warehouse: Warehouse, stage: Stage, results: Sequence[ClipResult | None]) -> None:
    """Write a batch's results: each table of ``stage.writes`` in order, then the rejects."""
    done = [r for r in results if r is not None]
    for table in stage.writes:
        spec = table_spec(table)
        owners = [r.clip_id for r in done if table in r.rows]
        if not owners:
            continue
        data = pa.Table.from_pylist([row for r in done for row in r.rows.get(table, ())], schema=spec.schema)
        if spec.key == ("clip_id",):
            if data.num_rows:
                warehouse.upsert(table, data)
        else:
            warehouse.replace_clips(table, data, owners)
    rejects = [r.reject for r in done if r.reject is not None]
    for reject in rejects:
        log.info("reject %s at %s: %s (%s)", reject.clip_id, reject.stage, reject.reason, reject.detail)
    if rejects:
        at = datetime.now(UTC)
        warehouse.upsert("rejects", pa.Table.from_pylist([r.to_row(at) for r in rejects],
                                                         schema=table_spec("rejects").schema))


def in_batches(items: Sequence[T], size: int, together: Callable[[T], object] | None = None) -> list[list[T]]:
    """``items`` cut into consecutive lists of at most ``size``.

    With ``together``, the items alike in ``together(item)`` go in one list (in the order each first comes),
    lists being filled with whole groups; a group larger than ``size`` is a list of its own.
    """
    if size < 1:  # a negative size would cut nothing and silently compute nothing
        raise ValueError(f"batch or task size must be at least 1, got {size}")
    if together is None:
        return [list(items[i:i + size]) for i in range(0, len(items), size)]
    groups: dict[object, list[T]] = {}
    for item in items:
        groups.setdefault(together(item), []).append(item)
    batches: list[list[T]] = []
    for group in groups.values():
        if batches and len(batches[-1]) + len(group) <= size:
            batches[-1] += group
        else:
            batches.append(list(group))
    return batches


def batch_together(stage: Stage) -> Callable[[ClipWork], object] | None:
    """What the clips a batch of ``stage`` keeps together share (:func:`in_batches`): their source for a stage
    that fetches per source (``Stage.whole_sources``), else nothing."""
    return (lambda work: work.clip.source) if stage.whole_sources else None


def run_stages(warehouse: Warehouse, clips: Sequence[ClipSpec], stages: Sequence[Stage], settings: object,
               batch_size: int = 25) -> None:
    """Every stage over the clips that need it, in this process, batch after batch (no Prefect)."""
    by_id = {c.clip_id: c for c in clips}
    for stage in stages:
        work = read_work(warehouse, stage, [by_id[c] for c in pending(warehouse, stage, list(by_id))])
        for batch in in_batches(work, batch_size, batch_together(stage)):
            write_results(warehouse, stage, stage.compute(batch, settings))
