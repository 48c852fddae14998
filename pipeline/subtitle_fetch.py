"""Fetch English subtitles for a source with yt-dlp's Python API.

Manual subtitles first, automatic captions as the fallback; the kind is
recorded. Every English track format we can parse is a candidate, tried in that
order until one fetches and parses: a format that answers 404 or a web page, or
does not parse, costs that format only. Only the subtitle file is downloaded
unless media is asked for. Network errors are retried with exponential backoff;
a source without English subtitles raises :class:`NoEnglishSubtitles` at once
(nothing to retry). A fetched source leaves ``<key>.subs.json`` beside its
subtitle file, so a second fetch of the same source touches no network.

Network errors that outlast the retries (an outage, a rate limit) raise
:class:`FetchUnavailable`: the source may answer on a later run, so nothing is
saved, not even a worse track that did fetch (the automatic captions while the
manual track is rate-limited). ``<key>.waits.json`` counts the runs in a row
that ended so; after ``FetchConfig.max_waits`` of them the next run settles for
the best track that fetches, or gives up with a plain :class:`FetchError`. The
record is kept beside the fetch in the cache, or in ``FetchConfig.waits_dir``, a
folder every worker reaches (the refresh names one under a warehouse on object
storage), so that machines with caches of their own count one source's runs together.

What a failed request means is :mod:`pipeline.fetch_errors`' to say: a site
refusing the video (a rate limit waits, a removed or sign-in-only video has its
own rejects reason), a full disk (the run stops). ``FetchConfig.cookie_file``
signs in, through a private copy.

Automatic captions: YouTube lists the speech recogniser's own track as
``<lang>-orig`` and machine translations under plain language codes. When an
``-orig`` track exists and is not English, the video is not in English and its
"English" auto captions are a translation: that counts as no English subtitles.
Translations of a manual track are listed as ``<to>-<from>`` (``en-de``: English
from the German subtitles); they do not count either.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

from pipeline.fetch_errors import (
    FetchError,
    FetchUnavailable,
    NoEnglishSubtitles,
    SiteRefused,
    cannot_read,
    final_error,
    first_line,
    is_network_error,
    not_yet_a_video,
)
from pipeline.subtitles import SubtitleError, parse_cues
from warehouse.location import Location

if TYPE_CHECKING:
    import yt_dlp

log = logging.getLogger(__name__)
T = TypeVar("T")

SUBTITLE_EXTS: tuple[str, ...] = ("vtt", "srt")
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")


@dataclass(frozen=True)
class FetchConfig:
    """How subtitles are fetched."""

    lang: str = "en"
    attempts: int = 3  # tries per request on network errors (5xx, 429, timeouts, transport errors) in one run
    backoff_s: float = 2.0  # wait before the 2nd try; doubles each time
    # a source whose network errors outlast the attempts is not rejected but waits (FetchUnavailable), and the
    # next run tries it again; after this many runs in a row the next one settles for the best track that
    # fetches, else gives up (fetch_failed). 0: never wait
    max_waits: int = 3
    socket_timeout_s: float = 20.0
    download_media: bool = False  # also download the media file next to the subtitles
    # media at this height or less where the site has it (else the nearest above), H.264 preferred; 0 = the best
    # there is. The faces stage cuts 112-px crops, and decoding a 1080p frame costs about 2.5 720p ones
    max_height: int = 720
    allow_file_urls: bool = False  # follow file:// URLs (saved info JSON of a local mirror)
    # a Netscape cookies file (yt-dlp's --cookies) of an account that may see sign-in-only videos; read only
    cookie_file: str | None = None
    # a pause before each request to the site and each subtitle and media download (yt-dlp's sleep options):
    # a big YouTube corpus fetched at full speed is rate-limited for an hour or more
    sleep_s: float = 0.0
    # where each source's record of the runs it waited lives (a folder or object-store URI every worker reaches);
    # None: beside its fetch in the cache. With one per machine, W workers let a source wait up to W x max_waits runs
    waits_dir: str | None = None


@dataclass(frozen=True)
class FetchedSubtitles:
    """Where a source's subtitles were saved and what they are."""

    source: str
    path: Path
    kind: str  # manual | auto
    lang: str
    media_path: Path | None = None


