"""The Delta-backed store: upserts by key, replacement per clip, versions, crash safety."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from warehouse.faults import FAULT_ENV
from warehouse.store import Warehouse
from warehouse.tables import PHONEME_HISTOGRAMS, TABLES


def histograms(ids, value):
    return pa.Table.from_pydict({
        "clip_id": ids,
        "counts": [[value] * 39 for _ in ids],
        "seconds": [[0.1 * value] * 39 for _ in ids],
        "n_phones": [39 * value for _ in ids],
        **dict.fromkeys(("caption_words", "aligned_words", "coverage"), [None] * len(ids)),
    }, schema=PHONEME_HISTOGRAMS.schema)  # fmt: skip


def phones(clip_id, n):
    return pa.table({
        "clip_id": [clip_id] * n, "cue": [0] * n, "position": list(range(n)), "word": ["w"] * n,
        "phone": ["AA"] * n, "start_s": [float(i) for i in range(n)], "end_s": [i + 0.5 for i in range(n)],
        "aligner": ["pocketsphinx"] * n, "aligner_version": ["5.1.1"] * n, "score": [-12.5] * n,
    })  # fmt: skip


def by_clip(table):
    return {row["clip_id"]: row for row in table.to_pylist()}


def test_an_absent_table_reads_empty_with_its_schema(warehouse_uri):
    store = Warehouse(warehouse_uri)
    for name, spec in TABLES.items():
        assert store.version(name) is None
        assert store.read(name).schema == spec.schema


def test_upserting_the_same_rows_twice_never_duplicates(warehouse_uri):
    store = Warehouse(warehouse_uri)
    store.upsert("phoneme_histograms", histograms(["a", "b"], 1))
    store.upsert("phoneme_histograms", histograms(["a", "b"], 1))
    table = store.read("phoneme_histograms")
    assert sorted(table["clip_id"].to_pylist()) == ["a", "b"]


def test_upsert_updates_matching_keys_and_inserts_new_ones(warehouse_uri):
    store = Warehouse(warehouse_uri)
    store.upsert("phoneme_histograms", histograms(["a", "b"], 1))
    store.upsert("phoneme_histograms", histograms(["b", "c"], 2))
    rows = by_clip(store.read("phoneme_histograms"))
    assert sorted(rows) == ["a", "b", "c"]
    assert rows["a"]["n_phones"] == 39 and rows["b"]["n_phones"] == 78 and rows["c"]["n_phones"] == 78


def test_every_write_is_a_version_and_old_versions_stay_readable(warehouse_uri):
    store = Warehouse(warehouse_uri)
    first = store.upsert("phoneme_histograms", histograms(["a"], 1))
    second = store.upsert("phoneme_histograms", histograms(["a", "b"], 5))
    assert second > first
    old = by_clip(store.read("phoneme_histograms", version=first))
    assert list(old) == ["a"] and old["a"]["n_phones"] == 39
    assert store.read("phoneme_histograms").num_rows == 2
    with pytest.raises(ValueError, match="no version 99"):
        store.read("phoneme_histograms", version=99)


def test_replace_clips_drops_rows_a_rerun_no_longer_produces(warehouse_uri):
    store = Warehouse(warehouse_uri)
    store.replace_clips("phone_alignments", pa.concat_tables([phones("a", 5), phones("b", 3)]), ["a", "b"])
    store.replace_clips("phone_alignments", phones("a", 2), ["a"])
    table = store.read("phone_alignments")
    counts = {c: table["clip_id"].to_pylist().count(c) for c in ("a", "b")}
    assert counts == {"a": 2, "b": 3}


def test_delete_takes_the_rows_matching_every_column_in_one_version(warehouse_uri):
    store = Warehouse(warehouse_uri)
    assert store.delete("phone_alignments", {"clip_id": ["a"]}) == 0 and store.version("phone_alignments") is None
    first = store.replace_clips("phone_alignments", pa.concat_tables([phones("a", 3), phones("b", 2),
                                                                      phones("it's", 2)]), ["a", "b", "it's"])
    assert store.delete("phone_alignments", {"clip_id": ["a", "it's"], "position": []}) == 0  # nothing can match
    assert store.delete("phone_alignments", {"clip_id": ["a", "it's", "z"], "phone": ["AA"]}) == 5
    assert store.read("phone_alignments")["clip_id"].to_pylist() == ["b", "b"]
    assert store.version("phone_alignments") == first + 1 and store.read("phone_alignments", first).num_rows == 7
    with pytest.raises(ValueError, match="table 'phone_alignments' has no column speaker"):
        store.delete("phone_alignments", {"speaker": ["x"]})
    assert store.delete("phone_alignments", {}) == 2 and store.read("phone_alignments").num_rows == 0


def test_bad_writes_are_refused_before_anything_is_written(warehouse_uri):
    store = Warehouse(warehouse_uri)
    with pytest.raises(ValueError, match="duplicate keys"):
        store.upsert("phoneme_histograms", histograms(["a", "a"], 1))
    with pytest.raises(ValueError, match="missing columns n_phones"):
        store.upsert("phoneme_histograms", histograms(["a"], 1).drop_columns(["n_phones"]))
    with pytest.raises(ValueError, match="outside the ones replaced"):
        store.replace_clips("phone_alignments", phones("a", 2), ["b"])
    with pytest.raises(ValueError, match="unknown table 'histos'"):
        store.read("histos")
    assert store.version("phoneme_histograms") is None


@pytest.mark.parametrize("point, survives", [("commit", False), ("committed", True)])
def test_a_writer_killed_at_a_commit_point_leaves_one_complete_version(warehouse_uri, point, survives):
    """SIGKILL just before / just after the commit: the table holds the old or the new rows, whole."""
    store = Warehouse(warehouse_uri)
    store.upsert("phoneme_histograms", histograms([f"c{i}" for i in range(1000)], 1))
    before = store.version("phoneme_histograms")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_warehouse_store import histograms
        from warehouse.store import Warehouse
        Warehouse({warehouse_uri!r}).upsert("phoneme_histograms", histograms([f"c{{i}}" for i in range(3000)], 2))
    """)
    fault = {FAULT_ENV: f"phoneme_histograms.{point}"}
    writer = subprocess.run([sys.executable, "-c", script], env={**os.environ, **fault}, timeout=120)
    assert writer.returncode == -signal.SIGKILL
    table = Warehouse(warehouse_uri).read("phoneme_histograms")
    assert Warehouse(warehouse_uri).version("phoneme_histograms") == before + survives
    assert (table.num_rows, set(table["n_phones"].to_pylist())) == ((3000, {78}) if survives else (1000, {39}))


