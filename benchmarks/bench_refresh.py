"""Refresh throughput on a Dask cluster: clips per minute and core-seconds per second of video, per stage.

Runs the dataset-refresh stages (subtitles, clips, align, histograms, faces)
over N real talking-head clips on a Dask cluster: the computation of each
batch on the workers, the warehouse writes in this process, one stage after
the other, as ``flows/refresh.py`` does. Prints, per stage and for the whole:
clips, clips per minute (wall), seconds of media, core-seconds (CPU of every
worker process and of this one; "of which here": this process's share, the
warehouse reads and writes and a local cluster's scheduler) and core-seconds
per second of video.
Asserts nothing.

Clips: the offline demo corpus (``pipeline.demo_corpus``: LibriVox speech and
an animated portrait, 256x256) and, when ``../shared/media`` has it, the real
512x512 talking head ``WDA_AlexandriaOcasioCortez_000.mp4`` with a transcript
recognised once by pocketsphinx; with ``--hd``, also that talking head as a
1080p H.264 video (its frames scaled up into a 1920x1080 frame, as an HD
close-up comes from a video site: decoding such a frame costs more than the
face mesh). They are built once into ``--cache`` and copied under new ids until
there are N clips.

Cluster: a ``distributed.LocalCluster`` of single-threaded worker processes
(``--workers``), or an existing scheduler (``--scheduler`` or
``TALKFACE_DASK_SCHEDULER``); its workers must see ``--cache`` and
its temporary warehouse at the same paths and import this checkout. The CPU
of a separate scheduler process and of worker nannies is not counted.

Start-up (imports, model loads: once per worker process) is measured apart
from the stages, on a warm-up clip.

Run: ``python benchmarks/bench_refresh.py [--clips 12] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Client

    from pipeline.refresh_stages import RefreshSettings
    from pipeline.stage import ClipResult, ClipWork, Stage
    from warehouse.store import Warehouse

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

SHARED_TALKING_HEAD = ROOT.parent / "shared" / "media" / "WDA_AlexandriaOcasioCortez_000.mp4"
SINGLE_THREADED = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                          "NUMBA_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}
"""Each worker runs one task at a time: numeric libraries get one thread, not one per core."""
# --- clips ------------------------------------------------------------------------

def _recognised_vtt(video: Path) -> str:
    """A one-cue WebVTT of the words pocketsphinx recognises in ``video`` (it has no transcript)."""
    from pocketsphinx import Decoder

    from benchmarks.bench_caption_yield import recognise
    from pipeline.audio import SAMPLE_RATE, decode_audio
    from pipeline.demo_corpus import vtt

    audio = decode_audio(video, SAMPLE_RATE)
    words = recognise(Decoder(loglevel="FATAL"), audio)
    return vtt(" ".join(w.word for w in words), len(audio) / SAMPLE_RATE - 0.05)


def _hd_copy(video: Path, hd: Path) -> None:
    """``video`` as a 1080p H.264 close-up at ``hd``: each frame scaled to 1080 px high on a blurred backdrop."""
    import cv2

    from pipeline.audio import SAMPLE_RATE, decode_audio
    from pipeline.video import probe_video, read_frames, write_video

    def frames():
        for _, rgb in read_frames(probe_video(video)):
            out = cv2.resize(cv2.GaussianBlur(rgb, (0, 0), 15), (1920, 1080))
            side = 1080 * rgb.shape[1] // rgb.shape[0]
            left = (1920 - side) // 2
            out[:, left:left + side] = cv2.resize(rgb, (side, 1080), interpolation=cv2.INTER_CUBIC)
            yield out

    write_video(hd, frames(), samples=decode_audio(video, SAMPLE_RATE))


def source_clips(cache: Path, hd: bool = False) -> list[Path]:
    """The distinct clips (video with a ``.en.vtt`` sidecar beside it), built into ``cache`` once."""
    from pipeline.demo_corpus import build_demo_corpus

    videos = build_demo_corpus(cache / "demo")
    if SHARED_TALKING_HEAD.is_file():
        video = cache / "real" / SHARED_TALKING_HEAD.name
        if not video.is_file():
            video.parent.mkdir(parents=True, exist_ok=True)
            video.with_suffix(".en.vtt").write_text(_recognised_vtt(SHARED_TALKING_HEAD))
            shutil.copy(SHARED_TALKING_HEAD, video)
        videos.append(video)
        if hd:
            videos.append(video.with_name(f"{video.stem}_1080p.mp4"))
            if not videos[-1].is_file():
                _hd_copy(video, videos[-1])
                shutil.copy(video.with_suffix(".en.vtt"), videos[-1].with_suffix(".en.vtt"))
    else:
        print(f"(no {SHARED_TALKING_HEAD}: demo clips only{'; --hd needs it' if hd else ''})")
    return videos


def corpus_folder(sources: Sequence[Path], n: int, folder: Path) -> Path:
    """``n`` clips in ``folder``: the sources in turn, each copy under its own id."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        video = sources[i % len(sources)]
        stem = f"{video.stem}_{i:04d}"
        shutil.copy(video, folder / f"{stem}{video.suffix}")
        shutil.copy(video.with_suffix(".en.vtt"), folder / f"{stem}.en.vtt")
    return folder


