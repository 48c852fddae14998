"""``talkface deploy``: create the Prefect deployments on the server at ``PREFECT_API_URL``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from flows.ingest_options import ingest_options, ingest_settings
from selection.distances import DEFAULT_DISTANCE, DISTANCES
from selection.methods import DEFAULT_METHOD, METHODS, SelectionParams
from warehouse.location import Location, is_remote_uri
from warehouse.options import warehouse_option


def _absolute(path: str) -> str:
    """Local paths become absolute (workers run elsewhere); URIs stay as they are."""
    return Location.of(path).uri


@click.command("deploy")
@click.option("--corpus", required=True, metavar="PATH_OR_SPEC",
              help="Corpus spec the scheduled refresh ingests (as for `talkface refresh --corpus`).")
@warehouse_option
@click.option("--cron", default="0 3 * * *", show_default=True, help="Refresh schedule (cron syntax).")
@click.option("--timezone", default="UTC", show_default=True, help="Time zone of the cron schedule.")
@click.option("--cpu-pool", default="talkface-cpu", show_default=True,
              help="Process work pool of the refresh and selection flows (created if missing).")
@click.option("--refresh-pool", help="Work pool of the refresh alone (default: --cpu-pool); with --aligner mfa, "
                                    "the pool served by the Montreal Forced Aligner image.")
@click.option("--gpu-pool", default="talkface-gpu", show_default=True,
              help="Process work pool of the training flow, served by the GPU worker (created if missing).")
@click.option("--aligner", type=click.Choice(["pocketsphinx", "mfa"]), default="pocketsphinx", show_default=True)
@click.option("--report-dir", default="talkface-out/reports", show_default=True,
              help="Where the selection flow writes its HTML report and figure (a folder or s3:// URI).")
@click.option("--runs-dir", default="talkface-out/runs", show_default=True,
              help="Training run folders, one per selection (a folder or s3:// URI: then the GPU worker "
                   "trains in a cache copy and uploads checkpoints and exports).")
@click.option("--nmin", type=click.IntRange(1), default=SelectionParams.nmin, show_default=True)
@click.option("--nmax", type=click.IntRange(1), default=SelectionParams.nmax, show_default=True)
@click.option("--k", type=click.IntRange(1), default=SelectionParams.k, show_default=True)
@click.option("--seed", type=int, default=SelectionParams.seed, show_default=True)
@click.option("--method", type=click.Choice(METHODS), default=DEFAULT_METHOD, show_default=True)
@click.option("--distance", type=click.Choice(DISTANCES), default=DEFAULT_DISTANCE, show_default=True)
@click.option("--train-config", default="paper", show_default=True,
              help="Training config of the triggered runs: paper, tiny or a TOML file.")
@click.option("--train-steps", type=click.IntRange(1), help="Stop training at this step (default: whole schedule).")
@click.option("--train-device", help="torch device of the training runs (default: CUDA when present).")
@click.option("--dask-address", envvar="TALKFACE_DASK_ADDRESS",
              help="Dask scheduler (tcp://host:8786) the refresh tasks run on, through prefect-dask.")
@click.option("--code-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the workers find this repository (default: this checkout; /app in the images).")
@ingest_options
def deploy(corpus: str, warehouse: str, cron: str, timezone: str, cpu_pool: str, refresh_pool: str | None,
           gpu_pool: str, aligner: str,
           report_dir: str, runs_dir: str, nmin: int, nmax: int, k: int, seed: int, method: str, distance: str,
           train_config: str, train_steps: int | None, train_device: str | None, dask_address: str | None,
           code_dir: Path | None, **ingest: Any) -> None:
    """Create (or update) the deployments on the Prefect server at $PREFECT_API_URL:
    the refresh on a cron schedule, the selection after each successful refresh,
    and the training on the GPU pool whenever a new selection is announced.
    The scheduled refresh runs with the options `talkface refresh` takes (from
    --cache-dir on; --download-media for a corpus of YouTube ids or URLs).
    Start workers with `prefect worker start --pool <pool>` (docker-compose.yml does).
    """
    from flows.deployments import CODE_DIR, DeploySettings
    from flows.deployments import deploy as deploy_all

    if not os.environ.get("PREFECT_API_URL"):
        raise click.UsageError("set PREFECT_API_URL to the Prefect server's API (deployments need a server)")
    config, faces = ingest_settings(**ingest)
    settings = DeploySettings(
        corpus=corpus if corpus.startswith("voxceleb:") or is_remote_uri(corpus) else _absolute(corpus),
        warehouse=_absolute(warehouse), report_dir=_absolute(report_dir), runs_dir=_absolute(runs_dir),
        cron=cron, timezone=timezone, cpu_pool=cpu_pool, refresh_pool=refresh_pool, gpu_pool=gpu_pool, aligner=aligner,
        ingest=config, faces=faces,
        selection=SelectionParams(nmin, nmax, k, seed, method, distance), train_config=train_config,
        train_steps=train_steps, train_device=train_device, dask_address=dask_address,
        code_dir=code_dir or CODE_DIR)
    for name, deployment_id in deploy_all(settings).items():
        click.echo(f"deployment {name}: {deployment_id}")
