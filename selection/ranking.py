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
    totals = counts.sum(axis=1, keepdims=True)  # (N, 1)
    # Negated shares so that ascending order is best first; clips without phones get 1.0 (last).
    keys = np.where(totals > 0, -(counts[:, phone_order] / np.maximum(totals, 1)), 1.0)  # (N, K)
    return _refining_sort(keys, np.asarray(clip_ids, dtype=object))


def _refining_sort(keys: np.ndarray, clip_ids: np.ndarray) -> np.ndarray:
    """Lexicographic argsort of the rows of ``keys`` (column 0 most significant), then ``clip_ids``.

    Equal to ``np.lexsort`` on all columns, but each further column is sorted
    only within the groups still tied, which are few after the first columns
    except where rare phones are absent: about 10x faster than a full lexsort
    at a million clips.
    """
    n, k = keys.shape
    order = np.argsort(keys[:, 0], kind="stable")
    column = keys[order, 0]
    boundary = np.ones(n, dtype=bool)  # boundary[i]: position i starts a new tied group
    boundary[1:] = column[1:] != column[:-1]
    for j in range(1, k + 1):
        group = np.cumsum(boundary)
        tied = np.flatnonzero(np.bincount(group)[group] > 1)  # positions in groups of 2 or more
        if tied.size == 0:
            break
        rows = order[tied]
        if j < k:
            next_key = keys[rows, j]
        else:  # rows equal on every share: clip_id decides, sorted only among those rows
            next_key = np.unique(clip_ids[rows], return_inverse=True)[1]
        within = np.lexsort((next_key, group[tied]))  # stable: groups keep their positions
        order[tied] = rows[within]
        sorted_key, sorted_group = next_key[within], group[tied][within]
        split = (sorted_group[1:] == sorted_group[:-1]) & (sorted_key[1:] != sorted_key[:-1])
        boundary[tied[1:][split]] = True
    return order
