"""Shard files and the training manifest, on a real Delta warehouse."""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fixtures.training_shards import shard_memory_peaks
from warehouse.features import CRC_CHUNK, ShardError, ShardRecord, open_shard, read_shard, records_to_table, write_shard
from warehouse.location import Location
from warehouse.manifest import build_manifest, write_manifest
from warehouse.store import Warehouse
from warehouse.tables import FEATURE_SHARDS, SELECTION_MEMBERS, SELECTIONS


def _features(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 112, 112, 3), dtype=np.uint8),
            rng.standard_normal((n, 12, 35)).astype(np.float32))


def test_shard_round_trip_is_exact_and_atomic(tmp_path):
    frames, mfcc = _features(5)
    name = write_shard(Location.of(tmp_path), "a clip/1", frames, mfcc)
    assert name == "shards/a_clip_1.npz"  # relative to the warehouse, file-safe
    path = tmp_path / name
    assert [p.name for p in path.parent.iterdir()] == ["a_clip_1.npz"]  # no temp file left
    got_frames, got_mfcc = read_shard(name, Location.of(tmp_path))
    np.testing.assert_array_equal(got_frames, frames)
    np.testing.assert_array_equal(got_mfcc, mfcc)
    with np.load(path) as raw:
        assert sorted(raw.files) == ["frames", "mfcc"]


def test_frames_given_one_by_one_write_the_bytes_np_savez_writes(tmp_path):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (9, 16, 16, 3), dtype=np.uint8)
    mfcc = rng.standard_normal((9, 12, 35)).astype(np.float32)
    np.savez(tmp_path / "numpy.npz", frames=frames, mfcc=mfcc)
    as_array = write_shard(Location.of(tmp_path / "a"), "c", frames, mfcc)
    one_by_one = write_shard(Location.of(tmp_path / "b"), "c", list(frames), mfcc)
    want = (tmp_path / "numpy.npz").read_bytes()
    assert (tmp_path / "a" / as_array).read_bytes() == want == (tmp_path / "b" / one_by_one).read_bytes()


