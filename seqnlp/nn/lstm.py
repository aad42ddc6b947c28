"""The lecture's LSTM, written with explicit gates so every activation can be inspected.

For one time step, with ``[h_{t-1}, x_t]`` the concatenation of the previous hidden state and the input::

    f_t  = σ(W_f·[h_{t-1}, x_t] + b_f)      forget gate
    i_t  = σ(W_i·[h_{t-1}, x_t] + b_i)      input gate
    C̃_t  = tanh(W_C·[h_{t-1}, x_t] + b_C)   candidate cell
    C_t  = f_t * C_{t-1} + i_t * C̃_t
    o_t  = σ(W_o·[h_{t-1}, x_t] + b_o)      output gate
    h_t  = o_t * tanh(C_t)

The parameters are stored the way ``torch.nn.LSTM`` stores them, so ``state_dict`` moves both ways:
``W·[h, x] + b`` is split into ``weight_hh @ h + bias_hh + weight_ih @ x + bias_ih``, and the four gates are
stacked in torch's order (i, f, g, o), where ``g`` is the candidate ``C̃``. ``LSTMCell.lecture_weights``
shows the lecture's ``W_f, b_f, ...`` built from the stored tensors.

``LSTM`` is a drop-in, slower twin of ``torch.nn.LSTM`` (no ``proj_size``) that can also return the per-step
gate and cell activations of every layer and direction, and accepts ``lengths`` so that padded steps leave
the state untouched (the same results as a packed sequence).
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dropout import dropout

__all__ = ["LSTM", "LSTMCell", "from_torch", "lstm_step"]

#: Keys of the per-step activation dicts returned by ``LSTM(..., return_activations=True)``.
ACTIVATION_KEYS = ("forget", "input", "candidate", "output", "cell", "hidden")


def lstm_step(
    x_proj: Tensor, h: Tensor, c: Tensor, weight_hh: Tensor, bias_hh: Tensor | None
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """One LSTM step given the input already projected by ``weight_ih`` (and ``bias_ih``).

    Args:
        x_proj: ``W_ih x_t + b_ih``, shape (batch, 4 * hidden), gates stacked as (i, f, g, o).
        h: previous hidden state ``h_{t-1}``, shape (batch, hidden).
        c: previous cell state ``C_{t-1}``, shape (batch, hidden).
        weight_hh: shape (4 * hidden, hidden).
        bias_hh: shape (4 * hidden,) or None.

    Returns:
        ``(h_t, c_t, gates)``: new hidden and cell state, each (batch, hidden), and the gates
        ``{"f": f_t, "i": i_t, "g": C̃_t, "o": o_t}``, each (batch, hidden).
    """
    pre = x_proj + F.linear(h, weight_hh, bias_hh)  # (B, 4H): W·[h_{t-1}, x_t] + b for all four gates
    pre_i, pre_f, pre_g, pre_o = pre.chunk(4, dim=-1)
    f = torch.sigmoid(pre_f)
    i = torch.sigmoid(pre_i)
    g = torch.tanh(pre_g)  # C̃_t
    o = torch.sigmoid(pre_o)
    c_new = f * c + i * g
    h_new = o * torch.tanh(c_new)
    return h_new, c_new, {"f": f, "i": i, "g": g, "o": o}


def _init_uniform(params: list[Tensor], hidden_size: int) -> None:
    """torch.nn.LSTM's init: every weight and bias uniform in ±1/sqrt(hidden_size)."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    with torch.no_grad():
        for p in params:
            p.uniform_(-bound, bound)


class LSTMCell(nn.Module):
    """One LSTM step with named gates; parameters named and shaped like ``torch.nn.LSTMCell``.

    Parameters: ``weight_ih`` (4H, input_size), ``weight_hh`` (4H, H), ``bias_ih`` and ``bias_hh`` (4H,),
    gate order (i, f, g, o).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_uniform(list(self.parameters()), self.hidden_size)

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None, return_gates: bool = False
    ) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, dict[str, Tensor]]:
        """One step.

        Args:
            input: ``x_t``, shape (batch, input_size).
            hx: ``(h_{t-1}, C_{t-1})``, each (batch, hidden_size); zeros if None.
            return_gates: also return ``{"f", "i", "g" (= C̃_t), "o"}``, each (batch, hidden_size).

        Returns:
            ``(h_t, C_t)`` each (batch, hidden_size), plus the gate dict if ``return_gates``.
        """
        if input.dim() != 2 or input.size(1) != self.input_size:
            raise ValueError(f"expected input (batch, {self.input_size}), got {tuple(input.shape)}")
        if hx is None:
            h = c = input.new_zeros(input.size(0), self.hidden_size)
        else:
            h, c = hx
        x_proj = F.linear(input, self.weight_ih, self.bias_ih)
        h_new, c_new, gates = lstm_step(x_proj, h, c, self.weight_hh, self.bias_hh)
        if return_gates:
            return h_new, c_new, gates
        return h_new, c_new

    def lecture_weights(self) -> dict[str, tuple[Tensor, Tensor]]:
        """The lecture's per-gate ``(W, b)``: ``W`` (H, H + input_size) acting on ``[h_{t-1}, x_t]``,
        ``b`` (H,).

        Keys ``"f"``, ``"i"``, ``"C"`` (candidate) and ``"o"``; ``b = bias_ih + bias_hh`` for that gate
        (zeros when ``bias=False``). Returned tensors are detached copies.
        """
        w = torch.cat([self.weight_hh, self.weight_ih], dim=1).detach()  # (4H, H + I)
        if self.bias_ih is not None:
            b = (self.bias_ih + self.bias_hh).detach()
        else:
            b = w.new_zeros(4 * self.hidden_size)
        names = ("i", "f", "C", "o")  # torch's stacking order
        return {n: (wn.clone(), bn.clone()) for n, wn, bn in zip(names, w.chunk(4), b.chunk(4))}

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


def _reverse_time(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse (time, batch, ...) along time; with ``lengths`` (batch,), only each sequence's first
    ``lengths[b]`` steps are reversed and padding stays where it is. Applying it twice is the identity."""
    if lengths is None:
        return x.flip(0)
    steps = torch.arange(x.size(0), device=x.device).unsqueeze(1)  # (T, 1)
    idx = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (T, B)
    idx = idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, idx)


