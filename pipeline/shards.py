"""Training shards: one compressed ``.npz`` per clip, and its ``feature_shards`` row.

Format (read by ``training/``): ``frames`` uint8 (T, 112, 112, 3) RGB face
crops of the kept span and ``mfcc`` float32 (T, 12, 35), T = span length.
One file per clip streams well (a data loader opens only what a batch needs,
and a clip re-processed replaces one file) and reads with numpy alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.crops import CROP_SIZE
from pipeline.mfcc import N_COEFFS, N_STEPS
from warehouse.durable import load_npz, write_atomically
from warehouse.tables import FEATURE_SHARDS


class ShardError(ValueError):
    """A shard file that is missing, unreadable or not in the shard format."""


@dataclass(frozen=True)
class ShardRecord:
    """One row of ``feature_shards``: where a clip's features are and what span they cover."""

    clip_id: str
    speaker_id: str | None
    start_frame: int
    end_frame: int  # exclusive
    fps: float
    shard_uri: str  # absolute local path

    @property
    def n_frames(self) -> int:
        return self.end_frame - self.start_frame

    def to_row(self) -> dict[str, object]:
        return {"clip_id": self.clip_id, "speaker_id": self.speaker_id,
                "start_frame": self.start_frame, "end_frame": self.end_frame,
                "n_frames": self.n_frames, "fps": self.fps, "shard_uri": self.shard_uri}


def records_to_table(records: list[ShardRecord]) -> pa.Table:
    """The ``feature_shards`` table of ``records``."""
    return pa.Table.from_pylist([r.to_row() for r in records], schema=FEATURE_SHARDS.schema)


def _check(path: Path, frames: np.ndarray, mfcc: np.ndarray) -> None:
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (CROP_SIZE, CROP_SIZE, 3):
        raise ShardError(f"{path}: frames must be uint8 (T, {CROP_SIZE}, {CROP_SIZE}, 3), "
                         f"got {frames.dtype} {frames.shape}")
    if mfcc.dtype != np.float32 or mfcc.shape != (len(frames), N_COEFFS, N_STEPS):
        raise ShardError(f"{path}: mfcc must be float32 ({len(frames)}, {N_COEFFS}, {N_STEPS}), "
                         f"got {mfcc.dtype} {mfcc.shape}")


def write_shard(path: str | os.PathLike[str], frames: np.ndarray, mfcc: np.ndarray) -> Path:
    """Write one clip's shard atomically and durably; returns the absolute path.

    Raises:
        ShardError: ``frames`` or ``mfcc`` not in the shard format (nothing written).
        warehouse.durable.WriteFailed: the disk is full or failed; no part of the shard is left.
    """
    path = Path(path).resolve()
    _check(path, frames, mfcc)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda handle: np.savez_compressed(handle, frames=frames, mfcc=mfcc), "shard")
    return path


def read_shard(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(frames, mfcc)`` of a shard, checked against the format and its CRC-32s.

    Raises:
        ShardError: naming the file, when it is missing, truncated, corrupt or not a shard.
    """
    path = Path(path)
    try:
        arrays = load_npz(path)
        frames, mfcc = arrays["frames"], arrays["mfcc"]
    except Exception as exc:  # numpy and zipfile raise several unrelated types for a damaged file
        raise ShardError(f"{path}: not a readable feature shard ({exc})") from exc
    _check(path, frames, mfcc)
    return frames, mfcc
