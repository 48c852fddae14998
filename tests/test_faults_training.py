"""Training's fault matrix: SIGKILL inside a checkpoint or shard write, a full disk, corrupt files.

Kills are real: the process (``talkface train``, or a script writing a shard as
the faces stage does) runs with ``TALKFACE_FAULT=<point>`` and SIGKILLs itself
at that fault point (``warehouse.faults``). A full disk is a small tmpfs
mounted for the test (we run as root, as CI does); where mounting is not
allowed, a file-size limit on the child process (``prlimit``) makes the same
writes fail with EFBIG instead of ENOSPC. Every run uses one OpenMP thread:
CPU training is bit-for-bit repeatable only with the same thread count.
"""

from __future__ import annotations

import errno
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures.disks import small_tmpfs
from fixtures.training_shards import synthetic_clip, write_shards
from talkface_cli import cli, run_cli
from training.config import tiny_config
from training.data import clips_from_manifest, read_manifest
from training.export import export_name, read_export
from training.train import latest_checkpoint, load_checkpoint, train
from warehouse.durable import load_npz, write_atomically
from warehouse.faults import FAULT_ENV
from warehouse.features import ShardError, open_shard, read_shard, write_shard
from warehouse.location import Location

REPO = Path(__file__).resolve().parents[1]
TALKFACE = Path(sys.executable).with_name("talkface")
DISK_BYTES = 1 << 20  # the small disk: more than a tiny shard and TensorBoard's logs, less than a generator export


