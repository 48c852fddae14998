"""The deployments, defined in code: scheduled refresh, selection after it, triggered training.

- ``dataset-refresh/talkface-refresh`` runs :func:`flows.refresh.refresh` on a
  cron schedule on the CPU work pool (or the MFA image's pool), with the ingest
  and faces settings ``deploy`` was given (those of ``talkface refresh``).
- ``selection/talkface-selection`` runs :func:`flows.selection_flow.selection`
  whenever a run of that refresh deployment completes (a Prefect automation on
  the ``prefect.flow-run.Completed`` event of the refresh deployment).
- ``training/talkface-training`` runs :func:`flows.training_flow.training` on
  the GPU work pool whenever the selection flow announces a new selection
  (:data:`flows.selection_flow.SELECTION_EVENT`, filtered to this warehouse),
  with the announced ``selection_id``.

The workers find the code in ``code_dir`` (this repository, or ``/app`` in the
compose images). Scale-out: with a Dask scheduler address, the refresh flow
runs with prefect-dask's ``DaskTaskRunner`` pointed at it (see
:func:`task_runner_from_env`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from uuid import UUID

from prefect import Flow
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.refresh import THREADS, refresh
from flows.selection_flow import SELECTION_EVENT
from pipeline.faces_stage import FacesConfig
from pipeline.ingest import IngestConfig
from selection.methods import SelectionParams

DASK_ADDRESS_ENV = "TALKFACE_DASK_ADDRESS"
"""Set (through the deployment's job variables) to run the refresh tasks on that Dask scheduler."""

CODE_DIR = Path(__file__).resolve().parents[1]
REFRESH, SELECTION, TRAINING = "talkface-refresh", "talkface-selection", "talkface-training"


def task_runner_from_env() -> TaskRunner:
    """prefect-dask's DaskTaskRunner on ``$TALKFACE_DASK_ADDRESS`` if set, else the CLI's thread pool."""
    address = os.environ.get(DASK_ADDRESS_ENV)
    if not address:
        return ThreadPoolTaskRunner(max_workers=THREADS)
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=address)


scheduled_refresh = refresh.with_options(task_runner=task_runner_from_env())
"""The refresh flow as the deployment runs it (entrypoint ``flows/deployments.py:scheduled_refresh``)."""


@dataclass(frozen=True)
class DeploySettings:
    """Everything ``talkface deploy`` can be told; built by the CLI."""

    corpus: str  # corpus spec the scheduled refresh ingests
    warehouse: str  # warehouse URI: a folder the workers see, or s3://bucket/prefix
    report_dir: str  # where the selection flow writes its reports
    runs_dir: str  # training run folders, one per selection
    cron: str = "0 3 * * *"  # refresh schedule
    timezone: str = "UTC"
    cpu_pool: str = "talkface-cpu"  # process work pool of the selection (and of the refresh by default)
    refresh_pool: str | None = None  # e.g. the MFA image's pool for aligner "mfa"; None: cpu_pool
    gpu_pool: str = "talkface-gpu"  # process work pool served by the GPU worker
    aligner: str = "pocketsphinx"
    ingest: IngestConfig = field(default_factory=IngestConfig)  # the scheduled refresh's, as `refresh` takes them
    faces: FacesConfig = field(default_factory=FacesConfig)
    selection: SelectionParams = field(default_factory=SelectionParams)
    train_config: str = "paper"
    train_steps: int | None = None  # None: the config's whole schedule
    train_device: str | None = None  # None: CUDA when present
    dask_address: str | None = None  # tcp://scheduler:8786 for the Dask scale-out
    code_dir: Path = CODE_DIR  # where the workers find this repository


def as_json(settings: object) -> dict:
    """A settings dataclass as the JSON a deployment stores (paths as strings); the flow run turns it back
    into the dataclass its parameter names (Prefect validates parameters against the flow's signature)."""
    return json.loads(json.dumps(asdict(settings), default=str))


def _from_code(settings: DeploySettings, entrypoint: str) -> Flow:
    return Flow.from_source(str(settings.code_dir), entrypoint)


def ensure_work_pools(*names: str) -> None:
    """Create the process work pools that do not exist yet."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client:
        for name in names:
            try:
                client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            except ObjectAlreadyExists:
                pass


def deploy(settings: DeploySettings) -> dict[str, UUID]:
    """Create or update the three deployments and their triggers; returns their ids by name."""
    from prefect.events import DeploymentEventTrigger
    from prefect.schedules import Cron

    refresh_pool = settings.refresh_pool or settings.cpu_pool
    ensure_work_pools(settings.cpu_pool, refresh_pool, settings.gpu_pool)
    env = {DASK_ADDRESS_ENV: settings.dask_address} if settings.dask_address else {}
    refresh_id = _from_code(settings, "flows/deployments.py:scheduled_refresh").to_deployment(
        REFRESH, schedules=[Cron(settings.cron, timezone=settings.timezone)], work_pool_name=refresh_pool,
        parameters={"corpus": settings.corpus, "warehouse_uri": settings.warehouse,
                    "aligner_name": settings.aligner, "config": as_json(settings.ingest),
                    "faces": as_json(settings.faces)},
        job_variables={"env": env}, concurrency_limit=1,  # two refreshes never write at once
    ).apply()
    after_refresh = DeploymentEventTrigger(
        expect={"prefect.flow-run.Completed"},
        match_related={"prefect.resource.id": f"prefect.deployment.{refresh_id}"},
    )
    p = settings.selection
    selection_id = _from_code(settings, "flows/selection_flow.py:selection").to_deployment(
        SELECTION, work_pool_name=settings.cpu_pool, triggers=[after_refresh],
        parameters={"warehouse_uri": settings.warehouse, "report_dir": settings.report_dir, "nmin": p.nmin,
                    "nmax": p.nmax, "k": p.k, "seed": p.seed, "method": p.method, "distance": p.distance},
    ).apply()
    on_new_selection = DeploymentEventTrigger(
        expect={SELECTION_EVENT},
        match={"prefect.resource.id": "talkface.selection.*", "talkface.warehouse": settings.warehouse},
        parameters={"selection_id": "{{ event.payload.selection_id }}"},
    )
    training_id = _from_code(settings, "flows/training_flow.py:training").to_deployment(
        TRAINING, work_pool_name=settings.gpu_pool, triggers=[on_new_selection],
        parameters={"warehouse_uri": settings.warehouse, "runs_dir": settings.runs_dir,
                    "config": settings.train_config, "steps": settings.train_steps,
                    "device": settings.train_device},
    ).apply()
    return {REFRESH: refresh_id, SELECTION: selection_id, TRAINING: training_id}
