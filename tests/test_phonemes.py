"""Mapping aligner phones to the 39 CMU classes, and per-clip histograms."""

from __future__ import annotations

import pytest

from pipeline.phonemes import histogram, to_cmu39
from warehouse.phones import PHONE_INDEX, PHONES


@pytest.mark.parametrize(("label", "expected"), [
    ("AH0", "AH"), ("ah1", "AH"), ("ER2", "ER"), ("ZH", "ZH"), ("NG", "NG"),  # MFA ARPA, stress removed
    ("SIL", None), ("sil", None), ("sp", None), ("spn", None), ("", None),  # silence / spoken noise
    ("+NSN+", None), ("+SPN+", None), ("<sil>", None),  # pocketsphinx fillers
])  # fmt: skip
def test_to_cmu39(label: str, expected: str | None) -> None:
    assert to_cmu39(label) == expected


def test_every_cmu_class_maps_to_itself() -> None:
    assert [to_cmu39(p) for p in PHONES] == list(PHONES)
    assert [to_cmu39(p + "1") for p in PHONES] == list(PHONES)


@pytest.mark.parametrize("label", ["AX", "DX", "Q", "xx"])
def test_unknown_labels_raise(label: str) -> None:
    with pytest.raises(ValueError, match=label):
        to_cmu39(label)


def test_histogram_counts_and_seconds() -> None:
    h = histogram("c1", [("AH", 0.0, 0.1), ("T", 0.1, 0.15), ("AH", 0.2, 0.45)])
    assert h.n_phones == 3
    assert h.counts[PHONE_INDEX["AH"]] == 2 and h.counts[PHONE_INDEX["T"]] == 1
    assert h.seconds[PHONE_INDEX["AH"]] == pytest.approx(0.35)
    assert h.seconds[PHONE_INDEX["T"]] == pytest.approx(0.05)
    assert len(h.counts) == len(h.seconds) == 39 and sum(h.counts) == 3
    row = h.to_row()
    assert row["clip_id"] == "c1" and row["n_phones"] == 3 and len(row["counts"]) == 39


def test_histogram_rejects_bad_phones() -> None:
    with pytest.raises(ValueError, match="clip c1: phone 'SIL'"):
        histogram("c1", [("SIL", 0.0, 0.1)])
    with pytest.raises(ValueError, match="ends before it starts"):
        histogram("c1", [("AH", 0.2, 0.1)])
