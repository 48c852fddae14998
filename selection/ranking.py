"""The clip ranking of Algorithm 1 (steps 1 and 2).

Rule, as implemented (the paper gives no more detail):

1. ``R_ph``: the 39 phones sorted by their total count over all clips,
   ascending (rarest first); phones with equal totals keep CMU order.
2. Each clip's own phone *distribution* (counts / its phone total) is read in
   ``R_ph`` order, and clips are sorted by that vector lexicographically,
   descending: the clip with the largest share of the rarest phone comes first,
   ties are broken by the share of the next-rarest phone, and so on; clips equal
   on all 39 shares are ordered by ``clip_id`` ascending. Clips with no phones
   have no distribution and come last.
"""

from __future__ import annotations

import numpy as np

from selection.distances import to_distribution


def rare_first_phone_order(counts: np.ndarray) -> np.ndarray:
    """``R_ph``: phone indices by total count over all clips, rarest first (stable)."""
    return np.argsort(counts.sum(axis=0), kind="stable")


def rank_clips(clip_ids: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Row indices of ``counts`` in Algorithm 1's order (see module docstring).

    Args:
        clip_ids: (N,) clip ids, the final tie-breaker.
        counts: (N, K) phone counts per clip.

    Returns:
        (N,) int64 permutation, best-ranked clip first.
    """
    phone_order = rare_first_phone_order(counts)
    shares = np.nan_to_num(to_distribution(counts), nan=-1.0)[:, phone_order]  # (N, K)
    tie_break = np.empty(len(clip_ids), dtype=np.int64)
    tie_break[np.argsort(clip_ids, kind="stable")] = np.arange(len(clip_ids))
    # np.lexsort sorts by its last key first: rarest phone share (negated for
    # descending), then the next-rarest, ..., and the clip_id rank last.
    keys = [tie_break] + [-shares[:, j] for j in range(shares.shape[1] - 1, -1, -1)]
    return np.lexsort(keys)
