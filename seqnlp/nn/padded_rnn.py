"""Run a (bidirectional) ``torch.nn`` RNN over a right-padded batch without packing it.

On CPU, ``torch.nn.LSTM`` over a ``PackedSequence`` slices its precomputed input projections once per
time step, and the backward pass of every slice writes a full-size zero tensor: the cost of the backward
grows with ``steps * tokens``, and for a 1,500-token tagging batch it takes more time than the LSTM maths
itself. On a padded tensor the same kernel unbinds the time steps instead (cheap), so running padded is
much faster on CPU -- if the padding is kept out of the results:

* the forward direction reads each row left to right; its outputs at real positions never see the padding
  that comes after them;
* the backward direction is run as a forward pass over each row *reversed within its length* (padding
  stays at the end), and its outputs are reversed back.

Outputs at real positions and the final hidden states therefore equal those of the packed run (tested
against ``pack_padded_sequence``). The module's own parameters are used (``weight_ih_l0``,
``weight_ih_l0_reverse``, ...), so a checkpoint does not depend on which path ran. Outputs at padded
positions are unspecified. With bucketed batches (similar lengths) the padding costs little. Under CUDA
autocast the recurrence itself runs in float32 (cuDNN's bf16 RNN support depends on its version).
"""

from __future__ import annotations

import torch
from torch import _VF, Tensor, nn

from .dropout import dropout

__all__ = ["reverse_padded", "run_padded"]


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse every row of ``x (B, T, ...)`` within its first ``lengths[b]`` steps; padding stays put."""
    B, T = x.shape[:2]
    t = torch.arange(T, device=x.device).expand(B, T)
    n = lengths.to(x.device)[:, None]
    idx = torch.where(t < n, n - 1 - t, t)  # (B, T)
    return x.gather(1, idx.view(B, T, *([1] * (x.dim() - 2))).expand_as(x))


def _layer(rnn: nn.RNNBase, x: Tensor, layer: int, suffix: str, h0: Tensor | None) -> Tensor:
    """One direction of one layer as a unidirectional, batch-first run: (B, T, I) -> (B, T, H)."""
    names = [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"]
    if rnn.bias:
        names += [f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"]
    weights = [getattr(rnn, n) for n in names]
    if x.is_cuda and torch.is_autocast_enabled("cuda"):
        # cuDNN RNNs under autocast depend on the cuDNN version for bf16: run the recurrence in float32
        # (TF32 where allowed) and let autocast handle everything around it
        with torch.autocast("cuda", enabled=False):
            return _layer(rnn, x.float(), layer, suffix, None if h0 is None else h0.float())
    B = x.size(0)
    if h0 is None:
        h0 = x.new_zeros(1, B, rnn.hidden_size)
    if isinstance(rnn, nn.LSTM):
        if rnn.proj_size:
            raise NotImplementedError("run_padded does not support LSTM projections (proj_size)")
        out, _, _ = _VF.lstm(x, (h0, torch.zeros_like(h0)), weights, rnn.bias, 1, 0.0, rnn.training, False, True)
    elif isinstance(rnn, nn.GRU):
        out, _ = _VF.gru(x, h0, weights, rnn.bias, 1, 0.0, rnn.training, False, True)
    elif isinstance(rnn, nn.RNN):
        fn = _VF.rnn_tanh if rnn.nonlinearity == "tanh" else _VF.rnn_relu
        out, _ = fn(x, h0, weights, rnn.bias, 1, 0.0, rnn.training, False, True)
    else:
        raise TypeError(f"expected nn.LSTM, nn.GRU or nn.RNN, got {type(rnn).__name__}")
    return out


def run_padded(rnn: nn.RNNBase, x: Tensor, lengths: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Run a batch-first ``rnn`` over right-padded ``x``, as if packed.

    Args:
        rnn: a batch-first ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``, uni- or bidirectional, any layers
            (its inter-layer dropout applies in training mode).
        x: (B, T, input_size).
        lengths: (B,) long, each >= 1 and <= T.
        h0: optional initial hidden state (layers * directions, B, H); LSTM cells start at zero.

    Returns:
        ``outputs (B, T, D * H)`` (unspecified at padded positions) and the final hidden state of every
        layer and direction at each row's last real step, ``h_n (layers * directions, B, H)``.
    """
    if not rnn.batch_first:
        raise ValueError("run_padded needs a batch_first RNN")
    B, T = x.shape[:2]
    lengths = lengths.to(x.device)
    last = (lengths - 1).clamp(min=0).view(B, 1, 1)
    directions = 2 if rnn.bidirectional else 1
    finals = []
    for layer in range(rnn.num_layers):
        if layer > 0 and rnn.dropout > 0:
            x = dropout(x, rnn.dropout, rnn.training)
        outs = []
        for d in range(directions):
            k = layer * directions + d
            init = None if h0 is None else h0[k : k + 1]
            if d == 0:
                out = _layer(rnn, x, layer, "", init)
                final = out.gather(1, last.expand(B, 1, out.size(2))).squeeze(1)
            else:
                out_rev = _layer(rnn, reverse_padded(x, lengths), layer, "_reverse", init)
                final = out_rev.gather(1, last.expand(B, 1, out_rev.size(2))).squeeze(1)
                out = reverse_padded(out_rev, lengths)
            outs.append(out)
            finals.append(final)
        x = torch.cat(outs, dim=-1) if directions == 2 else outs[0]
    return x, torch.stack(finals, dim=0)
