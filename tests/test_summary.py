"""The refresh's closing summary, counted from real warehouse tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from pipeline.stage import Reject
from pipeline.summary import summarize
from warehouse.store import Warehouse
from warehouse.tables import table_spec


def test_a_clip_rejected_by_two_stages_counts_once_among_the_rejected(tmp_path):
    """'rejected: N' counted reject rows: a clip without subtitles and with bad media counted 2 of 'clips in: 1'."""
    store = Warehouse(tmp_path / "wh")
    at = datetime(2026, 11, 27, tzinfo=UTC)
    rows = [Reject("a", "subtitles", "no_subtitles", "a.mp4: none").to_row(at),
            Reject("a", "clips", "bad_media", "a.mp4: not a video").to_row(at),
            Reject("b", "faces", "no_face", "b.mp4: no face").to_row(at)]
    store.upsert("rejects", pa.Table.from_pylist(rows, schema=table_spec("rejects").schema))
    summary = summarize(store, ["a", "b", "c"])
    assert summary.rejected_clips == 2
    assert summary.rejected == {"subtitles: no_subtitles": 1, "clips: bad_media": 1, "faces: no_face": 1}
    lines = summary.lines()
    assert lines[0] == "clips in: 3"
    assert "rejected: 2" in lines and "  clips: bad_media: 1" in lines
    assert lines[-1].startswith("  (`talkface rejects --list` says why")
    table = summary.markdown().splitlines()  # the refresh flow's artifact: the same rows, as a table
    assert table[:3] == ["| | |", "|---|---|", "| clips in | 3 |"]
    assert "| &nbsp;&nbsp;faces: no_face | 1 |" in table and table[-1].startswith("`talkface rejects --list`")
    assert not summarize(store, ["c"]).lines()[-1].startswith("  (")  # no reject among the clips asked about


def test_a_clip_with_neither_subtitles_nor_a_subtitles_reject_waits(tmp_path):
    """A remote clip whose site was unavailable has nothing written: the summary says it waits, and a
    clip with subtitles or rejected by the subtitles stage does not."""
    store = Warehouse(tmp_path / "wh")
    cue = {"clip_id": "a", "cue": 0, "start_s": 0.0, "end_s": 1.0, "text_raw": "hi", "text": "hi", "kind": "manual",
           "lang": "en"}
    store.upsert("subtitles", pa.Table.from_pylist([cue], schema=table_spec("subtitles").schema))
    reject = Reject("b", "subtitles", "no_english_subtitles", "b: none").to_row(datetime(2026, 11, 27, tzinfo=UTC))
    store.upsert("rejects", pa.Table.from_pylist([reject], schema=table_spec("rejects").schema))
    summary = summarize(store, ["a", "b", "c"])
    assert (summary.subtitled, summary.rejected_clips, summary.waiting) == (1, 1, 1)
    assert summary.lines()[:3] == ["clips in: 3", "with subtitles: 1",
                                   "waiting for subtitles: 1 (source unavailable; tried again next run)"]
    assert not any(line.startswith("waiting for subtitles") for line in summarize(store, ["a", "b"]).lines())


def test_a_clip_with_subtitles_but_neither_media_nor_a_reject_waits_for_its_media(tmp_path):
    """A remote clip whose media the clips stage could not fetch (the site refused, or no --download-media)
    stopped after its subtitles, and the summary said only "with subtitles: 3, aligned: 1"."""
    store = Warehouse(tmp_path / "wh")
    cues = [{"clip_id": c, "cue": 0, "start_s": 0.0, "end_s": 1.0, "text_raw": "hi", "text": "hi", "kind": "manual",
             "lang": "en"} for c in ("a", "b", "c")]
    store.upsert("subtitles", pa.Table.from_pylist(cues, schema=table_spec("subtitles").schema))
    clip = {"clip_id": "a", "speaker_id": "s", "source": "a", "video_uri": "/m/a.mp4", "start_s": 0.0, "end_s": 2.0,
            "fps": 25.0, "width": 64, "height": 64, "has_audio": True}
    store.upsert("clips", pa.Table.from_pylist([clip], schema=table_spec("clips").schema))
    reject = Reject("b", "clips", "bad_media", "b: not a video").to_row(datetime(2026, 11, 27, tzinfo=UTC))
    store.upsert("rejects", pa.Table.from_pylist([reject], schema=table_spec("rejects").schema))
    summary = summarize(store, ["a", "b", "c"])
    assert (summary.subtitled, summary.waiting, summary.waiting_media) == (3, 0, 1)
    assert "waiting for media: 1 (source unavailable, or a remote source without --download-media; tried again " \
           "next run)" in summary.lines()
