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
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness

    from flows.refresh import compute_task

    work, settings = clip(tmp_path), RefreshSettings(str(tmp_path / "warehouse"))

    @flow
    def twice() -> list:
        return [compute_task("subtitles", [work], settings, return_state=True) for _ in range(2)]

    with prefect_test_harness():
        first, second = twice()
    assert first.is_completed() and first.name == "Completed"
    assert second.name == "Cached"
    assert second.result() == first.result()
    assert [r["text"] for r in first.result()[0].rows["subtitles"]] == ["hello there my friend"]


@pytest.mark.integration
def test_a_subtitle_file_replaced_on_object_storage_is_computed_again(tmp_path, s3_env, s3_endpoint):
    """A corpus on object storage: the key named its files by URI only, so a fixed file kept its old reject."""
    import boto3
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness

    from flows.refresh import compute_task

    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.put_object(Bucket=BUCKET, Key="cache-corpus/a.wav", Body=b"RIFF")
    s3.put_object(Bucket=BUCKET, Key="cache-corpus/a.en.vtt", Body=bytes(range(256)))  # text in no encoding
    media, subtitles = f"s3://{BUCKET}/cache-corpus/a.wav", f"s3://{BUCKET}/cache-corpus/a.en.vtt"
    work = ClipWork(ClipSpec(clip_id="a", source=media, media=media, subtitles=subtitles))
    settings = RefreshSettings(f"s3://{BUCKET}/warehouse", ingest=IngestConfig(cache_dir=tmp_path / "cache"))

    @flow
    def subtitles_stage():
        return compute_task("subtitles", [work], settings, return_state=True)

    with prefect_test_harness():
        broken = subtitles_stage()
        s3.put_object(Bucket=BUCKET, Key="cache-corpus/a.en.vtt", Body=VTT.replace("friend", "caf\xe9").encode())
        fixed, again = subtitles_stage(), subtitles_stage()
    assert broken.result()[0].reject.reason == "subtitles_not_utf8"
    assert fixed.name == "Completed" and fixed.result()[0].reject is None  # before: Cached, still not UTF-8
    assert [r["text"] for r in fixed.result()[0].rows["subtitles"]] == ["hello there my café"]
    assert again.name == "Cached"


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
