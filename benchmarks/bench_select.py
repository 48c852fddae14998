"""Time select-samples as a user runs it, against a plain numpy Algorithm 1, and the bounds per distance.

Usage:
    python benchmarks/bench_select.py                      # 15,114 / 1M / 10M clips (10M: ~2 min to generate)
    python benchmarks/bench_select.py --sizes 15114 1000000 --big-sizes --distance-sizes 15114   # quick

Three tables, in markdown:

1. Whole process, same machine, same run: ``select-samples --input H.parquet``
   with default flags (paper method, tv, every certified bound) against
   ``benchmarks/algorithm1_numpy.py`` on the same file, each run ``--repeats``
   times interleaved, median seconds and the largest resident set; at the
   ``--big-sizes`` only select-samples is run (the plain script holds
   (N, 39) float64 arrays: about 25 GB at ten million clips).
2. Inside one process, where select-samples' time goes at each size: reading,
   selecting (ranking and draws) and the certified bounds of every distance.
3. Per distance, at ``--distance-sizes``: what greedy reaches optimising that
   distance, the certified bound, the gap between them (how far from optimal
   greedy can be) and the seconds of each.

Data are the project's realistic demo histograms (``selection.demo_data``),
written once per size to ``--data-dir``. nmin is 5,000 and nmax is every clip
(the paper's 15,114 at its own size).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER_ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # the subprocesses run as a user's shell would
SELECT_SAMPLES = [sys.executable, "-c", "from selection.cli import main; main()"]  # the entry point's body
PLAIN = [sys.executable, str(ROOT / "benchmarks" / "algorithm1_numpy.py")]
NMIN = 5_000
sys.path.insert(0, str(ROOT))  # this tree's selection package, in this process too


def data_file(directory: Path, size: int) -> Path:
    """The demo histograms of ``size`` clips as a wide Parquet file, generated once."""
    import pyarrow.parquet as pq

    from selection.demo_data import demo_histograms

    path = directory / f"demo-{size}.parquet"
    if not path.exists():
        began = time.perf_counter()
        pq.write_table(demo_histograms(size, seed=0).to_wide(), path)
        print(f"(generated {size:,} clips in {time.perf_counter() - began:.0f} s: {path})", file=sys.stderr)
    return path


def whole_process(path: Path, size: int, repeats: int, plain: bool) -> str:
    """One row of table 1."""
    flags = ["--nmin", str(NMIN), "--nmax", str(size)]
    ours, theirs = [], []
    for _ in range(repeats):  # interleaved, so that both see the same machine
        ours.append(_timed_child(SELECT_SAMPLES + ["--input", str(path), *flags]))
        if plain:
            theirs.append(_timed_child(PLAIN + [str(path), *flags]))
    ours_s, ours_mb = statistics.median(s for s, _ in ours), max(mb for _, mb in ours)
    if not plain:
        return f"| {size:,} | {ours_s:.2f} s, {ours_mb:,} MB | not run | |"
    theirs_s, theirs_mb = statistics.median(s for s, _ in theirs), max(mb for _, mb in theirs)
    return (f"| {size:,} | {ours_s:.2f} s, {ours_mb:,} MB | {theirs_s:.2f} s, {theirs_mb:,} MB "
            f"| {ours_s / theirs_s:.2f}x |")


# A small launcher forks and execs the command and reports its wait4 figures. Linux
# carries the exec'ing process's peak resident set into the new program's
# ru_maxrss, so a child spawned straight from this (large) process would report
# at least this process's memory; forked from the launcher it reports its own.
LAUNCHER = """
import os, sys, time
began = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - began, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def _timed_child(command: list[str]) -> tuple[float, int]:
    """Seconds and maximum resident set (MB) of one run of ``command`` (wait4, through the launcher)."""
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *command], capture_output=True, text=True,
                          env=USER_ENV)
    seconds, max_kb, code = done.stdout.split()
    if int(code):
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return float(seconds), int(max_kb) // 1024


def stages(path: Path, size: int) -> str:
    """One row of table 2: read, select and bound seconds of the default run, in this process."""
    from selection.bounds import lower_bounds
    from selection.histograms import read_wide_parquet
    from selection.methods import SelectionParams, select

    began = time.perf_counter()
    histograms = read_wide_parquet(path)
    read_s = time.perf_counter() - began
    selection = select(histograms, SelectionParams(nmin=NMIN, nmax=size))
    select_s = time.perf_counter() - began - read_s
    bounds = lower_bounds(histograms.counts, NMIN, selection.params.nmax, selection.members)
    bound_s = time.perf_counter() - began - read_s - select_s
    return (f"| {size:,} | {read_s:.2f} s | {select_s:.2f} s | {bound_s:.2f} s "
            f"| {selection.value:.6f} >= {bounds['tv']:.6f} |")


def per_distance(path: Path, size: int) -> list[str]:
    """Rows of table 3: greedy against the certified bound, for each distance."""
    from selection.bounds import certify
    from selection.distances import DISTANCES
    from selection.histograms import read_wide_parquet
    from selection.methods import SelectionParams, select

    histograms = read_wide_parquet(path)
    rows = []
    for name in DISTANCES:
        began = time.perf_counter()
        greedy = select(histograms, SelectionParams(nmin=NMIN, nmax=size, method="greedy", distance=name))
        greedy_s = time.perf_counter() - began
        scan = select(histograms, SelectionParams(nmin=NMIN, nmax=size, method="scan", distance=name))
        began = time.perf_counter()
        certificate = certify(histograms.counts, NMIN, greedy.params.nmax, (name,), greedy.members)[name]
        bound_s = time.perf_counter() - began
        gap = 100 * (greedy.value - certificate.lower) / certificate.lower
        rows.append(f"| {size:,} | {name} | {scan.value:.6f} | {greedy.value:.6f} | {certificate.lower:.6f} "
                    f"| {gap:.3f}% | {greedy_s:.2f} s | {bound_s:.2f} s |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[15_114, 1_000_000],
                        help="sizes timed against the plain numpy Algorithm 1")
    parser.add_argument("--big-sizes", type=int, nargs="*", default=[10_000_000],
                        help="sizes at which only select-samples is run (seconds and memory)")
    parser.add_argument("--distance-sizes", type=int, nargs="*", default=[15_114, 1_000_000],
                        help="sizes of the per-distance table")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "talkface-bench-select")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    every = sorted(set(args.sizes) | set(args.big_sizes) | set(args.distance_sizes))
    paths = {size: data_file(args.data_dir, size) for size in every}

    print(f"select-samples (default flags: paper, tv, every certified bound) against {PLAIN[-1].split('/')[-1]}, "
          f"whole process, median of {args.repeats}, nmin {NMIN:,}, nmax all clips\n")
    print("| clips | select-samples | plain numpy Algorithm 1 | ratio |\n|---|---|---|---|")
    for size in sorted(set(args.sizes) | set(args.big_sizes)):
        print(whole_process(paths[size], size, args.repeats if size in args.sizes else 1, size in args.sizes),
              flush=True)

    print("\nselect-samples' default run inside one process\n")
    print("| clips | read | select (rank, draws) | bounds (all five) | tv: selection >= bound |\n|---|---|---|---|---|")
    for size in sorted(set(args.sizes) | set(args.big_sizes)):
        print(stages(paths[size], size), flush=True)

    print("\ngreedy optimising each distance against its certified bound (gap: how far from optimal it can be)\n")
    print("| clips | distance | scan | greedy | certified bound | gap | greedy | bound |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.distance_sizes:
        for row in per_distance(paths[size], size):
            print(row, flush=True)


if __name__ == "__main__":
    main()
