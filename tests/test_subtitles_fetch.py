"""Subtitle fetching with yt-dlp, offline: a real local HTTP server and saved info JSON."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.corpus import ClipSpec
from pipeline.ingest import IngestConfig, subtitle_rows
from pipeline.stage import Reject
from pipeline.subtitle_fetch import (
    FetchConfig,
    FetchError,
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


class Handler(SimpleHTTPRequestHandler):
    """Serves the folder; paths under /fail/ answer 503; counts requests."""

    requests: list[str] = []

    def do_GET(self) -> None:
        Handler.requests.append(self.path)
        if self.path.startswith("/fail/"):
            self.send_error(503, "busy")
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "clip.mp4").write_bytes(b"\0" * 100)
    (root / "clip.en.vtt").write_text(VTT)
    (root / "index.html").write_text(PAGE.format(
        track='<track kind="subtitles" srclang="en" label="English" src="clip.en.vtt">'))
    (root / "fr.html").write_text(PAGE.format(track='<track kind="subtitles" srclang="fr" src="clip.en.vtt">'))
    Handler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


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
    failed, nothing is cached, and the next run fetches again (and gets the track once it is served)."""
    base, root = server
    (root / "page.vtt").write_text(WEB_PAGE)
    (root / "notes.vtt").write_text("these are not subtitles\n")
    manual = {"en": [{"ext": "vtt", "url": f"{base}/missing.vtt"}, {"ext": "srt", "url": f"{base}/fail/busy.srt"}]}
    auto = {"en-orig": [{"ext": "json3", "url": f"{base}/x.json3"}, {"ext": "vtt", "url": f"{base}/page.vtt"}],
            "en": [{"ext": "vtt", "url": f"{base}/notes.vtt"}]}
    source, cache = info_json(tmp_path, manual, auto), tmp_path / "cache"
    reject = subtitle_rows(ClipSpec("abc", str(source), 0.0, None), IngestConfig(cache_dir=cache, fetch=FAST))
    assert isinstance(reject, Reject) and reject.reason == "fetch_failed"
    attempts = reject.detail.removeprefix(f"{source}: no en subtitle track could be fetched, 4 tried: ").split("; ")
    assert attempts[:3] == ["manual en vtt: cannot read after 1 attempt(s): HTTP Error 404: File not found",
                            "manual en srt: network error after 2 attempt(s): HTTP Error 503: busy",
                            "auto en-orig vtt: answered with a web page, not subtitles"]
    assert re.fullmatch(r"auto en vtt: \S+\.en\.vtt: unparsable VTT \(.*\)", attempts[3])
    assert Handler.requests.count("/fail/busy.srt") == 2 and "/x.json3" not in Handler.requests
    assert not [p for p in cache.rglob("*") if p.is_file()]  # no record, no subtitle file
    (root / "notes.vtt").write_text(VTT)
    rows = subtitle_rows(ClipSpec("abc", str(source), 0.0, None), IngestConfig(cache_dir=cache, fetch=FAST))
    assert [(r["kind"], r["lang"], r["text"]) for r in rows] == [("auto", "en", "hello from the server")]


@pytest.mark.integration
def test_page_without_english_track(server: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(NoEnglishSubtitles, match="manual tracks: fr"):
        fetch_subtitles(f"{base}/fr.html", "fr", tmp_path, FAST)


@pytest.mark.integration
def test_server_errors_are_retried_then_reported(server: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(FetchError, match="network error after 2 attempt") as err:
        fetch_subtitles(f"{base}/fail/page.html", "x", tmp_path, FAST)
    assert err.value.reason == "fetch_failed"
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
