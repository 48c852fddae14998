"""Fetch English subtitles for a source with yt-dlp's Python API.

Manual subtitles first, automatic captions as the fallback; the kind is
recorded. Only the subtitle file is downloaded unless media is asked for.
Network errors are retried with exponential backoff; a source without English
subtitles raises :class:`NoEnglishSubtitles` at once (nothing to retry). A
fetched source leaves ``<key>.subs.json`` beside its subtitle file, so a second
fetch of the same source touches no network.

Automatic captions: YouTube lists the speech recogniser's own track as
``<lang>-orig`` and machine translations under plain language codes. When an
``-orig`` track exists and is not English, the video is not in English and its
"English" auto captions are a translation: that counts as no English subtitles.
Translations of a manual track are listed as ``<to>-<from>`` (``en-de``: English
from the German subtitles); they do not count either.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUBTITLE_EXTS: tuple[str, ...] = ("vtt", "srt")
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")


class FetchError(RuntimeError):
    """Subtitles could not be fetched; ``reason`` is the stable rejects-table reason."""

    reason = "fetch_failed"


class NoEnglishSubtitles(FetchError):
    """The source has neither manual nor automatic English subtitles."""

    reason = "no_english_subtitles"


@dataclass(frozen=True)
class FetchConfig:
    """How subtitles are fetched."""

    lang: str = "en"
    attempts: int = 3  # tries per source on network errors
    backoff_s: float = 2.0  # wait before the 2nd try; doubles each time
    socket_timeout_s: float = 20.0
    download_media: bool = False  # also download the media file next to the subtitles
    allow_file_urls: bool = False  # follow file:// URLs (saved info JSON of a local mirror)


@dataclass(frozen=True)
class FetchedSubtitles:
    """Where a source's subtitles were saved and what they are."""

    source: str
    path: Path
    kind: str  # manual | auto
    lang: str
    media_path: Path | None = None


def is_youtube_id(source: str) -> bool:
    """Whether a source is a bare YouTube video id (11 characters of ``A-Za-z0-9_-``)."""
    return bool(_YOUTUBE_ID.match(source))


def source_url(source: str) -> str:
    """A YouTube id becomes its watch URL; URLs and info JSON paths pass unchanged."""
    return f"https://www.youtube.com/watch?v={source}" if is_youtube_id(source) else source


def choose_track(info: dict[str, Any], lang: str = "en") -> tuple[str, str, dict[str, Any]]:
    """``(kind, lang_key, format)`` of the best English track in a yt-dlp info dict.

    Raises:
        NoEnglishSubtitles: no manual track and no untranslated automatic one.
    """
    def pick(tracks: dict[str, list[dict[str, Any]]], keys: list[str]) -> tuple[str, dict[str, Any]] | None:
        for key in keys:
            formats = tracks.get(key) or []
            for ext in SUBTITLE_EXTS:
                found = next((f for f in formats if f.get("ext") == ext and f.get("url")), None)
                if found is not None:
                    return key, found
        return None

    manual = info.get("subtitles") or {}
    matching = [k for k in manual if k == lang or k.startswith(f"{lang}-")]
    found = pick(manual, sorted(matching, key=lambda k: (k != lang, k)))
    if found:
        return "manual", *found
    auto = info.get("automatic_captions") or {}
    originals = [k for k in auto if k.endswith("-orig")]
    if originals:
        keys = [f"{lang}-orig"] + ([lang] if f"{lang}-orig" in originals else [])
    else:
        translated = _translations_of(manual, lang)
        keys = sorted((k for k in auto if (k == lang or k.startswith(f"{lang}-")) and k not in translated),
                      key=lambda k: (k != lang, k))
    found = pick(auto, keys)
    if found:
        return "auto", *found
    languages = sorted(set(manual) | set(originals)) or ["none"]
    raise NoEnglishSubtitles(f"no {lang} subtitles (manual tracks: {', '.join(languages)})")


def _translations_of(manual: dict[str, Any], lang: str) -> set[str]:
    """Automatic-caption keys that are machine translations of a manual track into ``lang``: yt-dlp names
    them ``<to>-<from>``, so without them an ``en-de`` track would pass for English captions of the video."""
    return {f"{lang}-{key}" for key in manual}


def _is_network_error(exc: BaseException) -> bool:
    from yt_dlp.networking.exceptions import HTTPError, TransportError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, HTTPError):
            return seen.status >= 500 or seen.status == 429
        if isinstance(seen, (TransportError, TimeoutError, ConnectionError)):
            return True
        seen = getattr(seen, "cause", None) or seen.__cause__ or (
            seen.exc_info[1] if getattr(seen, "exc_info", None) else None)
    return False


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


