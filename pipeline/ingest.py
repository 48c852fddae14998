"""The ingest stages' computations: each turns one clip into table rows or a reject.

A stage never stops a run for one bad clip: anything wrong with the clip's
input (media, subtitles, alignment) becomes a :class:`~pipeline.stage.Reject`
naming the stage and a stable reason. These functions read and write no table;
:mod:`pipeline.refresh_stages` makes them stages and :mod:`pipeline.stage` runs them.

Stage ``subtitles`` -> ``subtitles`` rows (cleaned cues of the clip's segment; remote clips wait
                       while their source is unavailable)
Stage ``clips``     -> one ``clips`` row (probed media; remote clips wait for media)
Stage ``align``     -> ``phone_alignments`` rows (39 CMU classes) of the cues kept, and a
                       ``cue_outcomes`` row per cue (kept or not, why, how well it matched)
Stage ``histograms``-> one ``phoneme_histograms`` row
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.align import AlignedPhone, Aligner, AlignmentError, CueOutcome, Utterance
from pipeline.align.base import KEPT_STATUSES, ClipAlignment, ClipAudio, align_clips
from pipeline.audio import SAMPLE_RATE, MediaError, decode_audio, probe_media
from pipeline.corpus import ClipSpec
from pipeline.fetch_errors import FetchError, FetchUnavailable
from pipeline.phonemes import histogram, to_cmu39
from pipeline.stage import ClipResult, Reject
from pipeline.subtitle_fetch import FetchConfig, FetchedSubtitles, fetch_subtitles, is_youtube_id, saved_media
from pipeline.subtitles import CueConfig, SubtitleError, prepare_cues, read_cues, speakable_words
from warehouse.location import DEFAULT_CACHE_DIR, Location, copy_if_changed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestConfig:
    """Settings of every ingest stage; built by the CLI."""

    cache_dir: Path = DEFAULT_CACHE_DIR
    fetch: FetchConfig = FetchConfig()
    cues: CueConfig = CueConfig()
    batch_size: int = 25  # clips per atomic write
    task_size: int = 1  # clips per compute task of a costly stage (alignment, faces), spread over the workers
    min_coverage: float = 0.5  # reject a clip whose kept cues hold less of its caption words
    cue_pad_s: float = 0.5  # the aligner searches this far beyond a cue's caption times
    prune_downloads: bool = False  # after a refresh, remove cached media of sources whose clips are all done


def local_file(uri: str | Path, config: IngestConfig) -> Path:
    """A local path for a corpus file: itself, or its copy in the cache when it is on object storage."""
    return Location.of(uri).local_copy(config.cache_dir)


# --- stages (pure per clip: rows or a Reject) --------------------------------

def subtitle_rows(clip: ClipSpec, config: IngestConfig, run: str | None = None,
                  ) -> list[dict[str, object]] | Reject | None:
    """Cleaned cues of the clip's segment: from its sidecar file, else fetched.

    ``None`` while a remote source is unavailable (network errors, a rate limit): the clip waits for a
    later run instead of being rejected for good. ``run`` names the refresh (see :func:`fetch_subtitles`).
    """
    if clip.subtitles is not None:
        path, kind, lang = local_file(clip.subtitles, config), "sidecar", config.fetch.lang
    elif clip.is_remote:
        try:
            fetched = _fetched(clip, config, run)
        except FetchUnavailable as exc:
            log.warning("%s waits for a later run: the subtitles of %s are unavailable: %s",
                        clip.clip_id, clip.source, exc)
            return None
        except FetchError as exc:
            return Reject(clip.clip_id, "subtitles", exc.reason, str(exc))
        path, kind, lang = fetched.path, fetched.kind, fetched.lang
    else:
        return Reject(clip.clip_id, "subtitles", "no_subtitles", f"{clip.media}: no sidecar subtitle file")
    try:
        cues = prepare_cues(read_cues(path), clip.start_s, clip.end_s, config.cues)
    except SubtitleError as exc:
        reason = "subtitles_not_utf8" if "not UTF-8" in str(exc) else "bad_subtitles"
        return Reject(clip.clip_id, "subtitles", reason, str(exc))
    if not cues:
        return Reject(clip.clip_id, "subtitles", "no_speakable_cues",
                      f"{path}: no cue with speakable words in {clip.start_s}-{clip.end_s}s")
    return [cue.to_row(clip.clip_id, kind, lang) for cue in cues]


def clip_row(clip: ClipSpec, config: IngestConfig, shared: Location | None = None, run: str | None = None,
             ) -> dict[str, object] | Reject | None:
    """The ``clips`` row of a clip with media; ``None`` while a remote clip has none.

    Args:
        shared: a folder every worker reaches (the warehouse, when it is on object
            storage): media downloaded here are copied to its ``media/``, so the
            later stages, on other machines, read them there. ``None``: they stay
            in this machine's cache.
        run: names the refresh (see :func:`fetch_subtitles`).
    """
    downloaded = clip.media is None
    media = clip.media or _fetched_media(clip, config, run)
    if media is None:
        return None
    try:
        info = probe_media(local_file(media, config))
    except (MediaError, FileNotFoundError) as exc:
        return Reject(clip.clip_id, "clips", "bad_media", str(exc))
    if clip.start_s >= info.duration_s:
        return _segment_past_end(clip, media, info.duration_s)
    if downloaded and shared is not None and not shared.is_local:
        media = share_media(Path(media), _shared_copy(shared, clip.source, Path(media)))
    return {"clip_id": clip.clip_id, "speaker_id": clip.speaker_id, "source": clip.source,
            "video_uri": str(media), "start_s": clip.start_s,
            "end_s": clip.end_s if clip.end_s is not None else info.duration_s,
            "fps": info.fps, "width": info.width, "height": info.height, "has_audio": info.has_audio}


def _segment_past_end(clip: ClipSpec, media: str | Path, duration_s: float) -> Reject:
    """A segment that starts where the media has ended (a shorter or truncated download).

    Its row would end before it starts (``end_s`` defaults to the media's end),
    which no later stage can decode.
    """
    return Reject(clip.clip_id, "clips", "bad_media",
                  f"{media}: the segment starts at {clip.start_s:.2f} s, at or after the end of the media "
                  f"({duration_s:.2f} s)")


@dataclass(frozen=True)
class AlignedRows:
    """The align stage's result for one clip: phone rows of kept cues, every cue's outcome, or a reject."""

    phones: list[dict[str, object]]
    outcomes: list[dict[str, object]]  # cue_outcomes rows, written even when the clip is rejected
    reject: Reject | None = None


def prepare_alignment(clip: dict[str, object], cues: Sequence[dict[str, object]],
                      config: IngestConfig = IngestConfig()) -> ClipAudio | Reject:
    """The clip's 16 kHz audio and its cues inside it as utterances, or why there is nothing to align.

    Args:
        clip: the clip's ``clips`` row.
        cues: its ``subtitles`` rows.
        config: where a video on object storage is copied to be decoded.
    """
    clip_id = str(clip["clip_id"])
    if not clip["has_audio"]:
        return Reject(clip_id, "align", "no_audio", f"{clip['video_uri']}: no audio stream")
    try:
        audio = decode_audio(local_file(str(clip["video_uri"]), config), SAMPLE_RATE, clip["start_s"], clip["end_s"])
    except (MediaError, FileNotFoundError) as exc:
        return Reject(clip_id, "align", "bad_media", str(exc))
    length_s = len(audio) / SAMPLE_RATE
    inside = [c for c in cues if c["start_s"] < length_s - 0.05]
    if not inside:
        return Reject(clip_id, "align", "cue_past_end",
                      f"every cue starts after the audio ends ({length_s:.2f} s), first: cue {cues[0]['cue']} "
                      f"{cues[0]['start_s']}-{cues[0]['end_s']} s")
    return ClipAudio(clip_id, audio, tuple(
        Utterance(int(c["cue"]), float(c["start_s"]), min(float(c["end_s"]), length_s),
                  speakable_words(str(c["text"]))) for c in inside))


def alignment_rows(clip: ClipAudio, cues: Sequence[dict[str, object]], result: ClipAlignment | AlignmentError,
                   aligner: Aligner, min_coverage: float) -> AlignedRows | Reject:
    """Phone rows of the kept cues and every cue's outcome; a ``low_coverage`` reject below ``min_coverage``.

    A cue that fails or does not match its audio costs that cue only; the clip
    is rejected when its kept cues hold less than ``min_coverage`` of its caption
    words (the detail gives the figure and the cues lost).
    """
    if isinstance(result, AlignmentError):
        return Reject(clip.clip_id, "align", "alignment_failed", str(result))
    length_s = len(clip.audio) / SAMPLE_RATE
    aligned = {u.cue for u in clip.utterances}
    result.outcomes += [_past_end(c, length_s) for c in cues if int(c["cue"]) not in aligned]
    outcomes = [dict(o.to_row(clip.clip_id), aligner=aligner.name)
                for o in sorted(result.outcomes, key=lambda o: o.cue)]
    phones = _phone_rows(clip.clip_id, result.phones, aligner)
    if result.coverage < min_coverage or not phones:
        lost = "; ".join(o.detail for o in result.outcomes if not o.kept and o.detail)
        detail = (f"aligned {result.aligned_words} of {result.caption_words} caption words "
                  f"({result.coverage:.0%}), below the {min_coverage:.0%} minimum" + (f"; {lost}" if lost else ""))
        return AlignedRows([], outcomes, Reject(clip.clip_id, "align", "low_coverage", detail))
    return AlignedRows(phones, outcomes)


def _past_end(cue: dict[str, object], length_s: float) -> CueOutcome:
    words = len(speakable_words(str(cue["text"])))
    return CueOutcome(int(cue["cue"]), "failed", "past_end",
                      f"cue {cue['cue']} ({cue['start_s']}-{cue['end_s']} s): starts after the audio ends "
                      f"({length_s:.2f} s)", words, 0, None, float(cue["start_s"]), float(cue["end_s"]))


def _phone_rows(clip_id: str, phones: Sequence[AlignedPhone], aligner: Aligner) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    position: Counter[int] = Counter()
    for p in phones:
        label = to_cmu39(p.phone)
        if label is None:
            continue
        rows.append({"clip_id": clip_id, "cue": p.cue, "position": position[p.cue], "word": p.word,
                     "phone": label, "start_s": round(p.start_s, 4), "end_s": round(p.end_s, 4),
                     "aligner": aligner.name, "aligner_version": aligner.version,
                     "score": None if p.score is None else round(p.score, 2)})
        position[p.cue] += 1
    return rows


def histogram_row(clip_id: str, phones: Sequence[dict[str, object]],
                  outcomes: Sequence[dict[str, object]] = ()) -> dict[str, object]:
    """The ``phoneme_histograms`` row of a clip's ``phone_alignments`` rows (the phones of kept cues).

    ``outcomes`` (its ``cue_outcomes`` rows) give the coverage: the share of the
    clip's caption words that the counted phones come from.
    """
    row = histogram(clip_id, ((p["phone"], p["start_s"], p["end_s"]) for p in phones)).to_row()
    caption = sum(int(o["caption_words"]) for o in outcomes)
    aligned = sum(int(o["aligned_words"]) for o in outcomes if o["status"] in KEPT_STATUSES)
    return {**row, "caption_words": caption or None, "aligned_words": aligned if caption else None,
            "coverage": round(aligned / caption, 4) if caption else None}


def align_batch(clips: Sequence[dict[str, object]], cues: Sequence[Sequence[dict[str, object]]],
                aligner: Aligner, config: IngestConfig) -> list[ClipResult]:
    """The align stage over a batch: audio prepared per clip, aligned in one call where the backend can
    (MFA runs once per batch), then each clip's phones and cue outcomes, or its reject."""
    prepared = [prepare_alignment(clip, rows, config) for clip, rows in zip(clips, cues, strict=True)]
    ready = [p for p in prepared if isinstance(p, ClipAudio)]
    aligned = dict(zip([p.clip_id for p in ready], align_clips(aligner, ready), strict=True)) if ready else {}
    results = []
    for clip, rows, item in zip(clips, cues, prepared, strict=True):
        out = item if isinstance(item, Reject) else alignment_rows(item, rows, aligned[item.clip_id], aligner,
                                                                   config.min_coverage)
        if isinstance(out, Reject):
            results.append(ClipResult(str(clip["clip_id"]), {}, out))
        else:
            results.append(ClipResult(str(clip["clip_id"]),
                                      {"cue_outcomes": out.outcomes, "phone_alignments": out.phones}, out.reject))
    return results


def _source_key(source: str) -> str:
    """The file name a source's fetched subtitles and media are saved under: a YouTube id itself, else the
    URL's or path's last part with a hash of the whole source (two talks' pages are often both
    ``.../index.html`` or ``.../embed``, and must not share one cached fetch)."""
    from pipeline.corpus import safe_id

    if is_youtube_id(source):
        return source
    tail = source.rstrip("/").rsplit("/", 1)[-1].removesuffix(".info.json")[:100]
    return safe_id(f"{tail}-{hashlib.sha1(source.encode()).hexdigest()[:10]}")


SHARED_MEDIA = "media"
"""The folder under a warehouse on object storage holding the downloads shared with every worker."""


def _shared_copy(shared: Location, source: str, download: Path) -> Location:
    """Where the download of ``source`` is shared under a warehouse on object storage."""
    return shared.join(SHARED_MEDIA, f"{_source_key(source)}{download.suffix}")


def share_media(path: Path, target: Location) -> str:
    """Copy a downloaded media file to ``target`` (once: a copy of the same size is kept); returns its URI."""
    copy_if_changed(Location.of(path), target)
    return target.uri


def _fetched(clip: ClipSpec, config: IngestConfig, run: str | None) -> FetchedSubtitles:
    """The remote clip's source fetched (once: cached under its key)."""
    return fetch_subtitles(clip.source, _source_key(clip.source), config.cache_dir / "subtitles", config.fetch, run)


def with_media_at_hand(clip: ClipSpec, row: dict[str, object], config: IngestConfig,
                       run: str | None = None) -> dict[str, object] | None:
    """The clip's ``clips`` row, its downloaded media fetched again where the cache no longer holds them.

    A download lives in the cache (``--cache-dir``), and with a local warehouse the ``clips`` row names it
    there: a cache cleared to free room (as a full disk's error advises) made every clip not yet through
    alignment and faces a ``decode_error`` reject. Now its source is fetched again (whatever
    ``--download-media`` says: the clip's media were downloaded before) and the row, for this run, names
    the new file. A copy shared under a warehouse on object storage (removed by :mod:`pipeline.prune`) is
    shared again where the row names it, so that the next stage, on another machine, finds it there
    instead of downloading the video once more. ``None``: the source is unavailable now, and the clip
    waits. Media that are no download, and a fetch that fails for good, leave the row as it is, so the
    stage rejects it naming the missing file.
    """
    media = Location.of(str(row["video_uri"]))
    if not clip.is_remote or media.size() is not None:
        return row
    log.info("%s: %s is no longer in the cache; fetching %s again", clip.clip_id, media.uri, clip.source)
    try:
        fetched = _fetched(clip, downloading(config, True), run)
    except FetchUnavailable as exc:
        log.warning("%s waits for a later run: its media are gone from the cache and %s is unavailable: %s",
                    clip.clip_id, clip.source, exc)
        return None
    except FetchError:
        return row
    if fetched.media_path is None:
        return row
    if not media.is_local:
        share_media(fetched.media_path, media)
        return row
    return {**row, "video_uri": str(fetched.media_path)}


def downloading(config: IngestConfig, media: bool) -> IngestConfig:
    """``config`` with its fetches downloading the media of remote sources, or not."""
    return replace(config, fetch=replace(config.fetch, download_media=media))


def downloaded_media(source: str, cache_dir: Path) -> Path | None:
    """The media file of remote ``source`` downloaded into ``cache_dir``, while it is still there."""
    return saved_media(cache_dir / "subtitles", _source_key(source))


def _fetched_media(clip: ClipSpec, config: IngestConfig, run: str | None) -> Path | None:
    if not config.fetch.download_media:
        return None
    try:
        fetched = _fetched(clip, config, run)
    except FetchError:
        return None  # rejected by the subtitles stage, or waiting with it
    return fetched.media_path
