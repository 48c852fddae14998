"""``talkface rejects``: counts, listing and retry of rejected clips, on real Delta tables; the retry end to end
with the subtitles stage fetching from a real loopback HTTP site."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from cli_contract import run_cli
from fixtures.web import SiteHandler, serve
from pipeline.corpus import ClipSpec
from pipeline.ingest import IngestConfig
from pipeline.refresh_stages import RefreshSettings, stage_named
from pipeline.rejects_cli import rejects
from pipeline.stage import ClipResult, Reject, pending, run_stages, write_results
from pipeline.subtitle_fetch import FetchConfig
from warehouse.store import Warehouse
from warehouse.tables import table_spec

VTT = "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nhello from the server\n"
WEB_PAGE = "<!DOCTYPE html><html><body>Before you continue</body></html>"

REJECTED = [  # (clip, stage, reason)
    ("a", "subtitles", "fetch_failed"),
    ("b", "subtitles", "fetch_failed"),
    ("c", "subtitles", "no_english_subtitles"),
    ("d", "align", "low_coverage"),
    ("e", "faces", "no_face"),
    ("it's", "faces", "no_face"),
]


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, list[str], str]:
    code = run_cli(rejects, "talkface rejects", list(args))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


@pytest.fixture()
def warehouse(tmp_path: Path) -> Warehouse:
    """A warehouse a refresh has run on, with the rejects of ``REJECTED`` written by the stage runner."""
    store = Warehouse(tmp_path / "wh")
    for name in ("subtitles", "align", "faces"):
        write_results(store, stage_named(name), [ClipResult(c, {}, Reject(c, stage, reason, f"{c}: why"))
                                                 for c, stage, reason in REJECTED if stage == name])
    return store


def rejected(store: Warehouse) -> set[tuple[str, str, str]]:
    return {(r["clip_id"], r["stage"], r["reason"]) for r in store.read("rejects").to_pylist()}


def test_counts_by_stage_in_run_order_then_by_frequency(warehouse: Warehouse, capsys) -> None:
    code, out, _ = run(capsys, "--warehouse", warehouse.uri)
    assert code == 0 and out == [f"warehouse: {warehouse.uri}", "rejects: 6 (6 clips)",
                                 "  subtitles: fetch_failed          2",
                                 "  subtitles: no_english_subtitles  1",
                                 "  align: low_coverage              1",
                                 "  faces: no_face                   2"]


def test_filters_narrow_the_listing_and_combine(warehouse: Warehouse, capsys) -> None:
    code, out, _ = run(capsys, "--warehouse", warehouse.uri, "--stage", "faces", "--stage", "subtitles",
                       "--reason", "no_face", "--reason", "fetch_failed", "--clip", "it's", "--clip", "a", "--list")
    assert code == 0
    assert out[1] == ("rejects matching --stage faces --stage subtitles --reason no_face --reason fetch_failed "
                      "--clip it's --clip a: 2 (2 clips)")
    listed = [line.split("\t") for line in out[-2:]]  # clip, stage, reason, when (UTC), detail
    assert [row[:3] + row[4:] for row in listed] == [["a", "subtitles", "fetch_failed", "a: why"],
                                                     ["it's", "faces", "no_face", "it's: why"]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", row[3]) for row in listed)


def test_since_picks_the_rejects_of_a_night_and_retry_forgets_exactly_those(tmp_path: Path, capsys) -> None:
    """The fetch failures of the night a site was down, and not those of the week before; a clip rejected by
    two stages keeps the reject that was not listed."""
    store = Warehouse(tmp_path / "wh")
    night, before = datetime(2026, 11, 26, 23, 30, tzinfo=UTC), datetime(2026, 11, 19, 12, 0, tzinfo=UTC)
    rows = [Reject("a", "subtitles", "fetch_failed", "a: down").to_row(night),
            Reject("b", "subtitles", "fetch_failed", "b: gone").to_row(before),
            Reject("b", "clips", "bad_media", "b: truncated").to_row(night)]
    store.upsert("rejects", pa.Table.from_pylist(rows, schema=table_spec("rejects").schema))
    code, out, _ = run(capsys, "--warehouse", store.uri, "--since", "2026-11-26T22:00", "--list")
    assert out[1] == "rejects matching --since 2026-11-26T22:00:00: 2 (2 clips)"
    assert out[-2:] == ["a\tsubtitles\tfetch_failed\t2026-11-26T23:30:00\ta: down",
                        "b\tclips\tbad_media\t2026-11-26T23:30:00\tb: truncated"]
    run(capsys, "--warehouse", store.uri, "--since", "2026-11-20", "--stage", "subtitles", "--retry")
    assert rejected(store) == {("b", "subtitles", "fetch_failed"), ("b", "clips", "bad_media")}
    run(capsys, "--warehouse", store.uri, "--clip", "b", "--since", "2026-11-26", "--retry")
    assert rejected(store) == {("b", "subtitles", "fetch_failed")}  # b's other reject was not listed


def test_retry_forgets_only_the_matching_rejects_and_history_keeps_them(warehouse: Warehouse, capsys) -> None:
    before = warehouse.version("rejects")
    assert pending(warehouse, stage_named("subtitles"), ["a", "b", "c"]) == []
    code, out, _ = run(capsys, "--warehouse", warehouse.uri, "--reason", "fetch_failed", "--reason", "no_face",
                       "--clip", "a", "--clip", "it's", "--retry")
    assert code == 0 and out[-1] == "retrying 2 reject(s): the next refresh of the corpus processes those clips again"
    assert rejected(warehouse) == set(REJECTED) - {("a", "subtitles", "fetch_failed"), ("it's", "faces", "no_face")}
    assert pending(warehouse, stage_named("subtitles"), ["a", "b", "c"]) == ["a"]
    assert warehouse.version("rejects") == before + 2  # a commit per stage
    assert len(warehouse.read("rejects", version=before)) == len(REJECTED)


def test_retry_without_a_match_writes_nothing(warehouse: Warehouse, capsys) -> None:
    versions = warehouse.versions()
    code, out, _ = run(capsys, "--warehouse", warehouse.uri, "--stage", "clips", "--retry")
    assert code == 0 and out[1:] == ["rejects matching --stage clips: 0 (0 clips)"]
    assert warehouse.versions() == versions


def test_bad_input_is_one_line_naming_it(tmp_path: Path, warehouse: Warehouse, capsys) -> None:
    code, _, err = run(capsys, "--warehouse", str(tmp_path / "typo"))
    assert code == 2 and err == f"talkface rejects: error: {tmp_path / 'typo'}: no refresh has run here yet " \
                                "(no rejects or subtitles table)\n"
    assert not (tmp_path / "typo").exists()
    code, _, err = run(capsys, "--warehouse", warehouse.uri, "--stage", "alignment")
    assert code == 2 and err.startswith("talkface rejects: error: Invalid value for '--stage': 'alignment' is not one")


class Site(SiteHandler):
    """A video site whose subtitle track first answers with a consent page."""


@pytest.mark.integration
def test_a_clip_rejected_for_a_cause_since_gone_is_fetched_after_a_retry(tmp_path: Path, capsys) -> None:
    """The site answered the track with a web page (a permanent ``fetch_failed``); once it serves the track,
    refreshing again does nothing for the clip until its reject is retried, and then fetches it."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "track.vtt").write_text(WEB_PAGE)
    with serve(root, Site) as base:
        source = tmp_path / "video.info.json"
        source.write_text(json.dumps({"id": "abc", "title": "t", "subtitles": {"en": [
            {"ext": "vtt", "url": f"{base}/track.vtt"}]}}))
        store = Warehouse(tmp_path / "wh")
        config = IngestConfig(cache_dir=tmp_path / "cache", fetch=FetchConfig(attempts=1, socket_timeout_s=5.0))
        clips = [ClipSpec("talk", str(source), 0.0, None)]

        def refresh() -> None:
            run_stages(store, clips, [stage_named("subtitles")], RefreshSettings(store.uri, ingest=config))

        refresh()
        assert rejected(store) == {("talk", "subtitles", "fetch_failed")}
        code, out, _ = run(capsys, "--warehouse", store.uri, "--list")
        assert out[-1].split("\t")[:3] + out[-1].split("\t")[4:] == [
            "talk", "subtitles", "fetch_failed",
            f"{source}: no en subtitle track could be fetched, 1 tried: manual en vtt: answered with a web page, "
            "not subtitles"]
        (root / "track.vtt").write_text(VTT)
        asked = len(Site.requests)
        refresh()
        assert len(Site.requests) == asked and store.read("subtitles").num_rows == 0  # a reject is final
        assert run(capsys, "--warehouse", store.uri, "--stage", "subtitles", "--retry")[0] == 0
        refresh()
        assert [r["text"] for r in store.read("subtitles").to_pylist()] == ["hello from the server"]
        assert rejected(store) == set()
