"""The dataset-refresh flow: corpus -> subtitles -> clips -> alignment -> histograms -> faces.

The flow body reads as the data flow: load the corpus, then run each stage of
:data:`pipeline.refresh_stages.STAGES` over the clips that still need it
(neither written nor rejected by it), so a rerun does nothing and new clips are
the only work. Every stage runs the same way (:mod:`pipeline.stage`):

- its pending clips' input rows are read here, in the flow process;
- ``compute`` runs as a task on the flow's task runner (threads here, a Dask
  cluster in the scale-out deployment) on those plain records: a worker needs
  nothing but the settings, which name the warehouse, where the faces stage
  writes its shards (a folder, or object storage shared by every machine);
- the results are written here, batch after batch in order, so two Delta
  commits never race.

A batch of a costly stage (alignment, faces) is computed as tasks of
``IngestConfig.task_size`` clips spread over the task runner's workers
(:meth:`RefreshSettings.task_size`), and written once. An ingest task's result
is cached by Prefect under a key of its inputs (clip segments, media and
subtitle files, input rows), of the code version of ``pipeline`` and ``warehouse``
(:mod:`pipeline.fingerprint`) and, for alignment, of the aligner's version: a run
killed between computing and writing a batch does not recompute it. The stages
that write files (clips: media shared under a remote warehouse; faces: shards)
are not cached: a cached result would not bring a deleted file back. Nor is
subtitles: a remote clip waits while its source is unavailable (network errors,
a rate limit), and the next run must fetch it again, not serve the cached wait.
Warehouse reads and writes are retried on transient errors (object stores,
commit conflicts); they are idempotent, so a retry never duplicates.

The run's summary (clips in, subtitled, aligned, with a span, rejects by reason)
is the flow's result and its ``refresh-summary`` artifact in the Prefect UI, so a
scheduled run says what it did without its logs.

Runs in Prefect's embedded (ephemeral) mode by default; set
``PREFECT_API_URL`` to report to a server instead.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.task_runners import ThreadPoolTaskRunner

from flows.batches import IO_RETRIES, run_in_batches
from pipeline.corpus import ClipSpec, load_corpus
from pipeline.faces_stage import FacesConfig
from pipeline.fingerprint import batch_key
from pipeline.ingest import IngestConfig
from pipeline.prune import Pruned, done_sources, prune_cache, prune_shared
from pipeline.refresh_stages import STAGES, RefreshSettings, stage_named, worker_aligner
from pipeline.stage import (
    ClipResult,
    ClipWork,
    Stage,
    batch_together,
    done_clips,
    pending,
    read_work,
    write_results,
)
from pipeline.summary import Summary, summarize
from warehouse.location import Location
from warehouse.store import Warehouse

CACHE_FOR = timedelta(days=7)
THREADS = 2
"""Compute threads of a refresh without Dask, from the CLI or a deployment: each loads its own aligner
and face mesh, so Prefect's unbounded default would run a whole batch's tasks at once."""


def _batch_cache_key(context, parameters: dict) -> str | None:
    if not stage_named(parameters["stage"]).cacheable:
        return None
    settings: RefreshSettings = parameters["settings"]
    aligner = None
    if parameters["stage"] == "align":  # the version too: an upgraded aligner (MFA is installed apart) aligns anew
        used = worker_aligner(settings.aligner, settings.ingest.cue_pad_s)  # computed where the task runs
        aligner = (settings.aligner, used.version)
    # The warehouse too: the clips stage names media it shared under a remote warehouse.
    return batch_key(parameters["stage"], parameters["work"], (settings.warehouse, settings.ingest, aligner))


@task(cache_policy=NO_CACHE)
def load_corpus_task(corpus: str) -> list[ClipSpec]:
    return load_corpus(corpus)


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def pending_task(warehouse: Warehouse, stage: str, clips: list[ClipSpec]) -> list[ClipWork]:
    """The stage's pending clips with their input rows (read in the flow process)."""
    chosen = stage_named(stage)
    todo = set(pending(warehouse, chosen, [c.clip_id for c in clips]))
    return read_work(warehouse, chosen, [c for c in clips if c.clip_id in todo])


@task(cache_key_fn=_batch_cache_key, cache_expiration=CACHE_FOR, persist_result=True,
      task_run_name="{stage}-compute")
def compute_task(stage: str, work: list[ClipWork], settings: RefreshSettings) -> list[ClipResult | None]:
    return stage_named(stage).compute(work, settings)


@task(cache_policy=NO_CACHE, task_run_name="{stage}-write", **IO_RETRIES)
def write_task(warehouse: Warehouse, stage: str, results: list[ClipResult | None]) -> None:
    write_results(warehouse, stage_named(stage), results)


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def prune_task(warehouse: Warehouse, clips: list[ClipSpec], config: IngestConfig) -> Pruned:
    """The cached media of sources whose clips are all done, removed (``--prune-downloads``): in this
    process's cache, in every Dask worker's (the stages fetched and copied media there), and the shared
    copies under a warehouse on object storage."""
    rows = warehouse.read("clips", columns=["clip_id", "video_uri"]).to_pylist()
    media = {r["clip_id"]: r["video_uri"] for r in rows}
    sources = done_sources(done_clips(warehouse, STAGES), clips, media)
    pruned = prune_cache(sources, config.cache_dir)
    workers = _dask_client()
    if workers is not None:
        for on_worker in workers.run(prune_cache, sources, config.cache_dir).values():
            pruned += on_worker
    return pruned + prune_shared(sources, Location.of(warehouse.uri))


def _dask_client():
    """The Dask client of the flow's task runner (prefect-dask's ``DaskTaskRunner``); ``None`` with threads."""
    context = FlowRunContext.get()
    return getattr(context.task_runner, "client", None) if context is not None else None


def run_stage(stage: Stage, clips: list[ClipSpec], warehouse: Warehouse, settings: RefreshSettings,
              progress: bool) -> int:
    """Run one stage over the clips it has not seen yet; returns how many it processed."""
    work = pending_task(warehouse, stage.name, clips)
    return run_in_batches(
        stage.name, work, settings.ingest.batch_size,
        submit=lambda batch: compute_task.submit(stage.name, batch, settings),
        write=lambda results: write_task(warehouse, stage.name, results),
        progress=progress, task_size=settings.task_size(stage),
        together=batch_together(stage),
    )


@flow(name="dataset-refresh", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=THREADS))
def refresh(corpus: str, warehouse_uri: str, aligner_name: str = "pocketsphinx",
            config: IngestConfig = IngestConfig(), progress: bool = False,
            faces: FacesConfig = FacesConfig()) -> Summary:
    """Bring the warehouse up to date with ``corpus``; only new clips are processed.

    Args:
        corpus: a media folder (local or on object storage), a segment list or
            ``voxceleb:<folder>`` (see :mod:`pipeline.corpus`).
        warehouse_uri: warehouse root, a folder or ``s3://bucket/prefix``; feature
            shards go under its ``shards/``.
        aligner_name: ``pocketsphinx`` (offline) or ``mfa``.
    """
    warehouse = Warehouse(warehouse_uri)
    settings = RefreshSettings(warehouse.uri, aligner_name, config, faces)
    clips = load_corpus_task(corpus)
    for stage in STAGES:
        run_stage(stage, clips, warehouse, settings, progress)
    summary = summarize(warehouse, [c.clip_id for c in clips])
    if config.prune_downloads:
        summary = replace(summary, pruned=prune_task(warehouse, clips, config))
    create_markdown_artifact(summary.markdown(), key="refresh-summary", description=f"refresh of {corpus}")
    return summary
