"""A remote source end to end: a segment list naming a web page, its media downloaded
with --download-media, then aligned; without the flag the clip waits for its media, and
while the site is rate-limited it waits for its subtitles."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from fixtures.librivox import needs_librivox
from fixtures.s3 import s3_endpoint, s3_env  # noqa: F401  (fixtures)
from fixtures.web import SiteHandler, serve
from pipeline.corpus import load_corpus
from pipeline.ingest import IngestConfig, _source_key
from pipeline.prune import Pruned
from pipeline.refresh_stages import INGEST_STAGES, RefreshSettings
from pipeline.stage import run_stages
from pipeline.subtitle_fetch import FetchConfig
from warehouse.store import Warehouse

pytestmark = [pytest.mark.integration, needs_librivox]

PAGE = """<!DOCTYPE html><html><head><title>talk</title></head><body><video controls>
<source src="talk.mp4" type="video/mp4">
<track kind="subtitles" srclang="en" label="English" src="talk.en.vtt"></video></body></html>"""


class TalkSite(SiteHandler):
    """The talk's site: a test may rate-limit a path of it."""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> str:
    """A web page with an HTML5 video and its English track, served over real HTTP."""
    from pipeline.demo_corpus import build_demo_corpus

    root = tmp_path_factory.mktemp("www")
    video = build_demo_corpus(tmp_path_factory.mktemp("demo") / "corpus", clips=1)[0]
    shutil.copy(video, root / "talk.mp4")
    shutil.copy(video.with_suffix(".en.vtt"), root / "talk.en.vtt")
    (root / "index.html").write_text(PAGE)
    with serve(root, TalkSite) as base:
        yield f"{base}/index.html"


def ingest(segments: Path, warehouse: Warehouse, config: IngestConfig) -> None:
    run_stages(warehouse, load_corpus(segments), INGEST_STAGES, RefreshSettings(warehouse.uri, ingest=config))


def test_a_remote_clip_is_downloaded_aligned_and_counted(site: str, tmp_path: Path) -> None:
    segments = tmp_path / "segments.csv"
    segments.write_text(f"clip_id,source,start_s,end_s,speaker_id\ntalk,{site},0,,speaker1\n")
    fetch = FetchConfig(attempts=2, backoff_s=0.01, socket_timeout_s=5.0)

    waiting = Warehouse(tmp_path / "without-media")
    ingest(segments, waiting, IngestConfig(cache_dir=tmp_path / "cache-a", fetch=fetch))
    assert waiting.read("subtitles")["clip_id"].to_pylist() == ["talk"]  # fetched, kind manual
    assert waiting.read("clips").num_rows == 0 and waiting.read("rejects").num_rows == 0  # waits, not rejected

    warehouse = Warehouse(tmp_path / "with-media")
    config = IngestConfig(cache_dir=tmp_path / "cache-b", fetch=FetchConfig(**{**fetch.__dict__,
                                                                                "download_media": True}))
    ingest(segments, warehouse, config)
    clip = warehouse.read("clips").to_pylist()[0]
    assert clip["speaker_id"] == "speaker1" and clip["has_audio"]
    assert Path(clip["video_uri"]).is_file() and Path(clip["video_uri"]).is_relative_to(tmp_path / "cache-b")
    assert warehouse.read("subtitles")["kind"].to_pylist()[0] == "manual"
    histogram = warehouse.read("phoneme_histograms").to_pylist()
    assert [h["clip_id"] for h in histogram] == ["talk"] and histogram[0]["n_phones"] > 20


def test_downloaded_media_go_to_an_object_store_warehouse_for_other_workers(site: str, tmp_path: Path,
                                                                             s3_env, request) -> None:
    """With the warehouse on S3, a downloaded video is copied under it: a worker elsewhere reads it there."""
    from warehouse.location import Location

    segments = tmp_path / "segments.csv"
    segments.write_text(f"clip_id,source,start_s,end_s,speaker_id\ntalk,{site},0,,speaker1\n"
                        f"talk2,{site},1.0,,speaker1\n")  # two segments of one video: one copy
    warehouse = Warehouse(f"s3://talkface/{request.node.name}")
    fetch = FetchConfig(attempts=2, backoff_s=0.01, socket_timeout_s=5.0, download_media=True)
    ingest(segments, warehouse, IngestConfig(cache_dir=tmp_path / "cache", fetch=fetch))
    uris = warehouse.read("clips")["video_uri"].to_pylist()
    assert uris == [f"{warehouse.uri}/media/{_source_key(site)}.mp4"] * 2  # named by its source
    assert list(warehouse.location.join("media").file_sizes()) == [f"{_source_key(site)}.mp4"]
    shutil.rmtree(tmp_path / "cache")  # the later stages read the shared copy, not this machine's download
    assert Location.of(uris[0]).local_copy(tmp_path / "elsewhere").stat().st_size > 10_000
    assert warehouse.read("phoneme_histograms")["clip_id"].to_pylist() == ["talk", "talk2"]


