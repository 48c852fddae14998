"""Training data: the manifest of feature shards, streamed by worker processes.

A manifest row names one clip and its shard (format and reader:
:mod:`warehouse.features`), on a local disk or object storage. A worker keeps
its last few shards open (:class:`warehouse.features.Shard`) and reads only the
frames and MFCC of each window, so its memory does not grow with the
length of a clip's span. Relative shard
names are read against the manifest's folder, or the warehouse's root when the
manifest comes from the warehouse.

Batch ``b`` is a pure function of (seed, b): which clips, which windows and
which reference frames it holds come from a generator seeded by both. Worker
``w`` of ``W`` builds batches w, w+W, ... and the DataLoader hands them out in
that round-robin order, so the stream is the same whatever the worker count
and a resumed run continues exactly where the checkpoint left off.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from warehouse.features import ShardError, open_shard
from warehouse.location import Location

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("clip_id", "n_frames", "shard_uri")


@dataclass(frozen=True)
class ClipRef:
    """One trainable clip: its id, frame count and shard location."""

    clip_id: str
    n_frames: int
    shard_uri: str


def read_manifest(path: str | os.PathLike[str]) -> pa.Table:
    """The Parquet manifest at ``path``; raises ShardError naming the file if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ShardError(f"manifest {path} not found")
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ShardError(f"manifest {path}: not a readable Parquet file ({exc})") from exc


def clips_from_manifest(manifest: pa.Table, seq_len: int, base: str | os.PathLike[str] | Location | None = None,
                        source: str = "manifest") -> list[ClipRef]:
    """The clips long enough for ``seq_len``-frame windows, relative shard names resolved against ``base``.

    Raises:
        ShardError: missing columns, no rows, or no clip with ``seq_len`` frames.
    """
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest.column_names]
    if missing:
        raise ShardError(f"{source}: missing columns {', '.join(missing)}")
    _require_values(manifest, source)
    rows = manifest.select(list(MANIFEST_COLUMNS)).to_pylist()
    if not rows:
        raise ShardError(f"{source}: no clips (no feature shards to train on)")
    clips = []
    for row in rows:
        if not row["shard_uri"]:
            raise ShardError(f"{source}: clip {row['clip_id']} has no shard_uri")
        uri = Location.of(base).resolve(row["shard_uri"]).uri if base is not None else row["shard_uri"]
        clips.append(ClipRef(row["clip_id"], int(row["n_frames"]), uri))
    return long_enough(sorted(clips, key=lambda c: c.clip_id), seq_len, source)


def _require_values(manifest: pa.Table, source: str) -> None:
    """Raise :class:`ShardError` naming the column and a row where a required value is null.

    Without this a null ``n_frames`` or ``clip_id`` surfaced as a bare TypeError from ``int()`` or the sort.
    """
    for name in MANIFEST_COLUMNS:
        column = manifest[name]
        if column.null_count:
            first = column.is_null().index(True).as_py()
            clip = manifest["clip_id"][first].as_py()
            where = f"clip {clip}" if clip is not None else f"row {first}"
            raise ShardError(f"{source}: {column.null_count} rows have no {name} (first: {where})")


def long_enough(clips: list[ClipRef], seq_len: int, source: str) -> list[ClipRef]:
    """The clips with at least ``seq_len`` frames, in their order; warns how many are skipped.

    Raises:
        ShardError: no clip has ``seq_len`` frames.
    """
    usable = [c for c in clips if c.n_frames >= seq_len]
    if len(usable) < len(clips):
        log.warning("%s: %d of %d clips are shorter than %d frames and are skipped",
                    source, len(clips) - len(usable), len(clips), seq_len)
    if not usable:
        raise ShardError(f"{source}: no clip has the {seq_len} frames a training sequence needs")
    return usable


