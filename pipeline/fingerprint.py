"""Fingerprints of a stage's inputs and of the code that processes them.

A cached stage result may be reused only when neither its inputs nor the code
changed: the fingerprint of a clip covers its media and subtitle files (path,
size, modification time, on object storage too) and its segment; the code
version is a hash of every source file of the ``pipeline`` package and of the
``warehouse`` package below it, whose phone set and table schemas shape a
stage's rows as much as its own code does.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import warehouse
from pipeline.corpus import ClipSpec
from pipeline.stage import ClipWork
from warehouse.location import Location

PACKAGES = (Path(__file__).resolve().parent, Path(warehouse.__file__).resolve().parent)
"""The packages a stage's results depend on: ``pipeline`` and ``warehouse`` (phones, table schemas)."""


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the ``pipeline`` and ``warehouse`` sources: changes whenever a stage's code does."""
    digest = hashlib.sha256()
    for root in PACKAGES:
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root.parent).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def file_fingerprint(path: Path | str | None) -> list[object] | None:
    """(path, size, mtime in ns) of a local or object-store file, or None when there is none.

    An object-store file is looked up too: by its name alone, a corpus file replaced
    at the same URI kept serving the results computed from the old one.
    """
    if path is None:
        return None
    from pyarrow import fs

    try:
        filesystem, where = Location.of(path).filesystem()
        info = filesystem.get_file_info(where)
    except (OSError, ValueError):  # unreachable, or a scheme pyarrow cannot open: by name only
        return [str(path), None, None]
    if info.type != fs.FileType.File:
        return [str(path), None, None]
    return [str(path), info.size, info.mtime_ns]


def clip_fingerprint(clip: ClipSpec) -> list[object]:
    """What a clip's stage results depend on, as JSON-ready values."""
    return [clip.clip_id, clip.source, clip.start_s, clip.end_s, clip.speaker_id,
            file_fingerprint(clip.media), file_fingerprint(clip.subtitles)]


def batch_key(stage: str, work: list[ClipWork], settings: object) -> str:
    """Cache key of one stage over a batch with the given settings (their repr): clips and their input rows."""
    payload = json.dumps([stage, code_version(), repr(settings),
                          [[clip_fingerprint(w.clip), w.rows] for w in work]], default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