def test_under_an_object_store_warehouse_the_media_are_downloaded_once_by_the_clips_stage(site: str, tmp_path: Path,
                                                                                          s3_env, request) -> None:
    """The scale-out runs the subtitles and clips stages as tasks that may land on two machines: the subtitles
    stage downloaded the video with its track, and the clips stage, finding no download in its own cache,
    downloaded it again. Under a warehouse on object storage the subtitles stage now fetches the track alone."""
    from pipeline.refresh_stages import stage_named

    segments = tmp_path / "segments.csv"
    segments.write_text(f"clip_id,source,start_s,end_s,speaker_id\ntalk,{site},0,,speaker1\n")
    fetch = FetchConfig(attempts=2, backoff_s=0.01, socket_timeout_s=5.0, download_media=True)
    warehouse, clips = Warehouse(f"s3://talkface/{request.node.name}"), load_corpus(segments)
    downloads = TalkSite.requests.count("/talk.mp4")
    for stage, machine in (("subtitles", "a"), ("clips", "b")):  # two machines: two caches
        config = IngestConfig(cache_dir=tmp_path / machine, fetch=fetch)
        run_stages(warehouse, clips, [stage_named(stage)], RefreshSettings(warehouse.uri, ingest=config))
        if stage == "subtitles":
            assert warehouse.read("subtitles").num_rows > 0 and not list((tmp_path / "a").rglob("*.mp4"))
    assert TalkSite.requests.count("/talk.mp4") == downloads + 1
    assert warehouse.read("clips")["video_uri"].to_pylist() == [f"{warehouse.uri}/media/{_source_key(site)}.mp4"]


def test_a_rebuilt_object_store_warehouse_gets_its_shared_media_again(site: str, tmp_path: Path, s3_env,
                                                                       request) -> None:
    """The warehouse wiped and refreshed again: the clips stage must copy the media back, not answer from
    Prefect's cache with rows naming copies that are gone (its clips were then rejected as bad media)."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.refresh import refresh

    segments = tmp_path / "segments.csv"
    segments.write_text(f"clip_id,source,start_s,end_s,speaker_id\ntalk,{site},0,,speaker1\n")
    uri = f"s3://talkface/{request.node.name}"
    fetch = FetchConfig(attempts=2, backoff_s=0.01, socket_timeout_s=5.0, download_media=True)
    config = IngestConfig(cache_dir=tmp_path / "cache", fetch=fetch)
    with prefect_test_harness():
        refresh(str(segments), uri, config=config)
        first = Warehouse(uri).read("phoneme_histograms")["n_phones"].to_pylist()
        filesystem, path = Warehouse(uri).location.filesystem()
        filesystem.delete_dir(path)  # the bucket's warehouse removed by hand, the machine's cache kept
        refresh(str(segments), uri, config=config)
    warehouse = Warehouse(uri)
    assert warehouse.read("rejects").num_rows == 0
    assert first and warehouse.read("phoneme_histograms")["n_phones"].to_pylist() == first
    assert list(warehouse.location.join("media").file_sizes()) == [f"{_source_key(site)}.mp4"]


def test_a_clip_whose_site_is_rate_limited_waits_for_the_next_refresh(site: str, tmp_path: Path, monkeypatch) -> None:
    """The subtitle track answering 429 through one scheduled refresh: the clip was rejected as ``fetch_failed``
    and no later refresh looked at it again. Now it waits (no reject; the summary counts it; the clips stage,
    asking for its media, waits too without asking the site again or counting a second run), and the next
    refresh, whose subtitles stage Prefect must not answer from its cache, ingests it."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.refresh import refresh

    segments = tmp_path / "segments.csv"
    segments.write_text(f"clip_id,source,start_s,end_s,speaker_id\ntalk,{site},0,,speaker1\n")
    fetch = FetchConfig(attempts=2, backoff_s=0.01, socket_timeout_s=5.0, download_media=True)
    config = IngestConfig(cache_dir=tmp_path / "cache", fetch=fetch)
    monkeypatch.setitem(TalkSite.rate_limited, "/talk.en.vtt", fetch.attempts)  # one refresh's tries
    uri, waits = str(tmp_path / "warehouse"), tmp_path / "cache" / "subtitles" / f"{_source_key(site)}.waits.json"
    with prefect_test_harness():
        waited = refresh(str(segments), uri, config=config)
        assert Warehouse(uri).read("rejects").num_rows == 0 and Warehouse(uri).read("clips").num_rows == 0
        assert json.loads(waits.read_text())["runs"] == 1
        again = refresh(str(segments), uri, config=config)
    assert (waited.waiting, waited.subtitled, waited.rejected_clips) == (1, 0, 0)
    assert "waiting for subtitles: 1 (source unavailable; tried again next run)" in waited.lines()
    assert (again.waiting, again.subtitled, again.histograms, again.rejected_clips) == (0, 1, 1, 0)
    assert set(Warehouse(uri).read("subtitles")["kind"].to_pylist()) == {"manual"} and not waits.exists()


