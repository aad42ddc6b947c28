"""Optimisers, learning-rate schedules and the weight average of the training loop; ``cfg`` is the loop's
:class:`~seqnlp.train.loop.TrainConfig` (``train.*`` options)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch


def build_optimizer(model: torch.nn.Module, cfg: Any) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def build_scheduler(opt: torch.optim.Optimizer, cfg: Any, total_steps: int,
                    elapsed: Callable[[], float] | None = None):
    """Per-step LambdaLR schedules with linear warm-up, or ReduceLROnPlateau (per evaluation).

    With ``cfg.decay_over="time"`` linear/cosine decay runs over ``cfg.max_minutes`` of training time as
    measured by ``elapsed()`` (seconds), so the rate reaches its floor when the time budget ends however
    fast the machine turns out to be."""
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode=cfg.eval_mode, factor=cfg.plateau_factor, patience=cfg.plateau_patience,
            min_lr=cfg.lr * cfg.min_lr_ratio)
    warm = max(0, cfg.warmup_steps)
    horizon = max(1, (cfg.decay_steps or total_steps) - warm)
    floor = cfg.min_lr_ratio
    if cfg.decay_over not in ("steps", "time"):
        raise ValueError(f"train.decay_over must be steps or time, got {cfg.decay_over!r}")
    by_time = cfg.decay_over == "time"
    if by_time and not (cfg.max_minutes > 0 and elapsed is not None):
        raise ValueError("train.decay_over=time needs train.max_minutes > 0")

    def lam(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        t = min(1.0, elapsed() / (cfg.max_minutes * 60) if by_time else (step - warm) / horizon)
        if cfg.scheduler == "constant":
            return 1.0
        if cfg.scheduler == "linear":
            return floor + (1 - floor) * (1 - t)
        if cfg.scheduler == "cosine":
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
        if cfg.scheduler == "inverse_sqrt":
            return max(floor, math.sqrt(max(warm, 1) / max(step + 1, 1)))
        raise ValueError(f"unknown scheduler {cfg.scheduler!r}")

    lam(0)  # validate the name early
    return torch.optim.lr_scheduler.LambdaLR(opt, lam)


class WeightAverage:
    """An exponential moving average of a model's floating-point parameters (Polyak averaging).

    ``update()`` after each optimizer step: ``avg = d * avg + (1 - d) * w`` with ``d = min(decay, (1 + n) / (10 + n))``
    after ``n`` updates (the warm-up OpenNMT-py uses), the first one a plain copy. ``swap()`` exchanges the
    model's weights and the average in place (call it twice to swap back).
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.ema_decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.params = [p for p in model.parameters() if p.is_floating_point()]
        self.avg: list[torch.Tensor] = []
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        if not self.avg:
            self.avg = [p.detach().clone() for p in self.params]
        else:
            d = min(self.decay, (1 + self.updates) / (10 + self.updates))
            torch._foreach_lerp_(self.avg, [p.detach() for p in self.params], 1.0 - d)
        self.updates += 1

    @torch.no_grad()
    def swap(self) -> None:
        for p, a in zip(self.params, self.avg):
            tmp = p.detach().clone()
            p.copy_(a)
            a.copy_(tmp)

    def state_dict(self) -> dict:
        return {"avg": [a.cpu() for a in self.avg], "updates": self.updates}

    def load_state_dict(self, st: dict) -> None:
        self.avg = [a.to(p.device, p.dtype) for a, p in zip(st["avg"], self.params)]
        self.updates = int(st["updates"])


__all__ = ["WeightAverage", "build_optimizer", "build_scheduler"]