def test_frames_one_by_one_that_differ_in_shape_are_refused_naming_the_shard(tmp_path):
    frames = [np.zeros((16, 16, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)]
    with pytest.raises(ShardError, match=r"c\.npz: frames differ in dtype or shape"):
        write_shard(Location.of(tmp_path), "c", frames, np.zeros((2, 12, 35), np.float32))
    assert not (tmp_path / "shards" / "c.npz").exists()


def test_a_long_span_cut_in_one_pass_and_written_takes_disk_not_memory(tmp_path):
    """The crops of a 2000-frame run (75 MB), cut as the frames stream past, spilled to a temporary file and
    written frame by frame: memory stays flat (stacking them for np.savez held them twice, and an hour of a
    steady face is 3.4 GB of crops)."""
    from fixtures.training_shards import peak_bytes
    from pipeline.crops import CropConfig, RunCrops

    n, config = 2000, CropConfig()
    frame = np.full((64, 64, 3), 90, np.uint8)
    crops_bytes = n * config.size * config.size * 3

    def cut_and_write() -> None:
        runs = RunCrops(config)
        for k in range(n):
            runs.add(frame, (10.0 + k % 3, 10.0, 50.0 + k % 3, 50.0))
        start, end, crops = runs.finish()
        write_shard(Location.of(tmp_path), "long", crops, np.zeros((end - start, 12, 35), np.float32))

    peak = peak_bytes(cut_and_write)
    # 20 MiB when measured: the MFCC (3.4 MB) and the shard writer's buffer (16 MiB); the crops, 75 MB, never
    assert peak < 24 * 2**20 < crops_bytes, (peak, crops_bytes)
    assert open_shard("shards/long.npz", Location.of(tmp_path)).n_frames == n



@pytest.mark.parametrize(
    "frames, mfcc, message",
    [
        (np.zeros((3, 112, 112, 3), np.float32), np.zeros((3, 12, 35), np.float32), "uint8"),
        (np.zeros((3, 64, 48, 3), np.uint8), np.zeros((3, 12, 35), np.float32), "S, S, 3"),
        (np.zeros((3, 112, 112, 3), np.uint8), np.zeros((2, 12, 35), np.float32), "mfcc"),
        (np.zeros((3, 112, 112, 3), np.uint8), np.zeros((3, 12, 35), np.float64), "float32"),
        (np.zeros((3, 112, 112, 3), np.uint8), np.full((3, 12, 35), np.nan, np.float32), "1260 of 1260 are NaN"),
        (np.zeros((3, 112, 112, 3), np.uint8), np.array([0, 0, np.inf] * 420, np.float32).reshape(3, 12, 35),
         "420 of 1260 are NaN or inf"),
    ],
)
def test_bad_shard_content_is_refused(tmp_path, frames, mfcc, message):
    with pytest.raises(ShardError, match=message):
        write_shard(Location.of(tmp_path), "bad", frames, mfcc)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("reader", [read_shard, open_shard])
def test_a_shard_with_a_nan_mfcc_value_is_refused_on_read(tmp_path, reader):
    """A shard written by other means than write_shard: training must not read its NaN."""
    frames, mfcc = _features(4)
    mfcc[2, 5, 7] = np.nan
    np.savez(tmp_path / "nan.npz", frames=frames, mfcc=mfcc)
    with pytest.raises(ShardError, match="nan.npz: mfcc values must be finite, 1 of 1680 are NaN"):
        reader(str(tmp_path / "nan.npz"))


def test_any_square_crop_size_is_a_shard(tmp_path):
    """The crop size is a setting (``CropConfig.size``): a 64-pixel shard is written and read back."""
    frames = np.zeros((2, 64, 64, 3), np.uint8)
    name = write_shard(Location.of(tmp_path), "small", frames, np.zeros((2, 12, 35), np.float32))
    assert read_shard(str(tmp_path / name))[0].shape == (2, 64, 64, 3)


@pytest.mark.parametrize("reader", [read_shard, open_shard])
def test_unreadable_shards_name_the_file(tmp_path, reader):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ShardError, match="corrupt.npz"):
        reader(str(corrupt))
    with pytest.raises(ShardError, match="absent.npz"):
        reader("absent.npz", Location.of(tmp_path))
    partial = tmp_path / "partial.npz"
    np.savez_compressed(partial, frames=np.zeros((1, 112, 112, 3), np.uint8))
    with pytest.raises(ShardError, match="partial.npz"):
        reader(str(partial))


@pytest.mark.parametrize("reader", [read_shard, open_shard])
@pytest.mark.parametrize("frames", [np.uint8(7), np.zeros((3, 8, 8), np.uint8)])
def test_an_npz_whose_frames_are_no_images_is_refused_naming_it(tmp_path, reader, frames):
    np.savez(tmp_path / "odd.npz", frames=frames, mfcc=np.zeros((3, 12, 35), np.float32))
    with pytest.raises(ShardError, match=r"odd.npz: frames must be uint8 \(T, S, S, 3\)"):
        reader(str(tmp_path / "odd.npz"))


def test_a_shard_read_by_window_gives_the_arrays_of_the_whole_read(tmp_path):
    name = write_shard(Location.of(tmp_path), "clip", *_features(40))
    frames, mfcc = read_shard(name, Location.of(tmp_path))
    with open_shard(name, Location.of(tmp_path)) as shard:
        assert shard.n_frames == 40
        for start, stop in [(0, 40), (0, 1), (39, 40), (7, 30), (12, 12), (40, 40)]:
            np.testing.assert_array_equal(shard.frames(start, stop), frames[start:stop])
            np.testing.assert_array_equal(shard.mfcc(start, stop), mfcc[start:stop])
        assert shard.mfcc(12, 12).shape == (0, 12, 35) and shard.mfcc(3, 4).dtype == np.float32


