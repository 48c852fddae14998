"""A small demo corpus a fresh machine builds offline from media that packages ship.

Speech: the LibriVox read-speech clips with transcripts of Debian's
``pocketsphinx-testdata`` package (real speech, BSD). Face: the Grace Hopper
portrait that matplotlib ships as sample data (a real face photo). The photo is
animated into a 25 fps talking head: a slow head sway, and the jaw opened in
step with the loudness of the speech, so that the mouth moves with the audio
as in a real clip. Each clip is written as ``<id>.mp4`` (H.264 + AAC) with a
``<id>.en.vtt`` sidecar holding its transcript as one cue: exactly the media
folder layout that :func:`pipeline.corpus.load_corpus` reads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
"""Where Debian's pocketsphinx-testdata installs its LibriVox clips."""

FPS = 25
SAMPLE_RATE = 16000
FRAME_SIZE = 256  # square video frames, face about half the height

# Face mesh landmarks: inner upper lip, inner lower lip, chin.
_UPPER_LIP, _LOWER_LIP, _CHIN = 13, 14, 152


class DemoCorpusError(RuntimeError):
    """The packaged media the demo corpus is made from is missing."""


@dataclass(frozen=True)
class Utterance:
    """One packaged speech clip and its transcript."""

    utt_id: str
    wav: Path
    text: str


def librivox_utterances(root: Path = LIBRIVOX) -> list[Utterance]:
    """The packaged LibriVox clips with their transcripts, by id.

    Raises:
        DemoCorpusError: pocketsphinx-testdata is not installed.
    """
    listing = root / "transcription"
    if not listing.is_file():
        raise DemoCorpusError(f"{listing} not found: install the Debian package pocketsphinx-testdata "
                              "(apt-get install -y pocketsphinx-testdata)")
    out = []
    for line in listing.read_text().splitlines():
        text, utt = line.rsplit("(", 1)
        utt = utt.strip(" )")
        words = [w for w in text.split() if w not in ("<s>", "</s>")]
        if (root / f"{utt}.wav").is_file():
            out.append(Utterance(utt, root / f"{utt}.wav", " ".join(words)))
    return sorted(out, key=lambda u: u.utt_id)


def face_image() -> np.ndarray:
    """matplotlib's Grace Hopper portrait, (H, W, 3) uint8 RGB."""
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.asarray(Image.open(handle).convert("RGB"))


def square_face(image: np.ndarray, size: int = FRAME_SIZE) -> np.ndarray:
    """The top-centred square of a portrait (where the face is), resized to ``size``."""
    import cv2

    h, w = image.shape[:2]
    side = min(h, w)
    x0 = (w - side) // 2
    return cv2.resize(image[:side, x0:x0 + side], (size, size), interpolation=cv2.INTER_AREA)


def loudness_per_frame(samples: np.ndarray, n_frames: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """RMS of each 40 ms video frame's audio, scaled to [0, 1] by the clip's 95th percentile."""
    hop = sample_rate // FPS
    padded = np.zeros(n_frames * hop, np.float32)
    padded[: min(len(samples), len(padded))] = samples[: len(padded)]
    rms = np.sqrt((padded.reshape(n_frames, hop) ** 2).mean(axis=1))
    top = np.percentile(rms, 95) or 1.0
    return np.clip(rms / top, 0.0, 1.0)


def mouth_geometry(face: np.ndarray) -> tuple[float, float, float]:
    """Mouth centre x, y and mouth-to-chin distance of the face in pixels (face mesh)."""
    from pipeline.faces import FaceTracker, TrackerConfig

    with FaceTracker(TrackerConfig()) as tracker:
        obs = tracker.observe(face)
    if obs.landmarks is None:
        raise DemoCorpusError("the face mesh finds no face in the demo portrait")
    mouth = (obs.landmarks[_UPPER_LIP, :2] + obs.landmarks[_LOWER_LIP, :2]) / 2
    return float(mouth[0]), float(mouth[1]), float(obs.landmarks[_CHIN, 1] - mouth[1])


def animate(face: np.ndarray, loudness: np.ndarray, mouth: tuple[float, float, float]) -> np.ndarray:
    """Frames of the face talking: (T, H, W, 3) uint8, one per loudness value.

    The jaw opens by up to a third of the mouth-to-chin distance with the
    loudness (a smooth downward displacement below the mouth), and the whole
    head sways by a degree or two, so consecutive frames differ as in video.
    """
    import cv2

    h, w = face.shape[:2]
    mx, my, chin = mouth
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    # Pull pixels from above for rows below the mouth: the jaw drops.
    below = np.clip((ys - my) / chin, 0.0, None)
    jaw = np.exp(-((xs - mx) / (0.9 * chin)) ** 2) * np.where(below > 0, np.exp(-((below - 0.6) / 0.7) ** 2), 0.0)
    frames = np.empty((len(loudness), h, w, 3), np.uint8)
    for t, level in enumerate(loudness):
        map_y = ys - (level * chin / 3) * jaw
        opened = cv2.remap(face, xs, map_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        angle = 1.5 * np.sin(2 * np.pi * t / (3 * FPS))
        shift = 2.0 * np.sin(2 * np.pi * t / (4 * FPS))
        rotation = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        rotation[0, 2] += shift
        frames[t] = cv2.warpAffine(opened, rotation, (w, h), borderMode=cv2.BORDER_REFLECT)
    return frames


def vtt(text: str, end_s: float) -> str:
    """A WebVTT file with ``text`` as one cue from 0 to ``end_s``."""
    millis = round(end_s * 1000)
    stamp = f"00:{millis // 60000:02d}:{millis // 1000 % 60:02d}.{millis % 1000:03d}"
    return f"WEBVTT\n\n00:00:00.000 --> {stamp}\n{text}\n"


def build_demo_corpus(folder: Path, clips: int | None = None, root: Path = LIBRIVOX) -> list[Path]:
    """Write the demo corpus into ``folder``; existing clips are kept, so re-running is cheap.

    Args:
        folder: where ``<id>.mp4`` and ``<id>.en.vtt`` go.
        clips: how many LibriVox utterances to use (default all five).
        root: the LibriVox folder of pocketsphinx-testdata.

    Returns:
        The video paths, one per utterance.
    """
    from pipeline.audio import decode_audio
    from pipeline.video import write_video

    utterances = librivox_utterances(root)[:clips]
    folder.mkdir(parents=True, exist_ok=True)
    face = square_face(face_image())
    mouth = mouth_geometry(face)
    staging = folder.parent / f".{folder.name}.staging"  # outside the corpus folder
    staging.mkdir(parents=True, exist_ok=True)
    videos = []
    for utt in utterances:
        video = folder / f"{utt.utt_id}.mp4"
        videos.append(video)
        if video.is_file():
            continue
        samples = decode_audio(utt.wav, SAMPLE_RATE)
        n_frames = len(samples) * FPS // SAMPLE_RATE
        samples = samples[: n_frames * SAMPLE_RATE // FPS]
        partial = staging / video.name
        write_video(partial, animate(face, loudness_per_frame(samples, n_frames), mouth), FPS, samples, SAMPLE_RATE)
        (folder / f"{utt.utt_id}.en.vtt").write_text(vtt(utt.text, n_frames / FPS - 0.05))
        partial.rename(video)  # a half-written clip is never picked up as media
        log.info("demo clip %s: %d frames", video.name, n_frames)
    staging.rmdir()
    return videos


def write_face_image(path: Path) -> Path:
    """The demo portrait (the first frame's face, before animation) as a PNG, for ``generate``."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(square_face(face_image())).save(path)
    return path
