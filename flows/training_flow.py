"""The training flow: train the generator on a selection, then render a sample video.

Started by the training deployment's trigger when the selection flow announces
a new selection (see :mod:`flows.deployments`), on the GPU work pool; the same
flow runs on a CPU with ``config="tiny"`` for the demo and the tests. Each
selection trains in its own run folder, ``<runs_dir>/<selection_id>``, and a
rerun of the same flow run resumes from that folder's latest checkpoint.

``runs_dir`` may be on object storage (``s3://bucket/runs``): the GPU machine
then trains in a working copy under its cache (``$TALKFACE_CACHE`` or
``~/.cache/talkface``), pulls the latest checkpoint from the run folder before
training, pushes each checkpoint (with the files beside it) as soon as it is
written, and every new file (checkpoints, generator exports, TensorBoard logs,
the sample video) at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE


@dataclass(frozen=True)
class TrainingResult:
    """Where a training run went and how far it got."""

    selection_id: str | None
    run_dir: str
    step: int
    rec_loss: float | None  # L1 reconstruction loss of the last step taken here (None: already trained)
    clips: int
    video: str | None  # the sample video, when a face and speech were given


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def clips_task(warehouse_uri: str, selection_id: str | None, seq_len: int) -> list:
    """The selection's manifest as training clips (local or object-store shards)."""
    from training.data import clips_from_manifest
    from warehouse.manifest import build_manifest
    from warehouse.store import Warehouse

    store = Warehouse(warehouse_uri)
    return clips_from_manifest(build_manifest(store, selection_id), seq_len, source=f"warehouse {store.uri}")


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def pull_task(run: str, work_dir: Path) -> Path:
    """A local working folder for the run ``run``: itself when local, else a cache copy of its latest checkpoint."""
    from training.train import CHECKPOINT_GLOB
    from warehouse.location import Location, copy_file

    location = Location.of(run)
    if location.is_local:
        return location.path
    checkpoints = sorted(n for n in location.file_sizes() if Path(n).match(CHECKPOINT_GLOB) and "/" not in n)
    if checkpoints and not (work_dir / checkpoints[-1]).is_file():
        copy_file(location.join(checkpoints[-1]), Location.of(work_dir / checkpoints[-1]))
    return work_dir


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def push_task(work_dir: Path, run: str) -> list[str]:
    """Copy what the working folder has that the run folder lacks (nothing to do for a local run folder)."""
    from warehouse.location import Location, upload_folder

    location = Location.of(run)
    return [] if location.is_local else upload_folder(work_dir, location)


@task(cache_policy=NO_CACHE)
def train_task(config_name: str, clips: list, run_dir: Path, steps: int | None, device: str | None,
               run: str) -> list[dict]:
    """Train in ``run_dir``; each checkpoint is copied to the run folder ``run`` as soon as it is written
    (where that is object storage), so a GPU machine lost mid-run loses only the steps since."""
    from training.config import load_config
    from training.train import train
    from warehouse.location import Location, upload_folder

    location = Location.of(run)
    push = None if location.is_local else (lambda _checkpoint: upload_folder(run_dir, location))
    return train(load_config(config_name), clips, run_dir, steps=steps, device=device, on_checkpoint=push)


@task(cache_policy=NO_CACHE)
def checkpoint_step_task(run_dir: Path) -> int:
    """The step of the run folder's latest checkpoint (also right when this run had nothing left to do)."""
    from training.train import checkpoint_step

    return checkpoint_step(run_dir)


@task(cache_policy=NO_CACHE)
def generate_task(image: Path, audio: Path, run_dir: Path, out: Path) -> int:
    from training.generate import generate

    return generate(image, audio, run_dir, out)


@flow(name="training")
def training(warehouse_uri: str, runs_dir: str = "talkface-out/runs", selection_id: str | None = None,
             config: str = "paper", steps: int | None = None, device: str | None = None,
             sample_image: str | None = None, sample_audio: str | None = None,
             cache_dir: str | None = None) -> TrainingResult:
    """Train on ``selection_id`` (default: the latest selection), then render a sample video.

    Args:
        warehouse_uri: the warehouse holding the selection and feature shards.
        runs_dir: run folders go under it, one per selection (a folder, or object storage).
        selection_id: which selection; the trigger passes the announced one.
        config: built-in config name (``paper``, ``tiny``) or a TOML file.
        steps: stop at this global step (default: the config's whole schedule).
        device: torch device (default: CUDA when present, else CPU).
        sample_image, sample_audio: a face and speech for a sample video (both or neither).
        cache_dir: the working copy of a run folder on object storage goes under it
            (default ``$TALKFACE_CACHE`` or ``~/.cache/talkface``).
    """
    from training.config import load_config
    from warehouse.location import Location, user_cache_dir
    from warehouse.manifest import latest_selection_id
    from warehouse.store import Warehouse

    chosen = selection_id or latest_selection_id(Warehouse(warehouse_uri))
    run = Location.of(runs_dir).join(chosen or "all-shards")
    # by the run folder's URI: two run folders of one selection never resume from each other's working copy
    run_dir = pull_task(run.uri, Path(cache_dir or user_cache_dir()) / "runs" / run.cache_name)
    clips = clips_task(warehouse_uri, chosen, load_config(config).train.seq_len)
    history = train_task(config, clips, run_dir, steps, device, run.uri)
    step = checkpoint_step_task(run_dir)
    video = None
    if sample_image and sample_audio:
        generate_task(Path(sample_image), Path(sample_audio), run_dir, run_dir / "sample.mp4")
        video = run.join("sample.mp4").uri
    push_task(run_dir, run.uri)
    result = TrainingResult(chosen, run.uri, step, history[-1]["rec"] if history else None, len(clips), video)
    create_markdown_artifact(f"Trained on selection `{chosen}` ({len(clips)} clips) to step {result.step}; "
                             f"run folder `{result.run_dir}`" + (f"; sample video `{video}`" if video else ""),
                             key="training-run")
    return result
