"""The dataset-refresh flow: corpus -> subtitles -> clips -> alignment -> histograms -> faces.

The flow body reads as the data flow: load the corpus, then run each stage over
the clips that still need it (neither written nor rejected by it), so a rerun
does nothing and new clips are the only work. Every task body is one call into
:mod:`pipeline`.

- Compute tasks run on the flow's task runner (threads here, a Dask cluster in
  the scale-out deployment); writes stay in the flow process, in order.
- An ingest batch's result is cached by Prefect under a key of its inputs
  (clip segments, media and subtitle files) and of the pipeline code version
  (:mod:`pipeline.fingerprint`): a run killed between computing and writing a
  batch does not recompute it.
- Warehouse reads and writes are retried on transient errors (object stores,
  commit conflicts); they are idempotent upserts, so a retry never duplicates.

Runs in Prefect's embedded (ephemeral) mode by default; set
``PREFECT_API_URL`` to report to a server instead.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from flows.batches import IO_RETRIES, run_in_batches
from flows.faces_tasks import run_faces
from pipeline.align import Aligner, make_aligner
from pipeline.corpus import ClipSpec, load_corpus
from pipeline.faces_stage import FacesConfig
from pipeline.fingerprint import batch_key
from pipeline.ingest import STAGES, IngestConfig, StageOutput, Summary, pending, process_batch, summarize, write_output  # noqa: E501
from warehouse.store import Warehouse

CACHE_FOR = timedelta(days=7)

_local = threading.local()


def worker_aligner(name: str, pad_s: float | None = None) -> Aligner:
    """One aligner per worker thread: built once, never shared between threads."""
    aligners = _local.__dict__.setdefault("aligners", {})
    if (name, pad_s) not in aligners:
        aligners[name, pad_s] = make_aligner(name, pad_s)
    return aligners[name, pad_s]


def _batch_cache_key(context, parameters: dict) -> str:
    settings = (parameters["config"], parameters["aligner_name"] if parameters["stage"] == "align" else None)
    return batch_key(parameters["stage"], parameters["clips"], settings)


@task(cache_policy=NO_CACHE)
def load_corpus_task(corpus: str) -> list[ClipSpec]:
    return load_corpus(corpus)


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def pending_task(warehouse: Warehouse, stage: str, clip_ids: list[str]) -> list[str]:
    return pending(warehouse, stage, clip_ids)


@task(cache_key_fn=_batch_cache_key, cache_expiration=CACHE_FOR, persist_result=True,
      task_run_name="{stage}-batch")
def compute_batch_task(stage: str, clips: list[ClipSpec], warehouse: Warehouse, config: IngestConfig,
                       aligner_name: str) -> StageOutput:
    return process_batch(stage, clips, warehouse, config,
                         worker_aligner(aligner_name, config.cue_pad_s) if stage == "align" else None)


@task(cache_policy=NO_CACHE, task_run_name="{output.stage}-write", **IO_RETRIES)
def write_batch_task(warehouse: Warehouse, output: StageOutput) -> None:
    write_output(warehouse, output)


def run_stage(stage: str, clips: list[ClipSpec], warehouse: Warehouse, config: IngestConfig,
              aligner_name: str, progress: bool) -> int:
    """Run one ingest stage over the clips it has not seen yet; returns how many it processed."""
    by_id = {c.clip_id: c for c in clips}
    todo = [by_id[c] for c in pending_task(warehouse, stage, list(by_id))]
    return run_in_batches(
        stage, todo, config.batch_size,
        submit=lambda batch: compute_batch_task.submit(stage, batch, warehouse, config, aligner_name),
        write=lambda output: write_batch_task(warehouse, output),
        progress=progress,
    )


@flow(name="dataset-refresh", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=2))
def refresh(corpus: str, warehouse_uri: str, aligner_name: str = "pocketsphinx",
            config: IngestConfig = IngestConfig(), progress: bool = False,
            faces: FacesConfig = FacesConfig(), shard_dir: Path | None = None) -> Summary:
    """Bring the warehouse up to date with ``corpus``; only new clips are processed.

    Args:
        corpus: a media folder, a segment list or ``voxceleb:<folder>`` (see :mod:`pipeline.corpus`).
        warehouse_uri: warehouse root.
        aligner_name: ``pocketsphinx`` (offline) or ``mfa``.
        shard_dir: where feature shards go; default ``<warehouse>/shards`` for a local warehouse.
    """
    warehouse = Warehouse(warehouse_uri)
    clips = load_corpus_task(corpus)
    for stage in STAGES:
        run_stage(stage, clips, warehouse, config, aligner_name, progress)
    run_faces(warehouse, [c.clip_id for c in clips], shard_dir, faces, progress)
    return summarize(warehouse, [c.clip_id for c in clips])
