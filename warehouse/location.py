"""Where things live: one type for a local path or an object-store URI (no heavy imports here).

Every place that stores or reads a file by name (the warehouse root, feature
shards, a media file, a run folder) holds a :class:`Location`, so "is this
local?" is answered in one place. A remote location (``s3://``, ``gs://``, ...)
is reached through ``pyarrow.fs``, configured by the usual environment
variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...), the same ones
delta-rs reads for the tables. Files under a root are named relative to it
(:meth:`Location.relative`), so a warehouse can be copied or moved whole.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote

WAREHOUSE_ENV = "TALKFACE_WAREHOUSE"
DEFAULT_WAREHOUSE = "talkface-warehouse"
DEFAULT_CACHE_DIR = Path("talkface-cache")  # a stage's fetched subtitles and media, copies of object-store files
UPLOAD_CHUNK = 8 << 20  # bytes held at a time while a file is uploaded to an object store


def default_warehouse_uri() -> str:
    """``$TALKFACE_WAREHOUSE`` if set, else ``./talkface-warehouse``."""
    return os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE


def user_cache_dir() -> Path:
    """``$TALKFACE_CACHE`` if set, else ``~/.cache/talkface``: a machine's own cache, wherever a process runs
    (a deployed flow run works in the code folder, which is no place for it)."""
    return Path(os.environ.get("TALKFACE_CACHE") or Path.home() / ".cache" / "talkface")


def is_remote_uri(text: str) -> bool:
    """True for an object-store or web URI; plain paths and ``file://`` URIs are local."""
    return "://" in text and not text.startswith("file://")


@dataclass(frozen=True)
class Location:
    """A file or folder: an absolute local path, or a remote URI without a trailing slash."""

    uri: str

    @classmethod
    def of(cls, text: str | os.PathLike[str] | Location) -> Location:
        """Normalise a user's path or URI: local paths become absolute, a ``file://`` URI its path.

        A ``file://`` URI is percent-encoded (``Path.as_uri()`` writes a space
        as ``%20``), so its path is decoded; a plain path is taken as it is.
        """
        if isinstance(text, Location):
            return text
        text = os.fspath(text)
        if is_remote_uri(text):
            return cls(text.rstrip("/"))
        if text.startswith("file://"):
            text = unquote(text.removeprefix("file://"))
        return cls(str(Path(text).expanduser().resolve()))

    @property
    def is_local(self) -> bool:
        return not is_remote_uri(self.uri)

    @property
    def path(self) -> Path:
        """The local path; raises for a remote location, whose callers must use the filesystem."""
        if not self.is_local:
            raise ValueError(f"{self.uri} is not a local path")
        return Path(self.uri)

    @property
    def name(self) -> str:
        return self.uri.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return self.uri

    def join(self, *parts: str) -> Location:
        """A location below this one (``parts`` are relative, ``/``-separated)."""
        return Location("/".join([self.uri.rstrip("/"), *(p.strip("/") for p in parts)]))

    def resolve(self, ref: str) -> Location:
        """``ref`` read against this folder: a relative name is joined, an absolute path or URI kept."""
        if is_remote_uri(ref) or ref.startswith("file://") or Path(ref).is_absolute():
            return Location.of(ref)
        return self.join(ref)

    def relative(self, child: Location) -> str:
        """``child``'s name relative to this folder, as :meth:`resolve` reads it back."""
        prefix = self.uri.rstrip("/") + "/"
        if not child.uri.startswith(prefix):
            raise ValueError(f"{child.uri} is not under {self.uri}")
        return child.uri[len(prefix):]

    def filesystem(self):
        """``(pyarrow filesystem, path in it)`` for reading and writing this location."""
        from pyarrow import fs

        if self.is_local:
            return fs.LocalFileSystem(), self.uri
        return _object_store(self.uri)

    def size(self) -> int | None:
        """The file's size in bytes; ``None`` when there is no file here."""
        from pyarrow import fs

        filesystem, path = self.filesystem()
        info = filesystem.get_file_info(path)
        return info.size if info.type == fs.FileType.File else None

    def delete(self) -> int | None:
        """Remove the file here, and return its size in bytes; ``None``, and nothing done, when there is none."""
        from pyarrow import fs

        filesystem, path = self.filesystem()
        info = filesystem.get_file_info(path)
        if info.type != fs.FileType.File:
            return None
        filesystem.delete_file(path)
        return info.size

    def read_bytes(self) -> bytes:
        """The whole file (``OSError`` naming it when it is unreadable; ``FileNotFoundError`` when missing)."""
        if self.is_local:
            return self.path.read_bytes()
        filesystem, path = self.filesystem()
        try:
            with filesystem.open_input_file(path) as handle:
                return handle.read()
        except OSError as exc:
            raise (FileNotFoundError if isinstance(exc, FileNotFoundError) else OSError)(f"{self.uri}: {exc}") from exc

    def write(self, writer: Callable[[IO[bytes]], None], what: str = "file") -> None:
        """Write the file whole or not at all.

        Locally through :func:`warehouse.durable.write_atomically` (temporary
        file, fsync, rename); on an object store one upload, which the store
        makes visible only when it completes, of a local temporary file (not a
        buffer in memory: a shard of a long span is gigabytes, and the writer
        may need to seek, as zip writers do). Both pass the fault points
        ``<what>.write`` and ``<what>.written``.
        """
        from warehouse.durable import write_atomically

        if self.is_local:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, writer, what)
            return
        import tempfile

        from warehouse.faults import fault_point

        filesystem, path = self.filesystem()
        with tempfile.TemporaryFile() as spool:
            writer(spool)
            spool.seek(0)
            fault_point(f"{what}.write")
            with filesystem.open_output_stream(path) as out:
                shutil.copyfileobj(spool, out, UPLOAD_CHUNK)
        fault_point(f"{what}.written")

    def file_sizes(self) -> dict[str, int]:
        """Files below this folder (recursively, none if it is absent): name relative to it -> bytes."""
        from pyarrow import fs

        filesystem, path = self.filesystem()
        infos = filesystem.get_file_info(fs.FileSelector(path, recursive=True, allow_not_found=True))
        skip = len(path.rstrip("/")) + 1
        return {info.path[skip:]: info.size for info in infos if info.type == fs.FileType.File}

    def list_files(self, suffixes: frozenset[str] | None = None) -> list[Location]:
        """Files below this folder (recursively), by name; ``suffixes`` in lower case with the dot."""
        return [self.join(name) for name in sorted(self.file_sizes())
                if suffixes is None or Path(name).suffix.lower() in suffixes]

    def local_copy(self, cache_dir: str | os.PathLike[str]) -> Path:
        """A local path holding this file: itself when local, else a copy kept in ``cache_dir``.

        The copy is named by the URI's hash and reused while the remote file's
        size is unchanged, so a worker downloads each media file once.
        """
        if self.is_local:
            return self.path
        target = self.cached_at(cache_dir)
        copy_if_changed(self, Location.of(target))
        return target

    def cached_at(self, cache_dir: str | os.PathLike[str]) -> Path:
        """Where :meth:`local_copy` keeps this remote file's copy in ``cache_dir`` (whether it is there or not)."""
        return Path(cache_dir).expanduser() / "remote" / self.cache_name

    @property
    def cache_name(self) -> str:
        """``<hash of the URI>-<name>``: a local cache entry of its own for each remote file or folder."""
        return f"{hashlib.sha256(self.uri.encode()).hexdigest()[:16]}-{self.name}"


