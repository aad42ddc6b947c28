"""Learning-rate decay over the training-time budget (train.decay_over=time)."""

from __future__ import annotations

import math

import pytest
import torch

from seqnlp.train.loop import TrainConfig, build_scheduler


def test_cosine_decay_follows_elapsed_time_not_steps():
    clock = {"s": 0.0}
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    cfg = TrainConfig(scheduler="cosine", decay_over="time", max_minutes=1.0, warmup_steps=2)
    sched = build_scheduler(opt, cfg, total_steps=10**6, elapsed=lambda: clock["s"])
    lrs = []
    for seconds in (0.0, 0.0, 15.0, 30.0, 60.0, 90.0):
        clock["s"] = seconds
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    # steps 1-2 warm up; then the rate is a cosine of elapsed / 60 s, 0 at and after the budget
    assert lrs[0] == pytest.approx(1.0)
    assert lrs[2:] == pytest.approx([0.5 * (1 + math.cos(math.pi * t)) for t in (0.25, 0.5, 1.0, 1.0)])


def test_time_decay_needs_a_time_budget():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="max_minutes"):
        build_scheduler(opt, TrainConfig(scheduler="linear", decay_over="time"), 100, elapsed=lambda: 0.0)