def _env(fault: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    env["OMP_NUM_THREADS"] = "1"
    return {**env, FAULT_ENV: fault} if fault else env


def _talkface(*args: object, fault: str | None = None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """The real ``talkface`` command in a subprocess."""
    return subprocess.run([*prefix, str(TALKFACE), *map(str, args)], cwd=REPO, env=_env(fault),
                          capture_output=True, text=True, timeout=120)


def _python(script: str, *args: object, fault: str | None = None,
            prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-c", script, *map(str, args)], cwd=REPO, env=_env(fault),
                          capture_output=True, text=True, timeout=60)


def _error_line(done: subprocess.CompletedProcess) -> str:
    """The CLI's one-line error: exit status 2, no traceback, the last line on stderr."""
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.stderr.strip().splitlines()[-1]


def _files(folder: Path) -> list[str]:
    """What a run folder holds besides TensorBoard logs, hidden temporary files included."""
    return sorted(p.name for p in folder.iterdir() if p.name != "tb")


def _damage(path: Path, how: str) -> None:
    """Cut the file in half, or flip 8 bytes in its middle (tensor or pixel data, not a zip header)."""
    data = bytearray(path.read_bytes())
    if how == "truncated":
        del data[len(data) // 2:]
    else:
        middle = len(data) // 2
        data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return write_shards(tmp_path_factory.mktemp("shards"), n_clips=3, n_frames=12)


@pytest.fixture(scope="module")
def every_two(tmp_path_factory) -> Path:
    """The tiny config with a checkpoint every 2 steps: ckpt 2, 4, 6, 8 and 10."""
    path = tmp_path_factory.mktemp("config") / "every_two.toml"
    path.write_text('base = "tiny"\n[train]\ncheckpoint_every = 2\n')
    return path


@pytest.fixture(scope="module")
def undisturbed(manifest, every_two, tmp_path_factory) -> Path:
    """The run folder of an uninterrupted ``talkface train`` with ``every_two``."""
    run = tmp_path_factory.mktemp("undisturbed") / "run"
    done = _talkface("train", "--manifest", manifest, "--config", every_two, "--out", run)
    assert done.returncode == 0, done.stderr[-3000:]
    return run


def _same(a: object, b: object) -> bool:
    """Two checkpoint dicts (or parts) hold the same keys, numbers and bit-identical tensors."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.equal(a, b)
    return a == b


@pytest.mark.integration
@pytest.mark.parametrize("fault, last, exported", [
    ("export.write:2", 2, 2),  # generator export 4 complete in its temporary file, not yet renamed
    ("checkpoint.write:2", 2, 4),  # export 4 written, ckpt 4 complete in its temporary file
    ("checkpoint.written:2", 4, 4),  # ckpt 4 renamed, killed before step 5
])
def test_sigkill_in_checkpoint_write_then_resume_ends_identical(manifest, every_two, undisturbed, tmp_path,
                                                                 fault, last, exported):
    run = tmp_path / "run"
    killed = _talkface("train", "--manifest", manifest, "--config", every_two, "--out", run, fault=fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    kept = [f"ckpt_{step:08d}.pt" for step in range(2, last + 1, 2)]
    assert [name for name in _files(run) if name.startswith("ckpt_")] == kept
    assert [name for name in _files(run) if name.startswith("generator_")] == [  # each export before its ckpt
        export_name(step) for step in range(2, exported + 1, 2)]
    temporary = [name for name in _files(run) if name.startswith(".")]
    assert len(temporary) == (0 if fault.endswith("written:2") else 1), temporary
    assert latest_checkpoint(run).name == kept[-1]  # a temporary file is never taken for a checkpoint
    assert load_checkpoint(run)["step"] == last

    resumed = _talkface("train", "--manifest", manifest, "--config", every_two, "--out", run)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {run / kept[-1]}" in resumed.stderr
    assert _files(run) == _files(undisturbed)  # every checkpoint and export once, the killed write's temporary gone
    assert _same(load_checkpoint(run), load_checkpoint(undisturbed))  # weights, optimisers, step, config
    for name in _files(undisturbed):
        if name.startswith("generator_"):  # weights, config, variant, step
            assert _same(read_export(run / name), read_export(undisturbed / name)), name


SHARD_SCRIPT = """
import sys
import numpy as np
from warehouse.features import write_shard
from warehouse.location import Location
root = Location.of(sys.argv[1])
for clip, n in zip(sys.argv[2::2], map(int, sys.argv[3::2])):
    rng = np.random.default_rng(n)  # noise crops: incompressible, a shard takes ~38 kB per frame
    try:
        write_shard(root, clip, rng.integers(0, 256, (n, 112, 112, 3), np.uint8), np.zeros((n, 12, 35), np.float32))
    except OSError as exc:
        print(exc)
        sys.exit(3)
"""


@pytest.mark.integration
def test_sigkill_in_shard_write_leaves_no_shard_and_the_rewrite_succeeds(tmp_path):
    path = tmp_path / "shards" / "clip.npz"
    killed = _python(SHARD_SCRIPT, tmp_path, "clip", 4, fault="shard.write")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    leftovers = list(path.parent.iterdir())
    assert not path.exists() and len(leftovers) == 1 and leftovers[0].suffix == ".tmp"
    frames, mfcc = synthetic_clip(4, seed=1)
    # the rerun: the killed write's temporary file is removed
    assert write_shard(Location.of(tmp_path), "clip", frames, mfcc) == "shards/clip.npz"
    assert list(path.parent.iterdir()) == [path]
    np.testing.assert_array_equal(read_shard("shards/clip.npz", Location.of(tmp_path))[0], frames)


@dataclass(frozen=True)
class SmallDisk:
    """A folder where a file larger than ``DISK_BYTES`` cannot be written by a child process."""

    folder: Path
    prefix: tuple[str, ...]  # command prefix for the child: empty on tmpfs, prlimit otherwise
    reason: str  # the OS error's text: ENOSPC on tmpfs, EFBIG under prlimit


@pytest.fixture
def small_disk(tmp_path) -> Iterator[SmallDisk]:
    """A ``DISK_BYTES`` tmpfs, or where mounting is not allowed a file-size limit on the child."""
    folder = tmp_path / "disk"
    with small_tmpfs(folder, DISK_BYTES) as mounted:
        if mounted:
            yield SmallDisk(folder, (), os.strerror(errno.ENOSPC))
        elif shutil.which("prlimit"):
            yield SmallDisk(folder, ("prlimit", f"--fsize={DISK_BYTES}"), os.strerror(errno.EFBIG))
        else:
            pytest.skip("cannot mount a tmpfs and no prlimit to simulate a full disk")


@pytest.mark.integration
def test_full_disk_during_shard_write_is_one_clear_error_and_no_partial_shard(small_disk):
    shards = small_disk.folder / "shards"
    small, big = shards / "small.npz", shards / "big.npz"
    done = _python(SHARD_SCRIPT, small_disk.folder, "small", 4, "big", 60, prefix=small_disk.prefix)  # 150 kB, 2.3 MB
    assert done.returncode == 3, done.stderr[-3000:]
    assert done.stdout.strip() == f"{big}: could not write shard: {small_disk.reason}"
    assert list(shards.iterdir()) == [small]  # no partial big.npz, no temporary file
    assert len(read_shard(str(small))[0]) == 4


@pytest.mark.integration
def test_full_disk_during_checkpoint_write_is_one_clear_error_and_no_partial_checkpoint(manifest, small_disk):
    run = small_disk.folder / "run"
    done = _talkface("train", "--manifest", manifest, "--config", "tiny", "--steps", "2", "--out", run,
                     prefix=small_disk.prefix)
    # The generator export, written first, is the first file too big for the disk.
    assert _error_line(done) == f"talkface: error: {run / export_name(2)}: could not write export: " \
                                f"{small_disk.reason}"
    assert _files(run) == []
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        latest_checkpoint(run)


def test_failed_write_of_another_kind_propagates_and_leaves_nothing(tmp_path):
    def broken(handle) -> None:
        handle.write(b"half a file")
        raise RuntimeError("serialiser bug")

    with pytest.raises(RuntimeError, match="serialiser bug"):
        write_atomically(tmp_path / "x.pt", broken, "checkpoint")
    assert list(tmp_path.iterdir()) == []


def test_a_concurrent_writer_of_the_same_file_keeps_its_temporary_file(tmp_path):
    """Two refreshes on one warehouse may write the same shard at once: each rename must find its file."""
    path = tmp_path / "clip.npz"
    first_half_written, go_on = threading.Event(), threading.Event()
    errors: list[OSError] = []

    def slow(handle) -> None:
        handle.write(b"first")
        first_half_written.set()
        go_on.wait(30)

    def first_writer() -> None:
        try:
            write_atomically(path, slow, "shard")
        except OSError as exc:
            errors.append(exc)

    thread = threading.Thread(target=first_writer)
    thread.start()
    assert first_half_written.wait(30)
    write_atomically(path, lambda handle: handle.write(b"second"), "shard")  # meets the first's file in progress
    assert path.read_bytes() == b"second"
    go_on.set()
    thread.join(30)
    assert errors == [] and path.read_bytes() == b"first"  # the last rename wins, whole
    assert list(tmp_path.iterdir()) == [path]


def test_an_abandoned_empty_temporary_file_is_removed_once_old(tmp_path):
    """A writer killed between creating and locking its file leaves it empty: young, it may be a live
    writer's; old, it is removed."""
    path = tmp_path / "clip.npz"
    abandoned = tmp_path / ".clip.npz.abc123.tmp"
    abandoned.touch()
    write_atomically(path, lambda handle: handle.write(b"x"), "shard")
    assert abandoned.exists()
    os.utime(abandoned, (0, 0))
    write_atomically(path, lambda handle: handle.write(b"y"), "shard")
    assert list(tmp_path.iterdir()) == [path] and path.read_bytes() == b"y"


@pytest.fixture(scope="module")
def trained(manifest, tmp_path_factory) -> Path:
    """A run folder holding ckpt_00000002.pt and generator_00000002.safetensors of the tiny config."""
    run = tmp_path_factory.mktemp("trained") / "run"
    train(tiny_config(), clips_from_manifest(read_manifest(manifest), 4, manifest.parent), run, steps=2)
    return run


@pytest.mark.integration
@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_corrupt_checkpoint_is_refused_naming_it(manifest, trained, tmp_path, capsys, how):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    ckpt = run / "ckpt_00000002.pt"
    _damage(ckpt, how)
    message = f"{ckpt}: not a readable talkface checkpoint"
    with pytest.raises(ValueError, match="not a readable talkface checkpoint") as raised:
        load_checkpoint(run)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)

    resumed = _talkface("train", "--manifest", manifest, "--config", "tiny", "--out", run)
    assert _error_line(resumed).startswith(f"talkface: error: {message}")
    assert _files(run) == ["ckpt_00000002.pt", export_name(2)]  # training did not start

    args = ["generate", "--image", tmp_path / "face.png", "--audio", tmp_path / "speech.wav",
            "--checkpoint", ckpt, "--out", tmp_path / "out.mp4"]
    assert run_cli(cli, "talkface", list(map(str, args))) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"talkface: error: {message}")


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_corrupt_generator_export_is_refused_naming_it(trained, tmp_path, capsys, how):
    """safetensors has no checksum: the CRC-32 in the export's header catches a flipped weight."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    export = run / export_name(2)
    _damage(export, how)
    args = ["generate", "--image", tmp_path / "face.png", "--audio", tmp_path / "speech.wav",
            "--checkpoint", run, "--out", tmp_path / "out.mp4"]  # a run folder: its newest export
    assert run_cli(cli, "talkface", list(map(str, args))) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"talkface: error: {export}: not a readable generator export ("), line


@pytest.mark.parametrize("where, offset", [
    (b'"variant"', 1),  # the entry's name (variant -> wariant): was a KeyError traceback
    (b'\\"z_audio\\": 32', 13),  # a layer size (32 -> 22): a RuntimeError traceback from load_state_dict
    (b'{\\"name\\": \\"cae\\"', 3),  # a schedule stage's field (name -> oame): a TypeError traceback
    (b'\\"lr\\"', 2),  # a config field (lr -> mr): a ValueError naming no file
])
def test_damaged_generator_export_header_is_refused_naming_it(trained, tmp_path, capsys, where, offset):
    """The CRC-32 covers the weights, not the config and variant in the header: one flipped bit there."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    export = run / export_name(2)
    data = bytearray(export.read_bytes())
    data[data.index(where) + offset] ^= 0x01
    export.write_bytes(bytes(data))
    args = ["generate", "--image", tmp_path / "face.png", "--audio", tmp_path / "speech.wav",
            "--checkpoint", export, "--out", tmp_path / "out.mp4"]
    assert run_cli(cli, "talkface", list(map(str, args))) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"talkface: error: {export}: not a "), line


