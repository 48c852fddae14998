"""Selection methods: Algorithm 1 (``paper``), its exhaustive ``scan``, and ``greedy``.

Every method picks a set of ``n`` clips, ``nmin <= n <= nmax``, whose pooled
phone histogram is as close as possible to the uniform distribution under a
chosen distance (see :mod:`selection.distances`).

- ``paper``: Algorithm 1 as published: rank the clips (see
  :mod:`selection.ranking`), draw ``n ~ U{nmin, nmax}`` k times, keep the top-n
  list whose distance is smallest (the first draw wins ties).
- ``scan``: the same ranking, every ``n`` in ``[nmin, nmax]`` evaluated by one
  cumulative sum; returns the best prefix (the smallest ``n`` among ties). It
  is never worse than ``paper``, whose draws are among the prefixes it scans.
- ``greedy``: subsets that need not be prefixes. Starting from the best prefix,
  a gradient-guided swap search (see :func:`improve_by_swaps`) adds, removes or
  exchanges clips while the distance falls. Never worse than ``scan``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from selection.distances import (
    DEFAULT_DISTANCE,
    all_distances,
    distance_function,
    gradient,
    to_distribution,
)
from selection.histograms import HistogramSet
from selection.prefixes import prefix_counts, prefix_distances
from selection.ranking import rank_clips

log = logging.getLogger(__name__)

METHODS: tuple[str, ...] = ("paper", "scan", "greedy")
DEFAULT_METHOD = "paper"
DEFAULT_SEED = 0


class SelectionError(ValueError):
    """Selection parameters that cannot be used with the given histograms."""


@dataclass(frozen=True)
class SelectionParams:
    """What to select: size range, Algorithm 1's draw count and seed, method and distance."""

    nmin: int = 5000  # smallest subset size (paper: 5,000)
    nmax: int = 15114  # largest subset size (paper: its corpus size, 15,114)
    k: int = 50  # random draws of n for ``paper`` (paper: 50)
    seed: int = DEFAULT_SEED  # seeds the draws, so runs repeat
    method: str = DEFAULT_METHOD
    distance: str = DEFAULT_DISTANCE


@dataclass(frozen=True)
class Selection:
    """The outcome of one selection run."""

    params: SelectionParams
    members: np.ndarray  # (n,) row indices into the histogram set, in rank order
    value: float  # the chosen distance of the selected set
    distances: dict[str, float]  # every named distance of the selected set
    n_candidates: int  # clips the method chose from
    clamped_nmax: bool = False  # nmax was larger than the number of clips
    draws: list[tuple[int, float]] = field(default_factory=list)  # ``paper``: (n, distance) per draw

    @property
    def n(self) -> int:
        return int(len(self.members))


def check_params(params: SelectionParams, n_clips: int) -> SelectionParams:
    """Validate ``params`` against ``n_clips``; clamp nmax to ``n_clips`` (the paper's own setting).

    Raises:
        SelectionError: naming the flag at fault.
    """
    from selection.distances import DISTANCES

    if params.method not in METHODS:
        raise SelectionError(f"unknown method {params.method!r}; choose from {', '.join(METHODS)}")
    if params.distance not in DISTANCES:
        raise SelectionError(
            f"unknown distance {params.distance!r}; choose from {', '.join(DISTANCES)}"
        )
    if params.k < 1:
        raise SelectionError(f"--k must be at least 1, got {params.k}")
    if params.nmin < 1:
        raise SelectionError(f"--nmin must be at least 1, got {params.nmin}")
    if params.seed < 0:  # numpy's generators take none, and their error names no flag
        raise SelectionError(f"--seed must be at least 0, got {params.seed}")
    _require_recordable(params)
    if params.nmin > params.nmax:
        raise SelectionError(f"--nmin ({params.nmin}) is larger than --nmax ({params.nmax})")
    if params.nmin > n_clips:
        raise SelectionError(f"--nmin ({params.nmin}) is larger than the number of clips ({n_clips})")
    if params.nmax > n_clips:
        log.info("nmax %d is larger than the number of clips; using %d", params.nmax, n_clips)
        return SelectionParams(**{**params.__dict__, "nmax": n_clips})
    return params