@pytest.mark.parametrize("array", ["frames", "mfcc"])
@pytest.mark.parametrize("start, stop", [(30, 41), (-1, 3), (5, 4), (41, 41)])
def test_a_window_outside_the_shard_is_an_index_error(tmp_path, array, start, stop):
    name = write_shard(Location.of(tmp_path), "clip", *_features(40))
    with open_shard(name, Location.of(tmp_path)) as shard:
        with pytest.raises(IndexError, match=f"clip.npz: {array} {start}:{stop} of 40"):
            getattr(shard, array)(start, stop)


def test_a_nan_in_the_last_chunk_of_a_long_mfcc_is_counted_at_open(tmp_path):
    """open_shard counts non-finite values a chunk at a time (CRC_CHUNK bytes, some 5,000 frames): a NaN in the
    first chunk and an inf in the last of 12,000 frames are both counted, in read_shard's message."""
    n = 12_000
    mfcc = np.zeros((n, 12, 35), np.float32)
    assert mfcc.nbytes > 2 * CRC_CHUNK
    mfcc[0, 0, 0], mfcc[n - 1, 11, 34] = np.nan, np.inf
    np.savez(tmp_path / "long.npz", frames=np.zeros((n, 8, 8, 3), np.uint8), mfcc=mfcc)
    for reader in (read_shard, open_shard):
        with pytest.raises(ShardError, match=f"long.npz: mfcc values must be finite, 2 of {mfcc.size} are NaN or inf"):
            reader(str(tmp_path / "long.npz"))


def test_a_window_of_a_long_shard_is_read_without_the_rest_of_it(tmp_path):
    """A 5-minute span's shard (282 MB of frames): writing it, and opening it to read one 70-frame window,
    each hold under a tenth of its frames' bytes (reading it whole holds all of them)."""
    peaks = shard_memory_peaks(Location.of(tmp_path))
    (tmp_path / "shards" / "long.npz").unlink()  # not kept with pytest's last temporary folders
    assert 70 * 112 * 112 * 3 <= peaks["window"] < peaks["frames"] / 10, peaks
    assert peaks["write"] < peaks["frames"] / 10, peaks


def test_an_hour_long_shard_is_opened_and_read_by_window_without_its_mfcc_in_memory(tmp_path):
    """An hour at 25 fps (90,000 frames, 151 MB of MFCC; 8-pixel crops keep the file small): opening it, which
    checks every MFCC value, and reading one 70-frame window of frames and MFCC hold under a tenth of the
    MFCC's bytes (11 MB when measured; 189 MB when open_shard held the MFCC whole)."""
    peaks = shard_memory_peaks(Location.of(tmp_path), 90_000, size=8)
    (tmp_path / "shards" / "long.npz").unlink()
    assert 70 * 12 * 35 * 4 <= peaks["window"] < peaks["mfcc"] / 10, peaks


@pytest.mark.parametrize("deflated", [("frames", "mfcc"), ("frames",), ("mfcc",)])
def test_a_deflated_shard_is_read_whole_and_refused_by_window(tmp_path, deflated):
    """A deflated array (shards written before they were stored) sits at no fixed offset: open_shard names the
    member and the cause, whichever array it is."""
    frames, mfcc = _features(3)
    with zipfile.ZipFile(tmp_path / "old.npz", "w") as archive:
        for name, array in [("frames", frames), ("mfcc", mfcc)]:
            with io.BytesIO() as npy:
                np.save(npy, array)
                compression = zipfile.ZIP_DEFLATED if name in deflated else zipfile.ZIP_STORED
                archive.writestr(f"{name}.npy", npy.getvalue(), compress_type=compression)
    got_frames, got_mfcc = read_shard(str(tmp_path / "old.npz"))
    np.testing.assert_array_equal(got_frames, frames)
    np.testing.assert_array_equal(got_mfcc, mfcc)
    with pytest.raises(ShardError, match=rf"old.npz: cannot be read \({deflated[0]}.npy is deflated"):
        open_shard(str(tmp_path / "old.npz"))


