"""The incremental schedule and learning rate as pure functions of the global step."""

from __future__ import annotations

from training.config import Stage, TrainConfig


def stage_index(schedule: tuple[Stage, ...], step: int) -> int:
    """Index of the stage that global ``step`` (0-based) belongs to; past the end, the last stage."""
    end = 0
    for i, stage in enumerate(schedule):
        end += stage.steps
        if step < end:
            return i
    return len(schedule) - 1


def stage_start(schedule: tuple[Stage, ...], index: int) -> int:
    """Global step at which stage ``index`` begins."""
    return sum(s.steps for s in schedule[:index])


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Constant ``cfg.lr`` (the paper's), after a linear warm-up at the start of every stage."""
    index = stage_index(cfg.schedule, step)
    into = step - stage_start(cfg.schedule, index)
    if cfg.warmup_steps and into < cfg.warmup_steps:
        return cfg.lr * (into + 1) / cfg.warmup_steps
    return cfg.lr
