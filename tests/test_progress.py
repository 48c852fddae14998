"""Progress: steps/s, frames/s and the ETA from given (step, time) marks; loss means over a log window."""

from __future__ import annotations

import math

import pytest
import torch

from training.progress import LossWindow, Mark, Progress, format_duration, measure


def test_speed_and_eta_from_two_marks():
    p = measure(Mark(100, 50.0), Mark(140, 60.0), end=130_000, frames_per_step=4 * 70)
    assert (p.step, p.end, p.steps_per_s, p.frames_per_s) == (140, 130_000, 4.0, 1120.0)
    assert p.eta_s == pytest.approx((130_000 - 140) / 4.0)
    assert p.line() == "step 140/130000 4.00 steps/s 1,120 frames/s ETA 9h01m"


def test_eta_unknown_without_elapsed_time_and_zero_at_the_end():
    still = measure(Mark(5, 10.0), Mark(5, 10.0), end=10, frames_per_step=8)
    assert still.steps_per_s == 0 and math.isinf(still.eta_s) and still.line().endswith("ETA ?")
    assert Progress(step=10, end=10, steps_per_s=2.0, frames_per_s=16.0).eta_s == 0


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (42.4, "42s"), (425, "7m05s"), (3600, "1h00m"),
                                           (41_580, "11h33m"), (float("nan"), "?")])
def test_durations_read_at_a_glance(seconds, text):
    assert format_duration(seconds) == text


def test_loss_window_averages_each_term_over_the_steps_it_appeared_in():
    window = LossWindow()
    window.add({"rec": torch.tensor(0.5), "total_G": torch.tensor(0.5)})
    window.add({"rec": torch.tensor(0.25), "total_G": torch.tensor(0.5), "G_adv": torch.tensor(1.5)})
    assert window.means() == {"rec": 0.375, "total_G": 0.5, "G_adv": 1.5}
    assert window.means() == {}  # emptied by reading
    window.add({"rec": torch.tensor(0.1)})
    assert window.means() == {"rec": pytest.approx(0.1)}