def test_workers_count_the_runs_a_source_waited_together_under_an_object_store_warehouse(
        site: str, tmp_path: Path, s3_env, request, monkeypatch) -> None:
    """Each machine kept its own record of the runs a rate-limited source waited, so on W workers it waited up
    to W x max_waits runs. Under a warehouse on object storage the record is there: three runs on two machines
    (a, b, a) with max_waits 2 end the wait."""
    from pipeline.refresh_stages import FETCH_WAITS, stage_named

    segments = tmp_path / "segments.csv"
    segments.write_text(f"clip_id,source,start_s,end_s,speaker_id\ntalk,{site},0,,speaker1\n")
    fetch = FetchConfig(attempts=1, backoff_s=0.01, socket_timeout_s=5.0, max_waits=2)
    warehouse, clips = Warehouse(f"s3://talkface/{request.node.name}"), load_corpus(segments)
    monkeypatch.setitem(TalkSite.rate_limited, "/talk.en.vtt", 100)
    record = warehouse.location.join(FETCH_WAITS, f"{_source_key(site)}.waits.json")
    for n, machine in enumerate("aba", 1):
        config = IngestConfig(cache_dir=tmp_path / machine, fetch=fetch)
        run_stages(warehouse, clips, [stage_named("subtitles")], RefreshSettings(warehouse.uri, ingest=config))
        if n < 3:
            assert json.loads(record.read_bytes())["runs"] == n and warehouse.read("rejects").num_rows == 0
    assert not list(tmp_path.rglob("*.waits.json")) and record.size() is None  # given up: the record ends
    (reject,) = warehouse.read("rejects").to_pylist()
    assert (reject["stage"], reject["reason"]) == ("subtitles", "fetch_failed") and "3 run(s)" in reject["detail"]


def test_media_cleared_from_the_cache_are_fetched_again_not_rejected(site: str, tmp_path: Path) -> None:
    """A local warehouse's ``clips`` rows name the downloads in the cache. Cleared to free room (as a full
    disk's error advises) between the stages, they made the clip a ``decode_error`` reject at alignment and at
    the faces stage; now each stage fetches the source again, even on a run without --download-media."""
    from pipeline.refresh_stages import stage_named

    segments = tmp_path / "segments.csv"
    segments.write_text(f"clip_id,source,start_s,end_s,speaker_id\ntalk,{site},0,,speaker1\n")
    fetch = FetchConfig(attempts=2, backoff_s=0.01, socket_timeout_s=5.0)
    warehouse, clips = Warehouse(tmp_path / "wh"), load_corpus(segments)

    def run(names: tuple[str, ...], download_media: bool) -> None:
        config = IngestConfig(cache_dir=tmp_path / "cache", fetch=FetchConfig(**{**fetch.__dict__,
                                                                                "download_media": download_media}))
        run_stages(warehouse, clips, [stage_named(n) for n in names], RefreshSettings(warehouse.uri, ingest=config))

    run(("subtitles", "clips"), download_media=True)
    media = Path(warehouse.read("clips").to_pylist()[0]["video_uri"])
    downloads = TalkSite.requests.count("/talk.mp4")
    for names in (("align", "histograms"), ("faces",)):
        media.unlink()  # the cache cleared
        run(names, download_media=False)
        assert warehouse.read("rejects").to_pylist() == []
        assert TalkSite.requests.count("/talk.mp4") == downloads + 1 and media.is_file()
        downloads += 1
    assert warehouse.read("phoneme_histograms").to_pylist()[0]["n_phones"] > 20
    assert warehouse.read("clip_spans")["clip_id"].to_pylist() == ["talk"]


