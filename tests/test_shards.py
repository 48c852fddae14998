"""Shard files and the training manifest, on a real Delta warehouse."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.shards import ShardError, ShardRecord, read_shard, records_to_table, write_shard
from warehouse.manifest import build_manifest, write_manifest
from warehouse.store import Warehouse
from warehouse.tables import FEATURE_SHARDS, SELECTION_MEMBERS, SELECTIONS


def _features(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 112, 112, 3), dtype=np.uint8),
            rng.standard_normal((n, 12, 35)).astype(np.float32))


def test_shard_round_trip_is_exact_and_atomic(tmp_path):
    frames, mfcc = _features(5)
    path = write_shard(tmp_path / "sub" / "clip.npz", frames, mfcc)
    assert path.is_absolute() and path.name == "clip.npz"
    assert [p.name for p in path.parent.iterdir()] == ["clip.npz"]  # no temp file left
    got_frames, got_mfcc = read_shard(path)
    np.testing.assert_array_equal(got_frames, frames)
    np.testing.assert_array_equal(got_mfcc, mfcc)
    with np.load(path) as raw:
        assert sorted(raw.files) == ["frames", "mfcc"]


@pytest.mark.parametrize(
    "frames, mfcc, message",
    [
        (np.zeros((3, 112, 112, 3), np.float32), np.zeros((3, 12, 35), np.float32), "uint8"),
        (np.zeros((3, 64, 64, 3), np.uint8), np.zeros((3, 12, 35), np.float32), "112"),
        (np.zeros((3, 112, 112, 3), np.uint8), np.zeros((2, 12, 35), np.float32), "mfcc"),
        (np.zeros((3, 112, 112, 3), np.uint8), np.zeros((3, 12, 35), np.float64), "float32"),
    ],
)
def test_bad_shard_content_is_refused(tmp_path, frames, mfcc, message):
    with pytest.raises(ShardError, match=message):
        write_shard(tmp_path / "bad.npz", frames, mfcc)
    assert not list(tmp_path.iterdir())


def test_unreadable_shards_name_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ShardError, match="corrupt.npz"):
        read_shard(corrupt)
    with pytest.raises(ShardError, match="absent.npz"):
        read_shard(tmp_path / "absent.npz")
    partial = tmp_path / "partial.npz"
    np.savez_compressed(partial, frames=np.zeros((1, 112, 112, 3), np.uint8))
    with pytest.raises(ShardError, match="partial.npz"):
        read_shard(partial)


def _record(cid: str, start: int, end: int, tmp_path) -> ShardRecord:
    return ShardRecord(cid, f"spk-{cid}", start, end, 25.0, str(tmp_path / f"{cid}.npz"))


def test_records_table_has_the_feature_shards_schema(tmp_path):
    table = records_to_table([_record("a", 3, 80, tmp_path)])
    assert table.schema == FEATURE_SHARDS.schema
    assert table.to_pylist()[0]["n_frames"] == 77


@pytest.fixture
def warehouse(tmp_path):
    store = Warehouse(tmp_path / "wh")
    store.upsert("feature_shards", records_to_table(
        [_record(c, 0, 70 + i, tmp_path) for i, c in enumerate(["c1", "c2", "c3", "c4"])]))
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
