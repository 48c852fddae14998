"""Training speed and the time left: steps/s, frames/s and an ETA, from two (step, time) marks.

Pure functions of the marks the loop takes at its log points, so they are
tested with made-up timestamps. The ETA extrapolates the speed of the last
window to the rest of the run, so it moves when a stage of another speed
starts (the adversarial stages are slower than the CAE).
"""

from __future__ import annotations

from typing import NamedTuple


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