def test_downloads_of_finished_sources_are_pruned_and_fetched_again_for_a_retry(site: str, tmp_path: Path) -> None:
    """Downloads were never removed: with a corpus of long videos they fill the disk. --prune-downloads removes a
    source's once all its clips are done (here: rejected by a faces filter set too tight); retrying the
    reject with a looser filter fetches the source again and cuts the span."""
    from pipeline.faces_stage import FacesConfig
    from pipeline.prune import Pruned, done_sources, prune_cache
    from pipeline.refresh_stages import STAGES, stage_named
    from pipeline.spans import SpanConfig
    from pipeline.stage import done_clips

    segments = tmp_path / "segments.csv"
    segments.write_text(f"clip_id,source,start_s,end_s,speaker_id\ntalk,{site},0,,speaker1\n")
    config = IngestConfig(cache_dir=tmp_path / "cache", prune_downloads=True, fetch=FetchConfig(
        attempts=2, backoff_s=0.01, socket_timeout_s=5.0, download_media=True))
    warehouse, clips = Warehouse(tmp_path / "wh"), load_corpus(segments)
    tight = RefreshSettings(warehouse.uri, ingest=config, faces=FacesConfig(span=SpanConfig(min_frames=10_000)))
    run_stages(warehouse, clips, STAGES, tight)
    assert [(r["stage"], r["reason"]) for r in warehouse.read("rejects").to_pylist()] == [("faces", "too_short")]
    media = Path(warehouse.read("clips").to_pylist()[0]["video_uri"])
    size, downloads = media.stat().st_size, TalkSite.requests.count("/talk.mp4")

    done = done_sources(done_clips(warehouse, STAGES), clips, {"talk": str(media)})
    assert prune_cache(done, config.cache_dir) == Pruned(frozenset({site}), 1, size)
    assert not media.exists() and [p.suffix for p in media.parent.glob("*.vtt")] == [".vtt"]  # subtitles stay
    assert prune_cache(done, config.cache_dir) == Pruned()

    warehouse.delete("rejects", {"stage": ["faces"]})  # talkface rejects --stage faces --retry
    run_stages(warehouse, clips, [stage_named("faces")], RefreshSettings(warehouse.uri, ingest=config))
    assert warehouse.read("clip_spans")["clip_id"].to_pylist() == ["talk"] and warehouse.read("rejects").num_rows == 0
    assert TalkSite.requests.count("/talk.mp4") == downloads + 1


