"""The faces stage against a real Delta warehouse: what is pending, what gets written."""

from __future__ import annotations

from dataclasses import replace

import pyarrow as pa
import pytest

from fixtures.faces_media import AOC, SUN, shared
from pipeline.corpus import ClipSpec
from pipeline.faces_stage import ClipInput, FacesConfig, process_clip
from pipeline.refresh_stages import RefreshSettings, stage_named
from pipeline.spans import SpanConfig
from pipeline.stage import pending, read_work, write_results
from warehouse.manifest import build_manifest
from warehouse.store import Warehouse
from warehouse.tables import CLIPS, PHONEME_HISTOGRAMS


@pytest.mark.integration
def test_batch_writes_poses_spans_shards_rejects_and_is_not_pending_again(tmp_path):
    store = Warehouse(tmp_path / "wh")
    store.upsert("clips", pa.Table.from_pylist([
        {"clip_id": "aoc", "speaker_id": "s1", "video_uri": str(shared(AOC)), "start_s": 0.0, "end_s": 3.0},
        {"clip_id": "sun", "speaker_id": "s2", "video_uri": str(shared(SUN)), "start_s": 0.0, "end_s": 4.0},
        {"clip_id": "unaligned", "speaker_id": "s3", "video_uri": str(AOC), "start_s": 0.0, "end_s": 3.0},
    ], schema=CLIPS.schema))
    store.upsert("phoneme_histograms", pa.Table.from_pylist(
        [{"clip_id": c, "n_phones": 1} for c in ("aoc", "sun")], schema=PHONEME_HISTOGRAMS.schema))
    ids = ["aoc", "sun", "unaligned"]
    faces = stage_named("faces")
    assert pending(store, faces, ids) == ["aoc", "sun"]

    config = FacesConfig(span=SpanConfig(min_frames=50))
    work = read_work(store, faces, [ClipSpec(c, c) for c in pending(store, faces, ids)])
    write_results(store, faces, faces.compute(work, RefreshSettings(store.uri, faces=config)))
    assert pending(store, faces, ids) == []
    assert (tmp_path / "wh" / "shards" / "aoc.npz").is_file()
    assert store.read("poses").num_rows == 75
    assert store.read("clip_spans")["clip_id"].to_pylist() == ["aoc"]
    rejects = store.read("rejects").to_pylist()
    assert [(r["clip_id"], r["stage"], r["reason"]) for r in rejects] == [("sun", "faces", "no_audio")]
    manifest = build_manifest(store)
    assert manifest["clip_id"].to_pylist() == ["aoc"] and manifest["n_frames"][0].as_py() >= 50

    # Re-running a clip with fewer frames replaces its poses instead of leaving stale rows.
    clip = ClipInput.from_row(store.read_clips("clips", ["aoc"]).to_pylist()[0])
    write_results(store, faces, [process_clip(replace(clip, end_s=2.4), store.uri, config)])
    assert store.read("poses").num_rows == 60
    assert store.read("feature_shards").num_rows == 1
