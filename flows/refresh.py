"""The dataset-refresh flow: corpus -> subtitles -> clips -> alignment -> histograms.

Thin by design: every task body is one call into :mod:`pipeline.ingest`. The
flow body reads as the data flow: load the corpus, then for each stage in
order, run it in batches over the clips that still need it. Later stages
(faces, features) append themselves to :data:`STAGE_ORDER` and
:func:`run_stage` the same way.

Runs in Prefect's embedded (ephemeral) mode by default; set
``PREFECT_API_URL`` to report to a server instead.
"""

from __future__ import annotations

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from pipeline.align import Aligner, make_aligner  # noqa: E402
from pipeline.corpus import ClipSpec, load_corpus  # noqa: E402
from pipeline.ingest import IngestConfig, StageOutput, Summary, pending, run_batch, summarize  # noqa: E402
from warehouse.store import Warehouse  # noqa: E402

STAGE_ORDER: tuple[str, ...] = ("subtitles", "clips", "align", "histograms")


@task(cache_policy=NO_CACHE)
def load_corpus_task(corpus: str) -> list[ClipSpec]:
    return load_corpus(corpus)


@task(cache_policy=NO_CACHE)
def pending_task(warehouse: Warehouse, stage: str, clip_ids: list[str]) -> list[str]:
    return pending(warehouse, stage, clip_ids)


@task(cache_policy=NO_CACHE, task_run_name="{stage}-batch")
def stage_batch_task(stage: str, clips: list[ClipSpec], warehouse: Warehouse, config: IngestConfig,
                     aligner: Aligner | None) -> StageOutput:
    return run_batch(stage, clips, warehouse, config, aligner)


def run_stage(stage: str, clips: list[ClipSpec], warehouse: Warehouse, config: IngestConfig,
              aligner: Aligner | None, progress: bool) -> None:
    """Run one stage in batches over the clips it has not seen yet."""
    from tqdm import tqdm

    by_id = {c.clip_id: c for c in clips}
    todo = [by_id[c] for c in pending_task(warehouse, stage, list(by_id))]
    with tqdm(total=len(todo), desc=f"{stage:>10}", unit="clip", disable=not progress or not todo) as bar:
        for i in range(0, len(todo), config.batch_size):
            batch = todo[i : i + config.batch_size]
            stage_batch_task(stage, batch, warehouse, config, aligner if stage == "align" else None)
            bar.update(len(batch))


@flow(name="dataset-refresh", log_prints=False)
def refresh(corpus: str, warehouse_uri: str, aligner_name: str = "pocketsphinx",
            config: IngestConfig = IngestConfig(), progress: bool = False) -> Summary:
    """Bring the warehouse up to date with ``corpus``; only new clips are processed."""
    warehouse = Warehouse(warehouse_uri)
    clips = load_corpus_task(corpus)
    aligner: Aligner | None = None
    for stage in STAGE_ORDER:
        if stage == "align" and pending(warehouse, "align", [c.clip_id for c in clips]):
            aligner = make_aligner(aligner_name)
        run_stage(stage, clips, warehouse, config, aligner, progress)
    # --- faces stage (issue 4): poses, kept span, feature shards; after alignment ---
    from flows.faces_tasks import run_faces

    run_faces(warehouse, [c.clip_id for c in clips])
    # --- end faces stage ---
    return summarize(warehouse, [c.clip_id for c in clips])

