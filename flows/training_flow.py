"""The training flow: train the generator on a selection, then render a sample video.

Started by the training deployment's trigger when the selection flow announces
a new selection (see :mod:`flows.deployments`), on the GPU work pool; the same
flow runs on a CPU with ``config="tiny"`` for the demo and the tests. Each
selection trains in its own run folder, ``<runs_dir>/<selection_id>``, and a
rerun of the same flow run resumes from that folder's latest checkpoint.
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


@task(cache_policy=NO_CACHE)
def train_task(config_name: str, clips: list, run_dir: Path, steps: int | None, device: str | None) -> list[dict]:
    from training.config import load_config
    from training.train import train

    return train(load_config(config_name), clips, run_dir, steps=steps, device=device)


@task(cache_policy=NO_CACHE)
def checkpoint_step_task(run_dir: Path) -> int:
    """The step of the run folder's latest checkpoint (also right when this run had nothing left to do)."""
    from training.train import load_checkpoint

    return int(load_checkpoint(run_dir)["step"])


@task(cache_policy=NO_CACHE)
def generate_task(image: Path, audio: Path, run_dir: Path, out: Path) -> int:
    from training.generate import generate

    return generate(image, audio, run_dir, out)


@flow(name="training")
def training(warehouse_uri: str, runs_dir: str = "talkface-out/runs", selection_id: str | None = None,
             config: str = "paper", steps: int | None = None, device: str | None = None,
             sample_image: str | None = None, sample_audio: str | None = None) -> TrainingResult:
    """Train on ``selection_id`` (default: the latest selection), then render a sample video.

    Args:
        warehouse_uri: the warehouse holding the selection and feature shards.
        runs_dir: run folders go under it, one per selection.
        selection_id: which selection; the trigger passes the announced one.
        config: built-in config name (``paper``, ``tiny``) or a TOML file.
        steps: stop at this global step (default: the config's whole schedule).
        device: torch device (default: CUDA when present, else CPU).
        sample_image, sample_audio: a face and speech for a sample video (both or neither).
    """
    from training.config import load_config
    from warehouse.selections import latest_selection_id
    from warehouse.store import Warehouse

    chosen = selection_id or latest_selection_id(Warehouse(warehouse_uri))
    run_dir = Path(runs_dir) / (chosen or "all-shards")
    clips = clips_task(warehouse_uri, chosen, load_config(config).train.seq_len)
    history = train_task(config, clips, run_dir, steps, device)
    step = checkpoint_step_task(run_dir)
    video = None
    if sample_image and sample_audio:
        video = run_dir / "sample.mp4"
        generate_task(Path(sample_image), Path(sample_audio), run_dir, video)
    result = TrainingResult(chosen, str(run_dir), step, history[-1]["rec"] if history else None, len(clips),
                            str(video) if video else None)
    create_markdown_artifact(f"Trained on selection `{chosen}` ({len(clips)} clips) to step {result.step}; "
                             f"run folder `{run_dir}`" + (f"; sample video `{video}`" if video else ""),
                             key="training-run")
    return result