# --- cluster and CPU accounting ----------------------------------------------------

def _process_cpu() -> float:
    """User + system CPU seconds of this process and its waited-for children."""
    import psutil

    t = psutil.Process().cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def _prepare_worker(aligner_name: str, pad_s: float) -> None:
    """One thread for OpenCV; imports and model loads done before anything is measured."""
    import cv2
    import numpy as np

    from pipeline.faces import FaceTracker
    from pipeline.mfcc import mfcc_per_frame
    from pipeline.refresh_stages import worker_aligner

    cv2.setNumThreads(1)
    worker_aligner(aligner_name, pad_s)
    with FaceTracker() as tracker:
        tracker.observe(np.zeros((64, 64, 3), np.uint8))
    mfcc_per_frame(np.zeros(16000, np.float32), 25)


def cluster_cpu(client: Client) -> tuple[float, float]:
    """Core-seconds used so far by every worker process, and by this one (warehouse writes, local scheduler)."""
    return sum(client.run(_process_cpu).values()), _process_cpu()


def connect(scheduler: str | None, workers: int) -> Client:
    """A client of ``scheduler``, or of a new local cluster of single-threaded worker processes."""
    import dask
    from distributed import Client, LocalCluster

    from fixtures.topology import QUIET_DASK

    if scheduler:
        return Client(scheduler)
    # As compose's Dask services: no statistical profiler, the event-loop watch every second (not every
    # 20 ms). Set in this process, which runs the local scheduler: a local cluster's nanny hands its own
    # configuration to the workers it starts, over any ``DASK_*`` variable in their environment.
    dask.config.update(dask.config.config, dask.config.collect_env(QUIET_DASK))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return Client(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, env=SINGLE_THREADED))


def prepare(client: Client, aligner_name: str) -> None:
    """Every worker single-threaded, with its imports and models loaded."""
    from pipeline.ingest import IngestConfig

    client.run(_prepare_worker, aligner_name, IngestConfig().cue_pad_s)


# --- the stages: the refresh's own list and runner, compute submitted to the cluster ---

def _compute(stage: str, work: list[ClipWork], settings: RefreshSettings) -> list[ClipResult | None]:
    """One batch of one stage, on a worker (as ``flows/refresh.py``'s compute task)."""
    from pipeline.refresh_stages import stage_named

    return stage_named(stage).compute(work, settings)


def media_seconds(warehouse_uri: Path, clip_ids: Sequence[str]) -> float:
    """Seconds of media of ``clip_ids`` (their ``clips`` rows)."""
    from warehouse.store import Warehouse

    rows = Warehouse(warehouse_uri).read_clips("clips", clip_ids, columns=["start_s", "end_s"]).to_pylist()
    return sum(r["end_s"] - (r["start_s"] or 0.0) for r in rows)


# --- run and report -------------------------------------------------------------------

@dataclass(frozen=True)
class Figure:
    """What one stage (or the whole) cost."""

    name: str
    clips: int
    wall_s: float
    worker_s: float  # core-seconds on the workers
    local_s: float  # core-seconds in this process

    def cells(self, media_s: float) -> list[str]:
        per_minute = self.clips / self.wall_s * 60 if self.wall_s > 0 else float("nan")
        core_s = self.worker_s + self.local_s
        return [self.name, str(self.clips), f"{per_minute:.1f}", f"{media_s:.1f}", f"{core_s:.2f}",
                f"{self.local_s:.2f}", f"{core_s / media_s:.4f}" if media_s else "-"]


def run_stage(client: Client, stage: Stage, warehouse: Warehouse, clips: list, settings: RefreshSettings) -> Figure:
    """Submit every task the stage still needs, write the results batch after batch; measure it."""
    from flows.batches import run_in_batches
    from pipeline.stage import batch_together, pending, read_work, write_results

    (workers, local), wall = cluster_cpu(client), time.perf_counter()
    todo = set(pending(warehouse, stage, [c.clip_id for c in clips]))
    work = read_work(warehouse, stage, [c for c in clips if c.clip_id in todo])
    run_in_batches(stage.name, work, settings.ingest.batch_size,
                   submit=lambda task: client.submit(_compute, stage.name, task, settings, pure=False),
                   write=lambda results: write_results(warehouse, stage, results), task_size=settings.task_size(stage),
                   together=batch_together(stage))
    workers_after, local_after = cluster_cpu(client)
    return Figure(stage.name, len(todo), time.perf_counter() - wall, workers_after - workers, local_after - local)