INT64_MAX = 2**63 - 1  # the selections table records seed and k as int64


def _require_recordable(params: SelectionParams) -> None:
    """Refuse a ``seed`` or ``k`` that the selections table cannot hold, before any work is done."""
    for flag, value in (("--seed", params.seed), ("--k", params.k)):
        if value > INT64_MAX:
            raise SelectionError(f"{flag} must be at most {INT64_MAX}, got {value}")


def select(histograms: HistogramSet, params: SelectionParams) -> Selection:
    """Run ``params.method`` on ``histograms`` (see module docstring)."""
    checked = check_params(params, len(histograms))
    order = rank_clips(histograms.clip_ids, histograms.counts)
    runner: Callable[..., tuple[np.ndarray, list[tuple[int, float]]]] = _RUNNERS[checked.method]
    members, draws = runner(histograms.counts, order, checked)
    selected = histograms.counts[members].sum(axis=0, dtype=np.int64)
    distances = all_distances(selected)
    if np.isnan(distances[checked.distance]):
        raise SelectionError("the selected clips hold no phones: every histogram is empty")
    return Selection(
        params=checked,
        members=members,
        value=distances[checked.distance],
        distances=distances,
        n_candidates=len(histograms),
        clamped_nmax=checked.nmax != params.nmax,
        draws=draws,
    )


def _nan_last(values: np.ndarray) -> np.ndarray:
    """Distances with NaN (a pool with no phones has none) as +inf, so ``argmin`` never picks one."""
    return np.where(np.isnan(values), np.inf, values)


def _paper(counts, order, params):
    rng = np.random.default_rng(params.seed)
    sizes = rng.integers(params.nmin, params.nmax, endpoint=True, size=params.k)
    values = _nan_last(distance_function(params.distance)(to_distribution(prefix_counts(counts, order, sizes))))
    best = int(np.argmin(values))  # first minimum: the earliest draw wins ties, as in the paper's loop
    return order[: sizes[best]], [(int(n), float(v)) for n, v in zip(sizes, values, strict=True)]


def best_prefix_size(counts: np.ndarray, order: np.ndarray, params: SelectionParams) -> int:
    """The ``n`` in ``[nmin, nmax]`` whose top-n prefix of ``order`` is closest to uniform (smallest n on ties)."""
    values = _nan_last(prefix_distances(counts, order, params.nmin, params.nmax, params.distance))
    return params.nmin + int(np.argmin(values))


def _scan(counts, order, params):
    return order[: best_prefix_size(counts, order, params)], []


def _greedy(counts, order, params):
    start = order[: best_prefix_size(counts, order, params)]
    mask = improve_by_swaps(counts, start, params.nmin, params.nmax, params.distance)
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    chosen = np.flatnonzero(mask)
    return chosen[np.argsort(position[chosen], kind="stable")], []


_RUNNERS = {"paper": _paper, "scan": _scan, "greedy": _greedy}


