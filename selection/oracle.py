"""The linear minimisation oracle over the pooled distributions of fractional selections.

Every lower bound in :mod:`selection.bounds` works over the convex set

    P = { C^T x / T^T x  :  x in [0, 1]^N,  nmin <= sum x <= nmax }

(``C`` the (N, K) counts, ``T`` the phone totals per clip), which holds the
pooled distribution of every subset of ``nmin..nmax`` clips. The only thing
they ask of the N clips is ``min_{s in P} g . s`` for a direction ``g``: a
linear-fractional program ``min (a . x) / (T . x)`` with ``a = C g``, solved
exactly by Dinkelbach's method (:func:`min_ratio_subset`). Its minimiser is a
real subset, so the point it returns is a vertex of P.

The scores ``a`` come from one float32 matrix-vector product; the rounding
that this costs, and that of the float64 sums, is bounded and subtracted, so
the value the oracle reports is never above the true minimum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_UNIT = 2.0**-24  # float32 unit roundoff
_SAMPLE_ROWS = 1 << 14  # sample size for the threshold that pre-filters a partial sort


def min_ratio_subset(scores: np.ndarray, totals: np.ndarray, nmin: int, nmax: int,
                     start: np.ndarray | None = None, least_total: float | None = None,
                     buffer: np.ndarray | None = None, max_rounds: int = 50) -> tuple[np.ndarray, float, float]:
    """The subset of ``nmin..nmax`` rows minimising ``sum(scores) / sum(totals)`` (Dinkelbach).

    At ratio ``r`` the best subset for ``sum(scores - r totals)`` is the
    ``nmin`` smallest terms plus every further negative one, up to ``nmax``;
    its own ratio is lower unless ``r`` is already the minimum. Each round
    takes one such step over all rows, then finishes Dinkelbach's method on a
    pool of the rows whose terms were smallest (a few times the subset's size):
    the next round's step over all rows either confirms that ratio as the
    minimum or improves on it. Usually two passes over all rows suffice.

    Args:
        scores: (N,) per-row numerator, ``g . h_i``.
        totals: (N,) per-row denominator, phones per clip (>= 0, not all zero).
        start: optional rows of a feasible subset to start from (a good one saves steps).
        least_total: the smallest ``sum(totals)`` of any ``nmin`` rows, if known.
        buffer: optional (N,) float64 scratch space, reused between calls.

    Returns:
        The rows of the subset, its ratio, and a certified lower bound on the
        minimum over every fractional selection (equal to the ratio up to
        rounding once the method has converged).
    """
    rows = np.arange(min(nmax, len(scores))) if start is None else np.asarray(start)
    ratio = _ratio(scores, totals, rows)
    for _ in range(max_rounds):
        tested = ratio
        pool, size, shortfall = _smallest_terms(scores, totals, nmin, nmax, ratio, pool_factor=4, out=buffer)
        if shortfall >= 0:
            break
        within, pool_ratio = _dinkelbach(scores[pool], totals[pool], nmin, nmax, np.arange(size))
        if pool_ratio >= ratio:  # no progress left in floating point
            break
        rows, ratio = pool[within], pool_ratio
    if least_total is None:
        least_total = least_size_total(totals, nmin)
    if least_total <= 0:  # nmin clips without phones: fall back on the best single clip
        return rows, ratio, float(np.min(scores[totals > 0] / totals[totals > 0]))
    # For any fractional x: sum(x scores) / sum(x totals) >= tested + shortfall / sum(x totals), and
    # sum(x totals) >= least_total. The terms and their sum are rounded: 1e-12 of their magnitude
    # covers it for any number of terms a computer holds.
    terms = pool[:size]
    magnitude = float(np.abs(scores[terms]).sum() + abs(tested) * totals[terms].sum())
    return rows, ratio, tested + (min(shortfall, 0.0) - 1e-12 * magnitude) / least_total


def _ratio(scores: np.ndarray, totals: np.ndarray, rows: np.ndarray) -> float:
    return float(np.sum(scores[rows], dtype=np.float64) / totals[rows].sum())


def _smallest_terms(scores: np.ndarray, totals: np.ndarray, nmin: int, nmax: int, ratio: float,
                    pool_factor: int = 0, out: np.ndarray | None = None) -> tuple[np.ndarray, int, float]:
    """One Dinkelbach step at ``ratio``: the best subset for ``sum(x (scores - ratio totals))``.

    Returns:
        Rows whose first ``size`` are that subset, followed, when
        ``pool_factor`` is given, by the next smallest terms up to about
        ``pool_factor`` times its size; ``size``; and the subset's sum, which is
        the minimum of ``sum(x (scores - ratio totals))`` over the polytope.
    """
    n = len(scores)
    reduced = np.multiply(totals, -ratio, out=out)
    reduced += scores  # (N,) float64
    size = min(max(int(np.count_nonzero(reduced < 0)), nmin), nmax)
    keep = min(n, pool_factor * size + 1024) if pool_factor else size
    rows = _smallest(reduced, sorted({size, keep}))
    return rows, size, float(reduced[rows[:size]].sum())


def _smallest(values: np.ndarray, kth: list[int]) -> np.ndarray:
    """Indices of the ``kth[-1]`` smallest values, partitioned like ``np.argpartition`` at each ``kth``.

    When they are few, the values above a threshold estimated from an evenly
    spaced sample are dropped first with one comparison, which is several
    times cheaper than partitioning all of them; if the threshold keeps too
    few, it falls back to the full partition.
    """
    n, k = len(values), kth[-1]
    if k >= n:
        return np.argpartition(values, [i - 1 for i in kth]) if kth[0] < n else np.arange(n)
    step = n // _SAMPLE_ROWS
    if step >= 8 and k * 8 < n:
        sample = values[::step]
        position = min(len(sample) - 1, int(1.5 * k / step) + 16)
        candidates = np.flatnonzero(values <= np.partition(sample, position)[position])
        if len(candidates) >= k:
            return candidates[np.argpartition(values[candidates], [i - 1 for i in kth])[:k]]
    return np.argpartition(values, [i - 1 for i in kth])[:k]


def _dinkelbach(scores: np.ndarray, totals: np.ndarray, nmin: int, nmax: int, rows: np.ndarray,
                max_steps: int = 100) -> tuple[np.ndarray, float]:
    """Dinkelbach's method from the subset ``rows``: the best subset found and its ratio."""
    ratio = _ratio(scores, totals, rows)
    for _ in range(max_steps):
        candidate, size, shortfall = _smallest_terms(scores, totals, nmin, nmax, ratio)
        candidate = candidate[:size]
        if shortfall >= 0:
            break
        new_ratio = _ratio(scores, totals, candidate)
        if new_ratio >= ratio:
            break
        rows, ratio = candidate, new_ratio
    return rows, ratio


def least_size_total(totals: np.ndarray, nmin: int) -> float:
    """The smallest phone total of any ``nmin`` clips: the least denominator over the polytope."""
    return float(np.partition(totals, nmin - 1)[:nmin].sum()) if nmin < len(totals) else float(totals.sum())


@dataclass
class SubsetOracle:
    """``min_{s in P} g . s`` for the clips of ``counts`` and the size range ``nmin..nmax``."""

    counts: np.ndarray  # (N, K) the exact integer counts
    totals: np.ndarray  # (N,) float64 phones per clip
    nmin: int
    nmax: int
    least_total: float  # smallest phone total of any nmin clips
    last: np.ndarray | None = None  # rows of the last minimiser: the next call starts there
    _scores: np.ndarray = field(init=False, repr=False)  # (N,) float32, reused by every call
    _buffer: np.ndarray = field(init=False, repr=False)  # (N,) float64 scratch

    def __post_init__(self) -> None:
        self._scores = np.empty(len(self.totals), dtype=np.float32)
        self._buffer = np.empty(len(self.totals), dtype=np.float64)

    @classmethod
    def build(cls, counts: np.ndarray, nmin: int, nmax: int, start: np.ndarray | None = None) -> SubsetOracle:
        """The oracle for ``counts`` (N, K).

        Args:
            start: rows of a subset of ``nmin..nmax`` clips for the first call to start from
                (default: the ``nmin`` clips with the most phones); :attr:`last` holds them.
        """
        totals = counts.sum(axis=1, dtype=np.int64).astype(np.float64)
        if start is None:
            start = np.argpartition(totals, len(totals) - nmin)[len(totals) - nmin:]
        return cls(counts, totals, nmin, nmax, least_size_total(totals, nmin), start)

    def minimise(self, g: np.ndarray) -> tuple[np.ndarray, float]:
        """The pooled counts (K,) of a subset minimising ``g . s``, and a certified lower bound on that minimum.

        The bound accounts for the float32 scores: each clip's score
        ``sum_j c_ij g_j`` is off by at most ``(K + 3) u sum_j c_ij |g_j|``
        (``u`` the float32 unit roundoff, ``K`` terms summed in any order,
        ``g`` and large counts rounded to float32), hence each ratio by at
        most ``(K + 3) u max|g|``.
        """
        g = np.asarray(g, dtype=np.float64)
        self._score(g.astype(np.float32))
        rows, _, lower = min_ratio_subset(self._scores, self.totals, self.nmin, self.nmax, self.last,
                                          self.least_total, self._buffer)
        self.last = rows
        scale = float(np.abs(g).max())  # bounds every clip's ratio |g . h_i| / T_i
        # float32 scores, then each float64 term rounded (2 ulp of |score| + |ratio| T per term, per T)
        slack = (len(g) + 3) * _UNIT * scale + 1e-12 * (scale + abs(lower))
        return self.counts[rows].sum(axis=0, dtype=np.int64), lower - slack

    def _score(self, g: np.ndarray) -> None:
        """``scores = counts @ g`` in float32, without a float copy of the counts.

        ``einsum`` converts the integer counts in small buffers as it goes, and
        uses no BLAS: a multi-threaded BLAS spends more time waking its threads
        than computing on products this thin, and is ten times slower than one
        core when the cores are busy.
        """
        np.einsum("k,kn->n", g, self.counts.T, out=self._scores, dtype=np.float32, casting="unsafe")
