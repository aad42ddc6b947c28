"""Dropout whose mask costs a fraction of ``torch.nn.functional.dropout``'s on the CPU.

On the CPU, ``F.dropout`` draws one Bernoulli variate per element from the Mersenne twister, which makes it
one of the larger items in a training step's profile (``aten::bernoulli_``: 5.7% of a translation step on
one thread in ``benchmarks/seq2seq_profile.py --profile``; its ``torch_dropout=true`` variant times the step
with torch's dropout instead). Here each 64-bit draw is split into four 16-bit numbers, so the generator
runs a quarter as often, and an element is kept when its number is at least ``round(p · 65536)``: the drop
probability is ``p`` to within 1/65,536, survivors are scaled by the exact inverse of the keep probability,
and the draws come from torch's default generator (so ``torch.manual_seed`` and saved RNG states reproduce
them). Elsewhere than the CPU (CUDA's Philox dropout is already fast) it is ``F.dropout``.

:class:`Dropout` is a drop-in replacement for ``torch.nn.Dropout`` (no parameters, same state dict).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Dropout", "dropout", "keep_mask"]

_LEVELS = 1 << 16


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """A CPU mask of ``shape``: 0 with probability ``p`` (to 1/65,536), else ``1 / (1 - p')``."""
    n = math.prod(shape)
    threshold = round(p * _LEVELS)
    # all 64 bits random (a bare random_() on int64 leaves the sign bit 0, which would skew every fourth number)
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), (1 << 63) - 1)
    bits = words.view(torch.int16)[:n].view(shape)
    keep = bits >= threshold - _LEVELS // 2  # int16 is uniform on [-32768, 32767]: kept with prob 1 - t/65536
    return keep.to(dtype).mul_(_LEVELS / (_LEVELS - threshold))


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """``F.dropout(x, p, training)`` with a cheaper mask on the CPU (see the module's docstring)."""
    if not training or p == 0.0:
        return x
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if x.device.type != "cpu" or not 0 < round(p * _LEVELS) < _LEVELS:
        return F.dropout(x, p, True)
    return x * keep_mask(x.shape, p, x.dtype)


class Dropout(nn.Module):
    """``torch.nn.Dropout`` with :func:`dropout`'s cheaper CPU mask."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
