"""Evaluation metrics and `talkface evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fixtures.training_shards import synthetic_clip
from pipeline.video import write_video
from talkface_cli import cli
from training import metrics

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def _textured(size: int = 112, seed: int = 0) -> np.ndarray:
    """A smooth random texture that optical flow can track."""
    import cv2

    noise = np.random.default_rng(seed).integers(0, 255, (size // 4, size // 4, 3)).astype(np.uint8)
    return cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)


def test_identical_frames_have_exactly_zero_movement_intensity():
    score, intensity = metrics.movement_intensity(np.repeat(_textured()[None], 5, axis=0))
    assert score == 0.0 and not intensity.any()


def test_static_video_has_zero_movement_intensity(tmp_path):
    video = tmp_path / "static.mp4"
    write_video(video, np.repeat(_textured()[None], 10, axis=0))
    out = tmp_path / "scores.json"
    heat = tmp_path / "map.png"
    result = CliRunner().invoke(cli, ["evaluate", "--video", str(video), "--intensity-map", str(heat),
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    assert scores["frames"] == 10 and scores["movement_intensity"] == 0.0
    assert heat.stat().st_size > 1000 and heat.read_bytes()[:4] == b"\x89PNG"


def test_moving_texture_has_movement_where_it_moves():
    base = _textured(seed=1)
    frames = np.stack([np.roll(base, 2 * t, axis=1) for t in range(6)])  # 2 px per frame to the right
    score, intensity = metrics.movement_intensity(frames)
    assert intensity.shape == (112, 112)
    centre = intensity[30:80, 30:80].mean()
    assert 2.0 < centre < 6.0  # u^2 + v^2 = 4 for a 2 px shift
    assert score > 1.0


def test_movement_intensity_needs_two_frames():
    with pytest.raises(ValueError, match="at least two frames"):
        metrics.movement_intensity(np.zeros((1, 8, 8, 3), np.uint8))


def test_psnr_and_ssim_values():
    frames, _ = synthetic_clip(4, seed=0)
    brighter = np.clip(frames.astype(int) + 5, 0, 255).astype(np.uint8)
    exact = 10 * np.log10(255 ** 2 / np.mean((brighter.astype(float) - frames) ** 2, axis=(1, 2, 3)))
    assert metrics.psnr(brighter, frames) == pytest.approx(exact.mean())
    assert metrics.psnr(frames, frames) == float("inf")
    one_identical = np.concatenate([frames[:1], brighter[1:]])  # inf for that frame alone
    best = 10 * np.log10(255 ** 2 * frames[0].size)  # one value of the frame off by one
    assert metrics.psnr(one_identical, frames) == pytest.approx(np.mean([best, *exact[1:]]))
    assert metrics.ssim(frames, frames) == pytest.approx(1.0)
    noisy = np.clip(frames + np.random.default_rng(0).normal(0, 25, frames.shape), 0, 255).astype(np.uint8)
    assert 0.0 < metrics.ssim(noisy, frames) < metrics.ssim(brighter, frames) < 1.0
    with pytest.raises(ValueError, match="frame shapes differ"):
        metrics.psnr(frames, frames[:, :50])


def test_ssim_matches_scikit_image_over_windows_inside_the_frame():
    # Reference: skimage.metrics.structural_similarity(g, r, channel_axis=-1, gaussian_weights=True,
    # sigma=1.5, use_sample_covariance=False, data_range=255) per frame, averaged (scikit-image 0.26).
    # Windows over the reflected border used to count too: 0.2270 here.
    frames, _ = synthetic_clip(4, seed=0)
    noisy = np.clip(frames + np.random.default_rng(0).normal(0, 25, frames.shape), 0, 255).astype(np.uint8)
    assert metrics.ssim(noisy, frames) == pytest.approx(0.25371755299348603, abs=1e-9)
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(frames[:, :10, :10], frames[:, :10, :10])


def test_evaluate_names_an_unreadable_video(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    result = CliRunner().invoke(cli, ["evaluate", "--video", str(bad)])
    assert result.exit_code == 1 and "broken.mp4" in result.output


def test_evaluate_names_an_output_it_cannot_write(tmp_path):
    video = tmp_path / "static.mp4"
    write_video(video, np.repeat(_textured()[None], 3, axis=0))
    runner = CliRunner()
    # an image format matplotlib lacks: the message used to name the video, not the map
    result = runner.invoke(cli, ["evaluate", "--video", str(video), "--intensity-map", str(tmp_path / "map.txt")])
    assert result.exit_code == 1 and "map.txt: cannot write" in result.output
    assert "static.mp4" not in result.output
    # a file where the JSON's folder should be: the message named only the file in the way
    a_file = tmp_path / "notes.txt"
    a_file.write_text("a file, not a folder")
    result = runner.invoke(cli, ["evaluate", "--video", str(video), "--json", str(a_file / "scores.json")])
    assert result.exit_code == 1 and "notes.txt/scores.json: cannot write" in result.output


@pytest.mark.integration
@pytest.mark.skipif(not MEDIA.is_dir(), reason="shared media absent")
def test_mouth_landmark_distance_on_a_real_face(tmp_path):
    import av
    import cv2

    with av.open(str(MEDIA / "WDA_AlexandriaOcasioCortez_000.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(8), container.decode(video=0))]
    crops = np.stack([cv2.resize(f, (112, 112), interpolation=cv2.INTER_AREA) for f in frames])
    same = metrics.mouth_landmark_distance(crops, crops)
    assert same.distance == 0.0 and same.frames_used == 8
    shifted = np.stack([np.roll(f, 3, axis=0) for f in crops])  # mouth 3 px lower
    moved = metrics.mouth_landmark_distance(shifted, crops)
    assert 1.5 < moved.distance < 4.5 and moved.frames_used == 8
    # through the command, with ground truth: PSNR / SSIM / landmark distance of a video against itself
    video = tmp_path / "real.mp4"
    write_video(video, crops)
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(cli, ["evaluate", "--video", str(video), "--reference", str(video),
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    assert scores["psnr"] is None and scores["ssim"] == pytest.approx(1.0)  # identical: PSNR inf
    assert scores["mouth_landmark_distance"] == 0.0 and scores["movement_intensity"] > 0