def to_model_frames(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [-1, 1], the generator's range.

    Runs on the tensor's device: training converts on the GPU, after copying a
    quarter of the bytes float32 frames would take. The result is a view of
    NHWC memory, so 4-D frames come out in channels_last layout.
    """
    x = frames.float().div_(127.5).sub_(1.0)
    return x.movedim(-1, -3)


class ShardStream(IterableDataset):
    """Endless stream of collated batches drawn from the manifest's shards.

    Each batch is a dict of ``reference`` (B, H, W, 3) and ``frames`` (B, T, H, W, 3)
    as stored, uint8 (:func:`to_model_frames` converts them on the training
    device), and ``mfcc`` (B, T, 1, 12, 35) float32. Under DDP, rank r of R takes
    the global batches r, r+R, ...
    """

    def __init__(self, clips: list[ClipRef], batch_size: int, seq_len: int, seed: int,
                 start_batch: int = 0, rank: int = 0, world_size: int = 1, cache_clips: int = 8) -> None:
        self.clips = clips
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.seed = seed
        self.start_batch = start_batch
        self.rank = rank
        self.world_size = world_size
        self.cache_clips = cache_clips

    def batch(self, index: int, cache: OrderedDict | None = None) -> dict[str, torch.Tensor]:
        """Global batch ``index``: the same tensors every time for the same seed."""
        rng = np.random.default_rng([self.seed, index])
        cache = OrderedDict() if cache is None else cache
        refs, frames, mfccs = [], [], []
        for c in rng.integers(len(self.clips), size=self.batch_size):
            clip = self.clips[c]
            if clip.shard_uri not in cache:
                cache[clip.shard_uri] = open_shard(clip.shard_uri)
                if len(cache) > self.cache_clips:
                    cache.popitem(last=False)[1].close()
            shard = cache[clip.shard_uri]
            n = shard.n_frames
            if n < self.seq_len:
                raise ShardError(f"shard {clip.shard_uri}: {n} frames (manifest says {clip.n_frames}), "
                                 f"a training sequence needs {self.seq_len} (seq_len)")
            start = int(rng.integers(n - self.seq_len + 1))
            ref = int(rng.integers(n))  # identity frame: any frame of the clip
            refs.append(shard.frames(ref, ref + 1)[0])
            frames.append(shard.frames(start, start + self.seq_len))
            mfccs.append(shard.mfcc(start, start + self.seq_len))
        return {
            "reference": torch.from_numpy(np.stack(refs)),  # (B, H, W, 3) uint8
            "frames": torch.from_numpy(np.stack(frames)),  # (B, T, H, W, 3) uint8
            "mfcc": torch.from_numpy(np.stack(mfccs)).unsqueeze(2),  # (B, T, 1, 12, 35)
        }

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, n_workers = (0, 1) if info is None else (info.id, info.num_workers)
        cache: OrderedDict = OrderedDict()
        local = self.start_batch + worker
        while True:
            yield self.batch(local * self.world_size + self.rank, cache)
            local += n_workers


def next_batch(batches: Iterator[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The next batch of a loader's iterator, a damaged shard reported in one line.

    DataLoader raises a worker's ShardError again with the worker's traceback as
    its message ("Caught ShardError in DataLoader worker ...", the traceback,
    "training.data.ShardError: <message>"); the original message is its last line.
    """
    try:
        return next(batches)
    except ShardError as exc:
        lines = str(exc).strip().splitlines()
        if len(lines) < 2:
            raise
        raise ShardError(lines[-1].partition(": ")[2]) from exc


def forget_parent_thread_exit_hooks(worker_id: int) -> None:
    """A forked worker's first step: drop the thread-exit hooks it inherited from its parent.

    Python runs ``threading``'s exit hooks when a worker ends. Prefect's background
    services (in a flow run, or any process that ran one) register one that drains
    their thread, which a forked worker does not have: it fails an assertion there,
    and the worker ends with exit code 1, which DataLoader reports as a crash of the
    worker ("exited unexpectedly with exit code 1"). A worker starts no such
    services, so it has no hooks of its own to lose. (The list is CPython's
    ``threading._threading_atexits``; where it is absent there is nothing to drop.)
    """
    getattr(threading, "_threading_atexits", []).clear()


def make_loader(stream: ShardStream, num_workers: int, pin_memory: bool = False) -> DataLoader:
    """A DataLoader over ``stream`` whose batches are already collated in the workers.

    ``pin_memory`` (for CUDA) puts batches in page-locked memory, from which the
    copies to the GPU run asynchronously (``non_blocking=True``).
    """
    return DataLoader(stream, batch_size=None, num_workers=num_workers, pin_memory=pin_memory,
                      persistent_workers=False, prefetch_factor=2 if num_workers else None,
                      worker_init_fn=forget_parent_thread_exit_hooks if num_workers else None)
