"""Prefect tasks of the faces stage, for the dataset-refresh flow (after alignment).

Each task body is one call into :mod:`pipeline.faces_stage`; a bad clip
becomes a ``rejects`` row there, so a batch never fails on bad media. The
computation is not cached by Prefect: it writes the clip's feature shard as it
goes, and a cached result would not bring a deleted shard back.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.batches import IO_RETRIES, run_in_batches
from pipeline.faces_stage import FacesConfig, FacesResult, clip_inputs, pending_clips, process_clip, write_results
from warehouse.store import Warehouse

BATCH_SIZE = 8
"""Clips per task: one warehouse commit per batch, not per clip."""


def default_shard_dir(warehouse: Warehouse) -> Path:
    """``<warehouse>/shards`` for a local warehouse; object-store warehouses must name a folder."""
    if "://" in warehouse.uri and not warehouse.uri.startswith("file://"):
        raise ValueError(f"warehouse {warehouse.uri} is not local: pass a local shard_dir for the faces stage")
    return Path(warehouse.uri.removeprefix("file://")) / "shards"


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def pending_faces_task(warehouse: Warehouse, clip_ids: list[str]) -> list[str]:
    return pending_clips(warehouse, clip_ids)


@task(cache_policy=NO_CACHE, task_run_name="faces-batch")
def faces_batch_task(clip_ids: list[str], warehouse: Warehouse, shard_dir: Path,
                     config: FacesConfig) -> list[FacesResult]:
    return [process_clip(clip, shard_dir, config) for clip in clip_inputs(warehouse, clip_ids)]


@task(cache_policy=NO_CACHE, task_run_name="faces-write", **IO_RETRIES)
def faces_write_task(warehouse: Warehouse, results: list[FacesResult]) -> None:
    write_results(warehouse, results)


def run_faces(warehouse: Warehouse, clip_ids: list[str], shard_dir: Path | None = None,
              config: FacesConfig = FacesConfig(), progress: bool = False) -> int:
    """Faces stage over the aligned clips it has not seen yet, in batches; returns how many it processed."""
    todo = pending_faces_task(warehouse, clip_ids)
    shard_dir = shard_dir or default_shard_dir(warehouse)
    return run_in_batches(
        "faces", todo, BATCH_SIZE,
        submit=lambda batch: faces_batch_task.submit(batch, warehouse, shard_dir, config),
        write=lambda results: faces_write_task(warehouse, results),
        progress=progress,
    )