def refresh(client: Client, corpus: Path, warehouse_uri: Path, aligner_name: str,
            landmark_every: int = 1, task_size: int = 1, pin_core: bool = True) -> tuple[list[Figure], list[str]]:
    """Every stage over the corpus into a new warehouse; returns each stage's figure and the clip ids."""
    from pipeline.corpus import load_corpus
    from pipeline.faces_stage import FacesConfig
    from pipeline.ingest import IngestConfig
    from pipeline.measure import KeyframeConfig
    from pipeline.refresh_stages import STAGES, RefreshSettings
    from warehouse.store import Warehouse

    warehouse, clips = Warehouse(warehouse_uri), load_corpus(corpus)
    settings = RefreshSettings(warehouse.uri, aligner_name, IngestConfig(task_size=task_size),
                               FacesConfig(keyframes=KeyframeConfig(every=landmark_every), pin_core=pin_core))
    return [run_stage(client, stage, warehouse, clips, settings) for stage in STAGES], [c.clip_id for c in clips]


def idle_rate(client: Client, seconds: float = 5.0) -> float:
    """Core-seconds per wall second the cluster and this process burn with nothing to do (heartbeats, monitors)."""
    before, wall = sum(cluster_cpu(client)), time.perf_counter()
    time.sleep(seconds)
    return (sum(cluster_cpu(client)) - before) / (time.perf_counter() - wall)


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12, help="clips to refresh (copies of the sources in turn)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster")
    parser.add_argument("--scheduler", default=os.environ.get("TALKFACE_DASK_SCHEDULER"),
                        help="address of a running Dask scheduler (default: $TALKFACE_DASK_SCHEDULER, "
                             "else a local cluster)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "talkface-bench-refresh",
                        help="where the source clips are built once and kept")
    parser.add_argument("--aligner", default="pocketsphinx", help="aligner name (pipeline.align.make_aligner)")
    parser.add_argument("--landmark-every", type=int, default=1,
                        help="the face mesh on every Nth frame, the frames between interpolated where the "
                             "keyframes agree (pipeline.measure; 1 = every frame)")
    parser.add_argument("--task-size", type=int, default=1,
                        help="clips per compute task, as `talkface refresh --task-size` (25: a task per batch)")
    parser.add_argument("--no-pin-core", dest="pin_core", action="store_false",
                        help="let the face mesh's threads run on any core (as `talkface refresh --no-pin-core`)")
    parser.add_argument("--hd", action="store_true",
                        help="add a 1080p H.264 copy of the real talking head to the sources (real HD input)")
    args = parser.parse_args()
    if min(args.clips, args.workers, args.landmark_every, args.task_size) < 1:
        parser.error("--clips, --workers, --landmark-every and --task-size must be >= 1")

    sources = source_clips(args.cache, args.hd)
    client = connect(args.scheduler, args.workers)
    with tempfile.TemporaryDirectory(dir=args.cache) as tmp:
        work = Path(tmp)
        start_cpu = sum(cluster_cpu(client))
        prepare(client, args.aligner)
        # Warm-up: a clip per worker through every stage (this process's imports and first commits).
        warm = corpus_folder(sources, len(client.scheduler_info()["workers"]), work / "warm")
        refresh(client, warm, work / "warm-warehouse", args.aligner)
        start_cpu = sum(cluster_cpu(client)) - start_cpu
        idle = idle_rate(client)
        figures, clip_ids = refresh(client, corpus_folder(sources, args.clips, work / "corpus"),
                                    work / "warehouse", args.aligner, args.landmark_every, args.task_size,
                                    args.pin_core)
        media_s = media_seconds(work / "warehouse", clip_ids)
    client.close()

    whole = Figure("whole", len(clip_ids), sum(f.wall_s for f in figures), sum(f.worker_s for f in figures),
                   sum(f.local_s for f in figures))
    print(f"{len(clip_ids)} clips from {len(sources)} sources, {media_s:.1f} s of media, "
          f"{len(figures)} stages, {args.task_size} clip(s) per task, face mesh on every {args.landmark_every} "
          f"frame(s), {'pinned to a core' if args.pin_core else 'threads on any core'}; "
          f"start-up (imports, models) {start_cpu:.1f} core-s, not counted below; "
          f"idle cluster {idle:.3f} core-s per wall second, counted below")
    print(table([["stage", "clips", "clips/min", "media s", "core-s", "of which here", "core-s per s"]]
                + [f.cells(media_s) for f in [*figures, whole]]))


if __name__ == "__main__":
    main()
