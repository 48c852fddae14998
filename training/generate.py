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
from training.generator import Generator, define_G
from training.train import load_checkpoint

log = logging.getLogger(__name__)

FPS = 25
SAMPLE_RATE = 16000


def load_generator(checkpoint: Path, device: str | torch.device = "cpu") -> tuple[Generator, Config]:
    """The generator of a checkpoint file or of a run folder's latest checkpoint, in eval mode."""
    ckpt = load_checkpoint(checkpoint, map_location=device)
    config = Config.from_dict(ckpt["config"])
    G = define_G(config.model, ckpt["variant"])
    G.load_state_dict(ckpt["model"]["G"])
    log.info("generator %s from step %d of %s", G.variant, ckpt["step"], checkpoint)
    return G.to(device).eval(), config


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


@torch.no_grad()
def generate_frames(G: Generator, face: np.ndarray, mfcc: np.ndarray, chunk: int = 100) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 for ``mfcc`` (T, 12, 35), ``chunk`` frames at a time.

    The GRU state is carried from chunk to chunk, so the result equals one pass
    over the whole sequence while memory stays bounded.
    """
    device = next(G.parameters()).device
    reference = to_model_frames(face[None]).to(device)  # (1, 3, H, W)
    windows = torch.from_numpy(mfcc).to(device)[None, :, None]  # (1, T, 1, 12, 35)
    hidden = None
    out = []
    for start in range(0, windows.shape[1], chunk):
        frames, hidden = G(reference, windows[:, start:start + chunk], hidden)  # (1, t, 3, H, W)
        out.append(((frames[0].movedim(1, -1) + 1) * 127.5).round().clamp(0, 255).byte().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, *face.shape), np.uint8)


def generate(image: Path, audio: Path, checkpoint: Path, out: Path,
             device: str = "cpu", chunk: int = 100) -> int:
    """Write the talking-face video of ``image`` speaking ``audio`` to ``out``.

    Returns:
        The number of video frames written.
    """
    from pipeline.audio import decode_audio
    from pipeline.mfcc import mfcc_per_frame
    from pipeline.video import write_video

    G, config = load_generator(checkpoint, device)
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