def test_data_files_of_a_writer_killed_before_its_commit_are_never_read(warehouse_uri):
    """What a writer killed inside ``write_deltalake`` leaves: Parquet files that no log entry names."""
    import pyarrow.parquet as pq

    store = Warehouse(warehouse_uri)
    store.upsert("phoneme_histograms", histograms(["a", "b"], 1))
    pq.write_table(histograms([f"orphan{i}" for i in range(50)], 2), Path(warehouse_uri) / "phoneme_histograms" /
                   "part-00000-orphan-c000.snappy.parquet")
    assert sorted(store.read("phoneme_histograms")["clip_id"].to_pylist()) == ["a", "b"]
    store.upsert("phoneme_histograms", histograms(["c"], 1))
    assert store.read("phoneme_histograms").num_rows == 3


def test_read_clips_returns_only_those_clips_with_the_table_types(warehouse_uri):
    store = Warehouse(warehouse_uri)
    assert store.read_clips("phone_alignments", ["a"]).num_rows == 0  # absent table
    store.replace_clips("phone_alignments", pa.concat_tables([phones("a", 3), phones("b", 2), phones("o'hara", 4)]),
                        ["a", "b", "o'hara"])
    both = store.read_clips("phone_alignments", ["o'hara", "b", "missing"])
    assert sorted(both["clip_id"].to_pylist()) == ["b"] * 2 + ["o'hara"] * 4
    assert both.schema == TABLES["phone_alignments"].schema
    some = store.read_clips("phone_alignments", ["a"], columns=["clip_id", "phone"])
    assert some.column_names == ["clip_id", "phone"] and some.num_rows == 3
    assert store.read_clips("phone_alignments", []).num_rows == 0


def test_tables_written_before_a_column_was_added_take_it_on_the_next_write(tmp_path) -> None:
    """A warehouse from an earlier release: new columns arrive, old rows read them as null."""
    from deltalake import write_deltalake

    store = Warehouse(tmp_path / "wh")
    old_phones = phones("old", 2).drop_columns(["score"])
    write_deltalake(store.table_uri("phone_alignments"), old_phones)
    old_hist = histograms(["old"], 1).drop_columns(["caption_words", "aligned_words", "coverage"])
    write_deltalake(store.table_uri("phoneme_histograms"), old_hist)
    store.replace_clips("phone_alignments", phones("new", 3), ["new"])
    store.upsert("phoneme_histograms", histograms(["new"], 2))
    read = store.read("phone_alignments").sort_by("clip_id")
    assert read["score"].to_pylist() == [-12.5] * 3 + [None] * 2
    assert by_clip(store.read("phoneme_histograms"))["old"]["coverage"] is None


def test_a_local_warehouse_path_with_a_percent_escape_is_refused_before_anything_is_written(tmp_path):
    """delta-rs wrote ``run%201/<table>/_delta_log/0.json``, then looked for it under ``run 1``: every
    command after failed, naming a folder that does not exist. A bare ``%`` is no escape and works."""
    with pytest.raises(ValueError, match=r"run%201: delta-rs reads '%20' in a local path as an escape"):
        Warehouse(tmp_path / "run%201")
    assert not (tmp_path / "run%201").exists()
    store = Warehouse(tmp_path / "100% run")
    store.upsert("phoneme_histograms", histograms(["a"], 1))
    assert store.read("phoneme_histograms")["clip_id"].to_pylist() == ["a"]


def test_a_warehouse_given_as_a_file_uri_is_the_folder_the_uri_names(tmp_path):
    """``Path.as_uri()`` writes a space as ``%20``: the warehouse was taken to be a folder named
    ``my%20warehouse``, which delta-rs could not use, rather than ``my warehouse``."""
    folder = tmp_path / "my warehouse é"
    Warehouse(folder.as_uri()).upsert("phoneme_histograms", histograms(["a"], 1))
    assert Warehouse(folder).read("phoneme_histograms")["clip_id"].to_pylist() == ["a"]
    assert Warehouse(folder.as_uri()).uri == str(folder)
