"""DropConnect on the recurrent weights of the fused RNNs (the weight-dropped LSTM of AWD-LSTM).

``WeightDropLSTM(..., weight_drop=p)`` is a ``torch.nn.LSTM`` that, in training mode, drops each entry of
the hidden-to-hidden matrices ``weight_hh_l{k}`` with probability ``p`` (scaling the rest by ``1/(1-p)``)
once per forward call, so every time step of the sequence sees the same dropped matrix: a regulariser of
the recurrence itself that leaves the fused kernel in place (Merity, Keskar & Socher, 2018; Wan et al.,
2013). In eval mode it is exactly ``torch.nn.LSTM``; parameters and ``state_dict`` are the same, so
weights move to and from ``torch.nn.LSTM`` and :func:`seqnlp.nn.lstm.from_torch` reads them.
"""

from __future__ import annotations

from torch import nn

from .dropout import dropout

__all__ = ["WeightDropGRU", "WeightDropLSTM", "WeightDropRNN"]


class _WeightDrop:
    """Mixin before a ``torch.nn`` RNN class: its constructor plus ``weight_drop``, and the dropped forward."""

    def __init__(self, *args, weight_drop: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0.0 <= weight_drop < 1.0:
            raise ValueError(f"weight_drop must be in [0, 1), got {weight_drop}")
        self.weight_drop = float(weight_drop)

    def forward(self, input, hx=None):
        if not (self.training and self.weight_drop > 0):
            return super().forward(input, hx)
        kept = self._flat_weights  # what the fused kernel reads: swap in dropped W_hh for this call
        self._flat_weights = [dropout(w, self.weight_drop, training=True) if name.startswith("weight_hh") else w
                              for name, w in zip(self._flat_weights_names, kept)]
        try:
            return super().forward(input, hx)
        finally:
            self._flat_weights = kept

    def extra_repr(self) -> str:
        return super().extra_repr() + f", weight_drop={self.weight_drop}"


class WeightDropLSTM(_WeightDrop, nn.LSTM):
    """``torch.nn.LSTM(*args, **kwargs)`` with DropConnect ``weight_drop`` on ``weight_hh_l{k}``."""


class WeightDropGRU(_WeightDrop, nn.GRU):
    """``torch.nn.GRU`` with DropConnect ``weight_drop`` on ``weight_hh_l{k}``."""


class WeightDropRNN(_WeightDrop, nn.RNN):
    """``torch.nn.RNN`` (the Elman network) with DropConnect ``weight_drop`` on ``weight_hh_l{k}``."""
