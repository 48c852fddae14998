import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from selection.bounds import certify, lower_bounds, tv_lower_bound
from selection.distances import DISTANCES, distance_to_uniform
from selection.methods import SelectionParams, select
from selection.oracle import SubsetOracle, min_ratio_subset


def full_lp_bound(counts: np.ndarray, nmin: int, nmax: int) -> float:
    """The same relaxation solved directly as one LP over all N clip weights (Charnes-Cooper)."""
    n, k = counts.shape
    totals = counts.sum(axis=1).astype(float)
    # Variables: y (N) | t | e (K); minimise sum(e) / 2 with sum(T y) = 1.
    rows = [
        [sp.identity(n), -np.ones((n, 1)), sp.csr_matrix((n, k))],
        [-np.ones((1, n)), [[nmin]], sp.csr_matrix((1, k))],
        [np.ones((1, n)), [[-nmax]], sp.csr_matrix((1, k))],
        [counts.T, np.zeros((k, 1)), -np.eye(k)],
        [-counts.T, np.zeros((k, 1)), -np.eye(k)],
    ]
    b_ub = np.concatenate([np.zeros(n + 2), np.full(k, 1 / k), np.full(k, -1 / k)])
    a_eq = np.concatenate([totals, np.zeros(1 + k)])[None, :]
    a_ub = sp.bmat([[b if sp.issparse(b) else sp.csr_matrix(np.asarray(b, float)) for b in row] for row in rows])
    result = linprog(np.concatenate([np.zeros(n + 1), np.full(k, 0.5)]), A_ub=a_ub,
                     b_ub=b_ub, A_eq=a_eq, b_eq=[1.0], bounds=(0, None), method="highs")
    assert result.status == 0
    return result.fun


@pytest.mark.parametrize("seed, nmin, nmax", [(0, 20, 60), (1, 5, 200), (2, 100, 150)])
def test_column_generation_reaches_the_full_lp_optimum(seed, nmin, nmax):
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(rng.integers(10, 300, size=250), rng.dirichlet(np.full(39, 0.5), size=250))
    assert tv_lower_bound(counts, nmin, nmax) == pytest.approx(full_lp_bound(counts, nmin, nmax), abs=1e-6)


def subsets(n: int, nmin: int, nmax: int) -> np.ndarray:
    """Every subset of ``nmin..nmax`` of ``n`` rows, as a (S, n) 0/1 matrix."""
    return np.array([[i in s for i in range(n)] for size in range(nmin, nmax + 1)
                     for s in itertools.combinations(range(n), size)], dtype=np.int64)


def tiny_counts(seed: int, n: int = 12, k: int = 39) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.multinomial(rng.integers(5, 60, size=n), rng.dirichlet(np.full(k, 0.4), size=n))


def test_min_ratio_subset_is_the_exact_minimum_by_enumeration():
    rng = np.random.default_rng(4)
    scores, totals = rng.normal(size=10), rng.integers(1, 9, size=10).astype(float)
    rows, ratio, lower = min_ratio_subset(scores, totals, 2, 5)
    assert 2 <= len(rows) <= 5
    assert ratio == pytest.approx(scores[rows].sum() / totals[rows].sum())
    masks = subsets(10, 2, 5)
    best = ((masks @ scores) / (masks @ totals)).min()
    assert ratio == pytest.approx(best) and lower <= best


@pytest.mark.parametrize("seed", range(4))
def test_the_oracle_never_reports_more_than_the_true_minimum(seed):
    counts = tiny_counts(seed)
    masks = subsets(len(counts), 3, 6)
    pooled = masks @ counts  # (S, K)
    oracle = SubsetOracle.build(counts, 3, 6)
    for g in np.random.default_rng(seed).normal(size=(5, counts.shape[1])):
        point, least = oracle.minimise(g)
        best = ((pooled @ g) / pooled.sum(axis=1)).min()  # the minimum over P is at a vertex: a subset
        assert least <= best
        assert point @ g / point.sum() == pytest.approx(best, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("seed, nmin, nmax", [(0, 3, 6), (1, 1, 4), (2, 5, 12), (3, 2, 2)])
def test_every_bound_is_below_the_exhaustive_optimum(seed, nmin, nmax):
    counts = tiny_counts(seed)
    pooled = subsets(len(counts), nmin, nmax) @ counts
    bounds = lower_bounds(counts, nmin, nmax)
    for name in DISTANCES:
        optimum = np.nanmin(distance_to_uniform(pooled, name))
        assert 0 <= bounds[name] <= optimum + 1e-12, name


def test_bounds_are_within_a_percent_of_greedy_on_realistic_data(demo_15k):
    """Greedy optimises each distance, reaches the relaxation's optimum on realistic data, and each
    certified bound is that tight."""
    for name in DISTANCES:
        scan = select(demo_15k, SelectionParams(nmin=5000, nmax=15114, method="scan", distance=name))
        greedy = select(demo_15k, SelectionParams(nmin=5000, nmax=15114, method="greedy", distance=name))
        certificate = certify(demo_15k.counts, 5000, 15114, (name,), greedy.members)[name]
        assert greedy.value < scan.value, name
        assert certificate.lower <= greedy.value <= certificate.lower * 1.01, name
        assert certificate.lower <= certificate.relaxed <= greedy.value + 1e-12, name


def test_bounds_stay_valid_when_a_phone_is_missing_from_every_clip():
    counts = tiny_counts(5)
    counts[:, -1] = 0  # no ZH anywhere: KL and JS have no gradient at the relaxation's points
    pooled = subsets(len(counts), 3, 6) @ counts
    bounds = lower_bounds(counts, 3, 6)
    for name in DISTANCES:
        assert 0 < bounds[name] <= np.nanmin(distance_to_uniform(pooled, name)) + 1e-12, name


def test_bounds_stay_valid_when_nmin_clips_hold_no_phones():
    counts = tiny_counts(6)
    counts[:4] = 0  # four clips without phones: a selection of three may be all silence
    pooled = subsets(len(counts), 3, 6) @ counts
    bounds = lower_bounds(counts, 3, 6)
    for name in DISTANCES:
        assert 0 <= bounds[name] <= np.nanmin(distance_to_uniform(pooled, name)) + 1e-12, name