class LSTM(nn.Module):
    """Multi-layer (bi)directional LSTM with explicit gates; the same interface and parameters as
    ``torch.nn.LSTM`` (without ``proj_size``).

    Parameters per layer ``k`` (and with suffix ``_reverse`` for the backward direction):
    ``weight_ih_l{k}`` (4H, input_size for k = 0 else num_directions * H), ``weight_hh_l{k}`` (4H, H),
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (4H,), gate order (i, f, g, o).

    The input projection ``W_ih x_t + b_ih`` is computed for all time steps in one matrix product;
    the recurrence then runs as a Python loop over time calling ``lstm_step``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        if num_layers < 1 or hidden_size < 1:
            raise ValueError("num_layers and hidden_size must be positive")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout acts between LSTM layers, so it has no effect with num_layers=1", stacklevel=2)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        h4 = 4 * hidden_size
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes(layer):
                self.register_parameter(f"weight_ih{suffix}", nn.Parameter(torch.empty(h4, layer_in)))
                self.register_parameter(f"weight_hh{suffix}", nn.Parameter(torch.empty(h4, hidden_size)))
                if bias:
                    self.register_parameter(f"bias_ih{suffix}", nn.Parameter(torch.empty(h4)))
                    self.register_parameter(f"bias_hh{suffix}", nn.Parameter(torch.empty(h4)))
        self.reset_parameters()

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def reset_parameters(self) -> None:
        _init_uniform(list(self.parameters()), self.hidden_size)

    def flatten_parameters(self) -> None:
        """No-op, for code written against ``torch.nn.LSTM``."""

    def _weights(self, suffix: str) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        bias_ih = getattr(self, f"bias_ih{suffix}") if self.bias else None
        bias_hh = getattr(self, f"bias_hh{suffix}") if self.bias else None
        return getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}"), bias_ih, bias_hh

    def forward(
        self,
        input: Tensor,
        hx: tuple[Tensor, Tensor] | None = None,
        return_activations: bool = False,
        lengths: Tensor | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]] | tuple[Tensor, tuple[Tensor, Tensor], list[dict[str, Tensor]]]:
        """Run the LSTM over a (padded) batch.

        Args:
            input: (T, B, input_size), or (B, T, input_size) if ``batch_first``, or unbatched (T, input_size).
            hx: ``(h_0, c_0)``, each (num_layers * num_directions, B, H) ((L * D, H) unbatched);
                zeros if None. Index ``layer * num_directions + direction``, as in torch.
            return_activations: also return, for each layer and direction (same order as ``h_n``), a dict
                with ``forget``, ``input``, ``candidate``, ``output`` (gates), ``cell`` (C_t) and
                ``hidden`` (h_t), each shaped like ``output`` for one direction: (T, B, H) or (B, T, H).
                Time is the original position also for the reverse direction; padded steps are zero.
            lengths: (B,) true lengths for right-padded input. Steps ``t >= lengths[b]`` do not update
                the state and give zero output; the reverse direction starts at each sequence's own last
                step. Equal to ``torch.nn.LSTM`` on ``pack_padded_sequence(input, lengths)``.

        Returns:
            ``(output, (h_n, c_n))``: output (T, B, D * H) (batch_first: (B, T, D * H)), the last layer's
            hidden states with both directions concatenated; h_n and c_n (num_layers * D, B, H), the final
            states. Plus the activation list if ``return_activations``.
        """
        if input.dim() not in (2, 3) or input.size(-1) != self.input_size:
            raise ValueError(
                f"expected input (T, B, {self.input_size}) / (B, T, {self.input_size}) / "
                f"(T, {self.input_size}), got {tuple(input.shape)}"
            )
        unbatched = input.dim() == 2
        if unbatched:
            input = input.unsqueeze(1)
            if hx is not None:
                hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
        elif self.batch_first:
            input = input.transpose(0, 1)
        steps, batch = input.shape[:2]  # input is (T, B, I) from here on
        num_states = self.num_layers * self.num_directions
        state_shape = (num_states, batch, self.hidden_size)
        if hx is None:
            h0 = c0 = input.new_zeros(state_shape)
        else:
            h0, c0 = hx
            if tuple(h0.shape) != state_shape or tuple(c0.shape) != state_shape:
                raise ValueError(
                    f"expected h_0 and c_0 of shape {state_shape}, got {tuple(h0.shape)}, {tuple(c0.shape)}"
                )
        mask = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=input.device).long()
            if unbatched:
                lengths = lengths.reshape(1)
            if lengths.shape != (batch,):
                raise ValueError(f"expected lengths of shape ({batch},), got {tuple(lengths.shape)}")
            if steps and int(lengths.max()) > steps:
                raise ValueError(f"lengths exceed the {steps} time steps of the input")
            mask = torch.arange(steps, device=input.device).unsqueeze(1) < lengths  # (T, B)

        layer_input = input
        h_n: list[Tensor] = []
        c_n: list[Tensor] = []
        activations: list[dict[str, Tensor]] = []
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                k = layer * self.num_directions + direction
                x = layer_input if direction == 0 else _reverse_time(layer_input, lengths)
                out, h, c, acts = self._run_direction(x, h0[k], c0[k], *self._weights(suffix), mask, return_activations)
                if direction == 1:
                    out = _reverse_time(out, lengths)
                    acts = {name: _reverse_time(a, lengths) for name, a in acts.items()}
                outputs.append(out)
                h_n.append(h)
                c_n.append(c)
                activations.append(acts)
            layer_input = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = dropout(layer_input, p=self.dropout, training=True)

        output = layer_input
        h_last, c_last = torch.stack(h_n), torch.stack(c_n)
        if unbatched:
            output, h_last, c_last = output.squeeze(1), h_last.squeeze(1), c_last.squeeze(1)
            activations = [{n: a.squeeze(1) for n, a in acts.items()} for acts in activations]
        elif self.batch_first:
            output = output.transpose(0, 1)
            activations = [{n: a.transpose(0, 1) for n, a in acts.items()} for acts in activations]
        if return_activations:
            return output, (h_last, c_last), activations
        return output, (h_last, c_last)

    @staticmethod
    def _run_direction(
        x: Tensor,
        h: Tensor,
        c: Tensor,
        weight_ih: Tensor,
        weight_hh: Tensor,
        bias_ih: Tensor | None,
        bias_hh: Tensor | None,
        mask: Tensor | None,
        keep: bool,
    ) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        """One layer, one direction, forward in time.

        x (T, B, in), h and c (B, H), mask (T, B) bool or None. Returns output (T, B, H), final h and c
        (B, H), and (if ``keep``) the activations, each (T, B, H).
        """
        x_proj = F.linear(x, weight_ih, bias_ih)  # (T, B, 4H): W_ih x_t + b_ih for every step at once
        outs: list[Tensor] = []
        record: dict[str, list[Tensor]] = {name: [] for name in ACTIVATION_KEYS}
        for t in range(x.size(0)):
            h_new, c_new, gates = lstm_step(x_proj[t], h, c, weight_hh, bias_hh)
            if mask is None:
                h, c, out = h_new, c_new, h_new
            else:
                m = mask[t].unsqueeze(1)  # (B, 1): real step for that sequence?
                h = torch.where(m, h_new, h)
                c = torch.where(m, c_new, c)
                out = h_new.masked_fill(~m, 0.0)
            outs.append(out)
            if keep:
                step = {
                    "forget": gates["f"],
                    "input": gates["i"],
                    "candidate": gates["g"],
                    "output": gates["o"],
                    "cell": c_new,
                    "hidden": h_new,
                }
                for name, value in step.items():
                    record[name].append(value if mask is None else value.masked_fill(~m, 0.0))
        if not outs:  # zero time steps
            output = x.new_zeros(0, h.size(0), h.size(1))
            return output, h, c, ({name: output for name in ACTIVATION_KEYS} if keep else {})
        acts = {name: torch.stack(values) for name, values in record.items()} if keep else {}
        return torch.stack(outs), h, c, acts

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


def from_torch(module: nn.LSTM) -> LSTM:
    """An explicit-gates ``LSTM`` with the configuration, weights, device, dtype and train/eval mode of
    ``module``. The reverse direction is ``torch.nn.LSTM(...).load_state_dict(lstm.state_dict())``."""
    if getattr(module, "proj_size", 0):
        raise ValueError("proj_size > 0 is not supported by seqnlp.nn.LSTM")
    lstm = LSTM(
        module.input_size,
        module.hidden_size,
        num_layers=module.num_layers,
        bias=module.bias,
        batch_first=module.batch_first,
        dropout=float(module.dropout),
        bidirectional=module.bidirectional,
    )
    ref = next(module.parameters())
    lstm.to(device=ref.device, dtype=ref.dtype)
    lstm.load_state_dict(module.state_dict(), strict=True)
    lstm.train(module.training)
    return lstm
