"""How far from optimal a selection can be: certified lower bounds for every distance.

Choosing a subset is combinatorial, but every subset of ``nmin..nmax`` clips
has its pooled distribution in the convex set ``P`` of
:mod:`selection.oracle`, and every named distance is convex in that
distribution, so ``min_{p in P} f(p)`` is a lower bound on the best achievable
``f`` and can be computed with a certificate. Both solvers below are column
generation over the vertices of ``P`` that the oracle returns (real subsets),
sharing the vertices they find, and both stop on a duality gap:

- ``tv`` is a linear program: ``TV(p, u) = max_{g in [-1/2, 1/2]^K} g . (p - u)``,
  so for *any* such ``g``, ``min_{p in P} g . p - g . u`` is a valid lower
  bound. A small master LP (HiGHS) finds the best mixture of the vertices so
  far (an upper bound on the relaxation); its duals, smoothed towards the best
  ``g`` so far, give the next ``g``.
- the smooth distances (``kl``, ``js``, ``l2``, ``chi2``) by simplicial
  decomposition, Frank-Wolfe's faster cousin: a small master problem finds the
  best mixture ``p`` of the vertices so far, and convexity gives, for every
  ``q`` in ``P``, ``f(q) >= f(p) + grad f(p) . (q - p)``; the oracle's minimum
  of the right-hand side is the lower bound (``f(p)`` minus the Frank-Wolfe
  duality gap), and its minimiser joins the vertices.

The oracle's value is certified (see :mod:`selection.oracle`), so each bound
is valid at every iteration; the loops stop when the bound is within
``tolerance`` of the best relaxed value, which is where the relaxation's
optimum lies. Seeding the vertices with the selection itself, which is a
vertex of ``P``, starts every bound near the answer. The implied bounds of
:func:`selection.distances.bounds_from_tv` (Pinsker and norm inequalities)
remain as a floor.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.optimize import linprog, minimize

from selection.distances import (
    DISTANCES,
    PROBABILITY_FLOOR,
    bounds_from_tv,
    distance_function,
    gradient,
    to_distribution,
)
from selection.oracle import SubsetOracle

log = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 1e-3  # stop when the bound is within 0.1% of the best relaxed value
TV_SMOOTHING = 0.8  # weight of the stability centre in the duals that the tv oracle is asked at
ABSOLUTE_TOLERANCE = 1e-9  # ... or this close to it, for relaxations whose optimum is 0 (a uniform mixture)


@dataclass(frozen=True)
class Certificate:
    """A certified lower bound on one distance over every subset of ``nmin..nmax`` clips."""

    distance: str
    lower: float  # no subset of nmin..nmax clips is closer to uniform than this
    relaxed: float  # the best fractional selection found: the relaxation's optimum is in [lower, relaxed]
    oracle_calls: int  # passes over the clips
    seconds: float


def _tv_master(points: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Best mixture of ``points`` (M, K) for TV to uniform: value, weights (M,), dual direction g in [-1/2, 1/2]^K."""
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
    return float(result.fun), result.x[:m], np.clip(lower - upper, -0.5, 0.5)


def _tv_bound(oracle: SubsetOracle, points: list[np.ndarray], tolerance: float,
              max_iterations: int) -> tuple[float, float, int, list[np.ndarray]]:
    """Column generation for the TV relaxation, with Wentges' dual smoothing.

    The master's duals jump from one iteration to the next, which makes plain
    column generation tail off for hundreds of iterations on some inputs; the
    oracle is asked instead at a point between them and the best dual so far
    (the stability centre), and at the master's own duals only after such a
    point yielded no column that improves the master.

    Returns:
        The lower bound, the relaxed value, the oracle calls, and the vertices
        of the best mixture (to seed the other distances).
    """
    k = points[0].shape[0]
    best_lower, centre, smooth = 0.0, None, True
    for calls in range(1, max_iterations + 1):  # noqa: B007 (reported after the loop)
        relaxed, weights, g_master = _tv_master(np.stack(points))
        g = g_master if centre is None or not smooth else TV_SMOOTHING * centre + (1 - TV_SMOOTHING) * g_master
        point_counts, least = oracle.minimise(g)
        if least - g.sum() / k > best_lower:  # for any g in [-1/2, 1/2]^K: min_P g.p - g.u bounds TV
            best_lower, centre = least - g.sum() / k, g
        if relaxed - best_lower <= tolerance * relaxed + ABSOLUTE_TOLERANCE:
            break
        point = to_distribution(point_counts)
        smooth = g_master @ point - g_master.sum() / k < relaxed  # the column improves the master
        points.append(point)
        weights = np.append(weights, 0.0)
    else:
        log.warning("tv bound stopped after %d oracle calls, gap %.2g", max_iterations, relaxed - best_lower)
    return best_lower, relaxed, calls, [q for q, w in zip(points, weights) if w > 0]


