"""Inference: one face image and a speech file to an mp4 at 25 fps with the speech muxed in.

The face is centre-cropped to a square and resized to the model's input size
(no face detection: give a roughly centred face, like the training crops).
Audio is decoded at 16 kHz by ``pipeline.audio.decode_audio`` and cut into one
12x35 MFCC window per 40 ms video frame by ``pipeline.mfcc.mfcc_per_frame``,
exactly as the training features were made.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from training.config import Config
from training.data import to_model_frames
from training.device import resolve_device
from training.export import EXPORT_GLOB, read_export
from training.generator import Generator, define_G
from training.train import CHECKPOINT_GLOB, load_checkpoint

log = logging.getLogger(__name__)

FPS = 25
SAMPLE_RATE = 16000


def _step(path: Path) -> int:
    """The step in ``ckpt_<step>.pt`` or ``generator_<step>.safetensors`` (-1 for another name)."""
    digits = path.stem.rpartition("_")[2]
    return int(digits) if digits.isdigit() else -1


def latest_generator(path: Path) -> Path:
    """``path`` itself if a file, else the run folder's newest generator export or checkpoint.

    At the same step the export wins: it is a fraction of the checkpoint's size.
    Run folders written before exports existed hold checkpoints only.

    Raises:
        FileNotFoundError: naming the path, when it holds neither.
    """
    if path.is_file():
        return path
    found = [*path.glob(CHECKPOINT_GLOB), *path.glob(EXPORT_GLOB)] if path.is_dir() else []
    if not found:
        raise FileNotFoundError(f"no checkpoint at {path} (expected a .pt checkpoint, a {EXPORT_GLOB} "
                                f"generator export or a run folder holding them)")
    return max(found, key=lambda p: (_step(p), p.suffix == ".safetensors", p.name))


def load_generator(path: Path, device: str | torch.device = "cpu") -> tuple[Generator, Config]:
    """The generator, in eval mode on ``device``, of a generator export, a training checkpoint,
    or a run folder's newest of either.

    Raises:
        FileNotFoundError: nothing to load at ``path``.
        ValueError: one line naming the file, when it is damaged or not a generator.
    """
    path = latest_generator(path)
    if path.suffix == ".safetensors":
        weights, config, variant, step = read_export(path)
    else:
        ckpt = load_checkpoint(path)
        weights, config = ckpt["model"]["G"], Config.from_dict(ckpt["config"])
        variant, step = ckpt["variant"], ckpt["step"]
    G = _generator(path, config, variant, weights)
    log.info("generator %s from step %d of %s", G.variant, step, path)
    return G.to(device).eval(), config


def _generator(path: Path, config: Config, variant: str, weights: dict[str, torch.Tensor]) -> Generator:
    """The generator that ``config`` and ``variant`` describe, holding ``weights``.

    The export's CRC-32 covers its weights, not the config and variant in its header,
    so a damaged header can describe networks the weights do not fit.

    Raises:
        ValueError: one line naming the file, when they do not fit.
    """
    try:
        G = define_G(config.model, variant)
        G.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError) as exc:
        reason = " ".join(str(exc).split("\n")[:2])  # load_state_dict lists every misfit tensor: the first
        raise ValueError(f"{path}: not a usable generator (its weights do not fit the {variant!r} "
                         f"generator of its config: {' '.join(reason.split())})") from exc
    return G


def load_face(path: Path, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB: the image's centred square, resized.

    Raises:
        ValueError: naming the file, when it holds no readable picture.
    """
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
    if bgr is None:
        raise ValueError(f"{path}: not a readable image")
    h, w = bgr.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = bgr[top:top + side, left:left + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.cvtColor(cv2.resize(square, (size, size), interpolation=interpolation), cv2.COLOR_BGR2RGB)


def frame_count(n_samples: int, sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """One video frame per whole 1/fps seconds of audio (40 ms at 25 fps)."""
    return (n_samples * fps) // sample_rate


def check_output(path: Path) -> None:
    """Fail before any frame is generated when ``path`` cannot hold the video, naming it.

    PyAV picks the container by the file's extension only when the video is
    written, after every frame; opening it and adding the streams writes nothing
    (the header goes out with the first packet).

    Raises:
        ValueError: naming the file, for an extension without a container or one without H.264 or AAC.
    """
    from pipeline.video import open_output

    container, _, _ = open_output(path, (2, 2, 3), FPS, SAMPLE_RATE)
    container.close()


@torch.no_grad()
def generate_frames(G: Generator, face: np.ndarray, mfcc: np.ndarray, chunk: int = 100) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 for ``mfcc`` (T, 12, 35), ``chunk`` frames at a time.

    The GRU state is carried from chunk to chunk, so the result equals one pass
    over the whole sequence while memory stays bounded.
    """
    device = next(G.parameters()).device
    reference = to_model_frames(torch.from_numpy(face[None]).to(device))  # (1, 3, H, W)
    windows = torch.from_numpy(mfcc).to(device)[None, :, None]  # (1, T, 1, 12, 35)
    hidden = None
    out = []
    for start in range(0, windows.shape[1], chunk):
        frames, hidden = G(reference, windows[:, start:start + chunk], hidden)  # (1, t, 3, H, W)
        out.append(((frames[0].movedim(1, -1) + 1) * 127.5).round().clamp(0, 255).byte().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, *face.shape), np.uint8)


def generate(image: Path, audio: Path, checkpoint: Path, out: Path,
             device: str | None = "auto", chunk: int = 100) -> int:
    """Write the talking-face video of ``image`` speaking ``audio`` to ``out``.

    Args:
        checkpoint: a generator export, a training checkpoint, or a run folder (its newest).
        device: ``auto`` (None), ``cpu``, ``cuda`` or ``cuda:N``.

    Returns:
        The number of video frames written.

    Raises:
        ValueError: one line naming the file or device that is unusable.
    """
    from pipeline.audio import decode_audio
    from pipeline.mfcc import mfcc_per_frame
    from pipeline.video import write_video

    check_output(out)
    G, config = load_generator(checkpoint, resolve_device(device))
    face = load_face(image, config.model.image_size)
    samples = decode_audio(audio, sample_rate=SAMPLE_RATE)
    n = frame_count(len(samples))
    if n == 0:
        raise ValueError(f"{audio}: shorter than one {1000 // FPS} ms video frame")
    mfcc = mfcc_per_frame(samples, n, fps=float(FPS), sample_rate=SAMPLE_RATE)  # (n, 12, 35)
    frames = generate_frames(G, face, mfcc, chunk)
    # The video covers whole frames only; trim the audio to the same length.
    write_video(out, frames, FPS, samples[: n * SAMPLE_RATE // FPS], SAMPLE_RATE)
    log.info("wrote %s: %d frames, %.2f s", out, n, n / FPS)
    return n
