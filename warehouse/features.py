"""Feature shards: one ``.npz`` per clip under ``<warehouse>/shards/``, and its table row.

Format: ``frames`` uint8 (T, S, S, 3), RGB face crops of the clip's kept span
(S = 112 by default), and ``mfcc`` float32 (T, 12, 35), one MFCC window per
frame. One file per clip streams well (a data loader opens only what a batch
needs, and a clip processed again replaces one file) and reads with numpy alone.
Arrays are stored, not deflated: on real face crops deflate keeps 82-86 % of
the bytes and costs about 0.03 core-seconds per second of video, a sixth of the
whole faces stage (``benchmarks/bench_faces.py``); every member still has its CRC-32.

The faces stage writes shards here and training reads them here, on a local
disk or on object storage alike (:class:`warehouse.location.Location`). The
``feature_shards`` table names each shard relative to the warehouse
(``shards/<clip>.npz``), so a warehouse copied or moved keeps working; an
absolute path or URI written by an older release is read as it is.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from warehouse.durable import load_npz
from warehouse.location import Location
from warehouse.tables import FEATURE_SHARDS

SHARDS_DIR = "shards"
MFCC_WINDOW = (12, 35)
"""MFCC coefficients x 10 ms steps of the window that goes with each video frame."""


class ShardError(ValueError):
    """A shard or manifest that is missing, unreadable or not in the shard format; the message names it."""


@dataclass(frozen=True)
class ShardRecord:
    """One ``feature_shards`` row: where a clip's features are and which span of the clip they cover."""

    clip_id: str
    speaker_id: str | None
    start_frame: int
    end_frame: int  # exclusive
    fps: float
    shard_uri: str  # relative to the warehouse (``shards/<clip>.npz``)

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


def shard_name(clip_id: str) -> str:
    """The shard's name relative to the warehouse: ``shards/<clip id, made file-safe>.npz``."""
    return f"{SHARDS_DIR}/{re.sub(r'[^A-Za-z0-9._-]', '_', clip_id)}.npz"


def check_shard(where: object, frames: np.ndarray, mfcc: np.ndarray) -> None:
    """Raise :class:`ShardError` naming ``where`` unless the arrays are in the shard format, MFCC values finite."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3 or frames.shape[1] != frames.shape[2]:
        raise ShardError(f"shard {where}: frames must be uint8 (T, S, S, 3), got {frames.dtype} {frames.shape}")
    if mfcc.dtype != np.float32 or mfcc.shape != (len(frames), *MFCC_WINDOW):
        raise ShardError(f"shard {where}: mfcc must be float32 ({len(frames)}, {MFCC_WINDOW[0]}, "
                         f"{MFCC_WINDOW[1]}), one window per frame; got {mfcc.dtype} {mfcc.shape}")
    bad = int(np.count_nonzero(~np.isfinite(mfcc)))
    if bad:  # one NaN would make every loss and weight of a training run NaN
        raise ShardError(f"shard {where}: mfcc values must be finite, {bad} of {mfcc.size} are NaN or inf")


def write_shard(warehouse: Location, clip_id: str, frames: np.ndarray, mfcc: np.ndarray) -> str:
    """Write one clip's shard under ``warehouse`` whole or not at all; returns its relative name.

    Passes the fault points ``shard.write`` and ``shard.written``.

    Raises:
        ShardError: ``frames`` or ``mfcc`` not in the shard format (nothing written).
        warehouse.durable.WriteFailed: a local disk full or failing; no part of the shard is left.
        OSError: the object store refused the upload.
    """
    name = shard_name(clip_id)
    target = warehouse.join(name)
    check_shard(target, frames, mfcc)
    target.write(lambda out: np.savez(out, frames=frames, mfcc=mfcc), "shard")
    return name


def read_shard(uri: str, base: Location | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(frames, mfcc)`` of the shard ``uri`` (relative names read against ``base``), format and CRCs checked.

    Raises:
        ShardError: naming the shard, when it is missing, truncated, corrupt or not a shard.
    """
    location = base.resolve(uri) if base is not None else Location.of(uri)
    try:
        payload = location.path if location.is_local else io.BytesIO(location.read_bytes())
        arrays = load_npz(payload)
    except Exception as exc:  # numpy, zipfile and pyarrow raise several unrelated types for a bad file
        raise ShardError(f"shard {location}: cannot be read ({exc})") from exc
    if "frames" not in arrays or "mfcc" not in arrays:
        raise ShardError(f"shard {location}: needs arrays 'frames' and 'mfcc', has {sorted(arrays)}")
    frames, mfcc = arrays["frames"], arrays["mfcc"]
    check_shard(location, frames, mfcc)
    return frames, mfcc
