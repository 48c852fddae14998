"""Subtitle fetching with yt-dlp, offline: a real local HTTP server and saved info JSON."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from fixtures.web import SiteHandler, serve
from pipeline.corpus import ClipSpec
from pipeline.ingest import IngestConfig, _source_key, subtitle_rows
from pipeline.stage import Reject
from pipeline.subtitle_fetch import (
    FetchConfig,
    FetchError,
    FetchUnavailable,
    NoEnglishSubtitles,
    Track,
    candidate_tracks,
    fetch_subtitles,
    source_url,
)  # fmt: skip
from pipeline.subtitles import prepare_cues, read_cues

VTT = "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nhello from the server\n"
SRT = "1\n00:00:00,500 --> 00:00:02,000\nhello from the srt\n"
WEB_PAGE = "<!DOCTYPE html><html><body>Before you continue</body></html>"
PAGE = """<!DOCTYPE html><html><head><title>talk</title></head><body>
<video controls><source src="clip.mp4" type="video/mp4">{track}</video></body></html>"""
FAST = FetchConfig(attempts=2, backoff_s=0.01, socket_timeout_s=2.0)


class Handler(SiteHandler):
    """The fetch tests' server: its requests and rate limits, emptied for each test."""


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "clip.mp4").write_bytes(b"\0" * 100)
    (root / "clip.en.vtt").write_text(VTT)
    (root / "index.html").write_text(PAGE.format(
        track='<track kind="subtitles" srclang="en" label="English" src="clip.en.vtt">'))
    (root / "fr.html").write_text(PAGE.format(track='<track kind="subtitles" srclang="fr" src="clip.en.vtt">'))
    Handler.requests.clear()
    Handler.rate_limited.clear()
    with serve(root, Handler) as base:
        yield base, root