@pytest.mark.parametrize("reader", [read_shard, open_shard])
@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_corrupt_shard_is_refused_naming_it(tmp_path, how, reader):
    path = tmp_path / write_shard(Location.of(tmp_path), "clip", *synthetic_clip(12, seed=0))
    _damage(path, how)
    with pytest.raises(ShardError, match=re.escape(f"shard {path}: cannot be read")):
        reader(str(path))


@pytest.mark.parametrize("reader", [read_shard, open_shard])
@pytest.mark.parametrize("where", ["first", "last"])
def test_a_flipped_byte_in_the_mfcc_is_refused_naming_the_shard(tmp_path, reader, where):
    """One low mantissa bit of one MFCC value: still finite, so only the MFCC member's CRC-32 can refuse it,
    at opening (not at the window that would hold it)."""
    path = tmp_path / write_shard(Location.of(tmp_path), "clip", *synthetic_clip(12, seed=0))
    with open_shard(str(path)) as shard:
        stored = shard.stored_mfcc
    offset = stored.data_at + (0 if where == "first" else 12 * stored.row_bytes - 4)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01  # little-endian float32: the value's lowest mantissa bit
    path.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=re.escape(f"shard {path}: cannot be read (") + ".*mfcc.npy"):
        reader(str(path))


@pytest.mark.integration
def test_training_on_a_corrupt_shard_stops_with_one_line_naming_it(tmp_path):
    manifest = write_shards(tmp_path, n_clips=1, n_frames=12)
    shard = tmp_path / "shards" / "clip000.npz"
    _damage(shard, "flipped")
    config = tmp_path / "workers.toml"  # the shard is read in DataLoader worker processes
    config.write_text('base = "tiny"\n[train]\nnum_workers = 2\n')
    done = _talkface("train", "--manifest", manifest, "--config", config, "--out", tmp_path / "run")
    assert _error_line(done).startswith(f"talkface: error: shard {shard}: cannot be read (")
    assert not list((tmp_path / "run").glob("ckpt_*"))


