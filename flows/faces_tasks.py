"""Prefect tasks of the faces stage, for the dataset-refresh flow (after alignment).

Each task body is one call into :mod:`pipeline.faces_stage`; a bad clip
becomes a ``rejects`` row there, so a batch never fails on bad media.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from pipeline.faces_stage import FacesConfig, clip_inputs, pending_clips, process_clip, write_results
from warehouse.store import Warehouse

BATCH_SIZE = 8
"""Clips per task: one warehouse commit per batch, not per clip."""


def default_shard_dir(warehouse: Warehouse) -> Path:
    """``<warehouse>/shards`` for a local warehouse; object-store warehouses must name a folder."""
    if "://" in warehouse.uri and not warehouse.uri.startswith("file://"):
        raise ValueError(f"warehouse {warehouse.uri} is not local: pass a local shard_dir for the faces stage")
    return Path(warehouse.uri.removeprefix("file://")) / "shards"


@task(cache_policy=NO_CACHE, task_run_name="faces-batch")
def faces_batch_task(clip_ids: list[str], warehouse: Warehouse, shard_dir: Path, config: FacesConfig) -> int:
    """Run the faces stage on a batch of clips and store the results; returns how many were kept."""
    results = [process_clip(clip, shard_dir, config) for clip in clip_inputs(warehouse, clip_ids)]
    write_results(warehouse, results)
    return sum(r.kept for r in results)


def run_faces(warehouse: Warehouse, clip_ids: list[str], shard_dir: Path | None = None,
              config: FacesConfig = FacesConfig()) -> int:
    """Faces stage over the aligned clips it has not seen yet, in batches; returns clips kept."""
    todo = pending_clips(warehouse, clip_ids)
    shard_dir = shard_dir or default_shard_dir(warehouse)
    return sum(faces_batch_task(todo[i:i + BATCH_SIZE], warehouse, shard_dir, config)
               for i in range(0, len(todo), BATCH_SIZE))