class Track(NamedTuple):
    """One format of one subtitle track in a yt-dlp info dict: a candidate to fetch."""

    kind: str  # manual | auto
    lang: str  # the track's key: en, en-GB, en-orig
    format: dict[str, Any]  # yt-dlp's: ext, url

    @property
    def label(self) -> str:
        return f"{self.kind} {self.lang} {self.format['ext']}"


def is_youtube_id(source: str) -> bool:
    """Whether a source is a bare YouTube video id (11 characters of ``A-Za-z0-9_-``)."""
    return bool(_YOUTUBE_ID.match(source))


def site_of(source: str) -> str:
    """A file-safe name of the site a source is fetched from (``youtube`` for an id or a YouTube URL, else the
    URL's host), under which its refusals of a run are kept (``<site>.refused.json``)."""
    host = (urlsplit(source_url(source)).hostname or "local").removeprefix("www.")
    if host in ("youtube.com", "m.youtube.com", "youtu.be", "music.youtube.com"):
        return "youtube"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", host)


def source_url(source: str) -> str:
    """A YouTube id becomes its watch URL; URLs and info JSON paths pass unchanged."""
    return f"https://www.youtube.com/watch?v={source}" if is_youtube_id(source) else source


def candidate_tracks(info: dict[str, Any], lang: str = "en") -> list[Track]:
    """The English track formats of a yt-dlp info dict we can parse, best first, each URL once.

    Manual tracks first (``lang`` itself, then its regional variants), then
    automatic ones (see the module docstring for which count); in each track
    VTT before SRT.

    Raises:
        NoEnglishSubtitles: no manual track and no untranslated automatic one.
    """
    manual = info.get("subtitles") or {}
    auto = info.get("automatic_captions") or {}
    originals = [k for k in auto if k.endswith("-orig")]
    if originals:
        auto_keys = [f"{lang}-orig"] + ([lang] if f"{lang}-orig" in originals else [])
    else:
        auto_keys = _keys_of(lang, set(auto) - _translations_of(manual, lang))
    tracks = _formats("manual", manual, _keys_of(lang, manual)) + _formats("auto", auto, auto_keys)
    if not tracks:
        languages = sorted(set(manual) | set(originals)) or ["none"]
        raise NoEnglishSubtitles(f"no {lang} subtitles (manual tracks: {', '.join(languages)})")
    unique: dict[str, Track] = {}
    for track in tracks:  # one format listed under two keys (en-orig and en) is tried once, as the better
        unique.setdefault(track.format["url"], track)
    return list(unique.values())


def _keys_of(lang: str, keys: Iterable[str]) -> list[str]:
    """The track keys of ``lang``: itself first, then its regional variants (``en-GB``) in order."""
    return sorted((k for k in keys if k == lang or k.startswith(f"{lang}-")), key=lambda k: (k != lang, k))


def _formats(kind: str, tracks: dict[str, list[dict[str, Any]]], keys: list[str]) -> list[Track]:
    """The formats of ``tracks[key]`` for each key in order that we parse, with a URL, in ``SUBTITLE_EXTS`` order."""
    return [Track(kind, key, f) for key in keys for ext in SUBTITLE_EXTS
            for f in tracks.get(key) or [] if f.get("ext") == ext and f.get("url")]


def _translations_of(manual: dict[str, Any], lang: str) -> set[str]:
    """Automatic-caption keys that are machine translations of a manual track into ``lang``: yt-dlp names
    them ``<to>-<from>``, so without them an ``en-de`` track would pass for English captions of the video."""
    return {f"{lang}-{key}" for key in manual}


class _Logger:
    """Routes yt-dlp's messages to ``logging`` instead of stderr."""

    def debug(self, msg: str) -> None:
        log.debug(msg)

    def info(self, msg: str) -> None:
        log.debug(msg)

    def warning(self, msg: str) -> None:
        log.info(msg)

    def error(self, msg: str) -> None:
        log.info(msg)


