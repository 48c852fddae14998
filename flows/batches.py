"""Run a stage over batches: compute in parallel on the task runner, write in order.

Computation (alignment, face tracking) is what takes time and what a Dask
cluster should spread; the warehouse writes are quick and stay in the flow
process, one batch after another, so two Delta commits never race. A write
batch is computed as several tasks of ``task_size`` items: with one task per
batch, a refresh of fewer clips than a batch ran on one worker while the
others waited.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from prefect.futures import PrefectFuture

from pipeline.stage import in_batches

IO_RETRIES = {"retries": 3, "retry_delay_seconds": [2, 10, 30]}
"""Task options for warehouse reads and writes: idempotent, so a retry never duplicates."""

Item = TypeVar("Item")
Result = TypeVar("Result")


def run_in_batches(label: str, items: Sequence[Item], batch_size: int,
                   submit: Callable[[list[Item]], PrefectFuture[list[Result]]],
                   write: Callable[[list[Result]], None], progress: bool = False, task_size: int | None = None,
                   together: Callable[[Item], object] | None = None) -> int:
    """Submit every task of ``items`` (``task_size`` each, default a whole batch), then write each
    batch's results (its tasks' lists, joined) in submission order. Items alike in ``together`` go in one
    batch (:func:`pipeline.stage.in_batches`).

    A batch whose computation raised fails the flow when its result is read:
    per-clip problems never raise (they become rejects), so an exception here
    means the stage cannot run at all, and it should stop the run loudly.

    Returns:
        The number of items processed.
    """
    from tqdm import tqdm

    batches = in_batches(items, batch_size, together)
    futures = [[submit(task) for task in in_batches(batch, task_size or batch_size)] for batch in batches]
    with tqdm(total=len(items), desc=f"{label:>10}", unit="clip", disable=not progress or not items) as bar:
        for batch, tasks in zip(batches, futures, strict=True):
            write([result for task in tasks for result in task.result()])
            bar.update(len(batch))
    return len(items)
