"""Algorithm 1 written out directly with pandas, one draw at a time.

Slow on purpose: it is the yardstick the fast implementation is checked
against in the tests and timed against in ``benchmarks/``. It follows the
same documented rules (ranking, draws from ``numpy.random.default_rng(seed)``,
first draw wins ties), so both must return the same clips.
"""

from __future__ import annotations

import numpy as np

from selection.distances import distance_function
from warehouse.phones import PHONES


def paper_selection_pandas(wide, nmin: int, nmax: int, k: int, seed: int, distance: str) -> list[str]:
    """Selected clip ids, best-ranked first, for a wide DataFrame (clip_id plus one column per phone)."""
    phones = list(PHONES)
    rare_first = wide[phones].sum().sort_values(kind="stable").index.tolist()
    totals = wide[phones].sum(axis=1)
    shares = wide[phones].div(totals.where(totals > 0), axis=0).fillna(-1.0)
    shares["clip_id"] = wide["clip_id"]
    ranked = shares.sort_values(by=rare_first + ["clip_id"], ascending=[False] * len(rare_first) + [True],
                                kind="stable")
    ordered_counts = wide.loc[ranked.index, phones]
    fn = distance_function(distance)
    rng = np.random.default_rng(seed)
    sizes = rng.integers(nmin, nmax, endpoint=True, size=k)
    best_value, best_n = np.inf, None
    for n in sizes:
        pooled = ordered_counts.head(int(n)).sum().to_numpy(dtype=np.float64)
        value = float(fn(pooled / pooled.sum()))
        if value < best_value:
            best_value, best_n = value, int(n)
    return ranked["clip_id"].head(best_n).tolist()