def fetch_subtitles(source: str, key: str, out_dir: Path, config: FetchConfig = FetchConfig()) -> FetchedSubtitles:
    """Fetch the English subtitles of ``source`` to ``out_dir/<key>.<lang>.<ext>``.

    Args:
        source: a YouTube id, a URL, or a saved ``.info.json`` path.
        key: file-safe name for what is saved (the source's clip or video id).
        out_dir: folder for subtitle files (and media when asked for).
        config: language, retries, timeouts.

    Raises:
        NoEnglishSubtitles: nothing in English to fetch.
        FetchError: the source could not be read, after ``config.attempts`` tries
            for network errors.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    record = out_dir / f"{key}.subs.json"
    cached = _read_record(record, config)
    if cached is not None:
        log.debug("%s: subtitles already fetched", source)
        return cached
    fetched = _with_retries(lambda: _fetch(source, key, out_dir, config), source, config)
    data = {**asdict(fetched), "path": str(fetched.path),
            "media_path": str(fetched.media_path) if fetched.media_path else None}
    _write_whole(record, json.dumps(data, indent=1).encode("utf-8"))
    return fetched


def _read_record(record: Path, config: FetchConfig) -> FetchedSubtitles | None:
    """The fetch ``record`` describes, or ``None`` to fetch again: no record, one a killed run left
    unreadable (a traceback on every later run otherwise), or one without the media now wanted."""
    try:
        saved = json.loads(record.read_text(encoding="utf-8"))
        path, media = Path(saved["path"]), Path(saved["media_path"]) if saved.get("media_path") else None
        fetched = FetchedSubtitles(saved["source"], path, saved["kind"], saved["lang"],
                                   media if media is not None and media.is_file() else None)
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        log.info("%s: unreadable fetch record (%s), fetching again", record, exc)
        return None
    # fetched before without its media, which is now wanted: fetch again, or the clip never gets it
    wanted = fetched.media_path is not None or not config.download_media
    return fetched if path.is_file() and wanted else None


def _write_whole(path: Path, content: bytes) -> None:
    """Write ``path`` whole or not at all: a run killed mid-write must not leave a part that a later
    run reads as the fetched file."""
    from warehouse.durable import write_atomically

    write_atomically(path, lambda handle: handle.write(content), "subtitles")


def _with_retries(call: Any, source: str, config: FetchConfig) -> FetchedSubtitles:
    delay = config.backoff_s
    for attempt in range(1, config.attempts + 1):
        try:
            return call()
        except FetchError:
            raise
        except Exception as exc:  # yt-dlp raises DownloadError wrapping anything
            network = _is_network_error(exc)
            if not network or attempt == config.attempts:
                message = str(exc).removeprefix("ERROR: ").splitlines()[0][:300]
                raise FetchError(f"{source}: {'network error' if network else 'cannot read'} "
                                 f"after {attempt} attempt(s): {message}") from exc
            log.info("%s: network error (attempt %d of %d), retrying in %.1fs",
                     source, attempt, config.attempts, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable: attempts >= 1")


def _refuse_web_page(content: bytes, source: str, lang: str) -> None:
    """Raise :class:`FetchError` for a track URL that answered with a web page (a consent or rate-limit
    page served with status 200): saved, it would be served from the cache as the source's subtitles on
    every later run, each a ``bad_subtitles`` reject that never fetches again."""
    head = content[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")):
        raise FetchError(f"{source}: the {lang} subtitle track answered with a web page, not subtitles")


def _fetch(source: str, key: str, out_dir: Path, config: FetchConfig) -> FetchedSubtitles:
    import yt_dlp

    options = {
        "quiet": True, "no_warnings": True, "logger": _Logger(), "skip_download": not config.download_media,
        "socket_timeout": config.socket_timeout_s, "retries": 0, "extractor_retries": 0,
        "enable_file_urls": config.allow_file_urls, "noplaylist": True,
        "outtmpl": str(out_dir / f"{key}.%(ext)s"),
    }
    with yt_dlp.YoutubeDL(options) as ydl:
        if source.endswith(".json") and Path(source).is_file():
            info = json.loads(Path(source).read_text(encoding="utf-8"))
        else:
            info = ydl.extract_info(source_url(source), download=False)
        kind, lang, track = choose_track(info, config.lang)
        content = ydl.urlopen(track["url"]).read()
        _refuse_web_page(content, source, lang)
        media_path = None
        if config.download_media:
            result = ydl.process_ie_result(info, download=True)
            media_path = Path(result["requested_downloads"][0]["filepath"])
    path = out_dir / f"{key}.{lang}.{track['ext']}"
    _write_whole(path, content)
    log.info("%s: %s %s subtitles -> %s", source, kind, lang, path.name)
    return FetchedSubtitles(source, path, kind, lang, media_path)
