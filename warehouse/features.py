"""Feature shards: one ``.npz`` per clip under ``<warehouse>/shards/``, and its table row.

Format: ``frames`` uint8 (T, S, S, 3), RGB face crops of the clip's kept span
(S = 112 by default), and ``mfcc`` float32 (T, 12, 35), one MFCC window per
frame. One file per clip streams well (a data loader opens only what a batch
needs, and a clip processed again replaces one file) and reads with numpy alone.
Arrays are stored, not deflated: on real face crops deflate keeps 82-86 % of
the bytes and costs about 0.03 core-seconds per second of video, a sixth of the
whole faces stage (``benchmarks/bench_faces.py``); every member still has its CRC-32.

Because the arrays are stored, each sits at a fixed offset in the file:
training opens a shard with :func:`open_shard` and reads only the windows of
frames and MFCC it cuts (a 5-minute span is 282 MB of frames, an hour 151 MB of
MFCC), while :func:`read_shard` reads all.

The faces stage writes shards here and training reads them here, on a local
disk or on object storage alike (:class:`warehouse.location.Location`). The
``feature_shards`` table names each shard relative to the warehouse
(``shards/<clip>.npz``), so a warehouse copied or moved keeps working; an
absolute path or URI written by an older release is read as it is.
"""

from __future__ import annotations

import io
import math
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from warehouse.durable import load_npz
from warehouse.location import Location
from warehouse.tables import FEATURE_SHARDS

SHARDS_DIR = "shards"
MFCC_WINDOW = (12, 35)
"""MFCC coefficients x 10 ms steps of the window that goes with each video frame."""
CRC_CHUNK = 8 << 20
"""Bytes read at a time while :func:`open_shard` checks a member's CRC-32 (and the MFCC's values): its memory,
and one request on S3."""


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


def check_shard(where: object, frames_dtype: np.dtype, frames_shape: tuple[int, ...], mfcc: np.ndarray) -> None:
    """Raise :class:`ShardError` naming ``where`` unless frames of this dtype and shape, and ``mfcc``, are in the
    shard format, MFCC values finite. Frames by dtype and shape: :func:`write_shard` may get them one by one."""
    _check_format(where, frames_dtype, frames_shape, mfcc.dtype, mfcc.shape)
    _check_finite(where, _nonfinite(mfcc), mfcc.size)


def _check_format(where: object, frames_dtype: np.dtype, frames_shape: tuple[int, ...], mfcc_dtype: np.dtype,
                  mfcc_shape: tuple[int, ...]) -> None:
    """Raise :class:`ShardError` naming ``where`` unless arrays of these dtypes and shapes are in the shard format.

    By dtype and shape alone, so that :func:`open_shard` checks them before it reads either array's values.
    """
    square_rgb = len(frames_shape) == 4 and frames_shape[3] == 3 and frames_shape[1] == frames_shape[2]
    if frames_dtype != np.uint8 or not square_rgb:
        raise ShardError(f"shard {where}: frames must be uint8 (T, S, S, 3), got {frames_dtype} {frames_shape}")
    if mfcc_dtype != np.float32 or mfcc_shape != (frames_shape[0], *MFCC_WINDOW):
        raise ShardError(f"shard {where}: mfcc must be float32 ({frames_shape[0]}, {MFCC_WINDOW[0]}, "
                         f"{MFCC_WINDOW[1]}), one window per frame; got {mfcc_dtype} {mfcc_shape}")


def _nonfinite(mfcc: np.ndarray) -> int:
    """How many values of ``mfcc`` (all of it, or one chunk of it) are NaN or inf."""
    return mfcc.size - int(np.count_nonzero(np.isfinite(mfcc)))


def _check_finite(where: object, bad: int, size: int) -> None:
    """Raise :class:`ShardError` naming ``where`` if ``bad`` of the MFCC's ``size`` values are NaN or inf."""
    if bad:  # one NaN would make every loss and weight of a training run NaN
        raise ShardError(f"shard {where}: mfcc values must be finite, {bad} of {size} are NaN or inf")


def write_shard(warehouse: Location, clip_id: str, frames: np.ndarray | Sequence[np.ndarray],
                mfcc: np.ndarray) -> str:
    """Write one clip's shard under ``warehouse`` whole or not at all; returns its relative name.

    ``frames``: one (T, S, S, 3) array, or its T frames one by one, written as
    they come, never joined into one array (the crops of a long span, which the
    faces stage cuts one by one, are not held twice). The bytes are those
    ``np.savez(out, frames=frames, mfcc=mfcc)`` writes.

    Passes the fault points ``shard.write`` and ``shard.written``.

    Raises:
        ShardError: ``frames`` or ``mfcc`` not in the shard format (nothing written).
        warehouse.durable.WriteFailed: a local disk full or failing; no part of the shard is left.
        OSError: the object store refused the upload.
    """
    name = shard_name(clip_id)
    target = warehouse.join(name)
    dtype, shape = _frames_format(target, frames)
    check_shard(target, dtype, shape, mfcc)
    target.write(lambda out: _savez(out, frames, shape, mfcc), "shard")
    return name


