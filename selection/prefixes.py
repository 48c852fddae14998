"""Distances of the top-n clips of a ranking, for many n at once.

The histogram of the top n clips is a prefix sum of the ranked counts, so
evaluating every n in ``[nmin, nmax]`` costs one cumulative sum, O(N x 39).
The sum is taken in blocks so that memory stays O(block x 39) even for ten
million clips.
"""

from __future__ import annotations

import numpy as np

from selection.distances import distance_function, to_distribution

BLOCK_ROWS = 1 << 16


def prefix_distances(ordered_counts: np.ndarray, nmin: int, nmax: int, distance: str,
                     block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """Distance to uniform of the top ``n`` rows, for every ``n`` in ``[nmin, nmax]``.

    Args:
        ordered_counts: (N, K) counts in ranking order, N >= nmax.
        nmin, nmax: inclusive range of prefix sizes, 1 <= nmin <= nmax.
        distance: a name from ``selection.distances.DISTANCES``.

    Returns:
        (nmax - nmin + 1,) float64; entry ``i`` is the distance of the top
        ``nmin + i`` rows (NaN where those rows hold no phones).
    """
    fn = distance_function(distance)
    out = np.empty(nmax - nmin + 1, dtype=np.float64)
    running = np.zeros(ordered_counts.shape[1], dtype=np.int64)
    for start in range(0, nmax, block_rows):
        stop = min(start + block_rows, nmax)
        sums = np.cumsum(ordered_counts[start:stop], axis=0, dtype=np.int64) + running  # (B, K)
        running = sums[-1].copy()
        first = max(nmin, start + 1)  # smallest prefix size in this block that is wanted
        if first > stop:
            continue
        out[first - nmin: stop - nmin + 1] = fn(to_distribution(sums[first - start - 1:]))
    return out


def prefix_counts(ordered_counts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Phone counts of the top ``n`` rows for each ``n`` in ``sizes`` (any order), (len, K)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    unique = np.unique(sizes)
    boundaries = np.concatenate(([0], unique[:-1]))
    segments = np.add.reduceat(ordered_counts[: unique[-1]], boundaries, axis=0, dtype=np.int64)
    sums = np.cumsum(segments, axis=0)  # (len(unique), K): counts of the top unique[i] rows
    return sums[np.searchsorted(unique, sizes)]
