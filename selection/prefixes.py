"""Phone counts and distances of the top-n clips of a ranking, for many n at once.

The histogram of the top n clips is a prefix sum of the ranked counts, so
evaluating every n in ``[nmin, nmax]`` costs one cumulative sum, O(N x 39).
Neither function builds the ranked (N, 39) copy of the counts: the scan sums
in blocks of ranked rows (memory O(block x 39) even for ten million clips),
and the counts at a few sizes come from per-phone bincounts that read each
phone's column once, in storage order.
"""

from __future__ import annotations

import numpy as np

from selection.distances import distance_function, to_distribution

BLOCK_ROWS = 1 << 12  # small enough that a block's cumulative sum stays in cache


def prefix_distances(counts: np.ndarray, order: np.ndarray, nmin: int, nmax: int, distance: str,
                     block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """Distance to uniform of the top ``n`` rows of ``order``, for every ``n`` in ``[nmin, nmax]``.

    Args:
        counts: (N, K) counts per clip, N >= nmax.
        order: (N,) the ranking, best row first.
        nmin, nmax: inclusive range of prefix sizes, 1 <= nmin <= nmax.
        distance: a name from ``selection.distances.DISTANCES``.

    Returns:
        (nmax - nmin + 1,) float64; entry ``i`` is the distance of the top
        ``nmin + i`` rows (NaN where those rows hold no phones).
    """
    fn = distance_function(distance)
    out = np.empty(nmax - nmin + 1, dtype=np.float64)
    running = np.zeros(counts.shape[1], dtype=np.int64)
    for start in range(0, nmax, block_rows):
        stop = min(start + block_rows, nmax)
        sums = np.cumsum(counts[order[start:stop]], axis=0, dtype=np.int64) + running  # (B, K)
        running = sums[-1].copy()
        first = max(nmin, start + 1)  # smallest prefix size in this block that is wanted
        if first > stop:
            continue
        out[first - nmin: stop - nmin + 1] = fn(to_distribution(sums[first - start - 1:]))
    return out


def prefix_counts(counts: np.ndarray, order: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Phone counts of the top ``n`` rows of ``order`` for each ``n`` in ``sizes`` (any order), (len, K) int64.

    Each row is labelled with the segment between consecutive sizes that its
    rank falls in; one weighted bincount per phone sums the segments, and their
    cumulative sums are the prefixes. Sums are exact: float64 holds integers
    up to 2**53.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    unique = np.unique(sizes)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    segment = np.searchsorted(unique, rank, side="right")  # rows ranked beyond the last size: len(unique)
    segments = np.stack([np.bincount(segment, weights=counts[:, j], minlength=len(unique) + 1)[:-1]
                         for j in range(counts.shape[1])], axis=1)  # (len(unique), K)
    sums = np.cumsum(np.rint(segments).astype(np.int64), axis=0)
    return sums[np.searchsorted(unique, sizes)]
