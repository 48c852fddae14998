"""Time the selection methods and the lower bound against a direct pandas Algorithm 1.

Usage:
    python benchmarks/bench_select.py                 # 15,114 and 1M clips, scan at 10M
    python benchmarks/bench_select.py --sizes 15114   # quick

Prints one row per (clips, method): seconds, the distance reached, the
clips selected, and the speed-up over the pandas transcription of Algorithm 1
(timed at the sizes given in --pandas-sizes). Single-threaded BLAS is forced so
the figures are per core.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

from selection.bounds import tv_lower_bound  # noqa: E402
from selection.methods import SelectionParams, select  # noqa: E402
from algorithm1_numpy import algorithm1  # noqa: E402
from warehouse.demo import demo_histograms  # noqa: E402


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[15_114, 1_000_000])
    parser.add_argument("--scan-sizes", type=int, nargs="*", default=[10_000_000],
                        help="extra sizes at which only scan is timed")
    parser.add_argument("--pandas-sizes", type=int, nargs="*", default=[15_114, 1_000_000])
    parser.add_argument("--distance", default="tv")
    args = parser.parse_args()

    print(f"{'clips':>11} {'method':>16} {'seconds':>9} {'distance':>10} {'n':>9} {'vs pandas':>10}")
    for size in sorted(set(args.sizes) | set(args.scan_sizes)):
        histograms, gen_s = timed(demo_histograms, size, seed=0)
        # The paper's proportions: nmin 5,000 and nmax 15,114 at 15,114 clips; a third to all clips above.
        nmin, nmax = (5_000, 15_114) if size <= 15_114 else (size // 3, size)
        params = SelectionParams(nmin=nmin, nmax=nmax, k=50, seed=0, distance=args.distance)
        print(f"{size:>11,} {'(generate)':>16} {gen_s:>9.2f}")
        pandas_s = None
        if size in args.pandas_sizes:
            (ids, _), pandas_s = timed(algorithm1, histograms.clip_ids, histograms.counts, nmin, nmax, 50, 0)
            print(f"{size:>11,} {'numpy paper':>16} {pandas_s:>9.2f} {'':>10} {len(ids):>9,}")
        methods = ("paper", "scan", "greedy") if size in args.sizes else ("scan",)
        for method in methods:
            method_params = SelectionParams(**{**params.__dict__, "method": method})
            result, seconds = timed(select, histograms, method_params)
            ratio = f"{pandas_s / seconds:>9.1f}x" if pandas_s else ""
            print(f"{size:>11,} {method:>16} {seconds:>9.2f} {result.value:>10.6f} {result.n:>9,} {ratio:>10}")
        if size in args.sizes:
            bound, seconds = timed(tv_lower_bound, histograms.counts, nmin, nmax)
            print(f"{size:>11,} {'lower bound (tv)':>16} {seconds:>9.2f} {bound:>10.6f}")


if __name__ == "__main__":
    main()