def improve_by_swaps(counts: np.ndarray, start: np.ndarray, nmin: int, nmax: int,
                     distance: str, pool: int = 48, max_rounds: int = 20_000) -> np.ndarray:
    """Local search from ``start`` toward the uniform distribution; returns the selection mask.

    Each round linearises the distance around the current pooled histogram
    ``c`` (total ``T``, distribution ``p``): adding clip ``i`` changes it by about
    ``score_i = h_i . (g - g.p) / T`` with ``g`` the gradient of the distance at
    ``p``. One matrix-vector product scores every clip, O(N x 39), so a round
    costs the same for 15 thousand or a million clips. The round then tries
    three block moves of ``b`` clips -- add the b best outsiders, drop the b
    worst members, or swap both -- evaluates each exactly and applies the
    best one if it lowers the distance; otherwise ``b`` halves. At ``b = 1`` it
    evaluates every exact single swap among the ``pool`` best-scored outsiders
    and members before giving up. Every accepted move strictly lowers the
    distance, so the search ends, and ``nmin <= size <= nmax`` holds throughout.
    """
    fn = distance_function(distance)
    scoring = counts.astype(np.float32, order="C")  # (N, K), scores only; sums stay exact in int64
    selected = np.zeros(len(counts), dtype=bool)
    selected[start] = True
    pooled = counts[selected].sum(axis=0, dtype=np.int64)  # (K,)
    current = float(fn(to_distribution(pooled)))
    size = int(selected.sum())
    block = max(1, size // 8)
    for _ in range(max_rounds):
        total = pooled.sum()
        p = pooled / total
        g = gradient(p, distance)
        scores = scoring @ ((g - g @ p) / total).astype(np.float32)  # (N,) first-order gain of adding
        width = block if block > 1 else pool
        adds = _extreme(np.flatnonzero(~selected), scores, width, lowest=True)
        drops = _extreme(np.flatnonzero(selected), scores, width, lowest=False)
        builder = _block_moves if block > 1 else _single_moves
        moves = builder(counts, pooled, size, adds, drops, nmin, nmax)
        if not moves:
            break
        candidates = np.concatenate([block_counts for block_counts, _ in moves])  # (M, K)
        values = _nan_last(fn(to_distribution(candidates)))  # a pool with no phones: no distance, never best
        best = int(np.argmin(values))
        if values[best] < current - 1e-15:
            for block_counts, decode in moves:
                if best < len(block_counts):
                    added, dropped = decode(best)
                    break
                best -= len(block_counts)
            pooled = pooled + counts[added].sum(axis=0) - counts[dropped].sum(axis=0)  # int64: numpy widens
            selected[added] = True
            selected[dropped] = False
            size += len(added) - len(dropped)
            current = float(fn(to_distribution(pooled)))
            block = min(2 * block, max(1, size // 8))  # a move that worked may work bigger
        elif block > 1:
            block //= 2
        else:
            break
    return selected


def _extreme(rows: np.ndarray, scores: np.ndarray, width: int, lowest: bool) -> np.ndarray:
    """The ``width`` rows with the lowest (or highest) scores, best first."""
    width = min(width, len(rows))
    if width == 0:
        return rows[:0]
    keyed = scores[rows] if lowest else -scores[rows]
    top = rows[np.argpartition(keyed, width - 1)[:width]] if width < len(rows) else rows
    keyed_top = scores[top] if lowest else -scores[top]
    return top[np.argsort(keyed_top, kind="stable")]


# A family of candidate moves: their pooled counts (M, K), and a function from
# an index in that family to the rows it adds and the rows it drops.
Moves = list[tuple[np.ndarray, Callable[[int], tuple[np.ndarray, np.ndarray]]]]


def _block_moves(counts, pooled, size, adds, drops, nmin, nmax) -> Moves:
    """Swap the b best outsiders for the b worst members, add them, or drop them."""
    none = adds[:0]
    moves: Moves = []
    b = min(len(adds), len(drops))
    if b:
        swap = pooled + counts[adds[:b]].sum(axis=0) - counts[drops[:b]].sum(axis=0)
        moves.append((swap[None], lambda i: (adds[:b], drops[:b])))
    if len(adds) and size + len(adds) <= nmax:
        moves.append(((pooled + counts[adds].sum(axis=0))[None], lambda i: (adds, none)))
    if len(drops) and size - len(drops) >= nmin:
        moves.append(((pooled - counts[drops].sum(axis=0))[None], lambda i: (none, drops)))
    return moves


def _single_moves(counts, pooled, size, adds, drops, nmin, nmax) -> Moves:
    """Every single swap, addition and removal among the given candidates."""
    none = adds[:0]
    n_drops = len(drops)
    moves: Moves = []
    if len(adds) and n_drops:
        swaps = pooled + counts[adds][:, None, :] - counts[drops][None, :, :]  # (A, D, K)
        moves.append((swaps.reshape(-1, counts.shape[1]),
                      lambda i: (adds[[i // n_drops]], drops[[i % n_drops]])))
    if len(adds) and size + 1 <= nmax:
        moves.append((pooled + counts[adds], lambda i: (adds[[i]], none)))
    if n_drops and size - 1 >= nmin:
        moves.append((pooled - counts[drops], lambda i: (none, drops[[i]])))
    return moves
