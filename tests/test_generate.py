"""`talkface generate`: a valid mp4 at 25 fps, one frame per 40 ms of audio, audio muxed in;
from a run folder, a training checkpoint or the generator export, with the same frames.

The tests that take the ``device`` fixture run on ``pytest --device`` (cpu by default).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from scipy.io import wavfile

from fixtures.training_shards import synthetic_clip, write_shards
from pipeline.video import write_video
from talkface_cli import cli
from training.config import tiny_config
from training.data import clips_from_manifest, read_manifest
from training.export import export_name
from training.generate import frame_count, generate_frames, latest_generator, load_face, load_generator
from training.train import train

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, device) -> Path:
    folder = tmp_path_factory.mktemp("gen")
    manifest = write_shards(folder, n_clips=2, n_frames=8)
    train(tiny_config(), clips_from_manifest(read_manifest(manifest), 4, folder), folder / "run", steps=2,
          device=device)
    return folder / "run"


@pytest.fixture(scope="module")
def face(tmp_path_factory) -> Path:
    import cv2

    path = tmp_path_factory.mktemp("face") / "face.png"
    frames, _ = synthetic_clip(1, seed=5)
    wide = np.pad(frames[0], ((0, 0), (40, 40), (0, 0)))  # 112x192: the centre square is the face
    cv2.imwrite(str(path), cv2.cvtColor(wide, cv2.COLOR_RGB2BGR))
    return path


def _speech_like(path: Path, seconds: float, rate: int = 16000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    wavfile.write(path, rate, wave.astype(np.float32))


def _probe(path: Path) -> tuple[int, Fraction, int, float]:
    """Decoded video frame count, frame rate, audio stream count and audio seconds."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        rate = video.average_rate
        n_audio = len(container.streams.audio)
        n = sum(1 for _ in container.decode(video))
    seconds = 0.0
    if n_audio:
        with av.open(str(path)) as container:
            seconds = sum(f.samples for f in container.decode(audio=0)) / container.streams.audio[0].rate
    return n, rate, n_audio, seconds


def test_frame_count_is_one_per_40_ms():
    assert frame_count(16000) == 25 and frame_count(16000 + 639) == 25 and frame_count(16000 + 640) == 26
    assert frame_count(639) == 0


def test_load_face_takes_the_centred_square(face):
    crop = load_face(face, 112)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    assert np.abs(crop.astype(int) - synthetic_clip(1, seed=5)[0][0]).mean() < 2  # the padding is cut away


@pytest.mark.parametrize("source", ["run folder", "export"])
def test_generate_writes_a_valid_mp4(run_dir, face, tmp_path, device, source):
    speech = tmp_path / "speech.wav"
    _speech_like(speech, 1.3)
    out = tmp_path / "out.mp4"
    checkpoint = run_dir if source == "run folder" else run_dir / export_name(2)
    result = CliRunner().invoke(cli, ["generate", "--image", str(face), "--audio", str(speech),
                                      "--checkpoint", str(checkpoint), "--out", str(out), "--device", device])
    assert result.exit_code == 0, result.output
    n, rate, n_audio, seconds = _probe(out)
    assert n == 32  # 1.3 s -> 32 whole 40 ms frames
    assert rate == 25 and n_audio == 1
    assert seconds == pytest.approx(n / 25, abs=0.07)  # audio trimmed to the frames (AAC pads a little)


def test_export_and_checkpoint_give_the_same_frames(run_dir, face, device):
    ckpt, export = run_dir / "ckpt_00000002.pt", run_dir / export_name(2)
    assert latest_generator(run_dir) == export  # a run folder: the export, at a fraction of the size
    sizes = {path.name: path.stat().st_size for path in (ckpt, export)}
    print(f"tiny config at step 2: {sizes}")
    assert sizes[export.name] < sizes[ckpt.name] / 3  # no discriminator, no optimiser moments
    mfcc = np.random.default_rng(0).normal(size=(7, 12, 35)).astype(np.float32)
    crop = load_face(face, 112)
    frames = [generate_frames(load_generator(path, device)[0], crop, mfcc, chunk=3) for path in (ckpt, export)]
    assert frames[0].shape == (7, 112, 112, 3)
    np.testing.assert_array_equal(frames[0], frames[1])


@pytest.mark.integration
@pytest.mark.skipif(not MEDIA.is_dir(), reason="shared media absent")
def test_generate_from_real_face_and_speech(run_dir, tmp_path):
    import cv2

    from pipeline.audio import decode_audio

    clip = MEDIA / "WDA_AlexandriaOcasioCortez_000.mp4"
    with av.open(str(clip)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="bgr24")
    image = tmp_path / "real_face.jpg"
    cv2.imwrite(str(image), first)
    out = tmp_path / "real.mp4"
    result = CliRunner().invoke(cli, ["generate", "--image", str(image), "--audio", str(clip),
                                      "--checkpoint", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    n, rate, n_audio, _ = _probe(out)
    assert n == frame_count(len(decode_audio(clip))) and n > 150 and rate == 25 and n_audio == 1


def test_bad_inputs_name_the_file(run_dir, face, tmp_path):
    speech = tmp_path / "speech.wav"
    _speech_like(speech, 0.5)
    silent_video = tmp_path / "no_audio.mp4"
    write_video(silent_video, np.zeros((5, 112, 112, 3), np.uint8))
    not_image = tmp_path / "not_image.png"
    not_image.write_text("no picture here")
    runner = CliRunner()

    def run(image: Path, audio: Path, checkpoint: Path) -> str:
        result = runner.invoke(cli, ["generate", "--image", str(image), "--audio", str(audio),
                                     "--checkpoint", str(checkpoint), "--out", str(tmp_path / "x.mp4")])
        assert result.exit_code == 1, result.output
        return result.output

    assert "not_image.png: not a readable image" in run(not_image, speech, run_dir)
    assert "no_audio.mp4: no audio stream" in run(face, silent_video, run_dir)
    assert "no checkpoint at" in run(face, speech, tmp_path / "empty_run")


def test_an_output_that_cannot_be_written_is_named(run_dir, face, tmp_path):
    """PyAV's errors name no file: '[Errno 2] No such file or directory', 'Could not determine output format'."""
    speech = tmp_path / "speech.wav"
    _speech_like(speech, 0.2)
    runner = CliRunner()
    for out, message in ((tmp_path / "video.txt", "cannot write a video in this format (Could not determine output "
                                                  "format)"),
                         (tmp_path / ("x" * 300 + ".mp4"), "could not write video: File name too long")):
        result = runner.invoke(cli, ["generate", "--image", str(face), "--audio", str(speech),
                                     "--checkpoint", str(run_dir), "--out", str(out)])
        assert result.exit_code == 1, result.output
        assert f"Error: {out}: {message}\n" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speech.wav"]


@pytest.mark.parametrize("name", ["talking", "talking.webm"])
def test_an_output_that_cannot_hold_the_video_is_named(run_dir, face, tmp_path, name):
    # PyAV said only "Could not determine output format" (no extension) or "'webm' format does not
    # support 'libx264' codec", naming no file, and only after every frame was generated.
    speech = tmp_path / "speech.wav"
    _speech_like(speech, 0.5)
    out = tmp_path / "videos" / name
    result = CliRunner().invoke(cli, ["generate", "--image", str(face), "--audio", str(speech),
                                      "--checkpoint", str(run_dir), "--out", str(out)])
    assert result.exit_code == 1
    assert f"{out}: cannot write a video in this format" in result.output
    assert not out.exists()
