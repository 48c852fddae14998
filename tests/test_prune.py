"""Which cached media a prune removes (``pipeline/prune.py``), on real files and a real S3 endpoint (moto).

The flow-level cases (a fetched source on a local warehouse, on S3, and on two Dask workers) are in
``tests/test_ingest_remote.py``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs

from fixtures.s3 import BUCKET, s3_endpoint, s3_env  # noqa: F401  (fixtures)
from pipeline.corpus import ClipSpec
from pipeline.prune import DoneSource, Pruned, done_sources, prune_cache, prune_shared
from warehouse.location import Location


def test_a_source_is_done_only_when_every_clip_cut_from_it_is() -> None:
    clips = [ClipSpec("a1", "https://site/a"), ClipSpec("a2", "https://site/a"), ClipSpec("b1", "https://site/b"),
             ClipSpec("local", "/media/talk.mp4", media="/media/talk.mp4"),
             ClipSpec("s3", "s3://corpus/talk.mp4", media="s3://corpus/talk.mp4")]
    media = {"a1": "s3://wh/media/a.mp4", "a2": "s3://wh/media/a.mp4", "local": "/media/talk.mp4",
             "s3": "s3://corpus/talk.mp4"}
    done = done_sources({"a1", "b1", "local", "s3"}, clips, media)
    # a: a2 is not done; b: rejected before its clips row, its download is still the source's; a local file
    # has nothing cached
    assert done == [DoneSource("https://site/b", True, ()), DoneSource("s3://corpus/talk.mp4", False,
                                                                       ("s3://corpus/talk.mp4",))]
    assert [d.source for d in done_sources({"a1", "a2"}, clips, media)] == ["https://site/a"]


def test_a_corpus_file_on_object_storage_loses_its_cached_copy_never_itself(s3_env, tmp_path: Path,
                                                                            request) -> None:
    corpus = Location(f"s3://{BUCKET}/{request.node.name}/talk.mp4")
    filesystem, path = corpus.filesystem()
    with filesystem.open_output_stream(path) as out:
        out.write(b"x" * 1000)
    copy = corpus.local_copy(tmp_path / "cache")
    assert copy == corpus.cached_at(tmp_path / "cache") and copy.stat().st_size == 1000
    done = [DoneSource(corpus.uri, False, (corpus.uri,))]

    assert prune_cache(done, tmp_path / "cache") == Pruned(frozenset({corpus.uri}), 1, 1000)
    assert prune_shared(done, Location(f"s3://{BUCKET}/{request.node.name}")) == Pruned()
    assert not copy.exists() and filesystem.get_file_info(path).type == pafs.FileType.File
    assert prune_cache(done, tmp_path / "cache") == Pruned()


def test_only_the_shared_copies_under_the_warehouse_media_folder_go(s3_env, request) -> None:
    root = Location(f"s3://{BUCKET}/{request.node.name}")
    files = {name: root.join(name) for name in ("wh/media/a.mp4", "wh/media/b.mp4", "corpus/a.mp4")}
    for location in files.values():
        filesystem, path = location.filesystem()
        with filesystem.open_output_stream(path) as out:
            out.write(b"x" * 10)
    done = [DoneSource("https://site/a", True, (files["wh/media/a.mp4"].uri,)),
            DoneSource("https://site/c", True, (files["corpus/a.mp4"].uri,))]  # a clips row naming other media

    assert prune_shared(done, root.join("wh")) == Pruned(frozenset({"https://site/a"}), 1, 10)
    assert sorted(root.file_sizes()) == ["corpus/a.mp4", "wh/media/b.mp4"]
    assert prune_shared(done, Location.of("/tmp/a-local-warehouse")) == Pruned()
