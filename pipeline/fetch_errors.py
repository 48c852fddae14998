"""Why a fetch failed, told from what yt-dlp raised, and what follows from it.

- Network errors (5xx, 429, timeouts, transport errors) are worth another try in
  the run; past the tries the source waits for a later run (:class:`FetchUnavailable`).
- A site that refuses the video with an error page is told apart by yt-dlp's words
  for it (``_REFUSALS``): a rate limit or bot check waits as network errors do, with
  no retry in the run and no other source of the site asked in it (:class:`SiteRefused`),
  and so does a live stream or premiere still to come (see also
  :func:`not_yet_a_video`); a removed, private or geo-blocked video is
  :class:`VideoUnavailable`, a sign-in-only one :class:`SignInRequired`, each its own
  rejects reason, so a retry of fetch failures does not ask for them again.
- No room to store a download (a full disk, a quota) is not the source's fault: an
  ``OSError`` that stops the run, where a reject would have been repeated for every
  clip after it.
- Anything else is a :class:`FetchError` (``fetch_failed``).
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator


class FetchError(RuntimeError):
    """Subtitles could not be fetched; ``reason`` is the stable rejects-table reason."""

    reason = "fetch_failed"


class FetchUnavailable(FetchError):
    """Network errors outlasted the retries (an outage, a rate limit): a later run may fetch the source.

    A caller that cannot wait treats it as any :class:`FetchError`.
    """


class SiteRefused(FetchUnavailable):
    """The site refuses every video for now (a rate limit, a bot check), not this one: asking it for the
    other sources in the same run only prolongs the refusal."""


class NoEnglishSubtitles(FetchError):
    """The source has neither manual nor automatic English subtitles."""

    reason = "no_english_subtitles"


class VideoUnavailable(FetchError):
    """The site says the video is gone or not shown here: removed, private, its account closed, or blocked
    in this country. Apart from other fetch failures, so a retry of those does not ask for it again."""

    reason = "video_unavailable"


class SignInRequired(FetchError):
    """The site shows the video only to a signed-in viewer (age-restricted, members only): a cookies file
    of an account that may see it gets it (``FetchConfig.cookie_file``)."""

    reason = "sign_in_required"


# What yt-dlp's extractors say when a site refuses a video, checked in this order (a bot check also asks to
# sign in). Rate limits and bot checks answer with an error page, not a network error: they pass, so the
# source waits (FetchUnavailable); asking again within the run only prolongs them.
_REFUSALS: tuple[tuple[re.Pattern[str], type[FetchError]], ...] = (
    (re.compile(r"try again later|rate.limit|not a bot|captcha|too many requests", re.I), SiteRefused),
    # a scheduled live stream or premiere: a video once it has been (YouTube's words: "Premieres in 6 hours",
    # "This live event will begin in 2 days.")
    (re.compile(r"premieres in|premiere will begin|live event will begin", re.I), FetchUnavailable),
    (re.compile(r"video unavailable|private video|has been removed|no longer available|has been terminated"
                r"|not available in your country|not made this video available", re.I), VideoUnavailable),
    (re.compile(r"sign in|age.restricted|members.only|join this channel|registered users|--cookies", re.I),
     SignInRequired),
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it, outermost first (yt-dlp wraps the error it met in ``DownloadError``)."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = getattr(seen, "cause", None) or seen.__cause__ or (
            seen.exc_info[1] if getattr(seen, "exc_info", None) else None)


def is_network_error(exc: BaseException) -> bool:
    from yt_dlp.networking.exceptions import HTTPError, TransportError

    for seen in _causes(exc):
        if isinstance(seen, HTTPError):
            return seen.status >= 500 or seen.status == 429
        if isinstance(seen, (TransportError, TimeoutError, ConnectionError)):
            return True
    return False


def _refusal(exc: BaseException) -> type[FetchError] | None:
    """The kind of refusal a site's error page means (see ``_REFUSALS``), or ``None`` for another error."""
    from yt_dlp.utils import GeoRestrictedError

    if any(isinstance(seen, GeoRestrictedError) for seen in _causes(exc)):
        return VideoUnavailable
    return next((kind for pattern, kind in _REFUSALS if pattern.search(str(exc))), None)


LIVE_STATUSES = frozenset({"is_live", "is_upcoming", "post_live"})
"""yt-dlp's ``live_status`` of a stream that is no video yet: on air, scheduled, or ended and still being
processed (YouTube's "post-live" stream)."""


def not_yet_a_video(info: dict, what: str) -> FetchUnavailable | None:
    """Why the source of yt-dlp's ``info`` must wait, when it is a live stream: ``None`` for a video.

    A stream on air has no captions and no end: downloading its media recorded it for as long as it went on
    (for ever, for a channel's round-the-clock stream), holding the worker and the run. Once it has ended,
    the site keeps its recording as a video, with captions.
    """
    status = info.get("live_status") or ("is_live" if info.get("is_live") else None)
    if status not in LIVE_STATUSES:
        return None
    return FetchUnavailable(f"{what}: a live stream ({status}): its recording and captions come once it has ended")


_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})  # a full disk, a quota, a file size limit

_HINTS = {SignInRequired: " (talkface refresh --cookies FILE: a cookies file of an account that may see it)",
          SiteRefused: " (the clip waits for a later run; talkface refresh --fetch-sleep 2 fetches more slowly, "
                       "--cookies FILE passes a bot check signed in)"}


def first_line(exc: BaseException) -> str:
    return str(exc).removeprefix("ERROR: ").splitlines()[0][:300]


_OUT_OF_DATE = re.compile(r"please report this issue|yt-dlp -U|update to the latest|--update", re.I)


def cannot_read(exc: BaseException) -> str:
    """What to say of an error that is no network error and no refusal: its first line, and where yt-dlp's
    words say its extractor may no longer understand the site (sites change weekly), what to do."""
    hint = (" (yt-dlp may be out of date for this site: pip install -U yt-dlp, then talkface rejects --reason "
            "fetch_failed --retry)") if _OUT_OF_DATE.search(str(exc)) else ""
    return first_line(exc) + hint


def final_error(exc: BaseException, what: str) -> BaseException | None:
    """The error a failed request ends in at once, whatever tries are left, its message starting with
    ``what``; ``None`` when it is no refusal and no want of room (a network error may be tried again).

    Returns:
        ``OSError``: no room to store a download. A refusal (``FetchUnavailable``, ``VideoUnavailable``,
        ``SignInRequired``) where the site answered with one rather than with a network error.
    """
    full = next((c for c in _causes(exc) if isinstance(c, OSError) and c.errno in _NO_ROOM), None)
    if full is not None:
        return OSError(full.errno, f"{what}: no room to store the download ({full.strerror}): free some under "
                                   "the cache folder (--cache-dir) and run again")
    refusal = _refusal(exc)
    if refusal is None or is_network_error(exc):
        return None
    return refusal(f"{what}: refused: {first_line(exc)}{_HINTS.get(refusal, '')}")
