"""Files that are whole or absent: written atomically and durably, checked when read back.

A writer fills a hidden temporary file beside the target, fsyncs it, renames it
over the target and fsyncs the folder, so after a SIGKILL, a power cut or a
full disk the path holds the old file, the new one or nothing, never a part.
Temporary names (``.<name>.<random>.tmp``) match no pattern a reader looks for.

Checkpoints and shards are zip files with a CRC-32 per member, but
``torch.load`` never checks it and ``np.load`` only when its reads happen to
reach a member's end, so a flipped bit can load as wrong numbers. The readers
here always check it.
"""

from __future__ import annotations

import fcntl
import glob
import os
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from warehouse.faults import fault_point


class WriteFailed(OSError):
    """A file that could not be written (full disk, quota, I/O error); no part of it is left at its path.

    The message is one line naming the file and the cause; ``errno`` is the cause's.
    """

    def __init__(self, path: Path, kind: str, cause: OSError) -> None:
        super().__init__(f"{path}: could not write {kind}: {cause.strerror or cause}")
        self.errno = cause.errno


def write_atomically(path: Path, write: Callable[[BinaryIO], None], kind: str) -> None:
    """Write ``path`` through ``write`` so that it is either whole or untouched.

    Temporary files of ``path`` left by a writer killed before its rename are
    removed first. A writer holds a lock on its temporary file until it is
    renamed, so a concurrent writer of the same path (two refreshes writing the
    same shard) keeps its file; the last rename wins, and both are whole. The
    fault points ``<kind>.write`` (temporary file complete and synced, not yet
    renamed) and ``<kind>.written`` (renamed and durable) let tests kill the
    process there.

    Args:
        path: the final file; its folder must exist.
        write: writes the whole content to the binary file it is given.
        kind: what the file is ("checkpoint", "shard"): names the fault points and the error.

    Raises:
        WriteFailed: an OS error on the way (a full disk included); no temporary file is left.
    """
    _remove_abandoned_temporaries(path)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes, or the process dies
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
            fault_point(f"{kind}.write")
            os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        cause = _os_error(exc)
        if cause is None:
            raise
        raise WriteFailed(path, kind, cause) from exc
    fault_point(f"{kind}.written")


def _remove_abandoned_temporaries(path: Path, young_s: float = 60.0) -> None:
    """Remove the temporary files of ``path`` that no live writer holds.

    A file whose lock can be taken was left by a writer that died before its
    rename. An empty one younger than ``young_s`` may be a writer's between
    creating and locking it, so it is left for a later writer to remove.
    """
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            with open(candidate, "rb") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                facts = os.fstat(handle.fileno())
                if facts.st_size or time.time() - facts.st_mtime > young_s:
                    candidate.unlink(missing_ok=True)
        except (BlockingIOError, FileNotFoundError):  # a live writer's, or renamed meanwhile
            continue


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable: POSIX keeps it only once the folder itself is synced."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_error(exc: BaseException) -> OSError | None:
    """The OS error behind ``exc``: ``torch.save`` reports a full disk as a RuntimeError raised
    while handling the OSError."""
    link: BaseException | None = exc
    while link is not None and not isinstance(link, OSError):
        link = link.__cause__ or link.__context__
    return link


def check_zip(path: Path) -> None:
    """Raise ``zipfile.BadZipFile`` unless the zip at ``path`` is whole and every member matches its CRC-32."""
    with zipfile.ZipFile(path) as archive:
        bad = archive.testzip()
    if bad is not None:
        raise zipfile.BadZipFile(f"bad CRC-32 for {bad}")


def load_npz(source: str | os.PathLike[str] | BinaryIO) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (a path or a binary file), each member's CRC-32 checked.

    Raises:
        Exception: numpy and zipfile raise several unrelated types for a damaged file
            (``zipfile.BadZipFile``, ``zlib.error``, ``ValueError``, ``EOFError`` ...).
    """
    arrays = {}
    with zipfile.ZipFile(source) as archive:
        for name in archive.namelist():
            with archive.open(name) as member:
                arrays[name.removesuffix(".npy")] = np.lib.format.read_array(member, allow_pickle=False)
                member.read()  # reaching the member's end is what makes zipfile check its CRC-32
    return arrays
