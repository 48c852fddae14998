"""One CPU core for one clip's face tracking, so that mediapipe's hand-offs stay on it.

mediapipe runs its graph on threads of its own: for every frame the calling
thread hands the image over and waits for the landmarks. Where those threads
may run on any core, each hand-off wakes a thread on another core, and the
kernel's cross-core wake-ups cost CPU in every process that tracks faces
(``docs/faces.md``: about a sixth of the faces stage's CPU, two workers on
two cores). Pinning the calling thread to one core for the clip's duration
puts the threads it starts (mediapipe's graph) on that core too, and the
hand-offs become plain switches on one core.

Two workers pinned to the same core would halve each other's speed, so a
core is claimed first with an advisory lock (``flock``) on a file per core
under the system's temporary folder, or the folder ``$TALKFACE_CORE_LOCKS``
names: threads and processes of one machine that share that folder never pin
to the same core. Containers each have a temporary folder of their own, so
compose mounts one volume in every Dask worker container and names it in the
variable (``flock`` holds across containers on one kernel). The core the
thread runs on now is tried first; where every core is claimed, or the
platform has no affinity (not Linux), or the lock folder cannot be written,
the clip simply runs unpinned. The thread's affinity is restored afterwards,
and a lock dies with its process.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CORE_LOCKS_ENV = "TALKFACE_CORE_LOCKS"
"""Names the folder of the core claims; set it to one folder shared by every process that pins on a machine."""
DEFAULT_LOCK_DIR = Path(os.environ.get(CORE_LOCKS_ENV) or Path(tempfile.gettempdir()) / "talkface-cores")
"""``$TALKFACE_CORE_LOCKS``, read once at import, else ``<temp dir>/talkface-cores``."""


@contextmanager
def one_core(enabled: bool = True, lock_dir: Path = DEFAULT_LOCK_DIR) -> Iterator[int | None]:
    """Run the body on one free core of this thread's affinity; yields the core, or None when unpinned
    (also when not ``enabled``: a setting can turn it off)."""
    allowed = os.sched_getaffinity(0) if enabled and hasattr(os, "sched_getaffinity") else set()
    claim = _claim(_preference(allowed), lock_dir) if len(allowed) > 1 else None
    if claim is None:
        yield None
        return
    core, lock = claim
    try:
        os.sched_setaffinity(0, {core})
        yield core
    finally:
        os.sched_setaffinity(0, allowed)
        os.close(lock)


def _preference(allowed: set[int]) -> list[int]:
    """The allowed cores, the one this thread runs on first."""
    now = current_core()
    return sorted(allowed, key=lambda core: (core != now, core))


def current_core() -> int | None:
    """The core the calling thread runs on (Linux's ``/proc``), or None where it cannot be read."""
    try:
        with open("/proc/thread-self/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[36])  # field 39, "processor"
    except (OSError, IndexError, ValueError):
        return None


def _claim(cores: list[int], lock_dir: Path) -> tuple[int, int] | None:
    """The first of ``cores`` whose lock file is free, and its open lock; None if none is, or locks can't be made."""
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    for core in cores:
        try:
            fd = os.open(lock_dir / f"{core}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by another thread or process
            os.close(fd)
            continue
        return core, fd
    return None
