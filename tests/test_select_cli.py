"""select-samples end to end: inputs, bad inputs, outputs and warehouse records."""

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli_contract import run_cli
from selection.cli import select_samples
from selection.histograms import HistogramSet
from selection.records import read_selection_file
from warehouse.phones import PHONES


def write_wide(path, n=300, seed=0, **overrides):
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(rng.integers(30, 300, size=n), rng.dirichlet(np.full(39, 0.6), size=n))
    columns = {"clip_id": [f"clip{i:05d}" for i in range(n)]}
    columns.update({phone: counts[:, j] for j, phone in enumerate(PHONES)})
    columns["speaker"] = ["spk"] * n  # extra columns are ignored
    columns.update(overrides)
    pq.write_table(pa.table(columns), path)
    return path


def run(capsys, *args):
    code = run_cli(select_samples, "select-samples", list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_output_carries_every_documented_field(tmp_path, capsys):
    path = write_wide(tmp_path / "h.parquet")
    code, out, _ = run(capsys, "--input", str(path), "--nmin", "50", "--nmax", "200", "--k", "10", "--json")
    info = json.loads(out)
    assert code == 0
    for key in ("method", "distance", "value", "n", "nmin", "nmax", "k", "seed", "distances", "lower_bounds"):
        assert key in info
    assert info["method"] == "paper" and info["distance"] == "tv" and info["seed"] == 0
    assert set(info["distances"]) == {"tv", "kl", "l2", "js", "chi2"}
    assert info["distances"]["tv"] == info["value"]
    assert info["lower_bounds"]["tv"] <= info["value"]
    assert 50 <= info["n"] <= 200
    for name, value in info["distances"].items():  # a certified bound, and how close to it, per distance
        bound, within = info["lower_bounds"][name], info["within_percent"][name]
        assert 0 <= bound <= value
        assert within == (pytest.approx(100 * (value - bound) / bound) if bound > 0 else None)


def test_the_summary_names_every_distance_with_its_bound_and_how_close_it_is(tmp_path, capsys):
    path = write_wide(tmp_path / "h.parquet")
    code, out, _ = run(capsys, "--input", str(path), "--nmin", "50", "--nmax", "200", "--method", "greedy")
    assert code == 0
    rows = [line.split() for line in out.splitlines() if ">=" in line]
    assert [row[0] for row in rows] == ["tv", "kl", "l2", "js", "chi2"]
    assert all(float(row[1]) >= float(row[3]) for row in rows)  # value >= bound
    code, out, _ = run(capsys, "--input", str(path), "--nmin", "50", "--nmax", "200", "--no-bound")
    assert code == 0 and ">=" not in out and "all distances: tv" in out


def test_output_file_holds_clip_ids_and_ranks_with_the_summary(tmp_path, capsys):
    path = write_wide(tmp_path / "h.parquet")
    out_path = tmp_path / "out" / "sel.parquet"
    code, out, _ = run(capsys, "--input", str(path), "--nmin", "50", "--nmax", "200", "--method", "greedy",
                       "--distance", "js", "--output", str(out_path), "--json")
    assert code == 0
    table = pq.read_table(out_path)
    assert table.column_names == ["clip_id", "rank"]
    assert table["rank"].to_pylist() == list(range(table.num_rows))
    ids, info = read_selection_file(out_path)
    assert info["method"] == "greedy" and info["distance"] == "js" and len(ids) == info["n"]
    hs = HistogramSet.from_wide(pq.read_table(path), "h")
    assert json.loads(out)["value"] == pytest.approx(info["distances"]["js"])
    assert len(hs.subset(ids)) == len(ids)


def test_the_same_seed_gives_the_same_selection(tmp_path, capsys):
    path = write_wide(tmp_path / "h.parquet")
    for name in ("a", "b"):
        run(capsys, "--input", str(path), "--nmin", "20", "--nmax", "250", "--seed", "3",
            "--output", str(tmp_path / f"{name}.parquet"))
    assert read_selection_file(tmp_path / "a.parquet")[0] == read_selection_file(tmp_path / "b.parquet")[0]


def test_nmax_above_the_number_of_clips_is_clamped(tmp_path, capsys):
    path = write_wide(tmp_path / "h.parquet", n=120)
    code, out, err = run(capsys, "--input", str(path), "--nmin", "100", "--nmax", "15114", "--json")
    info = json.loads(out)
    assert code == 0 and info["nmax"] == 120 and info["clamped_nmax"] is True
    assert "larger than the number of clips" in err


def bad_inputs(tmp_path):
    n = 10
    yield "missing file", [str(tmp_path / "absent.parquet")], "no such file"
    pq.write_table(pa.table({"clip_id": ["a"], "AA": [1]}), tmp_path / "cols.parquet")
    yield "missing phone columns", [str(tmp_path / "cols.parquet")], "missing columns AE, AH"
    yield "negative", [str(write_wide(tmp_path / "neg.parquet", n=n, ZH=[-1] + [0] * (n - 1)))], \
        "negative count -1 for clip 'clip00000'"
    yield "non-integer", [str(write_wide(tmp_path / "frac.parquet", n=n, ZH=[0.0] * 5 + [2.5] + [0.0] * 4))], \
        "non-integer count 2.5 for clip 'clip00005'"
    yield "nan", [str(write_wide(tmp_path / "nan.parquet", n=n, AA=[1.0] * 9 + [float("nan")]))], \
        "NaN count for clip 'clip00009'"
    yield "infinite", [str(write_wide(tmp_path / "inf.parquet", n=n, AA=[1.0] * 3 + [float("inf")] + [1.0] * 6))], \
        "infinite count for clip 'clip00003'"  # was a bare OverflowError traceback
    yield "duplicate ids", [str(write_wide(tmp_path / "dup.parquet", n=n, clip_id=["x", "y"] * 5))], \
        "2 duplicate clip ids"
    yield "empty", [str(write_wide(tmp_path / "empty.parquet", n=0))], "no clips"
    pq.write_table(pa.table({"text": ["not histograms"]}), tmp_path / "text.parquet")
    (tmp_path / "garbage.parquet").write_bytes(b"not parquet at all")
    yield "not parquet", [str(tmp_path / "garbage.parquet")], "not a readable Parquet file"


@pytest.mark.parametrize("case", range(9))
def test_bad_input_files_exit_2_with_one_line_naming_the_file(tmp_path, capsys, case):
    name, args, message = list(bad_inputs(tmp_path))[case]
    code, out, err = run(capsys, "--input", *args, "--nmin", "1", "--nmax", "5")
    assert code == 2, name
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("select-samples: error: "), err
    assert message in lines[0] and args[0] in lines[0]


@pytest.mark.parametrize("flags, message", [
    (["--nmin", "300", "--nmax", "200"], "--nmin (300) is larger than --nmax (200)"),
    (["--nmin", "400", "--nmax", "500"], "--nmin (400) is larger than the number of clips (300)"),
    (["--k", "0"], "--k must be at least 1"),
    (["--seed", "-1"], "--seed must be at least 0, got -1"),  # numpy's words named no flag
    (["--seed", "-1", "--method", "scan"], "--seed must be at least 0, got -1"),  # was ignored
    (["--table-version", "3"], "--table-version reads the warehouse; it cannot be used with --input"),  # was ignored
    (["--nmin", "ten"], "'ten' is not a valid integer"),
    (["--method", "best"], "'best' is not one of 'paper', 'scan', 'greedy'"),
])  # fmt: skip
def test_bad_flags_exit_2_with_one_line(tmp_path, capsys, flags, message):
    path = write_wide(tmp_path / "h.parquet")
    code, out, err = run(capsys, "--input", str(path), *(["--nmin", "10", "--nmax", "100"] + flags))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err


def test_an_empty_warehouse_says_how_to_fill_it(tmp_path, capsys):
    code, _, err = run(capsys, "--warehouse", str(tmp_path / "wh"))
    assert code == 2 and "no phoneme_histograms table yet" in err


def test_a_seed_the_selections_table_cannot_hold_is_one_line_naming_the_flag(warehouse_uri, capsys):
    """--seed 2**63 selected, then failed to record: a bare OverflowError traceback from Arrow."""
    from selection.demo_data import demo_histogram_table, demo_histograms
    from warehouse.store import Warehouse

    store = Warehouse(warehouse_uri)
    store.upsert("phoneme_histograms", demo_histogram_table(demo_histograms(30)))
    code, out, err = run(capsys, "--warehouse", warehouse_uri, "--nmin", "5", "--nmax", "20", "--no-bound",
                         "--seed", str(2**63))
    assert code == 2 and out == ""
    assert err == f"select-samples: error: --seed must be at most {2**63 - 1}, got {2**63}\n"
    assert store.read("selections").num_rows == 0


def test_help_does_not_import_heavy_libraries():
    probe = ("import sys; from selection.cli import main; "
             "print([m for m in ('torch', 'prefect', 'mediapipe', 'cv2', 'deltalake') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-c", "from selection.cli import main; main()", "--help"],
                               capture_output=True, text=True).stdout
    assert "--nmin" in help_text and "greedy" in help_text and "lower bound" in help_text


def test_counts_are_held_in_the_narrowest_integer_type_that_fits_them(tmp_path, capsys):
    from selection.histograms import read_wide_parquet

    small = read_wide_parquet(write_wide(tmp_path / "small.parquet", n=20))
    assert small.counts.dtype == np.int16
    large = read_wide_parquet(write_wide(tmp_path / "large.parquet", n=20, ZH=[0] * 19 + [40_000]))
    assert large.counts.dtype == np.int32 and large.counts[19, PHONES.index("ZH")] == 40_000
    assert np.array_equal(large.counts[:, :5], small.counts[:, :5])
    code, _, err = run(capsys, "--input", str(write_wide(tmp_path / "huge.parquet", n=3, ZH=[0, 2**40, 0])),
                       "--nmin", "1", "--nmax", "2")
    assert code == 2 and "count 1099511627776 for clip 'clip00001' is more than one clip can hold" in err
