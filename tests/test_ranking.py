import numpy as np

from selection.ranking import rank_clips, rare_first_phone_order

# Three phones. Totals (15, 8, 27): rarest first R_ph = (1, 0, 2).
COUNTS = np.array([
    [10, 0, 0],   # a: shares in R order (0, 1, 0)
    [5, 0, 5],    # b: (0, .5, .5)
    [0, 1, 9],    # c: (.1, 0, .9)
    [0, 2, 18],   # d: (.1, 0, .9), tied with c on every share
    [0, 0, 0],    # e: no phones
    [0, 5, 5],    # f: (.5, 0, .5)
])  # fmt: skip


def test_rare_first_order_sorts_phones_by_total_ascending():
    assert rare_first_phone_order(COUNTS).tolist() == [1, 0, 2]


def test_rare_first_order_keeps_cmu_order_on_equal_totals():
    assert rare_first_phone_order(np.array([[1, 1, 1, 0]])).tolist() == [3, 0, 1, 2]


def test_clips_rich_in_rare_phones_come_first_and_ties_go_by_clip_id():
    ids = np.array(["a", "b", "zeta", "alpha", "e", "f"], dtype=object)
    order = rank_clips(ids, COUNTS)
    # f (.5 of the rarest), then c/d tied at .1 -> "alpha" before "zeta", then
    # b and a (no rarest phone) by their share of the next rarest, e (empty) last.
    assert ids[order].tolist() == ["f", "alpha", "zeta", "a", "b", "e"]


def test_ranking_equals_a_full_lexicographic_sort_on_realistic_data(demo_15k):
    counts, ids = demo_15k.counts, demo_15k.clip_ids
    shares = counts / counts.sum(axis=1, keepdims=True)
    shares = shares[:, rare_first_phone_order(counts)]
    by_id = np.empty(len(ids), dtype=np.int64)
    by_id[np.argsort(ids)] = np.arange(len(ids))
    reference = np.lexsort([by_id] + [-shares[:, j] for j in range(38, -1, -1)])
    assert np.array_equal(rank_clips(ids, counts), reference)
