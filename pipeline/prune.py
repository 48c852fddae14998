"""Removing cached media no clip needs any more (``talkface refresh --prune-downloads``).

Media are most of a cache (an hour of 720p video is about 0.7 GB), and nothing
else removes them. A source's media are removed once every clip cut from it is
done (a span written, or a reject), wherever they were cached:

- on each machine that computed its clips (the flow's, and every Dask worker:
  ``flows.refresh`` runs :func:`prune_cache` on each), the source's download
  and the copies of remote media in ``<cache>/remote`` (a download shared
  under the warehouse, a corpus file on object storage);
- once, the download's shared copy under a warehouse on object storage
  (:func:`prune_shared`). A corpus's own files are never touched.

Nothing is lost for good: a stage that needs the media again (a reject
retried) fetches the source again (:func:`pipeline.ingest.with_media_at_hand`),
unless the site has removed the video since.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.corpus import ClipSpec
from pipeline.ingest import SHARED_MEDIA, downloaded_media
from warehouse.location import Location

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pruned:
    """What a prune removed: the sources it removed files of, how many files, how many bytes."""

    sources: frozenset[str] = frozenset()
    files: int = 0
    bytes: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        """Both prunes together (the flow's machine's and each worker's): a source counts once."""
        return Pruned(self.sources | other.sources, self.files + other.files, self.bytes + other.bytes)


@dataclass(frozen=True)
class DoneSource:
    """A source whose clips are all done, and the media its clips were read from (``clips.video_uri``)."""

    source: str
    fetched: bool  # from a site: its download is in a cache's ``subtitles`` folder, named after the source
    media: tuple[str, ...] = ()


def done_sources(done: set[str], clips: Sequence[ClipSpec], media: Mapping[str, str]) -> list[DoneSource]:
    """The sources with cached media whose clips are all ``done``.

    Args:
        done: clips no stage takes again unless asked (:func:`pipeline.stage.done_clips`).
        clips: the corpus.
        media: clip id -> its ``clips`` row's ``video_uri`` (a clip rejected before that stage has none).
    """
    by_source: dict[str, list[ClipSpec]] = {}
    for clip in clips:
        by_source.setdefault(clip.source, []).append(clip)
    sources = [DoneSource(source, group[0].is_remote, tuple(sorted({media[c.clip_id] for c in group
                                                                     if c.clip_id in media})))
               for source, group in by_source.items() if done.issuperset(c.clip_id for c in group)]
    return [s for s in sources if s.fetched or any(not Location.of(uri).is_local for uri in s.media)]


def prune_cache(sources: Iterable[DoneSource], cache_dir: Path) -> Pruned:
    """This machine's cached media of ``sources``: each one's download, and its copies of remote media.

    A relative ``cache_dir`` is read where this runs, as the stages read it (a Dask worker's own folder).
    """
    pruned = Pruned()
    for done in sources:
        files = [Location.of(at.cached_at(cache_dir)) for at in map(Location.of, done.media) if not at.is_local]
        download = downloaded_media(done.source, cache_dir) if done.fetched else None
        if download is not None:
            files.append(Location.of(download))
        pruned += _remove(done.source, files)
    return pruned


def prune_shared(sources: Iterable[DoneSource], warehouse: Location) -> Pruned:
    """The shared copies of ``sources``' downloads under a warehouse on object storage (``<warehouse>/media``)."""
    if warehouse.is_local:
        return Pruned()  # a local warehouse's clips read the download in the cache itself
    shared = warehouse.join(SHARED_MEDIA).uri + "/"
    pruned = Pruned()
    for done in sources:
        if done.fetched:
            pruned += _remove(done.source, [Location.of(uri) for uri in done.media if uri.startswith(shared)])
    return pruned


def _remove(source: str, files: Sequence[Location]) -> Pruned:
    sizes = {f.uri: size for f in files if (size := f.delete()) is not None}
    if not sizes:
        return Pruned()
    log.info("%s: its clips are all done; removed %s", source, ", ".join(sizes))
    return Pruned(frozenset({source}), len(sizes), sum(sizes.values()))