def _frames_format(where: object, frames: np.ndarray | Sequence[np.ndarray]) -> tuple[np.dtype, tuple[int, ...]]:
    """Dtype and (T, ...) shape of ``frames``, an array or a sequence of frames alike in both."""
    if isinstance(frames, np.ndarray):
        return frames.dtype, frames.shape
    if not frames:
        return np.dtype(np.uint8), (0, 0, 0, 3)
    first = frames[0]
    if any(f.dtype != first.dtype or f.shape != first.shape for f in frames):
        raise ShardError(f"shard {where}: frames differ in dtype or shape (the first is {first.dtype} {first.shape})")
    return first.dtype, (len(frames), *first.shape)


def _savez(out: BinaryIO, frames: np.ndarray | Sequence[np.ndarray], shape: tuple[int, ...], mfcc: np.ndarray) -> None:
    """What ``np.savez(out, frames=frames, mfcc=mfcc)`` writes, the frames written one by one."""
    with zipfile.ZipFile(out, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("frames.npy", "w", force_zip64=True) as member:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                      "shape": shape}
            np.lib.format.write_array_header_1_0(member, header)
            for frame in frames:
                member.write(np.ascontiguousarray(frame).data)
        with archive.open("mfcc.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, mfcc, allow_pickle=False)


def read_shard(uri: str, base: Location | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(frames, mfcc)`` of the shard ``uri`` (relative names read against ``base``), format and CRCs checked.

    Holds the whole shard in memory; :func:`open_shard` reads windows of frames and MFCC instead.

    Raises:
        ShardError: naming the shard, when it is missing, truncated, corrupt or not a shard.
    """
    location = _located(uri, base)
    with _reading(location):
        payload = location.path if location.is_local else io.BytesIO(location.read_bytes())
        arrays = load_npz(payload)
    _require_arrays(location, list(arrays))
    frames, mfcc = arrays["frames"], arrays["mfcc"]
    check_shard(location, frames.dtype, frames.shape, mfcc)
    return frames, mfcc


@dataclass(frozen=True)
class StoredArray:
    """Where a stored (not deflated) ``.npy`` member of a shard lies in the file, and the array it holds.

    Stored, its rows sit at fixed offsets, so any window of them is one read.
    """

    name: str  # "frames" or "mfcc"
    member_at: int  # byte offset of the member (its .npy header) in the file
    data_at: int  # byte offset of row 0
    dtype: np.dtype
    shape: tuple[int, ...]
    crc: int  # the member's CRC-32, from the zip's directory

    @property
    def row_bytes(self) -> int:
        return math.prod(self.shape[1:]) * self.dtype.itemsize


@dataclass(frozen=True, eq=False)
class Shard:
    """A shard open for reading windows (:func:`open_shard`): frames and MFCC alike read on demand.

    Holds the file open until :meth:`close`, or until the handle is dropped. Reads
    seek the one file position, so a handle serves one thread at a time.
    """

    location: Location
    stored_frames: StoredArray  # uint8 (T, S, S, 3), its CRC-32 checked
    stored_mfcc: StoredArray  # float32 (T, 12, 35), finite, its CRC-32 checked
    file: pa.NativeFile = field(repr=False)

    @property
    def n_frames(self) -> int:
        return self.stored_frames.shape[0]

    def frames(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start`` to ``stop - 1``, uint8 (stop - start, S, S, 3): only their bytes are read.

        Raises:
            IndexError: ``start:stop`` is not within the shard's frames.
            ShardError: naming the shard, when the file no longer holds those bytes.
        """
        return self._rows(self.stored_frames, start, stop)

    def mfcc(self, start: int, stop: int) -> np.ndarray:
        """The MFCC windows of frames ``start`` to ``stop - 1``, float32 (stop - start, 12, 35): only their bytes
        are read. Raises as :meth:`frames`."""
        return self._rows(self.stored_mfcc, start, stop)

    def _rows(self, array: StoredArray, start: int, stop: int) -> np.ndarray:
        """Rows ``start`` to ``stop - 1`` of ``array``, read in one piece."""
        if not 0 <= start <= stop <= self.n_frames:
            raise IndexError(f"shard {self.location}: {array.name} {start}:{stop} of {self.n_frames}")
        out = np.empty((stop - start, *array.shape[1:]), array.dtype)
        with _reading(self.location):
            _read_into(self.file, array.data_at + start * array.row_bytes, out)
        return out

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Shard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_shard(uri: str, base: Location | None = None) -> Shard:
    """Open the shard ``uri`` (relative names read against ``base``) for reading windows of frames and MFCC.

    Checks what :func:`read_shard` checks, format, CRC-32s and finite MFCC, while
    holding only :data:`CRC_CHUNK` bytes: each member is read once, a chunk at a
    time, so a flipped byte or a NaN is refused here as it is there.

    Raises:
        ShardError: naming the shard, when it is missing, truncated, corrupt or not a shard, or an array is
            deflated (not at a fixed offset: :func:`read_shard` reads such a file).
    """
    location = _located(uri, base)
    with _reading(location):
        filesystem, path = location.filesystem()
        file = filesystem.open_input_file(path)
        try:
            return _opened(location, file)
        except BaseException:
            file.close()
            raise


def _opened(location: Location, file: pa.NativeFile) -> Shard:
    """The :class:`Shard` of the open ``file``, checked: the format by the arrays' headers first, then each
    member's bytes, the MFCC's values counted in the same pass as its CRC-32."""
    with zipfile.ZipFile(file) as archive:
        _require_arrays(location, [name.removesuffix(".npy") for name in archive.namelist()])
        frames, mfcc = (_stored_array(file, archive.getinfo(f"{name}.npy")) for name in ("frames", "mfcc"))
    _check_format(location, frames.dtype, frames.shape, mfcc.dtype, mfcc.shape)
    _check_crc(file, frames)
    _check_finite(location, _check_crc(file, mfcc, _nonfinite), math.prod(mfcc.shape))
    return Shard(location, frames, mfcc, file)


def _located(uri: str, base: Location | None) -> Location:
    """The shard ``uri``: read against ``base`` when given (a relative name), else as it is."""
    return base.resolve(uri) if base is not None else Location.of(uri)


@contextmanager
def _reading(location: Location) -> Iterator[None]:
    """Turn a failure to read ``location`` into one :class:`ShardError` naming it.

    numpy, zipfile and pyarrow raise several unrelated types for a bad file.
    """
    try:
        yield
    except ShardError:
        raise
    except Exception as exc:
        raise ShardError(f"shard {location}: cannot be read ({exc})") from exc


def _require_arrays(location: Location, names: list[str]) -> None:
    if "frames" not in names or "mfcc" not in names:
        raise ShardError(f"shard {location}: needs arrays 'frames' and 'mfcc', has {sorted(names)}")


def _stored_array(file: pa.NativeFile, info: zipfile.ZipInfo) -> StoredArray:
    """Where the stored ``.npy`` member ``info`` and its row 0 start in ``file``, and the array's dtype and shape.

    Raises:
        ValueError: the member is deflated, in Fortran order, or its size does not match its header.
    """
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{info.filename} is deflated, so its rows cannot be read by window")
    file.seek(info.header_offset)
    local = file.read(30)  # the member's local header: its name and extra field come after it
    if local[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"no local header for {info.filename}")
    name_length, extra_length = struct.unpack("<HH", local[26:30])
    member_at = info.header_offset + 30 + name_length + extra_length
    file.seek(member_at)
    version = np.lib.format.read_magic(file)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = read_header(file)
    data_at = file.tell()
    if fortran_order:
        raise ValueError(f"{info.filename} is in Fortran order")
    if info.file_size != data_at - member_at + math.prod(shape) * dtype.itemsize:
        raise ValueError(f"{info.filename} holds {info.file_size} bytes, not the header and data of {dtype} {shape}")
    return StoredArray(info.filename.removesuffix(".npy"), member_at, data_at, dtype, shape, info.CRC)


def _check_crc(file: pa.NativeFile, array: StoredArray, count: Callable[[np.ndarray], int] = lambda rows: 0) -> int:
    """Raise ``zipfile.BadZipFile`` unless ``array``'s member matches its CRC-32; returns ``count`` summed over
    its rows, which the same pass reads (the MFCC's values are checked without a second read).

    Reads whole rows, :data:`CRC_CHUNK` bytes at a time (one row if larger), into one buffer, so memory stays
    flat for any member size. ``array``'s format must be checked first: its shape has a row count.
    """
    header = np.empty(array.data_at - array.member_at, np.uint8)
    _read_into(file, array.member_at, header)
    crc = zlib.crc32(header)
    n, step = array.shape[0], max(1, CRC_CHUNK // max(1, array.row_bytes))
    chunk = np.empty((min(step, n), *array.shape[1:]), array.dtype)
    counted = 0
    for start in range(0, n, step):
        part = chunk[:min(step, n - start)]
        _read_into(file, array.data_at + start * array.row_bytes, part)
        crc = zlib.crc32(part, crc)
        counted += count(part)
    if crc != array.crc:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file '{array.name}.npy'")
    return counted


def _read_into(file: pa.NativeFile, offset: int, out: np.ndarray) -> None:
    """Fill ``out`` with the bytes of ``file`` from ``offset`` on; ``EOFError`` if the file ends first."""
    file.seek(offset)
    got = file.readinto(out)
    if got != out.nbytes:
        raise EOFError(f"{out.nbytes} bytes at offset {offset} asked, the file ends after {got}")
