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

from collections.abc import Callable

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
    totals = counts.sum(axis=1, dtype=np.int64)  # (N,)
    has_phones = totals > 0
    divisor = np.maximum(totals, 1)

    def key(j: int, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Negated share of the j-th rarest phone (ascending = best first); 1.0 (last) without phones."""
        return np.where(has_phones[rows], -(counts[rows, phone_order[j]] / divisor[rows]), 1.0)

    return _refining_sort(key, len(phone_order), len(totals), np.asarray(clip_ids, dtype=object))


def _refining_sort(key: Callable[..., np.ndarray], n_keys: int, n: int, clip_ids: np.ndarray) -> np.ndarray:
    """Lexicographic argsort by ``key(0)``, ``key(1)``, ... then ``clip_ids``.

    Equal to ``np.lexsort`` on all ``n_keys`` columns, but only the first key is
    computed for every row: each further key is computed and sorted only for
    the rows still tied (on realistic data most clips tie on the first shares,
    equal fractions of small counts, and a few rounds leave none).
    ``key(j, rows)`` gives column ``j`` for ``rows``, all rows by default. No sort
    needs to be stable: rows with equal keys stay tied and the next key (in the
    end the unique ``clip_id``) decides between them.
    """
    first = key(0)
    order = np.argsort(first)
    tied, group = _tied_groups(first[order], np.zeros(n, dtype=np.int64))
    for j in range(1, n_keys + 1):
        if tied.size == 0:
            break
        rows = order[tied]
        if j < n_keys:
            next_key = key(j, rows)
        else:  # rows equal on every share: clip_id decides, sorted only among those rows
            next_key = np.unique(clip_ids[rows], return_inverse=True)[1]
        within = _sort_within_groups(next_key, group)
        order[tied] = rows[within]
        keep, group = _tied_groups(next_key[within], group[within])
        tied = tied[keep]
    return order


def _sort_within_groups(key: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Argsort by (group, key) in two unstable sorts: one on ``key``, one on unique integers."""
    by_key = np.argsort(key)
    rank = np.empty(len(key), dtype=np.int64)
    rank[by_key] = np.arange(len(key))  # equal keys get neighbouring ranks
    return np.argsort(group * len(key) + rank)


def _tied_groups(sorted_key: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which entries still tie with a neighbour after sorting by (group, key), and their new group labels.

    Args:
        sorted_key: (M,) key values, sorted within each group.
        group: (M,) group labels, non-decreasing.

    Returns:
        Indices into the M entries that belong to a tied group of two or more,
        and a non-decreasing group label for each of them.
    """
    starts = np.ones(len(sorted_key), dtype=bool)
    starts[1:] = (group[1:] != group[:-1]) | (sorted_key[1:] != sorted_key[:-1])
    label = np.cumsum(starts)
    size = np.bincount(label)
    keep = np.flatnonzero(size[label] > 1)
    return keep, label[keep]
