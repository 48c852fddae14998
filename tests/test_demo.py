import numpy as np
from click.testing import CliRunner

from selection.demo_data import demo_histogram_table, demo_histograms
from selection.demo_data_cli import demo_data
from selection.distances import to_distribution
from warehouse.phones import PHONE_INDEX
from warehouse.store import Warehouse


def test_demo_corpus_has_the_papers_skew(demo_15k):
    totals = demo_15k.totals
    assert int(np.argmin(totals)) == PHONE_INDEX["ZH"]
    assert int(np.argmax(totals)) == PHONE_INDEX["AH"]
    assert totals[PHONE_INDEX["AH"]] / totals[PHONE_INDEX["ZH"]] > 50
    # about 7,000 phones per clip, as 11 million AH over 15,114 videos imply
    assert 4_000 < np.median(demo_15k.counts.sum(axis=1)) < 10_000


def test_clips_vary_like_different_speakers_and_subjects(demo_15k):
    shares = to_distribution(demo_15k.counts)
    relative_spread = shares.std(axis=0) / shares.mean(axis=0)
    assert relative_spread.min() > 0.05  # every phone's share varies between clips
    assert (demo_15k.counts[:, PHONE_INDEX["ZH"]] == 0).any()  # some clips lack the rarest phone


def test_demo_is_deterministic_per_seed():
    assert np.array_equal(demo_histograms(50, seed=3).counts, demo_histograms(50, seed=3).counts)
    assert not np.array_equal(demo_histograms(50, seed=3).counts, demo_histograms(50, seed=4).counts)


def test_demo_table_matches_the_warehouse_schema_and_counts():
    hs = demo_histograms(20)
    table = demo_histogram_table(hs)
    assert table["n_phones"].to_pylist() == hs.counts.sum(axis=1).tolist()
    assert all(len(s) == 39 for s in table["seconds"].to_pylist())


def test_demo_data_command_fills_the_warehouse(warehouse_uri):
    result = CliRunner().invoke(demo_data, ["--clips", "30", "--warehouse", warehouse_uri])
    assert result.exit_code == 0, result.output
    assert Warehouse(warehouse_uri).read("phoneme_histograms").num_rows == 30