def test_every_single_byte_flip_in_a_shard_is_refused_or_harmless(tmp_path):
    """np.load checks a member's CRC-32 only when its reads reach the member's end: a flip that
    shortens an array header loads wrong numbers (with this zlib, one such byte in this shard).
    The reader behind read_shard must refuse every such file."""
    frames, mfcc = synthetic_clip(1, seed=0)
    data = (tmp_path / write_shard(Location.of(tmp_path), "clip", frames, mfcc)).read_bytes()
    for i in range(len(data)):
        damaged = io.BytesIO(data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1:])
        try:
            arrays = load_npz(damaged)
            got_frames, got_mfcc = arrays["frames"], arrays["mfcc"]
        except Exception:  # a refusal: read_shard turns any of them into ShardError
            continue
        assert np.array_equal(got_frames, frames) and np.array_equal(got_mfcc, mfcc), i


def test_every_single_byte_flip_in_a_shard_is_refused_or_harmless_when_read_by_window(tmp_path):
    """open_shard finds the frames by the zip's and the .npy's headers and checks their CRC-32 itself:
    no flip may shift or change the frames or MFCC it gives. (8-pixel crops keep the file small.)"""
    frames, mfcc = synthetic_clip(1, seed=0)
    frames = frames[:, ::14, ::14]
    data = (tmp_path / write_shard(Location.of(tmp_path), "clip", frames, mfcc)).read_bytes()
    damaged = tmp_path / "damaged.npz"
    for i in range(len(data)):
        damaged.write_bytes(data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1:])
        try:
            with open_shard(str(damaged)) as shard:
                got_frames, got_mfcc = shard.frames(0, shard.n_frames), shard.mfcc(0, shard.n_frames)
        except ShardError:
            continue
        assert np.array_equal(got_frames, frames) and np.array_equal(got_mfcc, mfcc), i
