"""Corpus specs: which clips exist, where their media and subtitles are.

Three ways to name a corpus, all ending as a list of :class:`ClipSpec`:

- a folder of media files with yt-dlp-style sidecar subtitles
  (``talk.mp4`` + ``talk.en.vtt``); the clip id is the file stem, made safe.
  The folder may be on object storage (``s3://bucket/corpus``): then the
  clips name their files by URI, and each worker copies what it decodes into
  its cache, so machines share nothing but the object store;
- a segment list (``.csv`` or ``.parquet``) with columns
  ``clip_id, source, start_s, end_s, speaker_id``, where ``source`` is a URL,
  a YouTube id or a path (relative paths are relative to the list);
- ``voxceleb:<folder>``: the official VoxCeleb1/VoxCeleb2 metadata ``.txt``
  files (``<speaker>/<youtube id>/<n>.txt``), converted by
  :func:`voxceleb_segments` into segments at 25 fps.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from pipeline.subtitles import find_sidecar, pick_sidecar
from warehouse.location import Location, is_remote_uri

log = logging.getLogger(__name__)

Seconds = float

MEDIA_SUFFIXES: frozenset[str] = frozenset(
    {".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".m4a", ".wav", ".flac", ".mp3", ".ogg", ".opus", ".aac"})
SEGMENT_COLUMNS: tuple[str, ...] = ("clip_id", "source", "start_s", "end_s", "speaker_id")
VOXCELEB_PREFIX = "voxceleb:"
VOXCELEB_FPS = 25.0

SEGMENT_SCHEMA = pa.schema([
    pa.field("clip_id", pa.string(), False), pa.field("source", pa.string(), False),
    pa.field("start_s", pa.float64()), pa.field("end_s", pa.float64()), pa.field("speaker_id", pa.string()),
])  # fmt: skip
"""The segment list's columns, as :func:`write_segment_list` writes them."""


class CorpusError(ValueError):
    """A corpus spec that cannot be read; the message names the file or clip."""


@dataclass(frozen=True)
class ClipSpec:
    """One clip to ingest: a segment of a source, with what is known locally about it."""

    clip_id: str
    source: str  # URL, YouTube id or local path
    start_s: Seconds = 0.0
    end_s: Seconds | None = None  # None: to the end of the media
    speaker_id: str | None = None
    media: Path | str | None = None  # media file (local path or object-store URI), when the source is one
    subtitles: Path | str | None = None  # sidecar subtitle file (path or URI), when there is one

    @property
    def is_remote(self) -> bool:
        return self.media is None

    def to_row(self) -> dict[str, object]:
        return {"clip_id": self.clip_id, "source": self.source, "start_s": self.start_s,
                "end_s": self.end_s, "speaker_id": self.speaker_id}


def safe_id(name: str) -> str:
    """A clip id usable as a file name: runs of other characters become ``_``.

    A name whose letters are all outside ``A-Za-z`` ("日本語のスピーチ") would
    give nothing: it is named by a hash of its NFC form instead (macOS writes
    file names decomposed), so one such file does not stop the whole corpus.
    """
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")
    if cleaned:
        return cleaned
    if any(c.isalnum() for c in name):
        return f"clip_{hashlib.sha1(unicodedata.normalize('NFC', name).encode()).hexdigest()[:12]}"
    raise CorpusError(f"{name!r} gives an empty clip id")


def load_corpus(spec: str | Path) -> list[ClipSpec]:
    """Clips of a corpus spec: a media folder, a segment list, or ``voxceleb:<folder>``.

    Raises:
        CorpusError: the spec does not exist or cannot be read.
    """
    text = str(spec)
    if text.startswith(VOXCELEB_PREFIX):
        return voxceleb_segments(Path(text.removeprefix(VOXCELEB_PREFIX)))
    if is_remote_uri(text):
        return scan_media_folder(Location.of(text))
    path = Path(text)
    if path.is_dir():
        return scan_media_folder(Location.of(path))
    if path.suffix.lower() in (".csv", ".parquet") and path.is_file():
        return read_segment_list(path)
    raise CorpusError(f"{path}: not a media folder, a .csv/.parquet segment list or voxceleb:<folder>")


def scan_media_folder(folder: Location) -> list[ClipSpec]:
    """One clip per media file under ``folder`` (recursively, local or on object storage), with its
    sidecar subtitles; local files are named by path, remote ones by URI.

    Raises:
        CorpusError: the folder cannot be listed or holds no media file.
    """
    try:
        files = folder.list_files()
    except OSError as exc:
        raise CorpusError(f"{folder}: cannot list the corpus folder ({exc})") from exc
    names: dict[str, list[str]] = {}  # folder URI -> the file names in it
    for f in files:
        parent, _, name = f.uri.rpartition("/")
        names.setdefault(parent, []).append(name)
    clips: dict[str, ClipSpec] = {}
    for f in (f for f in files if Path(f.name).suffix.lower() in MEDIA_SUFFIXES):
        stem, parent = Path(f.name).stem, f.uri.rpartition("/")[0]
        clip_id = safe_id(stem)
        if clip_id in clips:
            raise CorpusError(f"{f.uri} and {clips[clip_id].media} both give clip id {clip_id!r}")
        sidecar = pick_sidecar(stem, names[parent])
        subtitles = None if sidecar is None else Location(f"{parent}/{sidecar}")
        clips[clip_id] = ClipSpec(clip_id, f.uri, media=_named(f),
                                  subtitles=None if subtitles is None else _named(subtitles))
    if not clips:
        raise CorpusError(f"{folder}: no media files ({', '.join(sorted(MEDIA_SUFFIXES))})")
    return list(clips.values())


