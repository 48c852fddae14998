"""Alignment speed (real-time factor per core) and whole-ingest cost per hour of audio.

Uses the LibriVox clips of Debian's ``pocketsphinx-testdata``. Prints figures;
asserts nothing. Run: ``.venv/bin/python benchmarks/bench_align.py [--repeat 3]``.

- align RTF: CPU seconds of pocketsphinx alignment / seconds of audio, one
  process (one core), per clip and for a >60 s chunked passage;
- ingest: the refresh stages (subtitles, clips, align, histograms) without
  Prefect on a folder of the clips, as CPU core-seconds per hour of audio; the
  Montreal Forced Aligner paper reports about one core-hour per hour.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fixtures.librivox import LIBRIVOX, transcripts  # noqa: E402
from pipeline.align import Utterance  # noqa: E402
from pipeline.audio import decode_audio  # noqa: E402
from pipeline.corpus import load_corpus  # noqa: E402
from pipeline.ingest import IngestConfig  # noqa: E402
from pipeline.refresh_stages import INGEST_STAGES, RefreshSettings, worker_aligner  # noqa: E402
from pipeline.stage import run_stages  # noqa: E402
from warehouse.store import Warehouse  # noqa: E402


def cpu() -> float:
    return time.process_time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="copies of the clip set in the ingest run")
    args = parser.parse_args()
    if not LIBRIVOX.is_dir():
        sys.exit("needs: apt-get install -y pocketsphinx-testdata")
    texts = transcripts()
    audio = {u: decode_audio(LIBRIVOX / f"{u}.wav") for u in texts}
    # the ingest run's own aligner (one per thread), so its model loads here, not in the timed ingest
    aligner = worker_aligner(RefreshSettings.aligner, IngestConfig.cue_pad_s)
    seconds = sum(len(a) for a in audio.values()) / 16000

    start = cpu()
    for u, a in audio.items():
        aligner.align(u, a, 16000, [Utterance(0, 0.0, len(a) / 16000, texts[u])])
    per_clip = (cpu() - start) / seconds
    print(f"pocketsphinx {aligner.version}: per-cue alignment RTF {per_clip:.3f} per core "
          f"({seconds:.1f} s of audio, {len(audio)} clips)")

    long_audio = np.concatenate(list(audio.values()) * 3)
    long_words = tuple(w for _ in range(3) for u in audio for w in texts[u])
    start = cpu()
    aligner.align("long", long_audio, 16000, [Utterance(0, 0.0, len(long_audio) / 16000, long_words)])
    long_s = len(long_audio) / 16000
    print(f"chunked {long_s:.1f} s passage: RTF {(cpu() - start) / long_s:.3f} per core")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp, "corpus")
        folder.mkdir()
        for k in range(args.repeat):
            for u in texts:
                shutil.copy(LIBRIVOX / f"{u}.wav", folder / f"{u}_{k}.wav")
                end = len(audio[u]) / 16000
                (folder / f"{u}_{k}.en.srt").write_text(
                    f"1\n00:00:00,000 --> 00:00:0{int(end)},{int(end % 1 * 1000):03d}\n{' '.join(texts[u])}\n")
        warehouse = Warehouse(Path(tmp, "wh"))
        clips = load_corpus(folder)
        start, wall = cpu(), time.perf_counter()
        run_stages(warehouse, clips, INGEST_STAGES, RefreshSettings(warehouse.uri))
        used, wall = cpu() - start, time.perf_counter() - wall
        hours = seconds * args.repeat / 3600
        print(f"ingest of {len(clips)} clips ({seconds * args.repeat:.0f} s audio, warehouse writes included): "
              f"{used / hours / 60:.1f} core-minutes per hour of audio "
              f"(wall {wall:.1f} s; MFA paper: ~60 core-minutes per hour)")


if __name__ == "__main__":
    main()
