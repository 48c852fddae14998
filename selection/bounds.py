"""How far from optimal a selection can be: lower bounds on the best distance.

Choosing a subset is combinatorial, but its continuous relaxation for total
variation is a linear program over the convex set

    P = { C^T x / T^T x  :  x in [0, 1]^N,  nmin <= sum x <= nmax }

of pooled distributions (``C`` the (N, K) counts, ``T`` the phone totals).
Every subset of ``nmin..nmax`` clips lies in ``P``, so ``min_{p in P} TV(p, u)``
is a lower bound on the best achievable total variation.

It is solved by column generation (Dantzig-Wolfe), which never builds the
N-variable LP, so it scales to millions of clips:

- ``TV(p, u) = max_{g in [-1/2, 1/2]^K} g . (p - u)``, hence for *any* such ``g``
  ``L(g) = min_{p in P} g . p - g . u`` is a valid lower bound;
- ``min_{p in P} g . p`` is a ratio ``(a . x) / (T . x)`` with ``a = C g``,
  minimised exactly by Dinkelbach's method: each step keeps the ``nmin`` clips
  with the lowest ``a_i - lambda T_i`` plus any further negative ones, up to
  ``nmax`` (O(N) per step, a handful of steps); the minimiser is a real subset;
- a small master LP (HiGHS, through ``scipy.optimize.linprog``) finds the best
  mixture of the subsets found so far; its duals give the next ``g``, and its
  value is an upper bound on the relaxation.

The loop stops when the two bounds meet (or after ``max_iterations``; the
reported lower bound is valid at every iteration). Bounds on the other
distances follow from it (:func:`selection.distances.bounds_from_tv`).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.optimize import linprog

from selection.distances import bounds_from_tv, to_distribution

log = logging.getLogger(__name__)


def min_ratio_subset(scores: np.ndarray, totals: np.ndarray, nmin: int, nmax: int,
                     max_steps: int = 100) -> tuple[np.ndarray, float]:
    """The subset of ``nmin..nmax`` rows minimising ``sum(scores) / sum(totals)`` (Dinkelbach).

    Args:
        scores: (N,) per-row numerator, ``g . h_i``.
        totals: (N,) per-row denominator, phones per clip (>= 0, not all zero).

    Returns:
        The (N,) boolean mask of the subset and its ratio.
    """
    ratio = float(scores.sum() / totals.sum())
    mask = np.ones(len(scores), dtype=bool)
    for _ in range(max_steps):
        reduced = scores - ratio * totals  # (N,)
        chosen = np.argpartition(reduced, nmin - 1)[:nmin] if nmin < len(reduced) else np.arange(nmin)
        candidate = np.zeros(len(scores), dtype=bool)
        candidate[chosen] = True
        extra = np.flatnonzero(~candidate & (reduced < 0))
        if len(extra) > nmax - nmin:
            extra = extra[np.argpartition(reduced[extra], nmax - nmin - 1)[: nmax - nmin]]
        candidate[extra] = True
        total = totals[candidate].sum()
        if total <= 0:
            break
        new_ratio = float(scores[candidate].sum() / total)
        if new_ratio >= ratio - 1e-15 * max(1.0, abs(ratio)):
            if new_ratio <= ratio:
                mask, ratio = candidate, new_ratio
            break
        mask, ratio = candidate, new_ratio
    return mask, ratio


def _master(points: np.ndarray) -> tuple[float, np.ndarray]:
    """Best mixture of ``points`` (M, K) for TV to uniform: (value, dual direction g in [-1/2, 1/2]^K)."""
    m, k = points.shape
    u = 1.0 / k
    eye = np.eye(k)
    # Variables: mixture weights w (M) | deviations e (K).
    a_ub = np.block([[points.T, -eye], [-points.T, -eye]])  # (2K, M + K)
    b_ub = np.concatenate([np.full(k, u), np.full(k, -u)])
    a_eq = np.concatenate([np.ones(m), np.zeros(k)])[None, :]
    objective = np.concatenate([np.zeros(m), np.full(k, 0.5)])
    result = linprog(objective, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[1.0],
                     bounds=(0, None), method="highs")
    if result.status != 0:
        raise RuntimeError(f"lower-bound master LP did not solve: {result.message}")
    upper, lower = result.ineqlin.marginals[:k], result.ineqlin.marginals[k:]
    return float(result.fun), np.clip(lower - upper, -0.5, 0.5)


def tv_lower_bound(counts: np.ndarray, nmin: int, nmax: int, start: np.ndarray | None = None,
                   tolerance: float = 1e-6, max_iterations: int = 300) -> float:
    """Lower bound on the total variation of any subset of ``nmin..nmax`` clips (see module docstring).

    Args:
        counts: (N, K) phone counts per clip.
        start: optional (K,) pooled counts of a good known subset, to seed the search.
        tolerance: stop when the relaxation's upper and lower bounds are this close.
    """
    k = counts.shape[1]
    u = 1.0 / k
    totals = counts.sum(axis=1).astype(np.float64)
    weights = counts.astype(np.float64)  # exact enough that the oracle's minimum is the true one
    seeds = [counts.sum(axis=0)] + ([start] if start is not None else [])
    points = [to_distribution(s) for s in seeds]
    best_lower = 0.0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 (reported after the loop)
        upper, g = _master(np.stack(points))
        mask, ratio = min_ratio_subset(weights @ g, totals, nmin, nmax)
        point = to_distribution(counts[mask].sum(axis=0))
        best_lower = max(best_lower, float(g @ point - g.sum() * u))  # exact, from the integer sums
        if upper - best_lower <= tolerance:
            break
        points.append(point)
    else:
        log.warning("lower bound stopped after %d iterations, gap %.2g", max_iterations,
                    upper - best_lower)
    log.debug("lower bound %.6f after %d iterations (relaxation <= %.6f)", best_lower,
              iterations, upper)
    # Leave room for floating-point rounding in the oracle: a bound must never overstate.
    return max(0.0, best_lower - 1e-9)


def lower_bounds(counts: np.ndarray, nmin: int, nmax: int,
                 start: np.ndarray | None = None) -> dict[str, float]:
    """Lower bounds on the best achievable value of every named distance for sizes ``nmin..nmax``."""
    return bounds_from_tv(tv_lower_bound(counts, nmin, nmax, start), counts.shape[1])
