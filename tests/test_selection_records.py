"""select-samples against the warehouse: recorded runs, idempotency, reproduction by version."""

import json

import pyarrow.compute as pc

from cli_contract import run_cli
from selection.cli import select_samples
from selection.demo_data import demo_histogram_table, demo_histograms
from warehouse.store import Warehouse


def run_json(capsys, *args):
    code = run_cli(select_samples, "select-samples", [*args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def members(store, selection_id):
    table = store.read("selection_members")
    table = table.filter(pc.equal(table["selection_id"], selection_id)).sort_by("rank")
    return table["clip_id"].to_pylist()


def test_a_run_records_its_parameters_members_and_table_versions(warehouse_uri, capsys):
    store = Warehouse(warehouse_uri)
    version = store.upsert("phoneme_histograms", demo_histogram_table(demo_histograms(400)))
    info = run_json(capsys, "--warehouse", warehouse_uri, "--nmin", "50", "--nmax", "300", "--k", "7",
                    "--method", "scan", "--distance", "kl")
    row = store.read("selections").to_pylist()[0]
    assert row["selection_id"] == info["selection_id"]
    assert (row["method"], row["distance"], row["nmin"], row["nmax"], row["k"], row["n"]) == \
        ("scan", "kl", 50, 300, 7, info["n"])
    assert dict(row["input_versions"]) == {"phoneme_histograms": version}
    assert row["distances"] == info["distances"] and row["lower_bounds"] == info["lower_bounds"]
    assert len(members(store, info["selection_id"])) == info["n"]


def test_running_the_same_selection_twice_keeps_one_record(warehouse_uri, capsys):
    store = Warehouse(warehouse_uri)
    store.upsert("phoneme_histograms", demo_histogram_table(demo_histograms(300)))
    first = run_json(capsys, "--warehouse", warehouse_uri, "--nmin", "30", "--nmax", "200")
    second = run_json(capsys, "--warehouse", warehouse_uri, "--nmin", "30", "--nmax", "200")
    assert first["selection_id"] == second["selection_id"]
    assert store.read("selections").num_rows == 1
    assert store.read("selection_members").num_rows == first["n"]


def test_a_rerun_under_the_same_id_replaces_the_members_as_a_whole(warehouse_uri, capsys):
    """Members an older release recorded under this id, beyond the new run's, do not survive it."""
    import pyarrow as pa

    from warehouse.tables import SELECTION_MEMBERS

    store = Warehouse(warehouse_uri)
    store.upsert("phoneme_histograms", demo_histogram_table(demo_histograms(300)))
    first = run_json(capsys, "--warehouse", warehouse_uri, "--nmin", "30", "--nmax", "200")
    chosen = members(store, first["selection_id"])
    stale = [f"old-{i}" for i in range(40)]  # as if a previous release had selected more clips
    store.upsert("selection_members", pa.Table.from_pylist(
        [{"selection_id": first["selection_id"], "clip_id": c, "rank": len(chosen) + i} for i, c in enumerate(stale)],
        schema=SELECTION_MEMBERS.schema))
    other = run_json(capsys, "--warehouse", warehouse_uri, "--nmin", "30", "--nmax", "100")
    assert len(members(store, first["selection_id"])) == len(chosen) + len(stale)

    again = run_json(capsys, "--warehouse", warehouse_uri, "--nmin", "30", "--nmax", "200")
    assert again["selection_id"] == first["selection_id"]
    assert members(store, first["selection_id"]) == chosen
    assert len(members(store, other["selection_id"])) == other["n"]  # another selection is untouched


def test_a_recorded_selection_is_reproduced_from_its_table_version(warehouse_uri, capsys):
    store = Warehouse(warehouse_uri)
    store.upsert("phoneme_histograms", demo_histogram_table(demo_histograms(300, seed=1)))
    recorded = run_json(capsys, "--warehouse", warehouse_uri, "--nmin", "30", "--nmax", "250", "--seed", "4")
    pinned = recorded["input_versions"]["phoneme_histograms"]
    store.upsert("phoneme_histograms", demo_histogram_table(demo_histograms(600, seed=2)).slice(300))  # new clips
    latest = run_json(capsys, "--warehouse", warehouse_uri, "--nmin", "30", "--nmax", "250", "--seed", "4")
    again = run_json(capsys, "--warehouse", warehouse_uri, "--nmin", "30", "--nmax", "250", "--seed", "4",
                     "--table-version", str(pinned))
    assert latest["n_candidates"] == 600 and again["n_candidates"] == 300
    assert again["selection_id"] == recorded["selection_id"]
    assert members(store, again["selection_id"]) == members(store, recorded["selection_id"])
    assert again["value"] == recorded["value"]


def test_a_recorded_selection_is_reproduced_after_the_faces_stage_changed_its_spans(warehouse_uri, capsys):
    """--table-version pinned only phoneme_histograms: spans written later changed the candidates (and the id)."""
    import pyarrow as pa

    from warehouse.tables import CLIP_SPANS

    store = Warehouse(warehouse_uri)
    table = demo_histogram_table(demo_histograms(200, seed=3))
    store.upsert("phoneme_histograms", table)
    ids = table["clip_id"].to_pylist()

    def spans(clips: list[str], n_frames: int) -> pa.Table:
        return pa.Table.from_pylist([{"clip_id": c, "start_frame": 0, "end_frame": n_frames, "n_frames": n_frames}
                                     for c in clips], schema=CLIP_SPANS.schema)

    store.upsert("clip_spans", spans(ids[:150], 80))
    args = ["--warehouse", warehouse_uri, "--nmin", "20", "--nmax", "120", "--seed", "2"]
    recorded = run_json(capsys, *args)
    store.upsert("clip_spans", spans(ids[:60], 0))  # a later faces run finds no valid span in 60 of them
    versions = recorded["input_versions"]
    again = run_json(capsys, *args, "--table-version", str(versions["phoneme_histograms"]),
                     "--spans-version", str(versions["clip_spans"]))
    assert again["n_candidates"] == recorded["n_candidates"] == 150
    assert again["selection_id"] == recorded["selection_id"]
    assert members(store, again["selection_id"]) == members(store, recorded["selection_id"])
    assert run_json(capsys, *args)["n_candidates"] == 90  # the latest spans


def test_only_clips_with_a_valid_face_span_are_candidates(warehouse_uri, capsys):
    import pyarrow as pa

    from warehouse.tables import CLIP_SPANS

    store = Warehouse(warehouse_uri)
    table = demo_histogram_table(demo_histograms(200))
    store.upsert("phoneme_histograms", table)
    ids = table["clip_id"].to_pylist()
    spans = pa.Table.from_pylist([{"clip_id": c, "start_frame": 0, "end_frame": 80, "n_frames": 80}
                                  for c in ids[:120]], schema=CLIP_SPANS.schema)
    store.upsert("clip_spans", spans)
    info = run_json(capsys, "--warehouse", warehouse_uri, "--nmin", "10", "--nmax", "500")
    assert info["n_candidates"] == 120 and info["nmax"] == 120
    assert set(members(store, info["selection_id"])) <= set(ids[:120])
    assert set(info["input_versions"]) == {"phoneme_histograms", "clip_spans"}


def test_clips_the_faces_stage_rejected_are_not_candidates_even_when_it_kept_none(warehouse_uri, capsys):
    """A faces stage that rejected every clip writes rejects but no clip_spans table."""
    from pipeline.refresh_stages import stage_named
    from pipeline.stage import ClipResult, Reject, write_results

    store = Warehouse(warehouse_uri)
    table = demo_histogram_table(demo_histograms(50))
    store.upsert("phoneme_histograms", table)
    write_results(store, stage_named("faces"), [ClipResult(c, {"poses": []}, Reject(c, "faces", "no_face", "x"))
                                                for c in table["clip_id"].to_pylist()])
    assert store.version("clip_spans") is None
    code = run_cli(select_samples, "select-samples", ["--warehouse", warehouse_uri, "--nmin", "5", "--nmax", "20"])
    assert code == 2 and "no clip has a valid face span" in capsys.readouterr().err


def test_the_report_of_a_selection_made_before_the_faces_stage_reads_its_own_candidates(warehouse_uri, capsys):
    """clip_spans written after the selection must not change the clips its report compares against."""
    import pyarrow as pa

    from selection.report import report_recorded_selection
    from warehouse.tables import CLIP_SPANS

    store = Warehouse(warehouse_uri)
    table = demo_histogram_table(demo_histograms(200))
    store.upsert("phoneme_histograms", table)
    recorded = run_json(capsys, "--warehouse", warehouse_uri, "--nmin", "20", "--nmax", "100")
    kept = table["clip_id"].to_pylist()[::2]
    store.upsert("clip_spans", pa.Table.from_pylist([{"clip_id": c, "start_frame": 0, "end_frame": 50, "n_frames": 50}
                                                     for c in kept], schema=CLIP_SPANS.schema))
    _, _, source, again = report_recorded_selection(warehouse_uri, recorded["selection_id"])
    assert len(source.histograms) == 200 and source.versions == recorded["input_versions"]
    assert again.clip_ids == members(store, recorded["selection_id"])
