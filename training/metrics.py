"""Evaluation metrics of generated videos.

- Movement intensity (the paper's smoothness measure): dense optical flow
  (OpenCV Farneback) between consecutive frames, u^2 + v^2 per pixel, averaged
  over the sequence into an intensity map; its mean is the scalar score.
- PSNR and SSIM of generated against ground-truth frames.
- Mouth landmark distance: mean distance between the 40 lip landmarks of the
  mediapipe face mesh in generated and ground-truth frames, in pixels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Farneback parameters: pyramid scale, levels, window, iterations, poly_n, poly_sigma, flags.
FARNEBACK = (0.5, 3, 15, 3, 5, 1.2, 0)
SSIM_K1, SSIM_K2, SSIM_SIGMA = 0.01, 0.03, 1.5
SSIM_WINDOW = 11  # Gaussian window taps: sigma 1.5 truncated at 3.5 sigma, as Wang et al. and scikit-image
LANDMARK_UPSCALE = 224  # the face mesh finds faces in 112 px crops more reliably at this size


def _gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def movement_intensity(frames: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean movement intensity and the (H, W) intensity map of (T, H, W, 3) uint8 frames.

    Raises:
        ValueError: fewer than two frames.
    """
    import cv2

    if len(frames) < 2:
        raise ValueError(f"movement intensity needs at least two frames, got {len(frames)}")
    total = np.zeros(frames.shape[1:3], np.float64)
    prev = _gray(frames[0])
    for frame in frames[1:]:
        cur = _gray(frame)
        # An unchanged frame has no motion; Farneback would still report ~1e-5 px of solver noise.
        if not np.array_equal(prev, cur):
            flow = cv2.calcOpticalFlowFarneback(prev, cur, None, *FARNEBACK)  # (H, W, 2): u, v
            total += (flow.astype(np.float64) ** 2).sum(axis=-1)
        prev = cur
    intensity = total / (len(frames) - 1)
    return float(intensity.mean()), intensity.astype(np.float32)


def save_intensity_map(intensity: np.ndarray, path: Path, title: str = "movement intensity") -> None:
    """The intensity map as a PNG heat map with a colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3.4))
    shown = ax.imshow(intensity, cmap="inferno", vmin=0.0, vmax=max(float(intensity.max()), 1e-6))
    ax.set_title(title)
    ax.axis("off")
    fig.colorbar(shown, ax=ax, label="u² + v² (px²)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def _paired(generated: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if generated.shape[1:] != reference.shape[1:]:
        raise ValueError(f"frame shapes differ: generated {generated.shape[1:]}, reference {reference.shape[1:]}")
    n = min(len(generated), len(reference))
    if n == 0:
        raise ValueError("no frames to compare")
    if len(generated) != len(reference):
        log.warning("comparing the first %d frames (generated %d, reference %d)", n, len(generated), len(reference))
    return generated[:n], reference[:n]


def psnr(generated: np.ndarray, reference: np.ndarray) -> float:
    """Mean per-frame PSNR in dB of uint8 frames (inf when every frame is identical).

    An identical frame counts as differing by the smallest error uint8 frames can have (one
    value off by one): its own PSNR, inf, would make the mean inf whatever the other frames.
    """
    generated, reference = _paired(generated, reference)
    # frame by frame: the whole video in float64 would take 8 times its own memory (GBs for a minute)
    mse = np.array([np.mean((a.astype(np.float64) - b) ** 2) for a, b in zip(generated, reference, strict=True)])
    if not mse.any():
        return float("inf")
    return float(np.mean(10 * np.log10(255.0 ** 2 / np.maximum(mse, 1.0 / generated[0].size))))


def ssim(generated: np.ndarray, reference: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03) over frames and channels.

    Only windows wholly inside the frame count, as in Wang et al.'s reference code and
    scikit-image: windows over the padded border would add made-up pixels to the score.

    Raises:
        ValueError: frames smaller than the 11x11 window.
    """
    import cv2

    generated, reference = _paired(generated, reference)
    if min(generated.shape[1:3]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} px, got {generated.shape[1:3]}")
    c1, c2 = (SSIM_K1 * 255) ** 2, (SSIM_K2 * 255) ** 2
    inner = slice(SSIM_WINDOW // 2, -(SSIM_WINDOW // 2))  # centres of windows inside the frame

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    scores = []
    for a, b in zip(generated, reference, strict=True):  # frame by frame in float64, as psnr
        a, b = a.astype(np.float64), b.astype(np.float64)
        mu_a, mu_b = blur(a), blur(b)
        var_a = blur(a * a) - mu_a ** 2
        var_b = blur(b * b) - mu_b ** 2
        cov = blur(a * b) - mu_a * mu_b
        s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
        scores.append(s[inner, inner].mean())
    return float(np.mean(scores))


def lip_indices() -> list[int]:
    """The 40 lip landmarks of the mediapipe face mesh (without importing mediapipe's top level)."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_LIPS

    return sorted({i for edge in FACEMESH_LIPS for i in edge})


def mouth_landmarks(frames: np.ndarray) -> list[np.ndarray | None]:
    """(40, 2) lip landmarks in frame pixels for each frame, None where no face is found."""
    import cv2

    from pipeline.cores import one_core
    from pipeline.faces import FaceTracker

    lips = lip_indices()
    out: list[np.ndarray | None] = []
    with one_core(), FaceTracker() as tracker:  # the mesh's hand-offs on one core (pipeline/cores.py)
        for frame in frames:
            scale = LANDMARK_UPSCALE / frame.shape[1]
            big = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            seen = tracker.observe(big)
            out.append(None if seen.landmarks is None else seen.landmarks[lips, :2] / scale)
    return out


@dataclass(frozen=True)
class LandmarkDistance:
    """Mouth landmark distance and how many frame pairs it rests on."""

    distance: float  # mean pixel distance of matching lip landmarks
    frames_used: int  # pairs where both faces were found
    frames_total: int


def mouth_landmark_distance(generated: np.ndarray, reference: np.ndarray) -> LandmarkDistance:
    """Mean distance between lip landmarks of generated and reference frames.

    Raises:
        ValueError: no frame pair in which the face mesh finds both faces.
    """
    generated, reference = _paired(generated, reference)
    pairs = [(g, r) for g, r in zip(mouth_landmarks(generated), mouth_landmarks(reference))
             if g is not None and r is not None]
    if not pairs:
        raise ValueError("mouth landmark distance: no frame where a face is found in both videos")
    distance = np.mean([np.linalg.norm(g - r, axis=1).mean() for g, r in pairs])
    return LandmarkDistance(float(distance), len(pairs), len(generated))
