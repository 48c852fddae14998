import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from selection.bounds import min_ratio_subset, tv_lower_bound


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


def test_min_ratio_subset_is_the_exact_minimum_by_enumeration():
    rng = np.random.default_rng(4)
    scores, totals = rng.normal(size=10), rng.integers(1, 9, size=10).astype(float)
    mask, ratio = min_ratio_subset(scores, totals, 2, 5)
    assert 2 <= mask.sum() <= 5
    assert ratio == pytest.approx(scores[mask].sum() / totals[mask].sum())
    best = min(
        scores[list(s)].sum() / totals[list(s)].sum()
        for size in range(2, 6)
        for s in itertools.combinations(range(10), size)
    )
    assert ratio == pytest.approx(best)