def _named(location: Location) -> Path | str:
    """How a clip names a file: a local path, or a URI."""
    return location.path if location.is_local else location.uri


def read_segment_list(path: Path) -> list[ClipSpec]:
    """Clips of a CSV/Parquet segment list; local sources get their sidecar subtitles."""
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path) if path.suffix.lower() == ".parquet" else pv.read_csv(
            path, convert_options=pv.ConvertOptions(column_types={"clip_id": pa.string(),
                                                                  "source": pa.string(),
                                                                  "speaker_id": pa.string()}))
    except (pa.ArrowInvalid, OSError) as exc:
        raise CorpusError(f"{path}: unreadable segment list ({exc})") from exc
    missing = [c for c in SEGMENT_COLUMNS if c not in table.column_names]
    if missing:
        raise CorpusError(f"{path}: missing columns {', '.join(missing)}")
    clips: dict[str, ClipSpec] = {}
    for row in table.select(list(SEGMENT_COLUMNS)).to_pylist():
        clip = _segment(path, row)
        if clip.clip_id in clips:
            raise CorpusError(f"{path}: clip id {clip.clip_id!r} appears twice")
        clips[clip.clip_id] = clip
    return list(clips.values())


def _segment(path: Path, row: dict[str, object]) -> ClipSpec:
    if not row["clip_id"] or not row["source"]:
        raise CorpusError(f"{path}: a row without clip_id or source: {row}")
    clip_id, source = safe_id(str(row["clip_id"])), str(row["source"])
    start = _seconds(path, clip_id, "start_s", row["start_s"])
    end = _seconds(path, clip_id, "end_s", row["end_s"])
    start = 0.0 if start is None else start
    if start < 0 or (end is not None and end <= start):
        raise CorpusError(f"{path}: clip {clip_id}: bad segment start_s={start} end_s={end}")
    media = None
    if not is_remote_uri(source) and not re.fullmatch(r"[A-Za-z0-9_-]{11}", source):
        media = (path.parent / source.removeprefix("file://")).resolve()
        if not media.is_file():
            raise CorpusError(f"{path}: clip {clip_id}: media file {media} does not exist")
    return ClipSpec(clip_id, source, start, end, str(row["speaker_id"]) if row["speaker_id"] else None,
                    media=media, subtitles=find_sidecar(media) if media else None)


def _seconds(path: Path, clip_id: str, column: str, value: object) -> float | None:
    """A time cell as seconds (``None`` when empty); a cell like ``1:30`` makes the whole column text,
    and must be reported with its file and clip, not as a bare ``ValueError``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CorpusError(f"{path}: clip {clip_id}: {column}={value!r} is not a number of seconds") from None


def write_segment_list(clips: Iterable[ClipSpec], path: Path) -> Path:
    """Write clips as a segment list (``.csv`` or ``.parquet`` by suffix)."""
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([c.to_row() for c in clips], schema=SEGMENT_SCHEMA)
    path.parent.mkdir(parents=True, exist_ok=True)
    (pq.write_table if path.suffix.lower() == ".parquet" else pv.write_csv)(table, path)
    return path


def parse_voxceleb_txt(path: Path) -> ClipSpec:
    """One VoxCeleb1/2 metadata file: identity, YouTube reference and its frame range at 25 fps.

    Raises:
        CorpusError: a header field or the frame table is missing.
    """
    fields: dict[str, str] = {}
    frames: list[int] = []
    in_table = False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if in_table and line.strip():
            frames.append(int(line.split()[0]))
        elif line.strip().startswith("FRAME"):
            in_table = True
        elif ":" in line:
            name, value = line.split(":", 1)
            fields[name.strip()] = value.split()[0] if value.split() else ""
    if not fields.get("Identity") or not fields.get("Reference") or not frames:
        raise CorpusError(f"{path}: not a VoxCeleb metadata file (Identity, Reference, FRAME table)")
    speaker, video = fields["Identity"], fields["Reference"]
    return ClipSpec(
        clip_id=safe_id(f"{speaker}_{video}_{path.stem}"), source=video,
        start_s=min(frames) / VOXCELEB_FPS, end_s=(max(frames) + 1) / VOXCELEB_FPS, speaker_id=speaker)


def voxceleb_segments(root: Path) -> list[ClipSpec]:
    """Every metadata ``.txt`` under ``root`` as a segment of its YouTube video."""
    if not root.is_dir():
        raise CorpusError(f"{root}: no such VoxCeleb metadata folder")
    clips = [parse_voxceleb_txt(p) for p in sorted(root.rglob("*.txt"))]
    if not clips:
        raise CorpusError(f"{root}: no VoxCeleb metadata .txt files")
    return clips