def fetch_subtitles(source: str, key: str, out_dir: Path, config: FetchConfig = FetchConfig(),
                    run: str | None = None) -> FetchedSubtitles:
    """Fetch the English subtitles of ``source`` to ``out_dir/<key>.<lang>.<ext>``.

    Args:
        source: a YouTube id, a URL, or a saved ``.info.json`` path.
        key: file-safe name for what is saved (the source's clip or video id).
        out_dir: folder for subtitle files (and media when asked for).
        config: language, retries, timeouts, runs to wait.
        run: names the refresh asking. A source found unavailable in a run is not asked again in it, and
            that run counts once however many of its clips ask; ``None``: each call is a run of its own.

    Raises:
        NoEnglishSubtitles: nothing in English to fetch.
        FetchUnavailable: network errors outlasted ``config.attempts`` tries, or a better track's did while
            a worse one fetched; nothing is saved. Raised on ``config.max_waits`` runs in a row at most.
        FetchError: the source could not be read, or none of its English track formats fetched and parsed
            (the message lists each and why), or it was unavailable on more than ``config.max_waits`` runs
            in a row (the message says how many).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with _held(out_dir / f".{key}.lock"):
        return _fetch_or_wait(source, key, out_dir, config, run)


def _fetch_or_wait(source: str, key: str, out_dir: Path, config: FetchConfig, run: str | None) -> FetchedSubtitles:
    """:func:`fetch_subtitles` of a source no one else is fetching: the saved fetch, a new one, or a wait."""
    record = out_dir / f"{key}.subs.json"
    cached = _read_record(record, config)
    if cached is not None:
        log.debug("%s: subtitles already fetched", source)
        return cached
    records = Location.of(config.waits_dir or out_dir)
    waits_at = records.join(f"{key}.waits.json")
    waits = _read_json(waits_at, lambda saved: _Waits(**saved)) or _Waits()
    if run is not None and waits.run == run:  # found unavailable earlier in this run: asked once, counted once
        raise FetchUnavailable(waits.message(config))
    refused_at = records.join(f"{site_of(source)}.refused.json")
    refused = _read_json(refused_at, lambda saved: _Waits(**saved)) if run is not None else None
    if refused is not None and refused.run == run:  # not asked, not counted: the site, not the source
        raise FetchUnavailable(f"{source}: not asked in this run, the site refused another source: {refused.why}")
    may_wait, waiting = waits.runs < config.max_waits, False
    try:
        fetched = _fetch(source, key, out_dir, config, patient=may_wait)
    except FetchUnavailable as exc:
        if isinstance(exc, SiteRefused) and run is not None:
            _write_json(refused_at, asdict(_Waits(1, run, str(exc))))
        if not may_wait:
            raise FetchError(f"{exc} (unavailable on {waits.runs + 1} run(s) in a row; no longer waiting)") from exc
        waits, waiting = _Waits(waits.runs + 1, run, str(exc)), True
        _write_json(waits_at, asdict(waits))
        raise FetchUnavailable(waits.message(config)) from exc
    finally:
        if not waiting:  # the record lives while the source waits: fetched, failed for good or given up ends it
            waits_at.delete()
    _write_json(record, {**asdict(fetched), "path": str(fetched.path),
                         "media_path": str(fetched.media_path) if fetched.media_path else None})
    return fetched


@contextmanager
def _held(lock: Path) -> Iterator[None]:
    """Hold the lock file ``lock`` (removed when released) against the threads and processes of this machine.

    The clips of one video in two parallel tasks (VoxCeleb's segments either side of a batch boundary)
    fetched it at once, both downloading its media into the same partial file. The second now waits, then
    finds the first one's fetch saved. A waiter that got the lock on a file the holder had already removed
    tries again on the new one, so two never hold it at once.
    """
    while True:
        handle = open(lock, "a")  # noqa: SIM115 - held past this block, closed below
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if os.fstat(handle.fileno()).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        handle.close()


@dataclass(frozen=True)
class _Waits:
    """``<key>.waits.json``: the runs in a row a source has waited through, the last one's name, and why."""

    runs: int = 0
    run: str | None = None
    why: str = ""

    def message(self, config: FetchConfig) -> str:
        return f"{self.why} (unavailable on {self.runs} run(s) in a row; waits {config.max_waits} at most)"


def _read_json(path: Path | Location, parse: Callable[[Any], T]) -> T | None:
    """``parse`` of the JSON record ``path``, or ``None``: no record, or one a killed run left unreadable
    (a traceback on every later run otherwise)."""
    try:
        return parse(json.loads(Location.of(path).read_bytes().decode("utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        log.info("%s: unreadable record (%s), ignored", path, exc)
        return None


def saved_media(out_dir: Path, key: str) -> Path | None:
    """The media file a fetch of ``key`` saved in ``out_dir``, while it is still there."""
    fetched = _read_record(out_dir / f"{key}.subs.json", FetchConfig())
    return None if fetched is None else fetched.media_path


def _read_record(record: Path, config: FetchConfig) -> FetchedSubtitles | None:
    """The fetch ``record`` describes, or ``None`` to fetch again: no record, an unreadable one, or one
    without the media now wanted."""
    def parse(saved: dict[str, Any]) -> FetchedSubtitles:
        media = Path(saved["media_path"]) if saved.get("media_path") else None
        return FetchedSubtitles(saved["source"], Path(saved["path"]), saved["kind"], saved["lang"],
                                media if media is not None and media.is_file() else None)

    fetched = _read_json(record, parse)
    if fetched is None:
        return None
    # fetched before without its media, which is now wanted: fetch again, or the clip never gets it
    wanted = fetched.media_path is not None or not config.download_media
    return fetched if fetched.path.is_file() and wanted else None


def _write_json(at: Path | Location, record: dict[str, Any]) -> None:
    """Write the JSON ``record`` whole (see :func:`_write_whole`); :func:`_read_json` reads it."""
    _write_whole(at, json.dumps(record, indent=1).encode("utf-8"))


def _write_whole(at: Path | Location, content: bytes) -> None:
    """Write ``at`` whole or not at all: a run killed mid-write must not leave a part that a later
    run reads as the fetched file (:meth:`Location.write`)."""
    Location.of(at).write(lambda handle: handle.write(content), "subtitles")


def _with_retries(call: Callable[[], T], source: str, config: FetchConfig, track: Track | None = None) -> T:
    """``call()``, tried again after network errors, ``config.attempts`` times in all, waiting longer each time.

    Raises:
        OSError: no room on this machine to store a download (see :func:`final_error`).
        FetchUnavailable: the last network error, or a rate limit at once; its message starts with the label
            of the ``track`` fetched (the source's failure lists them), else with ``source``.
        FetchError: any other error, at once (a refusal as its own kind); its message starts the same way.
    """
    what, retrying = (source, source) if track is None else (track.label, f"{source}: {track.label}")
    delay = config.backoff_s
    for attempt in range(1, config.attempts + 1):
        try:
            return call()
        except FetchError:
            raise
        except Exception as exc:  # yt-dlp raises DownloadError wrapping anything
            final = final_error(exc, what)
            if final is not None:
                raise final from exc
            network = is_network_error(exc)
            if not network or attempt == config.attempts:
                error = FetchUnavailable if network else FetchError
                raise error(f"{what}: {'network error' if network else 'cannot read'} "
                            f"after {attempt} attempt(s): {first_line(exc) if network else cannot_read(exc)}") from exc
            log.info("%s: network error (attempt %d of %d), retrying in %.1fs",
                     retrying, attempt, config.attempts, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable: attempts >= 1")


def _refuse_web_page(content: bytes, what: str) -> None:
    """Raise :class:`FetchError` for a track URL that answered with a web page (a consent or rate-limit
    page served with status 200), naming it as such rather than as unparsable subtitles."""
    head = content[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")):
        raise FetchError(f"{what}: answered with a web page, not subtitles")


def media_format_sort(max_height: int) -> list[str]:
    """yt-dlp's ``format_sort`` for media: the largest height up to ``max_height``, then H.264, the cheapest of a
    site's codecs to decode on a CPU (AV1 and VP9 rank above it by default); yt-dlp's own order for 0."""
    return [f"res:{max_height}", "vcodec:h264"] if max_height else []


def _fetch(source: str, key: str, out_dir: Path, config: FetchConfig, patient: bool) -> FetchedSubtitles:
    """Fetch and save the best track (see :func:`_first_good_track` for ``patient``), and the media if asked."""
    import yt_dlp

    options = {
        "quiet": True, "no_warnings": True, "logger": _Logger(), "skip_download": not config.download_media,
        "socket_timeout": config.socket_timeout_s, "retries": 0, "extractor_retries": 0,
        "enable_file_urls": config.allow_file_urls, "noplaylist": True,
        "outtmpl": str(out_dir / f"{key}.%(ext)s"),
        "format_sort": media_format_sort(config.max_height),
    }
    if config.sleep_s:  # before the extractor's requests after its first, and each media download
        options.update(sleep_interval_requests=config.sleep_s, sleep_interval=config.sleep_s)
    if config.download_media:
        options["progress_hooks"] = [DownloadProgress(source)]
        if (ffmpeg := _ffmpeg()) is not None:
            options["ffmpeg_location"] = ffmpeg
    with _private_copy(config.cookie_file) as cookies, yt_dlp.YoutubeDL({**options, "cookiefile": cookies}) as ydl:
        _pause(config)  # yt-dlp does not pause before a new instance's first request: the next source's page
        info = _with_retries(lambda: _info(ydl, source), source, config)
        if (live := not_yet_a_video(info, source)) is not None:
            raise live
        tracks = candidate_tracks(info, config.lang)
        track, content = _first_good_track(ydl, tracks, source, key, out_dir, config, patient)
        media_path = None
        if config.download_media:
            media_path = _with_retries(lambda: _download_media(ydl, info), source, config)
    path = _saved_as(out_dir, key, track)
    _write_whole(path, content)
    log.info("%s: %s subtitles -> %s", source, track.label, path.name)
    return FetchedSubtitles(source, path, track.kind, track.lang, media_path)


def _pause(config: FetchConfig) -> None:
    """``config.sleep_s`` before a request to the site that yt-dlp would send unpaused (``--fetch-sleep``)."""
    if config.sleep_s:
        time.sleep(config.sleep_s)


class DownloadProgress:
    """yt-dlp's progress hook for media: an info line (``-v``) at most every :attr:`every_s` seconds of a
    download, and one when a file is done. An hour of 720p video takes minutes to download, and nothing
    else said that anything was happening."""

    every_s: float = 10.0

    def __init__(self, source: str) -> None:
        self.source = source
        self._next = time.monotonic() + self.every_s

    def __call__(self, status: dict[str, Any]) -> None:
        done, total = status.get("downloaded_bytes") or 0, status.get("total_bytes") or status.get(
            "total_bytes_estimate")
        if status.get("status") == "finished":
            log.info("%s: media downloaded: %s, %.1f MB in %.1f s", self.source, Path(status.get("filename", "")).name,
                     (total or done) / 1e6, status.get("elapsed") or 0.0)
        elif status.get("status") == "downloading" and time.monotonic() >= self._next:
            self._next = time.monotonic() + self.every_s
            share = f"{done / total:.0%} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
            speed, eta = status.get("speed"), status.get("eta")
            log.info("%s: downloading media: %s%s%s", self.source, share,
                     f", {speed / 1e6:.1f} MB/s" if speed else "", f", {eta:.0f} s left" if eta is not None else "")


def _ffmpeg() -> str | None:
    """The ffmpeg for yt-dlp to join a video-only and an audio-only format with: imageio-ffmpeg's static build
    where the system has none on PATH (``None``: yt-dlp finds the system's). Without one, yt-dlp takes the
    best format that holds both, which on YouTube is 360p whatever ``max_height`` asks for."""
    if shutil.which("ffmpeg"):
        return None
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:  # RuntimeError: no binary for this platform
        log.warning("no ffmpeg to join video and audio formats (%s): media come in the best single format", exc)
        return None


@contextmanager
def _private_copy(cookie_file: str | None) -> Iterator[str | None]:
    """A copy of ``cookie_file`` for one fetch, removed after it: yt-dlp writes its cookies back to the file
    when it closes, and the fetches of parallel tasks and workers would write the user's file at once.

    Raises:
        FetchUnavailable: the file cannot be read here (a worker without it); the clip waits, not rejected.
    """
    if cookie_file is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="talkface-cookies-") as folder:
        copy = Path(folder) / "cookies.txt"
        try:
            shutil.copyfile(cookie_file, copy)
        except OSError as exc:
            raise FetchUnavailable(f"cookies file {cookie_file}: cannot read it on this machine ({exc})") from exc
        yield str(copy)


def _info(ydl: yt_dlp.YoutubeDL, source: str) -> dict[str, Any]:
    """yt-dlp's info dict of ``source``: a saved ``.info.json`` as it is, else extracted from the page."""
    if not (source.endswith(".json") and Path(source).is_file()):
        return ydl.extract_info(source_url(source), download=False)
    info = json.loads(Path(source).read_text(encoding="utf-8"))
    if not isinstance(info, dict):
        raise ValueError(f"not a yt-dlp info dict but a JSON {type(info).__name__}")
    return info


def _first_good_track(ydl: yt_dlp.YoutubeDL, tracks: list[Track], source: str, key: str, out_dir: Path,
                      config: FetchConfig, patient: bool) -> tuple[Track, bytes]:
    """The first of ``tracks`` that fetches and parses, and its content; nothing is saved here.

    A track that failed on network errors may answer on a later run: while ``patient``, a worse track (of
    another kind or language; another format of the same track will do) is not taken in its place.

    Raises:
        FetchUnavailable: a track failed on network errors, and none fetched or ``patient`` forbade the
            worse one that would have.
        FetchError: none fetched, none for network errors; the message lists every track tried and why it failed.
    """
    failures: list[str] = []
    unavailable: set[tuple[str, str]] = set()  # (kind, lang) of the tracks that failed on network errors
    for track in tracks:
        if patient and unavailable - {(track.kind, track.lang)}:  # a track's formats are listed together
            raise FetchUnavailable(f"{source}: waiting for a better track than {track.label}: " + "; ".join(failures))
        try:
            return track, _track_content(ydl, track, _saved_as(out_dir, key, track), source, config)
        except FetchError as exc:
            failures.append(str(exc))
            log.info("%s: %s", source, exc)
            if isinstance(exc, FetchUnavailable):
                unavailable.add((track.kind, track.lang))
    error = FetchUnavailable if unavailable else FetchError
    raise error(f"{source}: no {config.lang} subtitle track could be fetched, {len(tracks)} tried: "
                + "; ".join(failures))


def _track_content(ydl: yt_dlp.YoutubeDL, track: Track, path: Path, source: str, config: FetchConfig) -> bytes:
    """The bytes of one track format, checked to parse as the file ``path`` they would be saved as.

    Raises:
        FetchUnavailable: network errors outlasted the retries; the message starts with the track's label.
        FetchError: not fetched, a web page, or not subtitles we parse; the message starts the same way.
    """
    _pause(config)  # yt-dlp's own pause before a subtitle download is not on this path
    content = _with_retries(lambda: ydl.urlopen(track.format["url"]).read(), source, config, track)
    _refuse_web_page(content, track.label)
    try:
        parse_cues(content, path)
    except SubtitleError as exc:
        raise FetchError(f"{track.label}: {exc}") from exc
    return content


def _saved_as(out_dir: Path, key: str, track: Track) -> Path:
    return out_dir / f"{key}.{track.lang}.{track.format['ext']}"


def _download_media(ydl: yt_dlp.YoutubeDL, info: dict[str, Any]) -> Path:
    result = ydl.process_ie_result(info, download=True)
    return Path(result["requested_downloads"][0]["filepath"])
