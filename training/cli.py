"""``talkface train``, ``talkface generate`` and ``talkface evaluate``.

torch, OpenCV and mediapipe are imported inside the commands so that
``talkface --help`` stays fast.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from cli_contract import configure_output, verbose_option
from training.config import BUILTIN
from warehouse.options import warehouse_option

log = logging.getLogger(__name__)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def _clips(warehouse: str, manifest: Path | None, seq_len: int):
    """The clips to train on, from the manifest file or the warehouse's latest selection."""
    from training.data import clips_from_manifest, read_manifest

    if manifest is not None:
        return clips_from_manifest(read_manifest(manifest), seq_len, manifest.parent, str(manifest))
    from warehouse.manifest import build_manifest
    from warehouse.store import Warehouse

    store = Warehouse(warehouse)
    return clips_from_manifest(build_manifest(store), seq_len, source=f"warehouse {store.uri}")


@click.command()
@warehouse_option
@click.option("--manifest", type=click.Path(path_type=Path, dir_okay=False),
              help="Parquet manifest (clip_id, n_frames, shard_uri, ...) to train on instead of the "
                   "warehouse's latest selection.")
@click.option("--config", "config_name", default="paper", show_default=True,
              help=f"Built-in config ({', '.join(BUILTIN)}) or a TOML file of overrides "
                   "(see docs/training.md). 'tiny' trains on a CPU in seconds.")
@click.option("--steps", type=click.IntRange(min=1),
              help="Stop at this global step (default: the end of the config's schedule). "
                   "A resumed run counts from its checkpoint's step.")
@click.option("--out", "run_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Run folder: checkpoints (ckpt_<step>.pt), generator exports for inference "
                   "(generator_<step>.safetensors) and TensorBoard logs (tb/). "
                   "If it already holds checkpoints, training resumes from the latest.")
@click.option("--device", default="auto", show_default=True,
              help="auto (cuda:LOCAL_RANK when CUDA is present, else cpu), cpu, cuda (GPU LOCAL_RANK under "
                   "torchrun, else 0) or cuda:N.")
def train(warehouse: str, manifest: Path | None, config_name: str, steps: int | None,
          run_dir: Path, device: str) -> None:
    """Train the recurrent adversarial talking-face generator.

    Follows the config's incremental schedule (CAE; + perceptual + adversarial;
    recurrent model fine-tuned from the CAE). Start under torchrun for several
    GPUs (or CPU processes): torchrun --nproc-per-node N -m talkface_cli train ...
    """
    _logging()
    from training.config import load_config
    from training.device import resolve_device
    from training.train import checkpoint_step
    from training.train import train as run_training

    try:
        resolve_device(device)  # before any data is read
        config = load_config(config_name)
        clips = _clips(warehouse, manifest, config.train.seq_len)
        history = run_training(config, clips, run_dir, steps=steps, device=device)
    except (ValueError, OSError) as exc:  # bad input or a full disk; each message names its file
        raise click.ClickException(str(exc)) from exc
    if history:
        last = history[-1]
        click.echo(f"trained to step {last['step']}: rec {last['rec']:.4f}, run folder {run_dir}")
    else:
        click.echo(f"nothing to do: {run_dir} is already at step {checkpoint_step(run_dir)}")


@click.command()
@click.option("--image", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Face image (any format OpenCV reads); its centred square is used.")
@click.option("--audio", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Speech: any audio or video file with an audio stream (decoded at 16 kHz).")
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path),
              help="A generator export (generator_<step>.safetensors), a training checkpoint (ckpt_<step>.pt), "
                   "or a run folder (its newest of either).")
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Output mp4: H.264 at 25 fps, one frame per 40 ms of audio, AAC audio.")
@click.option("--device", default="auto", show_default=True,
              help="auto (CUDA when present, else cpu), cpu, cuda or cuda:N.")
@verbose_option
def generate(image: Path, audio: Path, checkpoint: Path, out: Path, device: str, verbose: int) -> None:
    """Make a talking-face video of IMAGE speaking AUDIO with a trained generator."""
    configure_output(verbose)
    from training.generate import generate as run_generate

    try:
        n = run_generate(image, audio, checkpoint, out, device=device)
    except (ValueError, OSError) as exc:  # bad input or a full disk; each message names its file
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {out}: {n} frames at 25 fps")


def _read_video(path: Path):
    """All frames of a video on the 25 fps grid, (T, H, W, 3) uint8."""
    import numpy as np

    from pipeline.video import probe_video, read_frames

    return np.stack([frame for _, frame in read_frames(probe_video(path))])


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """One line naming ``path`` when writing it fails: a file where its folder should be, a full
    disk, or an image format matplotlib lacks (these are the user's paths, not the video's)."""
    try:
        yield
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{path}: cannot write ({exc})") from exc


@click.command()
@click.option("--video", required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Generated video to score.")
@click.option("--reference", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Ground-truth video of the same frames: enables PSNR, SSIM and mouth landmark distance. "
                   "Its frames are resized to the generated size when they differ.")
@click.option("--intensity-map", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the movement intensity map here as a PNG heat map.")
@click.option("--landmarks/--no-landmarks", default=True, show_default=True,
              help="Compute the mouth landmark distance (mediapipe face mesh; slowest metric).")
@click.option("--json", "json_out", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the scores as JSON here.")
@verbose_option
def evaluate(video: Path, reference: Path | None, intensity_map: Path | None, landmarks: bool,
             json_out: Path | None, verbose: int) -> None:
    """Score a video: movement intensity (optical flow u^2 + v^2 between consecutive frames,
    averaged), and with --reference also PSNR, SSIM and mouth landmark distance."""
    configure_output(verbose)
    import cv2
    import numpy as np

    from training import metrics

    try:
        frames = _read_video(video)
        truth = _read_video(reference) if reference is not None else None
    except ValueError as exc:  # pipeline.video's errors name the file
        raise click.ClickException(str(exc)) from exc
    if truth is not None and truth.shape[1:3] != frames.shape[1:3]:
        size = (frames.shape[2], frames.shape[1])
        truth = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in truth])
    try:
        scores: dict[str, float | int] = {"frames": len(frames)}
        scores["movement_intensity"], intensity = metrics.movement_intensity(frames)
        if intensity_map is not None:
            with _writing(intensity_map):
                metrics.save_intensity_map(intensity, intensity_map, title=video.name)
        if truth is not None:
            scores["psnr"] = metrics.psnr(frames, truth)
            scores["ssim"] = metrics.ssim(frames, truth)
            if landmarks:
                lmd = metrics.mouth_landmark_distance(frames, truth)
                scores.update(mouth_landmark_distance=lmd.distance, landmark_frames=lmd.frames_used)
    except ValueError as exc:
        raise click.ClickException(f"{video}: {exc}") from exc
    for key, value in scores.items():
        click.echo(f"{key}: {value:.6g}" if isinstance(value, float) else f"{key}: {value}")
    if json_out is not None:
        with _writing(json_out):
            json_out.parent.mkdir(parents=True, exist_ok=True)
            # JSON has no infinity: identical frames give PSNR inf, written as null.
            json_out.write_text(json.dumps({k: None if isinstance(v, float) and math.isinf(v) else v
                                            for k, v in scores.items()}, indent=2))
