"""Refresh batches are cached under a key of their inputs and of the pipeline code version."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixtures.s3 import BUCKET, s3_endpoint, s3_env  # noqa: F401  (fixtures)
from pipeline.corpus import ClipSpec
from pipeline.fingerprint import batch_key, code_version
from pipeline.ingest import IngestConfig
from pipeline.refresh_stages import RefreshSettings
from pipeline.stage import ClipWork

VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nhello there my friend\n"
PHONES = [{"clip_id": "a", "phone": phone, "start_s": start, "end_s": start + 0.1}
          for phone, start in (("HH", 0.0), ("EH", 0.1))]
OUTCOMES = [{"clip_id": "a", "status": "aligned", "caption_words": 1, "aligned_words": 1}]


def clip(tmp_path: Path, name: str = "a") -> ClipWork:
    media, subtitles = tmp_path / f"{name}.wav", tmp_path / f"{name}.en.vtt"
    media.write_bytes(b"RIFF")  # the subtitles stage reads only the subtitle file
    subtitles.write_text(VTT)
    return ClipWork(ClipSpec(clip_id=name, source=str(media), media=media, subtitles=subtitles))


def test_the_key_follows_inputs_settings_stage_and_code(tmp_path, monkeypatch):
    work = clip(tmp_path)
    key = batch_key("subtitles", [work], IngestConfig())
    assert key == batch_key("subtitles", [work], IngestConfig())
    assert key != batch_key("align", [work], IngestConfig())
    assert key != batch_key("subtitles", [work], IngestConfig(batch_size=3))
    assert key != batch_key("subtitles", [work, clip(tmp_path, "b")], IngestConfig())
    assert key != batch_key("subtitles", [ClipWork(work.clip, {"clips": [{"clip_id": "a"}]})], IngestConfig())
    stat = work.clip.subtitles.stat()
    os.utime(work.clip.subtitles, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # the file was edited
    edited = batch_key("subtitles", [work], IngestConfig())
    assert edited != key
    monkeypatch.setattr("pipeline.fingerprint.code_version", lambda: "another-version")
    assert batch_key("subtitles", [work], IngestConfig()) != edited


def test_an_aligner_of_another_version_misses_the_cache(tmp_path, monkeypatch):
    """Stage code and inputs the same, the aligner upgraded (MFA is installed apart from this package): a
    batch of clips retried after their rejects were forgotten was answered with the old aligner's results."""
    from flows.refresh import _batch_cache_key
    from pipeline.refresh_stages import worker_aligner

    parameters = {"stage": "align", "work": [clip(tmp_path)], "settings": RefreshSettings(str(tmp_path / "wh"))}
    before = _batch_cache_key(None, parameters)
    assert _batch_cache_key(None, parameters) == before
    aligner = worker_aligner("pocketsphinx", IngestConfig().cue_pad_s)  # this thread's, as the task's would be
    monkeypatch.setattr(aligner, "version", aligner.version + ".post1")
    assert _batch_cache_key(None, parameters) != before


def test_code_version_is_a_stable_hash_of_the_pipeline_and_warehouse_sources(monkeypatch):
    from pipeline.fingerprint import PACKAGES

    assert code_version() == code_version() and len(code_version()) == 16
    assert [p.name for p in PACKAGES] == ["pipeline", "warehouse"]
    code_version.cache_clear()
    monkeypatch.setattr("pipeline.fingerprint.PACKAGES", PACKAGES[:1])  # the phone set and schemas left out
    without_warehouse = code_version()
    code_version.cache_clear()
    monkeypatch.undo()
    assert without_warehouse != code_version()


@pytest.mark.integration
def test_a_batch_with_unchanged_inputs_is_served_from_the_cache(tmp_path):
    """A histograms batch computed twice is served from the cache the second time. A subtitles batch is
    computed every time: a remote clip waits while its site is unavailable, and a cached wait would keep it
    waiting for as long as the cache lasts (the whole refresh: tests/test_ingest_remote.py)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness

    from flows.refresh import compute_task

    work, settings = clip(tmp_path), RefreshSettings(str(tmp_path / "warehouse"))
    counted = ClipWork(work.clip, {"phone_alignments": PHONES, "cue_outcomes": OUTCOMES})

    @flow
    def twice() -> list:
        return [compute_task(stage, [item], settings, return_state=True)
                for stage, item in (("histograms", counted), ("subtitles", work)) for _ in range(2)]

    with prefect_test_harness():
        first, second, parsed, parsed_again = twice()
    assert first.is_completed() and first.name == "Completed"
    assert second.name == "Cached"
    assert second.result() == first.result()
    assert first.result()[0].rows["phoneme_histograms"][0]["n_phones"] == 2
    assert (parsed.name, parsed_again.name) == ("Completed", "Completed")
    assert [r["text"] for r in parsed_again.result()[0].rows["subtitles"]] == ["hello there my friend"]


@pytest.mark.integration
def test_a_subtitle_file_replaced_on_object_storage_changes_the_cache_key(s3_env, s3_endpoint):
    """A corpus on object storage: the key named its files by URI only, so a fixed subtitle file kept its
    old reject from the cache (when the subtitles stage was cached; the later stages are, under this key)."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.put_object(Bucket=BUCKET, Key="cache-corpus/a.wav", Body=b"RIFF")
    s3.put_object(Bucket=BUCKET, Key="cache-corpus/a.en.vtt", Body=bytes(range(256)))  # text in no encoding
    media, subtitles = f"s3://{BUCKET}/cache-corpus/a.wav", f"s3://{BUCKET}/cache-corpus/a.en.vtt"
    work = [ClipWork(ClipSpec(clip_id="a", source=media, media=media, subtitles=subtitles))]
    broken = batch_key("align", work, IngestConfig())
    assert batch_key("align", work, IngestConfig()) == broken
    s3.put_object(Bucket=BUCKET, Key="cache-corpus/a.en.vtt", Body=VTT.replace("friend", "caf\xe9").encode())
    assert batch_key("align", work, IngestConfig()) != broken


@pytest.mark.integration
def test_a_write_that_fails_transiently_is_retried_and_lands_once(tmp_path, monkeypatch):
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness

    import flows.refresh as refresh_flow
    from pipeline.refresh_stages import stage_named
    from pipeline.stage import write_results
    from warehouse.store import Warehouse

    work, warehouse = clip(tmp_path), Warehouse(tmp_path / "warehouse")
    results = stage_named("subtitles").compute([work], RefreshSettings(warehouse.uri))
    attempts = []

    def flaky_write(store, stage, out):
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("connection reset by peer")  # as an object store may answer
        write_results(store, stage, out)

    monkeypatch.setattr(refresh_flow, "write_results", flaky_write)
    monkeypatch.setattr(refresh_flow.write_task, "retry_delay_seconds", [0])

    @flow
    def write_once():
        return refresh_flow.write_task(warehouse, "subtitles", results, return_state=True)

    with prefect_test_harness():
        state = write_once()
    assert state.is_completed() and len(attempts) == 2
    assert warehouse.read("subtitles")["clip_id"].to_pylist() == ["a"]
