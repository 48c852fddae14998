"""Algorithm 1 written plainly with numpy and pyarrow: the yardstick ``select-samples`` is timed against.

Usage:
    python benchmarks/algorithm1_numpy.py HIST.parquet --nmin 5000 --nmax 15114 --k 50 --seed 0

What a careful user would write from the paper and the README's ranking rule,
with no care for speed beyond using numpy: read the wide file, rank the clips
by a full lexicographic sort of their shares (rarest phone first, then
``clip_id``), draw ``k`` sizes from ``numpy.random.default_rng(seed)``, take
one cumulative sum and keep the draw closest to uniform in total variation.
It prints the number of clips selected, their total variation and the first
clip id, so a run can be checked against ``select-samples`` on the same file.
Not part of the product: it imports nothing from it.
"""

from __future__ import annotations

import argparse

import numpy as np
import pyarrow.parquet as pq

PHONES = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW "
          "V W Y Z ZH").split()


def algorithm1(clip_ids: np.ndarray, counts: np.ndarray, nmin: int, nmax: int, k: int,
               seed: int) -> tuple[np.ndarray, float]:
    """Row indices of the selected clips, best-ranked first, and their total variation to uniform."""
    rare_first = np.argsort(counts.sum(axis=0), kind="stable")
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.where(totals > 0, counts / np.maximum(totals, 1), -1.0)[:, rare_first]
    id_rank = np.argsort(np.argsort(clip_ids, kind="stable"), kind="stable")
    order = np.lexsort([id_rank] + [-shares[:, j] for j in range(shares.shape[1] - 1, -1, -1)])
    cumulative = np.cumsum(counts[order], axis=0)
    sizes = np.random.default_rng(seed).integers(nmin, nmax, endpoint=True, size=k)
    best_value, best_n = np.inf, 0
    for n in sizes:
        pooled = cumulative[n - 1] / cumulative[n - 1].sum()
        value = 0.5 * np.abs(pooled - 1.0 / len(pooled)).sum()
        if value < best_value:
            best_value, best_n = value, int(n)
    return order[:best_n], float(best_value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--nmin", type=int, default=5000)
    parser.add_argument("--nmax", type=int, default=15114)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table = pq.read_table(args.path, columns=["clip_id", *PHONES])
    clip_ids = table["clip_id"].to_numpy(zero_copy_only=False)
    counts = np.column_stack([table[p].to_numpy() for p in PHONES])
    members, value = algorithm1(clip_ids, counts, args.nmin, min(args.nmax, len(clip_ids)), args.k, args.seed)
    print(f"{len(members)} clips, tv {value:.6f}, first {clip_ids[members[0]]}")


if __name__ == "__main__":
    main()