def _smooth_master(name: str, points: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Mixture weights (M,) of ``points`` (M, K) minimising distance ``name`` (SLSQP from ``start``)."""
    fn = distance_function(name)
    result = minimize(
        lambda w: float(fn(w @ points)),
        start,
        jac=lambda w: points @ gradient(w @ points, name),
        method="SLSQP",
        bounds=[(0.0, 1.0)] * len(points),
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}],
        options={"ftol": 1e-14, "maxiter": 500},
    )
    weights = np.clip(result.x, 0.0, None)
    weights[weights < 1e-12 * weights.max()] = 0.0
    return weights / weights.sum()


def _smooth_bound(name: str, oracle: SubsetOracle, points: list[np.ndarray], tolerance: float,
                  max_iterations: int) -> tuple[float, float, int, list[np.ndarray]]:
    """Simplicial decomposition for a smooth distance (returns as :func:`_tv_bound`).

    Vertices that the master leaves at weight 0 are dropped, which keeps the
    master small (its optimum needs at most K + 1 of them).
    """
    fn = distance_function(name)
    values = fn(np.stack(points))
    weights = (values == values.min()).astype(np.float64)  # start from the best vertex
    weights /= weights.sum()
    best_lower, relaxed = 0.0, np.inf
    for calls in range(1, max_iterations + 1):
        weights = _smooth_master(name, np.stack(points), weights)
        points = [q for q, w in zip(points, weights) if w > 0]
        weights = weights[weights > 0]
        p = weights @ np.stack(points)  # a point of P: a mixture of its vertices
        if name in ("kl", "js") and (p <= PROBABILITY_FLOOR).any():  # unbounded gradient: no certificate
            log.warning("%s bound: a phone is missing from every vertex; implied bound only", name)
            return best_lower, relaxed, calls - 1, points
        value, g = float(fn(p)), gradient(p, name)
        relaxed = min(relaxed, value)
        point_counts, least = oracle.minimise(g)
        best_lower = max(best_lower, value + least - float(g @ p))
        if relaxed - best_lower <= tolerance * relaxed + ABSOLUTE_TOLERANCE:
            return best_lower, relaxed, calls, points
        points.append(to_distribution(point_counts))
        weights = np.append(weights, 0.0)
    log.warning("%s bound stopped after %d oracle calls, gap %.2g", name, max_iterations, relaxed - best_lower)
    return best_lower, relaxed, max_iterations, points


def certify(counts: np.ndarray, nmin: int, nmax: int, distances: tuple[str, ...] = DISTANCES,
            members: np.ndarray | None = None, tolerance: float = DEFAULT_TOLERANCE,
            max_iterations: int = 60) -> dict[str, Certificate]:
    """Certified lower bounds on the best achievable value of each of ``distances`` for sizes ``nmin..nmax``.

    Args:
        counts: (N, K) phone counts per clip.
        members: optional rows of a good known subset of ``nmin..nmax`` clips (the selection): a
            vertex to start from, for the solvers and for the oracle's first call.
        tolerance: stop each solver when its bound is within this fraction of the best relaxed value.
        max_iterations: oracle calls per distance at most (the bound stays valid if it stops there).
    """
    oracle = SubsetOracle.build(counts, nmin, nmax, members)
    seeds = [counts[oracle.last].sum(axis=0, dtype=np.int64)]  # every seed must be a point of P
    if nmin <= len(counts) <= nmax:
        seeds.append(counts.sum(axis=0, dtype=np.int64))
    seeds = [to_distribution(s) for s in seeds]
    found: list[np.ndarray] = []  # vertices of the best mixtures so far, shared between distances
    out = {}
    for name in sorted(distances, key=lambda d: d != "tv"):  # tv first: its vertices seed the others
        began = time.perf_counter()
        solver = _tv_bound if name == "tv" else partial(_smooth_bound, name)
        lower, relaxed, calls, active = solver(oracle, seeds + found, tolerance, max_iterations)
        found = _distinct(found + active)
        out[name] = Certificate(name, max(0.0, lower), relaxed, calls, time.perf_counter() - began)
        log.debug("%s: bound %.6f, relaxed %.6f, %d oracle calls", name, lower, relaxed, calls)
    return {name: out[name] for name in distances}


def _distinct(points: list[np.ndarray]) -> list[np.ndarray]:
    """``points`` without repeats, first occurrence kept."""
    seen: set[bytes] = set()
    return [q for q in points if not (q.tobytes() in seen or seen.add(q.tobytes()))]


def lower_bounds(counts: np.ndarray, nmin: int, nmax: int, members: np.ndarray | None = None,
                 tolerance: float = DEFAULT_TOLERANCE) -> dict[str, float]:
    """Certified lower bounds on every named distance (at least those implied by the TV bound)."""
    certified = certify(counts, nmin, nmax, DISTANCES, members, tolerance)
    implied = bounds_from_tv(certified["tv"].lower, counts.shape[1])
    return {name: max(certified[name].lower, implied[name]) for name in DISTANCES}


def tv_lower_bound(counts: np.ndarray, nmin: int, nmax: int, members: np.ndarray | None = None,
                   tolerance: float = 1e-6) -> float:
    """Lower bound on the total variation of any subset of ``nmin..nmax`` clips (the exact LP relaxation)."""
    return certify(counts, nmin, nmax, ("tv",), members, tolerance)["tv"].lower
