"""One free core per clip's face tracking: pinning, restoring, and never two claims on one core."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.cores import CORE_LOCKS_ENV, current_core, one_core

CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
needs_cores = pytest.mark.skipif(len(CORES) < 2, reason="pinning needs Linux and at least two usable cores")
REPO = Path(__file__).resolve().parents[1]
CLAIMER = ("import sys\n"
           "from pipeline.cores import one_core\n"
           "with one_core() as core:\n"
           "    print(core, flush=True)\n"
           "    sys.stdin.read()\n")
"""A process that claims a core with the default lock folder and holds it until its stdin closes."""


@contextmanager
def claiming(lock_dir: Path) -> Iterator[int | None]:
    """A claiming process with ``$TALKFACE_CORE_LOCKS`` naming ``lock_dir``; yields its core while it holds it."""
    env = {**os.environ, CORE_LOCKS_ENV: str(lock_dir), "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", CLAIMER], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().strip()
        yield None if line == "None" else int(line)
    finally:
        child.communicate("", timeout=30)


@contextmanager
def holding(lock_dir: Path, cores: list[int]) -> Iterator[None]:
    """Claims on ``cores`` in ``lock_dir``, held by this process (as another worker's would be)."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    fds = [os.open(lock_dir / f"{core}.lock", os.O_RDWR | os.O_CREAT) for core in cores]
    try:
        for fd in fds:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        for fd in fds:
            os.close(fd)


@needs_cores
def test_the_body_runs_on_one_core_and_the_affinity_comes_back(tmp_path):
    before = os.sched_getaffinity(0)
    with one_core(lock_dir=tmp_path) as core:
        assert core in CORES
        assert os.sched_getaffinity(0) == {core}
        assert current_core() == core
    assert os.sched_getaffinity(0) == before


@needs_cores
def test_threads_of_one_process_never_share_a_core_and_the_extra_one_runs_unpinned(tmp_path):
    holding = threading.Barrier(len(CORES) + 1)
    got: list[int | None] = []

    def claim() -> None:
        with one_core(lock_dir=tmp_path) as core:
            got.append(core)
            holding.wait(timeout=30)  # every thread holds its claim at once

    threads = [threading.Thread(target=claim) for _ in range(len(CORES) + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(c for c in got if c is not None) == CORES
    assert got.count(None) == 1


@needs_cores
def test_a_core_claimed_by_another_process_is_not_taken(tmp_path):
    held, free = CORES[:-1], CORES[-1]
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys\n"
         f"fds = [os.open({str(tmp_path)!r} + f'/{{c}}.lock', os.O_RDWR | os.O_CREAT) for c in {held!r}]\n"
         "[fcntl.flock(fd, fcntl.LOCK_EX) for fd in fds]\n"
         "print('holding', flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with one_core(lock_dir=tmp_path) as core:
            assert core == free
    finally:
        holder.communicate("")
    mine = os.open(tmp_path / f"{free}.lock", os.O_RDWR)
    fcntl.flock(mine, fcntl.LOCK_EX)
    try:
        with one_core(lock_dir=tmp_path) as core:  # the holder's locks died with it
            assert core in held
    finally:
        os.close(mine)


@needs_cores
def test_turned_off_it_pins_nothing(tmp_path):
    before = os.sched_getaffinity(0)
    with one_core(False, tmp_path) as core:
        assert core is None and os.sched_getaffinity(0) == before
    assert not list(tmp_path.iterdir())  # not even a claim


def test_a_lock_folder_that_cannot_be_made_means_unpinned(tmp_path):
    (tmp_path / "file").write_text("")
    before = os.sched_getaffinity(0) if CORES else None
    with one_core(lock_dir=tmp_path / "file" / "locks") as core:
        assert core is None
        if CORES:
            assert os.sched_getaffinity(0) == before


@needs_cores
def test_processes_given_one_lock_folder_by_the_environment_never_share_a_core(tmp_path):
    """As compose's worker containers, each with a temporary folder of its own and the shared volume named."""
    with holding(tmp_path, CORES[2:]), claiming(tmp_path) as first, claiming(tmp_path) as second:
        assert {first, second} == set(CORES[:2])


@needs_cores
def test_processes_with_lock_folders_of_their_own_can_pin_to_one_core(tmp_path):
    """Why the folder must be shared: claims in another folder are not seen (here one core is left in each)."""
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    with (holding(mine, CORES[1:]), holding(theirs, CORES[1:]),
          claiming(mine) as first, claiming(theirs) as second):
        assert first == second == CORES[0]