def test_a_pruned_shared_copy_on_an_object_store_is_fetched_again(site: str, tmp_path: Path, s3_env,
                                                                  request) -> None:
    """Under a warehouse on S3 the shared copy goes too, and a stage that needs it fetches the source again."""
    from pipeline.prune import done_sources, prune_cache, prune_shared
    from pipeline.refresh_stages import stage_named
    from warehouse.location import Location

    segments = tmp_path / "segments.csv"
    segments.write_text(f"clip_id,source,start_s,end_s,speaker_id\ntalk,{site},0,,speaker1\n")
    config = IngestConfig(cache_dir=tmp_path / "cache", fetch=FetchConfig(attempts=2, backoff_s=0.01,
                                                                          socket_timeout_s=5.0, download_media=True))
    warehouse, clips = Warehouse(f"s3://talkface/{request.node.name}"), load_corpus(segments)
    settings = RefreshSettings(warehouse.uri, ingest=config)
    run_stages(warehouse, clips, [stage_named("subtitles"), stage_named("clips")], settings)
    done = done_sources({"talk"}, clips, {"talk": warehouse.read("clips")["video_uri"][0].as_py()})
    assert prune_cache(done, config.cache_dir).files == 1  # the download; no stage here copied the shared one
    assert prune_shared(done, Location.of(warehouse.uri)).files == 1
    assert list(warehouse.location.join("media").file_sizes()) == []
    downloads = TalkSite.requests.count("/talk.mp4")
    run_stages(warehouse, clips, [stage_named("align"), stage_named("histograms")], settings)
    assert warehouse.read("phoneme_histograms")["clip_id"].to_pylist() == ["talk"]
    assert warehouse.read("rejects").num_rows == 0
    # shared again, so the faces stage on another machine (another cache) reads it there: no third download
    assert list(warehouse.location.join("media").file_sizes()) == [f"{_source_key(site)}.mp4"]
    elsewhere = RefreshSettings(warehouse.uri, ingest=replace(config, cache_dir=tmp_path / "elsewhere"))
    run_stages(warehouse, clips, [stage_named("faces")], elsewhere)
    assert warehouse.read("clip_spans")["clip_id"].to_pylist() == ["talk"]
    assert TalkSite.requests.count("/talk.mp4") == downloads + 1


def test_pruning_reaches_the_media_every_dask_worker_cached_and_the_shared_copy(site: str, tmp_path: Path,
                                                                                 s3_endpoint, monkeypatch) -> None:
    """On the Dask scale-out the workers fetch and copy the media into their own caches; the flow process
    holds none. --prune-downloads looked only in the flow's cache, so it removed nothing there, not even the
    shared copy on S3 (it found no download record naming it), and said "0 file(s)". Now every worker's cache
    and the shared copy are pruned, and the summary counts each file once."""
    from contextlib import ExitStack

    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness
    from prefect_dask import DaskTaskRunner

    from fixtures.prefect_server import free_port
    from fixtures.topology import STORAGE, Topology, start_dask
    from flows.refresh import refresh

    segments = tmp_path / "segments.csv"
    segments.write_text(f"clip_id,source,start_s,end_s,speaker_id\ntalk,{site},0,,speaker1\n"
                        f"talk2,{site},1.0,,speaker1\n")
    fetch = FetchConfig(attempts=2, backoff_s=0.01, socket_timeout_s=5.0, download_media=True)
    keep = IngestConfig(cache_dir=Path("talkface-cache"), fetch=fetch)  # relative: each machine's own folder
    (tmp_path / "flow").mkdir()
    monkeypatch.chdir(tmp_path / "flow")

    def cached(*patterns: str) -> list[str]:
        return sorted(str(p.relative_to(tmp_path)) for pattern in patterns for p in tmp_path.glob(pattern))

    with prefect_test_harness(), ExitStack() as stack:
        top = Topology(tmp_path, PREFECT_API_URL.value(), s3_endpoint, f"tcp://127.0.0.1:{free_port()}",
                       "s3://talkface/pruned-on-dask")
        for name in STORAGE:
            monkeypatch.setenv(name, top.values[name])
        start_dask(stack, top)()
        on_dask = refresh.with_options(task_runner=DaskTaskRunner(address=top.scheduler))
        downloads = TalkSite.requests.count("/talk.mp4")
        first = on_dask(str(segments), top.warehouse, config=keep)
        assert TalkSite.requests.count("/talk.mp4") == downloads + 1  # by the clips stage alone
        media = cached("dask-worker-*/talkface-cache/**/*.mp4")
        shared = Warehouse(top.warehouse).location.join("media")
        sizes = sum((tmp_path / m).stat().st_size for m in media) + sum(shared.file_sizes().values())
        pruned = on_dask(str(segments), top.warehouse, config=replace(keep, prune_downloads=True))

    assert (first.spans, first.rejected_clips, pruned.spans) == (2, 0, 2)
    assert media and cached("flow/**/*.mp4") == []  # the workers downloaded and copied it, the flow did not
    assert pruned.pruned == Pruned(frozenset({site}), len(media) + 1, sizes)
    assert cached("dask-worker-*/talkface-cache/**/*.mp4") == [] and shared.file_sizes() == {}
    assert cached("dask-worker-*/talkface-cache/subtitles/*.vtt")  # the subtitles stay
