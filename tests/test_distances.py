import math

import numpy as np
import pytest

from selection.distances import (
    DISTANCES,
    all_distances,
    bounds_from_tv,
    distance_to_uniform,
    gradient,
    to_distribution,
    within_percent,
)

# counts (2, 1, 1, 0) over K = 4 phones: p = (1/2, 1/4, 1/4, 0), u = 1/4.
COUNTS = np.array([2, 1, 1, 0])
EXPECTED = {
    "tv": 0.25,  # (1/4 + 0 + 0 + 1/4) / 2
    "kl": 0.5 * math.log(2),  # 1/2 ln(2) + 0 + 0 + 0 ln 0
    "l2": math.sqrt(0.125),  # sqrt(1/16 + 1/16)
    "js": 0.375 * math.log(4 / 3),  # m = (3/8, 1/4, 1/4, 1/8)
    "chi2": 0.5,  # (1/16 + 1/16) / (1/4)
}


@pytest.mark.parametrize("name", DISTANCES)
def test_distance_matches_hand_computed_value(name):
    assert distance_to_uniform(COUNTS, name) == pytest.approx(EXPECTED[name], rel=1e-12)


@pytest.mark.parametrize("name", DISTANCES)
def test_uniform_histogram_is_at_distance_zero(name):
    assert distance_to_uniform(np.full(39, 7), name) == pytest.approx(0.0, abs=1e-15)


def test_distances_are_vectorised_over_rows():
    stacked = np.stack([COUNTS, np.full(4, 3), COUNTS * 10])
    assert distance_to_uniform(stacked, "tv") == pytest.approx([0.25, 0.0, 0.25])


def test_all_distances_names_every_distance():
    assert all_distances(COUNTS) == pytest.approx(EXPECTED)


def test_empty_histogram_has_no_distribution():
    assert np.isnan(to_distribution(np.zeros(39))).all()
    assert math.isnan(distance_to_uniform(np.zeros(39), "kl"))


def test_unknown_distance_names_the_choices():
    with pytest.raises(ValueError, match="tv, kl, l2, js, chi2"):
        distance_to_uniform(COUNTS, "hellinger")


@pytest.mark.parametrize("name", ["kl", "l2", "js", "chi2"])
def test_gradient_matches_finite_differences_along_the_simplex(name):
    p = to_distribution(np.array([5.0, 3.0, 1.0, 1.0]))
    direction = np.array([1.0, -1.0, 0.5, -0.5])  # sums to zero: stays on the simplex
    eps = 1e-6
    numeric = (distance_to_uniform(p + eps * direction, name)
               - distance_to_uniform(p - eps * direction, name)) / (2 * eps)
    assert gradient(p, name) @ direction == pytest.approx(numeric, rel=1e-5)


def test_bounds_from_tv_hold_on_random_distributions():
    rng = np.random.default_rng(0)
    for counts in rng.integers(0, 50, size=(200, 39)):
        exact = all_distances(counts)
        for name, bound in bounds_from_tv(exact["tv"], 39).items():
            assert bound <= exact[name] + 1e-12, name


def test_within_percent_is_how_far_above_the_bound_a_value_can_be():
    assert within_percent({"tv": 0.3, "kl": 0.1}, {"tv": 0.25, "kl": 0.0}) == {"tv": pytest.approx(20.0), "kl": None}
