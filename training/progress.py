"""What the training loop reports at its log points: loss means, steps/s, frames/s, ETA.

A step never waits for the GPU: :class:`LossWindow` sums the loss terms on the
device, and the loop reads them once per window. Speed and ETA are pure
functions of the (step, time) marks the loop takes at its log points, so they
are tested with made-up timestamps. The ETA extrapolates the speed of the last
window to the rest of the run, so it moves when a stage of another speed
starts (the adversarial stages are slower than the CAE).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NamedTuple

import torch

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

log = logging.getLogger(__name__)

WINDOW_KEYS = ("step", "stage", "steps", "wall_s", "data_s", "steps_per_s", "frames_per_s")
"""Fields of a training record besides the loss terms (see ``training.train.train``)."""


class Mark(NamedTuple):
    """The global step reached at a moment (``time.perf_counter()`` seconds)."""

    step: int
    time: float


class Progress(NamedTuple):
    """Speed over the window between two marks, and what it means for the rest of the run."""

    step: int  # global step reached
    end: int  # the step the run stops at
    steps_per_s: float
    frames_per_s: float  # video frames generated per second, all processes together

    @property
    def eta_s(self) -> float:
        """Seconds to ``end`` at this speed."""
        return (self.end - self.step) / self.steps_per_s if self.steps_per_s > 0 else float("inf")

    def line(self) -> str:
        """``step 1200/130000 3.10 steps/s 868 frames/s ETA 11h33m``: one log line."""
        return (f"step {self.step}/{self.end} {self.steps_per_s:.2f} steps/s {self.frames_per_s:,.0f} frames/s "
                f"ETA {format_duration(self.eta_s)}")


def measure(start: Mark, now: Mark, end: int, frames_per_step: int) -> Progress:
    """The speed between ``start`` and ``now``.

    Args:
        start, now: the marks at the window's ends (``now.time`` after the GPU finished its work).
        end: the step the run stops at.
        frames_per_step: batch size x sequence length x processes.
    """
    seconds = now.time - start.time
    steps_per_s = (now.step - start.step) / seconds if seconds > 0 else 0.0
    return Progress(now.step, end, steps_per_s, steps_per_s * frames_per_step)


def format_duration(seconds: float) -> str:
    """``42s``, ``7m05s``, ``11h33m``; ``?`` when unknown (no speed measured yet)."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class LossWindow:
    """Each loss term summed on the device since the last log point: no step waits for the GPU."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for key, value in terms.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value
            self.counts[key] = self.counts.get(key, 0) + 1

    def means(self) -> dict[str, float]:
        """The mean of each term over the window, which starts again; one host sync for all terms."""
        keys = list(self.sums)
        values = torch.stack([self.sums[k] / self.counts[k] for k in keys]).tolist() if keys else []
        self.sums, self.counts = {}, {}
        return dict(zip(keys, values))


def report(writer: SummaryWriter | None, record: dict[str, float], progress: Progress, stage: str) -> None:
    """Log a window's line, and write its scalars to TensorBoard (unless ``writer`` is None).

    Scalars: ``loss/<term>``, and ``speed/steps_per_s``, ``speed/frames_per_s``,
    ``speed/eta_hours`` and ``speed/data_share`` (of the wall time, waiting for batches).
    """
    losses = {k: v for k, v in record.items() if k not in WINDOW_KEYS}
    data_share = record["data_s"] / record["wall_s"] if record["wall_s"] > 0 else 0.0
    log.info("%s, data %.0f%% | %s %s", progress.line(), 100 * data_share, stage,
             " ".join(f"{k}={v:.4f}" for k, v in losses.items()))
    if writer is None:
        return
    for key, value in losses.items():
        writer.add_scalar(f"loss/{key}", value, progress.step)
    speed = {"steps_per_s": progress.steps_per_s, "frames_per_s": progress.frames_per_s,
             "eta_hours": progress.eta_s / 3600, "data_share": data_share}
    for key, value in speed.items():
        writer.add_scalar(f"speed/{key}", value, progress.step)