def test_a_shard_cut_short_after_it_was_opened_is_named_when_a_window_is_gone(tmp_path):
    name = write_shard(Location.of(tmp_path), "clip", *_features(10))
    with open_shard(name, Location.of(tmp_path)) as shard:
        os.truncate(tmp_path / name, shard.stored_frames.data_at + 5 * 112 * 112 * 3)
        assert shard.frames(0, 5).shape == (5, 112, 112, 3)
        with pytest.raises(ShardError, match="clip.npz: cannot be read .*the file ends after"):
            shard.frames(4, 6)


def _record(cid: str, start: int, end: int) -> ShardRecord:
    return ShardRecord(cid, f"spk-{cid}", start, end, 25.0, f"shards/{cid}.npz")


def test_records_table_has_the_feature_shards_schema():
    table = records_to_table([_record("a", 3, 80)])
    assert table.schema == FEATURE_SHARDS.schema
    assert table.to_pylist()[0]["n_frames"] == 77


@pytest.fixture
def warehouse(tmp_path):
    store = Warehouse(tmp_path / "wh")
    store.upsert("feature_shards", records_to_table(
        [_record(c, 0, 70 + i) for i, c in enumerate(["c1", "c2", "c3", "c4"])]))
    return store


def _select(store: Warehouse, sid: str, created: datetime, members: list[str]) -> None:
    store.upsert("selections", pa.Table.from_pylist(
        [{"selection_id": sid, "created_at": created, "method": "algorithm1"}], schema=SELECTIONS.schema))
    store.upsert("selection_members", pa.Table.from_pylist(
        [{"selection_id": sid, "clip_id": c, "rank": r} for r, c in enumerate(members)],
        schema=SELECTION_MEMBERS.schema))


def test_manifest_without_selection_holds_every_shard(warehouse):
    manifest = build_manifest(warehouse)
    assert manifest.schema == FEATURE_SHARDS.schema
    assert manifest["clip_id"].to_pylist() == ["c1", "c2", "c3", "c4"]
    assert manifest["shard_uri"].to_pylist()[0] == f"{warehouse.uri}/shards/c1.npz"  # resolved for readers


def test_a_moved_warehouse_still_finds_its_shards(tmp_path):
    """The table names shards relative to the warehouse: copy the folder elsewhere, and the copy reads its own."""
    store = Warehouse(tmp_path / "wh")
    frames, mfcc = _features(3)
    name = write_shard(store.location, "c1", frames, mfcc)
    store.upsert("feature_shards", records_to_table([ShardRecord("c1", None, 0, 3, 25.0, name)]))
    shutil.copytree(tmp_path / "wh", tmp_path / "moved")
    shutil.rmtree(tmp_path / "wh")
    uri = build_manifest(Warehouse(tmp_path / "moved"))["shard_uri"].to_pylist()[0]
    assert uri == str(tmp_path / "moved" / "shards" / "c1.npz")
    np.testing.assert_array_equal(read_shard(uri)[0], frames)


def test_manifest_of_the_latest_or_a_named_selection(warehouse, tmp_path, caplog):
    _select(warehouse, "old", datetime(2026, 1, 1, tzinfo=UTC), ["c4", "c1"])
    # "c9" has no shard (no valid span): it is left out, with a warning.
    _select(warehouse, "new", datetime(2026, 2, 1, tzinfo=UTC), ["c3", "c9", "c2"])
    latest = build_manifest(warehouse)
    assert latest["clip_id"].to_pylist() == ["c3", "c2"]
    assert latest["rank"].to_pylist() == [0, 2]
    assert latest.column_names == [*FEATURE_SHARDS.schema.names, "rank"]
    assert "no feature shard" in caplog.text
    old = build_manifest(warehouse, "old")
    assert old["clip_id"].to_pylist() == ["c4", "c1"]
    assert old["n_frames"].to_pylist() == [73, 70]
    write_manifest(old, tmp_path / "m.parquet")
    assert pq.read_table(tmp_path / "m.parquet").equals(old)
    with pytest.raises(ValueError, match="'nope' not found"):
        build_manifest(warehouse, "nope")
