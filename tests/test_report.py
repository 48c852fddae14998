import base64
import re

import numpy as np
import pyarrow.parquet as pq
from click.testing import CliRunner

from cli_contract import run_cli
from selection.cli import select_samples
from selection.demo_data import demo_histogram_table, demo_histograms
from selection.histograms import HistogramSet
from selection.methods import SelectionParams
from selection.report import rarest_and_missing, render_report
from selection.report_cli import report
from warehouse.phones import PHONES
from warehouse.store import Warehouse

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_report_from_the_warehouse_shows_histograms_counts_and_every_method(warehouse_uri, tmp_path, capsys):
    store = Warehouse(warehouse_uri)
    store.upsert("phoneme_histograms", demo_histogram_table(demo_histograms(500)))
    assert run_cli(select_samples, "select-samples",
                   ["--warehouse", warehouse_uri, "--nmin", "100", "--nmax", "400"]) == 0
    out = tmp_path / "r" / "report.html"
    result = CliRunner().invoke(report, ["--warehouse", warehouse_uri, "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    pngs = images(page)
    assert len(pngs) == 3 and all(p.startswith(PNG_MAGIC) for p in pngs)
    assert "linear scale" in page and "log scale" in page
    for label in ("paper", "scan", "greedy", "all clips", "lower bound", "of optimal", "chi2", "js"):
        assert label in page
    assert ">500<" in page  # clips in all


def test_report_from_files_uses_the_parameters_recorded_in_the_selection_file(tmp_path, capsys):
    hist = tmp_path / "h.parquet"
    pq.write_table(demo_histograms(300).to_wide(), hist)
    sel = tmp_path / "sel.parquet"
    assert run_cli(select_samples, "select-samples", ["--input", str(hist), "--nmin", "40", "--nmax", "90",
                                                      "--output", str(sel)]) == 0
    out = tmp_path / "report.html"
    result = CliRunner().invoke(report, ["--input", str(hist), "--selection", str(sel), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "nmin 40, nmax 90" in page and "sel.parquet" in page


def test_report_errors_are_one_line_naming_what_is_missing(warehouse_uri, capsys):
    for args, message in ((["--warehouse", warehouse_uri], "no selection recorded yet (run select-samples)"),
                          (["--input", "x.parquet"], "--input and --selection go together"),
                          (["--input", "x.parquet", "--selection", "s.parquet", "--selection-id", "abc"],
                           "--selection-id reads the warehouse; it cannot be used with --input")):  # was ignored
        assert run_cli(report, "talkface report", args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_a_selection_file_without_clips_is_refused_saying_so(tmp_path, capsys):
    import pyarrow as pa

    hist, sel = tmp_path / "h.parquet", tmp_path / "empty.parquet"
    pq.write_table(demo_histograms(20).to_wide(), hist)
    pq.write_table(pa.table({"clip_id": pa.array([], pa.string())}), sel)
    assert run_cli(report, "talkface report", ["--input", str(hist), "--selection", str(sel)]) == 2
    assert "empty.parquet: the selection holds no clips" in capsys.readouterr().err


def test_a_selection_file_listing_a_clip_twice_is_refused_naming_it(tmp_path, capsys):
    """It was reported as two clips with the clip's phones counted twice."""
    import pyarrow as pa

    hist, sel = tmp_path / "h.parquet", tmp_path / "twice.parquet"
    pq.write_table(demo_histograms(20).to_wide(), hist)
    pq.write_table(pa.table({"clip_id": ["demo0000003", "demo0000001", "demo0000003"]}), sel)
    out = tmp_path / "report.html"
    assert run_cli(report, "talkface report", ["--input", str(hist), "--selection", str(sel), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "twice.parquet: 1 clips are listed more than once, e.g. ['demo0000003']" in err
    assert not out.exists()


def test_an_unknown_selection_id_is_named(warehouse_uri, capsys):
    Warehouse(warehouse_uri).upsert("phoneme_histograms", demo_histogram_table(demo_histograms(50)))
    assert run_cli(select_samples, "select-samples", ["--warehouse", warehouse_uri, "--nmin", "5", "--nmax", "20"]) == 0
    capsys.readouterr()
    assert run_cli(report, "talkface report", ["--warehouse", warehouse_uri, "--selection-id", "abc"]) == 2
    assert "no selection with id 'abc'" in capsys.readouterr().err


def test_the_rarest_phone_is_a_missing_one_only_when_it_is_the_only_one_missing():
    counts = np.arange(1, 40) * 10  # AA 10, AE 20, ..., ZH 390
    assert rarest_and_missing(counts) == ("AA (10)", "none")
    counts[-1] = 0  # ZH missing: the real rarest
    assert rarest_and_missing(counts) == ("ZH (0)", "ZH")
    counts[[0, 5]] = 0  # AA, AY and ZH missing: the rarest phone that occurs is named, the missing listed
    assert rarest_and_missing(counts) == ("AE (20)", "AA, AY, ZH")


def test_the_counts_table_lists_the_phones_a_selection_misses():
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 50, size=(30, 39))
    counts[:10, [PHONES.index("OY"), PHONES.index("ZH")]] = 0  # the first ten clips hold neither
    hs = HistogramSet(np.asarray([f"c{i:02d}" for i in range(30)], dtype=object), counts)
    page = render_report(hs, [f"c{i:02d}" for i in range(10)], "sel", SelectionParams(nmin=5, nmax=10),
                         None, "test", figures=[])
    counts_table = page[page.index("<h2>Counts</h2>"):page.index("<h2>Distance")]
    assert "<th>missing phones</th>" in counts_table
    assert "<td>OY, ZH</td>" in counts_table and "<td>none</td>" in counts_table
    assert "OY (0)" not in counts_table and "ZH (0)" not in counts_table
