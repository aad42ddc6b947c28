"""Recurrent encoders for real training: fused ``torch.nn`` RNNs over packed sequences.

``RNNEncoder`` runs LSTM / GRU / Elman RNN (cuDNN on GPU) over a padded batch with
``pack_padded_sequence(..., enforce_sorted=False)``, so padding never enters the recurrence,
and returns the outputs, the final states and the mask. ``cell="lstm_explicit"`` swaps in the
lecture's explicit-gates :class:`seqnlp.nn.LSTM` (slow; for inspection), same maths. ``packed=False``
runs the same RNN over the padded batch instead (:func:`seqnlp.nn.padded_rnn.run_padded`: same outputs
and final hidden states, much faster backward on CPU; no final cell state).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .dropout import Dropout
from .padded_rnn import run_padded

CELLS = ("lstm", "gru", "rnn", "lstm_explicit")


@dataclass
class EncoderOutput:
    """outputs (B, T, D*H); final_h (L*D, B, H); final_c (L*D, B, H) or None; mask (B, T) bool."""

    outputs: Tensor
    final_h: Tensor
    final_c: Tensor | None
    mask: Tensor

    def last_layer_final(self, num_directions: int) -> Tensor:
        """Final hidden state of the top layer, directions concatenated: (B, D*H)."""
        top = self.final_h[-num_directions:]  # (D, B, H)
        return torch.cat(list(top), dim=-1)


def make_rnn(cell: str, input_size: int, hidden_size: int, num_layers: int, dropout: float,
             bidirectional: bool) -> nn.Module:
    """A batch-first recurrent module of the named cell type."""
    kw = dict(num_layers=num_layers, batch_first=True, bidirectional=bidirectional,
              dropout=dropout if num_layers > 1 else 0.0)
    if cell == "lstm":
        return nn.LSTM(input_size, hidden_size, **kw)
    if cell == "gru":
        return nn.GRU(input_size, hidden_size, **kw)
    if cell == "rnn":
        return nn.RNN(input_size, hidden_size, nonlinearity="tanh", **kw)
    if cell == "lstm_explicit":
        from .lstm import LSTM

        return LSTM(input_size, hidden_size, **kw)
    raise ValueError(f"unknown cell {cell!r}; choose one of {CELLS}")


class RNNEncoder(nn.Module):
    """``x (B, T, input_size), lengths (B,) -> EncoderOutput``.

    Args:
        input_size: size of each input vector (e.g. the embedding size).
        hidden_size: per direction.
        num_layers: stacked layers (dropout between them).
        cell: ``lstm`` | ``gru`` | ``rnn`` | ``lstm_explicit``.
        bidirectional: run a backward RNN too (outputs concatenated).
        dropout: between layers and on the outputs.
        packed: run over a ``PackedSequence`` (default); ``False``: run over the padded batch with
            :func:`~seqnlp.nn.padded_rnn.run_padded` (faster on CPU; ``final_c`` is ``None``, no ``hx``);
            at inference a batch that is a third or more padding runs packed anyway (see ``_mostly_padding``).
            Either way the outputs are 0 at padded positions.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, cell: str = "lstm",
                 bidirectional: bool = True, dropout: float = 0.0, packed: bool = True):
        super().__init__()
        self.cell = cell
        self.packed = packed or cell == "lstm_explicit"
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.num_directions
        self.rnn = make_rnn(cell, input_size, hidden_size, num_layers, dropout, bidirectional)
        self.dropout = Dropout(dropout)

    PACK_BELOW = 2 / 3  # inference: real tokens under this fraction of the padded batch -> run packed

    def _mostly_padding(self, lengths: Tensor, T: int) -> bool:
        """Inference only (no gradients): whether a third or more of the batch is padding. The padded run's cost
        is ``B * T`` steps and the packed forward's the real tokens; the padded run wins on CPU for training (its
        backward) and for length-sorted batches, the packed one on mixed lengths (a server's batch of whatever
        came in: 1.3x on 100 unsorted sentences). Both give the same outputs."""
        if torch.is_grad_enabled() or self.training or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return False
        return int(lengths.sum()) < self.PACK_BELOW * lengths.numel() * T

    def forward(self, x: Tensor, lengths: Tensor, hx=None) -> EncoderOutput:
        B, T, _ = x.shape
        assert lengths.shape == (B,), f"lengths {tuple(lengths.shape)} != ({B},)"
        mask = torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]
        if self.cell == "lstm_explicit":
            out, state = self.rnn(x, hx, lengths=lengths)
        elif not self.packed and hx is not None:
            raise ValueError("RNNEncoder(packed=False) does not take an initial state")
        elif not self.packed and not self._mostly_padding(lengths, T):
            out, h = run_padded(self.rnn, x, lengths.clamp(min=1))
            out = out.masked_fill(~mask[:, :, None], 0.0)  # zeros at padding, as the packed run gives
            return EncoderOutput(self.dropout(out), h, None, mask)
        else:
            packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True,
                                          enforce_sorted=False)
            out, state = self.rnn(packed, hx)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
        h, c = state if isinstance(state, tuple) else (state, None)
        if not self.packed:  # run packed for speed only: what the padded run gives (no final_c)
            c = None
        return EncoderOutput(self.dropout(out), h, c, mask)