@pytest.mark.integration
def test_html5_track_is_fetched_then_skipped(server: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = server
    out = tmp_path / "subs"
    got = fetch_subtitles(f"{base}/index.html", "talk", out, FAST)
    assert (got.kind, got.lang, got.path) == ("manual", "en", out / "talk.en.vtt")
    assert [c.text for c in prepare_cues(read_cues(got.path))] == ["hello from the server"]
    assert got.media_path is None and not list(out.glob("*.mp4"))  # no media unless asked
    served = len(Handler.requests)
    again = fetch_subtitles(f"{base}/index.html", "talk", out, FAST)
    assert again == got and len(Handler.requests) == served  # already fetched: no request


@pytest.mark.integration
def test_media_asked_for_after_the_subtitles_were_fetched_without_it_is_downloaded(server: tuple[str, Path],
                                                                                  tmp_path: Path) -> None:
    """A corpus refreshed first without ``--download-media``, then with it: its clips must get their media."""
    base, root = server
    out = tmp_path / "subs"
    assert fetch_subtitles(f"{base}/index.html", "talk", out, FAST).media_path is None
    wanted = replace(FAST, download_media=True)
    got = fetch_subtitles(f"{base}/index.html", "talk", out, wanted)
    assert got.media_path is not None and got.media_path.read_bytes() == (root / "clip.mp4").read_bytes()
    served = len(Handler.requests)
    assert fetch_subtitles(f"{base}/index.html", "talk", out, wanted) == got and len(Handler.requests) == served
    got.media_path.unlink()  # media removed by hand: fetched again when wanted, not reported as there
    assert fetch_subtitles(f"{base}/index.html", "talk", out, FAST).media_path is None
    assert fetch_subtitles(f"{base}/index.html", "talk", out, wanted).media_path.is_file()


@pytest.mark.integration
def test_a_media_download_says_how_far_it_is(server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """An hour of 720p video takes minutes to download, and nothing said that anything was happening: with -v
    a line every 10 s of a download (here every chunk), and one when it is done."""
    import logging

    from pipeline.subtitle_fetch import DownloadProgress

    base, root = server
    (root / "clip.mp4").write_bytes(bytes(range(256)) * 8192)  # 2.1 MB
    monkeypatch.setattr(DownloadProgress, "every_s", 0.0)
    with caplog.at_level(logging.INFO, logger="pipeline.subtitle_fetch"):
        got = fetch_subtitles(f"{base}/index.html", "talk", tmp_path / "out", replace(FAST, download_media=True))
    lines = [r.getMessage() for r in caplog.records]
    progress = [line for line in lines if "downloading media: " in line]
    assert progress and all(line.startswith(f"{base}/index.html: downloading media: ") for line in progress)
    assert re.search(r": \d+% of 2\.1 MB, [\d.]+ MB/s, \d+ s left$", progress[-1]), progress[-1]
    assert f"{base}/index.html: media downloaded: {got.media_path.name}, 2.1 MB in " in "\n".join(lines)


@pytest.mark.integration
def test_the_fetcher_pauses_before_each_request_when_asked(server: tuple[str, Path], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A big YouTube corpus fetched at full speed is rate-limited for an hour or more: with ``sleep_s`` (the
    refresh's --fetch-sleep) the page request, the track and the media download each wait first. The pauses
    are recorded instead of slept; the requests are real."""
    import time as clock

    base, _ = server
    pauses: list[tuple[float, int]] = []
    monkeypatch.setattr(clock, "sleep", lambda seconds: pauses.append((seconds, len(Handler.requests))))
    fetch_subtitles(f"{base}/index.html", "talk", tmp_path / "out", replace(FAST, download_media=True, sleep_s=2.5))
    assert Handler.requests == ["/index.html", "/clip.en.vtt", "/clip.mp4"]
    assert pauses == [(2.5, 0), (2.5, 1), (2.5, 2)]  # one before each request
    pauses.clear()
    fetch_subtitles(f"{base}/index.html", "fast", tmp_path / "out", replace(FAST, download_media=True))
    assert pauses == []


@pytest.mark.integration
@pytest.mark.parametrize(("max_height", "want"), [(720, "v720_avc.mp4"), (480, "v360_avc.mp4"), (0, "v1080_av1.mp4")])
def test_media_is_downloaded_at_the_height_asked_for_h264_first(server: tuple[str, Path], tmp_path: Path,
                                                                max_height: int, want: str) -> None:
    """A site's formats: 1080p AV1 and H.264, 720p VP9 and H.264, 360p H.264. Decoding is the costliest part
    of preparing an HD clip, and the crops are 112 px: 720p H.264 by default; the largest at or under another
    cap (360p under 480); with no cap (0), what yt-dlp ranks best (AV1, the costliest to decode)."""
    base, root = server
    formats = []
    for height, codec in ((1080, "av01.0.08M.08"), (1080, "avc1.640028"), (720, "vp9"), (720, "avc1.4d401f"),
                          (360, "avc1.42001E")):
        name = f"v{height}_{codec[:3].replace('av0', 'av1')}.mp4"
        (root / name).write_bytes(name.encode())
        formats.append({"format_id": name, "url": f"{base}/{name}", "ext": "mp4", "height": height,
                        "width": height * 16 // 9, "vcodec": codec, "acodec": "mp4a.40.2", "tbr": height})
    (root / "good.vtt").write_text(VTT)
    info = json.loads(info_json(tmp_path, {"en": [{"ext": "vtt", "url": f"{base}/good.vtt"}]}, {}).read_text())
    source = tmp_path / "media.info.json"
    source.write_text(json.dumps({**info, "formats": formats}))
    got = fetch_subtitles(str(source), "abc", tmp_path / "out", replace(FAST, download_media=True,
                                                                         max_height=max_height))
    assert got.media_path.read_bytes() == want.encode()


@pytest.mark.integration
def test_video_and_audio_formats_of_their_own_are_joined_at_the_height_asked_for(server: tuple[str, Path],
                                                                                 tmp_path: Path) -> None:
    """Formats as YouTube lists them: 720p video alone, audio alone, and one 360p file holding both (real
    media, served over HTTP). Without an ffmpeg to join two formats, yt-dlp took the 360p file whatever
    ``max_height`` asked for; imageio-ffmpeg's now joins the 720p video with the audio."""
    import av

    from fixtures.media import tone_after, write_media

    base, root = server
    write_media(root / "both360.mp4", tone_after(0.0, 2.0, 44100), video_s=2.0, size=(640, 360))
    write_media(root / "video720.mp4", None, video_s=2.0, size=(1280, 720))
    write_media(root / "audio.m4a", tone_after(0.0, 2.0, 44100))
    formats = [
        {"format_id": "18", "url": f"{base}/both360.mp4", "ext": "mp4", "width": 640, "height": 360,
         "vcodec": "avc1.42001E", "acodec": "mp4a.40.2"},
        {"format_id": "136", "url": f"{base}/video720.mp4", "ext": "mp4", "width": 1280, "height": 720,
         "vcodec": "avc1.4d401f", "acodec": "none"},
        {"format_id": "140", "url": f"{base}/audio.m4a", "ext": "m4a", "vcodec": "none", "acodec": "mp4a.40.2"},
    ]
    info = json.loads(info_json(tmp_path, {"en": [{"ext": "vtt", "url": f"{base}/clip.en.vtt"}]}, {}).read_text())
    source = tmp_path / "media.info.json"
    source.write_text(json.dumps({**info, "formats": formats}))
    got = fetch_subtitles(str(source), "abc", tmp_path / "out", replace(FAST, download_media=True))
    assert "/both360.mp4" not in Handler.requests
    with av.open(str(got.media_path)) as container:
        assert [(s.type, s.codec_context.height if s.type == "video" else None) for s in container.streams] == [
            ("video", 720), ("audio", None)]
        assert all(abs(float(s.duration * s.time_base) - 2.0) < 0.1 for s in container.streams)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["abc.en.vtt", "abc.mp4", "abc.subs.json"]


def test_yt_dlp_finds_the_javascript_runtime_and_challenge_solver_youtube_needs() -> None:
    """yt-dlp solves YouTube's JavaScript challenges with the yt-dlp-ejs scripts in a JavaScript runtime; without
    them YouTube withholds formats ("some formats may be missing"). Installed as yt-dlp's `default` and `deno`
    extras, found in the environment's scripts folder (its verbose header lists both)."""
    header = subprocess.run([sys.executable, "-m", "yt_dlp", "--verbose", "--ignore-config"], capture_output=True,
                            text=True, timeout=120).stderr
    assert re.search(r"^\[debug\] JS runtimes: .*\bdeno-\d", header, re.M), header
    assert re.search(r"^\[debug\] Optional libraries: .*\byt_dlp_ejs-\d", header, re.M), header


class SlowSite(SiteHandler):
    """Serves media slowly, as a large download is: two fetches of one video overlap."""

    def do_GET(self) -> None:
        if self.path.endswith(".mp4"):
            time.sleep(0.5)
        super().do_GET()


@pytest.mark.integration
def test_two_clips_of_one_video_fetched_at_once_download_it_once(tmp_path: Path) -> None:
    """Segments of one video either side of a batch boundary are fetched by two parallel tasks: both
    downloaded its media into the same partial file. The second now waits for the first and takes its fetch."""
    from concurrent.futures import ThreadPoolExecutor

    from fixtures.media import tone_after, write_media

    root = tmp_path / "www"
    root.mkdir()
    write_media(root / "talk.mp4", tone_after(0.0, 2.0, 44100), video_s=2.0)
    (root / "talk.en.vtt").write_text(VTT)
    with serve(root, SlowSite) as base:
        info = json.loads(info_json(tmp_path, {"en": [{"ext": "vtt", "url": f"{base}/talk.en.vtt"}]}, {}).read_text())
        source = tmp_path / "media.info.json"
        source.write_text(json.dumps({**info, "formats": [
            {"format_id": "18", "url": f"{base}/talk.mp4", "ext": "mp4", "vcodec": "mp4v", "acodec": "mp4a.40.2"}]}))
        config, out = replace(FAST, download_media=True), tmp_path / "out"
        with ThreadPoolExecutor(2) as pool:
            got = list(pool.map(lambda _: fetch_subtitles(str(source), "abc", out, config), range(2)))
    assert got[0] == got[1] and SlowSite.requests.count("/talk.mp4") == 1
    assert got[0].media_path.read_bytes() == (root / "talk.mp4").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["abc.en.vtt", "abc.mp4", "abc.subs.json"]  # no lock left


@pytest.mark.integration
def test_a_download_that_fills_the_disk_stops_the_run_instead_of_rejecting_the_clip(server: tuple[str, Path],
                                                                                    tmp_path: Path) -> None:
    """The cache's disk full during a media download (a real tmpfs): this was a ``fetch_failed`` reject, and
    so was every clip after it, the corpus lost to a full disk. Now it is an error that stops the stage, naming
    the source and the cause; nothing is rejected, and a run with room fetches the clip."""
    import errno

    from fixtures.disks import small_tmpfs

    base, root = server
    (root / "big.mp4").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    info = json.loads(info_json(tmp_path, {"en": [{"ext": "vtt", "url": f"{base}/clip.en.vtt"}]}, {}).read_text())
    source = tmp_path / "media.info.json"
    source.write_text(json.dumps({**info, "formats": [
        {"format_id": "18", "url": f"{base}/big.mp4", "ext": "mp4", "vcodec": "mp4v", "acodec": "mp4a.40.2"}]}))
    clip = ClipSpec("abc", str(source), 0.0, None)
    with small_tmpfs(tmp_path / "cache", 256 * 1024) as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (not root)")
        config = IngestConfig(cache_dir=tmp_path / "cache", fetch=replace(FAST, download_media=True))
        with pytest.raises(OSError, match=f"^.Errno {errno.ENOSPC}. {re.escape(str(source))}: no room to store "
                                          r"the download \(No space left on device\)") as raised:
            subtitle_rows(clip, config)
        assert raised.value.errno == errno.ENOSPC and not isinstance(raised.value, FetchError)
    rows = subtitle_rows(clip, IngestConfig(cache_dir=tmp_path / "roomy", fetch=replace(FAST, download_media=True)))
    assert [r["text"] for r in rows] == ["hello from the server"]


@pytest.mark.integration
def test_a_fetch_record_left_half_written_is_fetched_again(server: tuple[str, Path], tmp_path: Path) -> None:
    """A run killed while writing ``<key>.subs.json``: the next run fetches again, not a JSONDecodeError."""
    base, _ = server
    out = tmp_path / "subs"
    got = fetch_subtitles(f"{base}/index.html", "talk", out, FAST)
    record = out / "talk.subs.json"
    record.write_bytes(record.read_bytes()[:25])
    served = len(Handler.requests)
    assert fetch_subtitles(f"{base}/index.html", "talk", out, FAST) == got
    assert len(Handler.requests) > served and json.loads(record.read_text())["path"] == str(got.path)
    assert sorted(p.name for p in out.iterdir()) == ["talk.en.vtt", "talk.subs.json"]  # no temporaries left


@pytest.mark.integration
def test_a_track_answering_with_a_web_page_is_a_failed_fetch_not_cached(server: tuple[str, Path],
                                                                       tmp_path: Path) -> None:
    """A consent or rate-limit page served with 200 for the track: a reject naming the source, and the
    next run fetches again rather than serving the page from the cache as subtitles."""
    base, root = server
    (root / "track.vtt").write_text(WEB_PAGE)
    source = info_json(tmp_path, {"en": [{"ext": "vtt", "url": f"{base}/track.vtt"}]}, {})
    with pytest.raises(FetchError, match="web page, not subtitles") as err:
        fetch_subtitles(str(source), "abc", tmp_path / "out", FAST)
    assert err.value.reason == "fetch_failed" and str(source) in str(err.value)
    (root / "track.vtt").write_text(VTT)
    assert fetch_subtitles(str(source), "abc", tmp_path / "out", FAST).path.read_text() == VTT


@pytest.mark.integration
@pytest.mark.parametrize("first", ["missing.vtt", "page.vtt"])
def test_a_track_format_that_fails_gives_way_to_the_next(server: tuple[str, Path], tmp_path: Path,
                                                         first: str) -> None:
    """A track's VTT answering 404 or a web page: the clip was rejected though the same track's SRT was
    there. The SRT is saved and recorded as what was fetched; the failed format leaves nothing."""
    base, root = server
    (root / "page.vtt").write_text(WEB_PAGE)
    (root / "good.srt").write_text(SRT)
    formats = [{"ext": "vtt", "url": f"{base}/{first}"}, {"ext": "srt", "url": f"{base}/good.srt"}]
    source, out = info_json(tmp_path, {"en": formats}, {}), tmp_path / "out"
    got = fetch_subtitles(str(source), "abc", out, FAST)
    assert (got.kind, got.lang, got.path) == ("manual", "en", out / "abc.en.srt")
    assert [c.text for c in prepare_cues(read_cues(got.path))] == ["hello from the srt"]
    assert sorted(p.name for p in out.iterdir()) == ["abc.en.srt", "abc.subs.json"]
    assert json.loads((out / "abc.subs.json").read_text())["path"] == str(out / "abc.en.srt")
    served = len(Handler.requests)
    assert fetch_subtitles(str(source), "abc", out, FAST) == got and len(Handler.requests) == served


@pytest.mark.integration
def test_when_every_track_fails_one_reject_lists_each_attempt(server: tuple[str, Path], tmp_path: Path) -> None:
    """Manual and automatic tracks, each failing its own way: one ``fetch_failed`` reject says why each
    failed, nothing is cached, and the next run fetches again (and gets the track once it is served).
    The 503 track would make the source wait for a later run: here it is configured never to wait."""
    base, root = server
    (root / "page.vtt").write_text(WEB_PAGE)
    (root / "notes.vtt").write_text("these are not subtitles\n")
    manual = {"en": [{"ext": "vtt", "url": f"{base}/missing.vtt"}, {"ext": "srt", "url": f"{base}/fail/busy.srt"}]}
    auto = {"en-orig": [{"ext": "json3", "url": f"{base}/x.json3"}, {"ext": "vtt", "url": f"{base}/page.vtt"}],
            "en": [{"ext": "vtt", "url": f"{base}/notes.vtt"}]}
    source, cache = info_json(tmp_path, manual, auto), tmp_path / "cache"
    config = IngestConfig(cache_dir=cache, fetch=replace(FAST, max_waits=0))
    reject = subtitle_rows(ClipSpec("abc", str(source), 0.0, None), config)
    assert isinstance(reject, Reject) and reject.reason == "fetch_failed"
    detail = reject.detail.removesuffix(" (unavailable on 1 run(s) in a row; no longer waiting)")
    attempts = detail.removeprefix(f"{source}: no en subtitle track could be fetched, 4 tried: ").split("; ")
    assert attempts[:3] == ["manual en vtt: cannot read after 1 attempt(s): HTTP Error 404: File not found",
                            "manual en srt: network error after 2 attempt(s): HTTP Error 503: busy",
                            "auto en-orig vtt: answered with a web page, not subtitles"]
    assert re.fullmatch(r"auto en vtt: \S+\.en\.vtt: unparsable VTT \(.*\)", attempts[3])
    assert Handler.requests.count("/fail/busy.srt") == 2 and "/x.json3" not in Handler.requests
    assert not [p for p in cache.rglob("*") if p.is_file()]  # no record, no subtitle file
    (root / "notes.vtt").write_text(VTT)
    rows = subtitle_rows(ClipSpec("abc", str(source), 0.0, None), config)
    assert [(r["kind"], r["lang"], r["text"]) for r in rows] == [("auto", "en", "hello from the server")]


def manual_and_auto(root: Path, base: str, tmp_path: Path) -> Path:
    """A saved info JSON whose manual and automatic English tracks are served at /manual.vtt and /auto.vtt."""
    (root / "manual.vtt").write_text(VTT)
    (root / "auto.vtt").write_text(VTT.replace("from the server", "from the recogniser"))
    return info_json(tmp_path, {"en": [{"ext": "vtt", "url": f"{base}/manual.vtt"}]},
                     {"en": [{"ext": "vtt", "url": f"{base}/auto.vtt"}]})


def cached_files(cache: Path, source: str) -> list[str]:
    """The files the ingest keeps in ``cache`` for ``source``, without its key: ``subs.json``, ``en.vtt``."""
    return sorted(p.name.removeprefix(f"{_source_key(source)}.") for p in cache.rglob("*") if p.is_file())


@pytest.mark.integration
@pytest.mark.parametrize("limited", ["the page", "every track"])
def test_a_rate_limited_source_waits_and_is_fetched_on_a_later_run(server: tuple[str, Path], tmp_path: Path,
                                                                   limited: str) -> None:
    """The page, or each subtitle track, answering 429 through one run's retries (a rate limit, an outage):
    the clip waits (no reject, nothing saved but the count of runs waited) and a later run fetches it. Before,
    a ``fetch_failed`` reject dropped it for good: no later run looks at a rejected clip again."""
    base, root = server
    if limited == "the page":
        source, paths = f"{base}/index.html", ["/index.html"]
    else:
        source, paths = str(manual_and_auto(root, base, tmp_path)), ["/manual.vtt", "/auto.vtt"]
    Handler.rate_limited.update(dict.fromkeys(paths, FAST.attempts))  # one run's tries
    clip, config = ClipSpec("abc", source, 0.0, None), IngestConfig(cache_dir=tmp_path / "cache", fetch=FAST)
    assert subtitle_rows(clip, config) is None
    assert cached_files(tmp_path / "cache", source) == ["waits.json"]
    rows = subtitle_rows(clip, config)
    assert [(r["kind"], r["text"]) for r in rows] == [("manual", "hello from the server")]
    assert cached_files(tmp_path / "cache", source) == ["en.vtt", "subs.json"]  # the count of runs waited is gone


@pytest.mark.integration
def test_a_rate_limited_manual_track_does_not_lose_to_the_automatic_one(server: tuple[str, Path],
                                                                        tmp_path: Path) -> None:
    """The manual track answering 429 while the automatic one answers: the automatic captions were saved and
    kept for good. Now nothing is saved, the automatic track is not even asked for, and a later run gets
    the manual track."""
    base, root = server
    source, out = str(manual_and_auto(root, base, tmp_path)), tmp_path / "out"
    Handler.rate_limited["/manual.vtt"] = FAST.attempts
    with pytest.raises(FetchUnavailable, match=r"waiting for a better track than auto en vtt: manual en vtt: "
                                               r"network error after 2 attempt\(s\): HTTP Error 429"):
        fetch_subtitles(source, "abc", out, FAST)
    assert "/auto.vtt" not in Handler.requests and [p.name for p in out.iterdir()] == ["abc.waits.json"]
    got = fetch_subtitles(source, "abc", out, FAST)
    assert (got.kind, got.lang, got.path.read_text()) == ("manual", "en", VTT)


@pytest.mark.integration
def test_another_format_of_a_rate_limited_track_is_no_worse(server: tuple[str, Path], tmp_path: Path) -> None:
    """The manual track's VTT rate-limited, its SRT served: the same captions, taken without waiting."""
    base, root = server
    (root / "manual.srt").write_text(SRT)
    formats = [{"ext": "vtt", "url": f"{base}/manual.vtt"}, {"ext": "srt", "url": f"{base}/manual.srt"}]
    Handler.rate_limited["/manual.vtt"] = FAST.attempts
    got = fetch_subtitles(str(info_json(tmp_path, {"en": formats}, {})), "abc", tmp_path / "out", FAST)
    assert (got.kind, got.path.name) == ("manual", "abc.en.srt")


@pytest.mark.integration
@pytest.mark.parametrize("auto_answers", [True, False])
def test_after_max_waits_runs_the_best_track_that_fetched_is_taken(server: tuple[str, Path], tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture,
                                                                   auto_answers: bool) -> None:
    """A rate limit that does not end: the source waits ``max_waits`` runs (a warning names the clip, the
    source and why), then the next run takes the automatic captions, or with none to take is rejected
    saying for how many runs it was unavailable."""
    base, root = server
    source = str(manual_and_auto(root, base, tmp_path))
    Handler.rate_limited.update({"/manual.vtt": 100, "/auto.vtt": 0 if auto_answers else 100})
    clip = ClipSpec("abc", source, 0.0, None)
    config = IngestConfig(cache_dir=tmp_path / "cache", fetch=replace(FAST, max_waits=2))
    for run in (1, 2):
        with caplog.at_level("WARNING", logger="pipeline.ingest"):
            assert subtitle_rows(clip, config) is None
        assert caplog.messages[-1].startswith(f"abc waits for a later run: the subtitles of {source} are unavailable")
        assert caplog.messages[-1].endswith(f"HTTP Error 429: Too Many Requests (unavailable on {run} run(s) in a row; "
                                            "waits 2 at most)")
    out = subtitle_rows(clip, config)
    if auto_answers:
        assert [(r["kind"], r["text"]) for r in out] == [("auto", "hello from the recogniser")]
    else:
        assert isinstance(out, Reject) and out.reason == "fetch_failed"
        assert out.detail.startswith(f"{source}: no en subtitle track could be fetched, 2 tried: manual en vtt: "
                                     "network error after 2 attempt(s): HTTP Error 429")
        assert out.detail.endswith("(unavailable on 3 run(s) in a row; no longer waiting)")
    assert "waits.json" not in cached_files(tmp_path / "cache", source)


@pytest.mark.integration
def test_a_source_unavailable_in_a_run_is_asked_once_and_counted_once_in_it(server: tuple[str, Path],
                                                                             tmp_path: Path) -> None:
    """Two clips of one video in one run (VoxCeleb has many): the second does not ask the rate-limited
    site again, and the run counts once, so neither clip gives up before ``max_waits`` runs have passed."""
    base, root = server
    source = str(manual_and_auto(root, base, tmp_path))
    Handler.rate_limited.update({"/manual.vtt": 100, "/auto.vtt": 100})
    config = IngestConfig(cache_dir=tmp_path / "cache", fetch=replace(FAST, max_waits=1))
    first, second = ClipSpec("a", source, 0.0, 5.0), ClipSpec("b", source, 5.0, None)
    assert subtitle_rows(first, config, run="monday") is None
    asked = len(Handler.requests)
    assert subtitle_rows(second, config, run="monday") is None and len(Handler.requests) == asked
    out = subtitle_rows(second, config, run="tuesday")
    assert isinstance(out, Reject) and out.detail.endswith("(unavailable on 2 run(s) in a row; no longer waiting)")


@pytest.mark.integration
def test_page_without_english_track(server: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(NoEnglishSubtitles, match="manual tracks: fr"):
        fetch_subtitles(f"{base}/fr.html", "fr", tmp_path, FAST)


@pytest.mark.integration
def test_server_errors_are_retried_then_reported(server: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(FetchUnavailable, match="network error after 2 attempt") as err:
        fetch_subtitles(f"{base}/fail/page.html", "x", tmp_path, FAST)
    assert err.value.reason == "fetch_failed"  # should a caller reject it rather than wait
    assert Handler.requests.count("/fail/page.html") == 2


def info_json(tmp_path: Path, subtitles: dict, automatic: dict) -> Path:
    path = tmp_path / "video.info.json"
    path.write_text(json.dumps({"id": "abc", "title": "t", "extractor": "youtube",
                                "subtitles": subtitles, "automatic_captions": automatic}))
    return path


def test_saved_info_json_falls_back_to_auto_captions(tmp_path: Path) -> None:
    vtt = tmp_path / "auto.vtt"
    vtt.write_text(VTT)
    track = [{"ext": "json3", "url": "file:///nonexistent.json3"}, {"ext": "vtt", "url": vtt.as_uri()}]
    source = info_json(tmp_path, {"de": track}, {"en-orig": track, "en": track, "de": track})
    got = fetch_subtitles(str(source), "abc", tmp_path / "out", FetchConfig(allow_file_urls=True, attempts=1))
    assert (got.kind, got.lang) == ("auto", "en-orig")
    assert got.path.read_text() == VTT


def test_saved_info_json_that_is_no_info_dict_cannot_be_read(tmp_path: Path) -> None:
    source = tmp_path / "video.info.json"
    source.write_text("[]")
    with pytest.raises(FetchError, match="video.info.json: cannot read .*not a yt-dlp info dict but a JSON list"):
        fetch_subtitles(str(source), "abc", tmp_path / "out", FAST)


def test_translated_auto_captions_do_not_count(tmp_path: Path) -> None:
    track = [{"ext": "vtt", "url": "file:///x.vtt"}]
    source = info_json(tmp_path, {}, {"de-orig": track, "en": track})
    with pytest.raises(NoEnglishSubtitles, match="no en subtitles"):
        fetch_subtitles(str(source), "abc", tmp_path / "out", FetchConfig(allow_file_urls=True))


@pytest.mark.integration
def test_translation_of_a_manual_track_is_not_english_captions(server: tuple[str, Path], tmp_path: Path) -> None:
    """A German video with German subtitles, saved with its auto tracks: ``en-de`` is English *from German*."""
    base, _ = server
    track = [{"ext": "json3", "url": f"{base}/missing.json3"}, {"ext": "vtt", "url": f"{base}/clip.en.vtt"}]
    source = info_json(tmp_path, {"de": track}, {"en-de": track, "de-de": track})
    with pytest.raises(NoEnglishSubtitles, match="manual tracks: de"):
        fetch_subtitles(str(source), "abc", tmp_path / "out", FAST)
    assert Handler.requests == []
    regional = info_json(tmp_path, {"de": track}, {"en-GB": track})  # not a translation of a manual track
    assert fetch_subtitles(str(regional), "gb", tmp_path / "out", FAST).lang == "en-GB"


def test_candidate_tracks_are_manual_english_vtt_first_each_url_once() -> None:
    vtt, srt, json3 = {"ext": "vtt", "url": "u1"}, {"ext": "srt", "url": "u2"}, {"ext": "json3", "url": "u3"}
    gb, auto = {"ext": "srt", "url": "u4"}, {"ext": "vtt", "url": "u5"}
    info = {"subtitles": {"en-GB": [gb], "en": [json3, srt, vtt]},
            "automatic_captions": {"en-orig": [auto], "en": [auto]}}  # one format listed under both keys
    assert candidate_tracks(info) == [Track("manual", "en", vtt), Track("manual", "en", srt),
                                      Track("manual", "en-GB", gb), Track("auto", "en-orig", auto)]
    assert candidate_tracks({"automatic_captions": {"en": [vtt]}}) == [Track("auto", "en", vtt)]
    with pytest.raises(NoEnglishSubtitles):
        candidate_tracks({"subtitles": {"en": [json3]}})


def test_source_url() -> None:
    assert source_url("dQw4w9WgXcQ") == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert source_url("http://x/y") == "http://x/y"


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


@pytest.mark.skipif(_resolves("www.youtube.com"), reason="this machine has network; the test is for offline runs")
def test_youtube_without_network_fails_fast(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="pipeline.subtitle_fetch"):
        with pytest.raises(FetchError, match="dQw4w9WgXcQ: network error after 2 attempt"):
            fetch_subtitles("dQw4w9WgXcQ", "dQw4w9WgXcQ", tmp_path, FAST)
    assert sum("retrying" in r.message for r in caplog.records) == 1
    assert not list(tmp_path.glob("*.subs.json"))


class CookieSite(SiteHandler):
    """Serves ``/members/`` paths only to a request carrying the cookie ``session=member``, 403 otherwise."""

    def do_GET(self) -> None:
        if self.path.startswith("/members/") and "session=member" not in (self.headers.get("Cookie") or ""):
            self.requests.append(self.path)
            self.send_error(403, "Forbidden")
        else:
            super().do_GET()


@pytest.mark.integration
def test_a_cookies_file_is_sent_and_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A track for signed-in viewers: refused without cookies, fetched with the user's cookies file, which
    yt-dlp, writing its cookies back on close, leaves as it was (it writes a private copy, then removed)."""
    root, scratch = tmp_path / "www", tmp_path / "tmp"
    (root / "members").mkdir(parents=True)
    scratch.mkdir()
    (root / "members" / "track.vtt").write_text(VTT)
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    with serve(root, CookieSite) as base:
        source = info_json(tmp_path, {"en": [{"ext": "vtt", "url": f"{base}/members/track.vtt"}]}, {})
        with pytest.raises(FetchError, match="HTTP Error 403"):
            fetch_subtitles(str(source), "abc", tmp_path / "out", FAST)
        cookies = tmp_path / "cookies.txt"
        cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tmember\n")
        before = cookies.read_bytes()
        got = fetch_subtitles(str(source), "abc", tmp_path / "out", replace(FAST, cookie_file=str(cookies)))
    assert got.path.read_text() == VTT
    assert cookies.read_bytes() == before and list(scratch.iterdir()) == []


def test_a_cookies_file_missing_on_a_worker_makes_the_clip_wait(tmp_path: Path) -> None:
    """The refresh command checks the file exists; a Dask worker elsewhere may lack it: a deployment fault,
    so its clips wait for a run that can read it instead of being rejected."""
    source = info_json(tmp_path, {"en": [{"ext": "vtt", "url": "http://127.0.0.1:9/track.vtt"}]}, {})
    config = replace(FAST, cookie_file=str(tmp_path / "absent.txt"))
    with pytest.raises(FetchUnavailable, match=f"cookies file {tmp_path / 'absent.txt'}: cannot read it on this"):
        fetch_subtitles(str(source), "abc", tmp_path / "out", config)


# The messages yt-dlp 2026.10.26's YouTube extractor (yt_dlp/extractor/youtube/_video.py) raises when YouTube
# refuses a video; YouTube cannot be reached from this machine, so its answers are simulated by raising them.
YOUTUBE_REFUSALS = [
    ("This content isn't available, try again later. The current session has been rate-limited by YouTube for "
     "up to an hour.", None),
    ("Sign in to confirm you\u2019re not a bot. Use --cookies-from-browser or --cookies for the authentication.",
     None),
    ("Video unavailable. This video has been removed by the uploader", "video_unavailable"),
    ("Private video. Sign in if you've been granted access to this video. Use --cookies-from-browser or --cookies "
     "for the authentication.", "video_unavailable"),
    ("Video unavailable. This video is no longer available because the YouTube account associated with this "
     "video has been terminated.", "video_unavailable"),
    ("Sign in to confirm your age. This video may be inappropriate for some users. Use --cookies-from-browser or "
     "--cookies for the authentication.", "sign_in_required"),
    ("Join this channel to get access to members-only content like this video, and other exclusive perks.",
     "sign_in_required"),
    ("Unable to extract yt initial data; please report this issue on https://github.com/yt-dlp/yt-dlp/issues",
     "fetch_failed"),
    # scheduled streams, in YouTube's words as yt-dlp reported them (yt-dlp users' logs, ytdl-sub issue 1323)
    ("Premieres in 6 hours", None),
    ("This live event will begin in 2 days.", None),
]


@pytest.mark.parametrize("message, reason", YOUTUBE_REFUSALS, ids=["rate_limit", "bot_check", "removed", "private",
                                                                    "terminated", "age", "members", "other",
                                                                    "premiere", "live_event"])
def test_youtube_refusals_simulated_without_youtube_wait_or_get_their_own_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, message: str, reason: str | None) -> None:
    """All of these were ``fetch_failed`` before: an hour's rate limit rejected every clip of the run for good,
    and a retry of fetch failures asked again for removed videos. Now a rate limit or bot check makes the clip
    wait (asked once a run, not retried within it), and a removed or sign-in-only video has its own reason."""
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import ExtractorError

    asked = []

    def refuse(self, url: str, download: bool = True) -> dict:
        asked.append(url)
        error = ExtractorError(message, video_id="dQw4w9WgXcQ", ie="youtube", expected=True)
        self.report_error(str(error), error.format_traceback())  # as yt-dlp's own extract_info does

    monkeypatch.setattr(YoutubeDL, "extract_info", refuse)
    config = IngestConfig(cache_dir=tmp_path / "cache", fetch=FAST)
    out = subtitle_rows(ClipSpec("abc", "dQw4w9WgXcQ", 0.0, None), config)
    assert len(asked) == 1
    if reason is None:
        assert out is None
        why = json.loads((tmp_path / "cache" / "subtitles" / "dQw4w9WgXcQ.waits.json").read_text())["why"]
        site_wide = "try again later" in message or "not a bot" in message  # not a stream still to come
        assert ("--fetch-sleep 2 fetches more slowly, --cookies FILE passes a bot check signed in" in why) == site_wide
    else:
        assert isinstance(out, Reject) and out.reason == reason
        assert out.detail.startswith("dQw4w9WgXcQ: ") and "[youtube] dQw4w9WgXcQ: " in out.detail
        assert out.detail.endswith("may see it)") == (reason == "sign_in_required")
        assert out.detail.endswith("pip install -U yt-dlp, then talkface rejects --reason fetch_failed --retry)") == (
            "report this issue" in message)  # an extractor that may no longer understand the site


@pytest.mark.integration
@pytest.mark.parametrize("status", ["is_live", "post_live"])
def test_a_live_stream_waits_for_its_recording_instead_of_being_recorded(server: tuple[str, Path], tmp_path: Path,
                                                                         status: str) -> None:
    """A source on air, as yt-dlp describes it (``live_status``): its media were downloaded for as long as the
    stream went on (a channel's round-the-clock stream: for ever, holding the worker and the run), and a
    stream has no captions yet. Now it waits, asking for nothing more, and once over its recording is
    fetched; a stream still on air after ``max_waits`` runs is a fetch failure."""
    base, root = server
    info = json.loads(info_json(tmp_path, {"en": [{"ext": "vtt", "url": f"{base}/clip.en.vtt"}]}, {}).read_text())
    formats = [{"format_id": "hls", "url": f"{base}/clip.mp4", "ext": "mp4", "protocol": "https"}]
    source = tmp_path / "stream.info.json"
    source.write_text(json.dumps({**info, "formats": formats, "live_status": status, "is_live": status == "is_live"}))
    config, out = replace(FAST, download_media=True, max_waits=1), tmp_path / "out"

    with pytest.raises(FetchUnavailable, match=f"a live stream \\({status}\\): its recording and captions"):
        fetch_subtitles(str(source), "abc", out, config, run="1")
    assert Handler.requests == [] and not list(out.glob("abc.*.vtt")) and not list(out.glob("abc.mp4"))
    with pytest.raises(FetchError, match="no longer waiting"):
        fetch_subtitles(str(source), "abc", out, config, run="2")

    source.write_text(json.dumps({**info, "formats": formats, "live_status": "was_live"}))  # over: a video
    got = fetch_subtitles(str(source), "abc", out, config, run="3")
    assert got.path.read_text() == VTT and got.media_path.read_bytes() == (root / "clip.mp4").read_bytes()


def test_a_site_refusing_one_source_is_not_asked_for_the_others_in_that_run_simulated_without_youtube(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """YouTube's rate limit is for the machine, not the video: the run asked it for every source of the
    corpus (prolonging the limit) and counted a run waited for each, so three limited nights rejected the
    whole corpus as ``fetch_failed``. Now the first refusal of a run marks the site: the other sources wait
    unasked and uncounted, and the next run asks again."""
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import ExtractorError

    asked: list[str] = []

    def refuse(self, url: str, download: bool = True) -> dict:
        asked.append(url)
        error = ExtractorError("This content isn't available, try again later.", video_id=url[-11:], ie="youtube",
                               expected=True)
        self.report_error(str(error), error.format_traceback())

    vtt = tmp_path / "track.vtt"
    vtt.write_text(VTT)

    def answer(self, url: str, download: bool = True) -> dict:
        asked.append(url)
        return {"id": url[-11:], "title": "t", "extractor": "youtube",
                "subtitles": {"en": [{"ext": "vtt", "url": vtt.as_uri()}]}}

    ids = ["dQw4w9WgXcQ", "9bZkp7q19f0", "kJQP7kiw5Fk"]
    config = IngestConfig(cache_dir=tmp_path / "cache", fetch=replace(FAST, allow_file_urls=True))
    records = tmp_path / "cache" / "subtitles"

    def night(run: str) -> list:
        return [subtitle_rows(ClipSpec(f"clip{i}", video, 0.0, None), config, run) for i, video in enumerate(ids)]

    monkeypatch.setattr(YoutubeDL, "extract_info", refuse)
    for n in (1, 2):
        assert night(f"night-{n}") == [None] * 3 and len(asked) == n  # one question a night
    assert [json.loads((records / f"{v}.waits.json").read_text())["runs"] if (records / f"{v}.waits.json").exists()
            else 0 for v in ids] == [2, 0, 0]  # only the source asked counts the nights
    monkeypatch.setattr(YoutubeDL, "extract_info", answer)
    assert all(isinstance(rows, list) and rows for rows in night("night-3")) and len(asked) == 5
    assert not list(records.glob("*.waits.json"))


def test_a_geo_restricted_video_is_unavailable_simulated_without_youtube(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import GeoRestrictedError

    def refuse(self, url: str, download: bool = True) -> dict:
        error = GeoRestrictedError("The uploader has not made this video available in your country")
        self.report_error(str(error), error.format_traceback())

    monkeypatch.setattr(YoutubeDL, "extract_info", refuse)
    out = subtitle_rows(ClipSpec("abc", "dQw4w9WgXcQ", 0.0, None), IngestConfig(cache_dir=tmp_path, fetch=FAST))
    assert isinstance(out, Reject) and out.reason == "video_unavailable"