def _object_store(uri: str):
    """``(pyarrow filesystem, path)`` of a remote URI, its key read as delta-rs reads a table's.

    Not ``FileSystem.from_uri(uri)`` on the whole URI: that refuses a key with a
    space or a non-ASCII letter (``s3://bucket/my corpus``: "Cannot parse URI"),
    where delta-rs stores the tables of the same warehouse under that very key.
    The bucket gives the filesystem; the key is percent-decoded as delta-rs
    decodes it, so a shard lands beside its tables.
    """
    from pyarrow import fs

    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    filesystem, root = fs.FileSystem.from_uri(f"{scheme}://{bucket}")
    return filesystem, "/".join(part for part in (root.rstrip("/"), unquote(key)) if part)


def copy_if_changed(source: Location, target: Location) -> None:
    """Copy ``source`` to ``target`` unless ``target`` already holds a file of the same size.

    Raises:
        FileNotFoundError: naming ``source`` when there is no file there.
    """
    size = source.size()
    if size is None:
        raise FileNotFoundError(f"{source.uri}: no such file")
    if target.size() != size:
        copy_file(source, target)


def copy_file(source: Location, target: Location) -> None:
    """Copy one file between any two locations, streamed, whole or not at all at the target."""
    filesystem, path = source.filesystem()
    with filesystem.open_input_stream(path) as stream:
        target.write(lambda out: shutil.copyfileobj(stream, out), "copy")


def upload_folder(folder: Path, target: Location) -> list[str]:
    """Copy the files under ``folder`` that ``target`` lacks or holds at another size; returns their names."""
    have = target.file_sizes()
    copied = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if have.get(name) != path.stat().st_size:
            copy_file(Location.of(path), target.join(name))
            copied.append(name)
    return copied
