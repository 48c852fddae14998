"""The 39 CMU phone classes, in the fixed order every histogram uses."""

from __future__ import annotations

PHONES: tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F",
    "G", "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S",
    "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
)  # fmt: skip
"""CMU phone set without stress marks; column ``j`` of every histogram is ``PHONES[j]``."""

N_PHONES: int = len(PHONES)

PHONE_INDEX: dict[str, int] = {phone: j for j, phone in enumerate(PHONES)}
