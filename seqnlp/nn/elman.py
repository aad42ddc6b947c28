"""The lecture's simple (Elman) recurrent network, as an explicit loop over time.

For each time step t::

    a_t = b + W s_{t-1} + U x_t      pre-activation
    s_t = f(a_t)                     state (f = tanh or relu)
    o_t = c + V s_t                  output layer
    y_t = h(o_t)                     output activation (identity, softmax, log_softmax, sigmoid)

The recurrent part stores its parameters like ``torch.nn.RNN`` (``weight_ih_l{k}`` = U,
``weight_hh_l{k}`` = W, and ``bias_ih_l{k} + bias_hh_l{k}`` = b), so weights move to and from
``torch.nn.RNN`` with ``load_state_dict``; with several layers, layer k's input ``x_t`` is layer k-1's
state. The output layer V, c is ``output.weight`` / ``output.bias``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ElmanRNN"]

_NONLINEARITIES = {"tanh": torch.tanh, "relu": torch.relu}
_OUTPUT_ACTIVATIONS = {
    "identity": lambda o: o,
    "softmax": lambda o: torch.softmax(o, dim=-1),
    "log_softmax": lambda o: torch.log_softmax(o, dim=-1),
    "sigmoid": torch.sigmoid,
}


class ElmanRNN(nn.Module):
    """Elman RNN ``s_t = f(b + W s_{t-1} + U x_t)`` with an optional output layer ``y_t = h(c + V s_t)``.

    Args:
        input_size: size of ``x_t``.
        hidden_size: size of the state ``s_t``.
        output_size: size of ``o_t``; None means no output layer (then ``y`` is the states themselves,
            and ``output_activation`` must be ``"identity"``).
        num_layers: stacked recurrent layers (the output layer reads the top one).
        nonlinearity: ``f``, ``"tanh"`` or ``"relu"``.
        output_activation: ``h``, one of ``"identity"``, ``"softmax"``, ``"log_softmax"``, ``"sigmoid"``
            (softmax-like ones over the last dimension).
        batch_first: input and outputs are (B, T, ...) instead of (T, B, ...).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int | None = None,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        output_activation: str = "identity",
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        if nonlinearity not in _NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {sorted(_NONLINEARITIES)}, got {nonlinearity!r}")
        if output_activation not in _OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"output_activation must be one of {sorted(_OUTPUT_ACTIVATIONS)}, got {output_activation!r}"
            )
        if output_size is None and output_activation != "identity":
            raise ValueError("output_activation needs an output layer: give output_size")
        if num_layers < 1 or hidden_size < 1:
            raise ValueError("num_layers and hidden_size must be positive")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.num_layers = num_layers
        self.nonlinearity = nonlinearity
        self.output_activation = output_activation
        self.batch_first = batch_first
        for k in range(num_layers):
            layer_in = input_size if k == 0 else hidden_size
            h = hidden_size
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(h, layer_in)))  # U
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(h, h)))  # W
            self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(h)))  # b = bias_ih + bias_hh
            self.register_parameter(f"bias_hh_l{k}", nn.Parameter(torch.empty(h)))
        self.output = nn.Linear(hidden_size, output_size) if output_size is not None else None  # V, c
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch.nn.RNN's init for the recurrent part (uniform ±1/sqrt(H)); nn.Linear's for V, c."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if not name.startswith("output."):
                    p.uniform_(-bound, bound)
        if self.output is not None:
            self.output.reset_parameters()

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Run over a batch of sequences.

        Args:
            x: (T, B, input_size), or (B, T, input_size) if ``batch_first``.
            h0: initial states ``s_0``, (num_layers, B, hidden_size); zeros if None.

        Returns:
            ``(y, states, s_n)``: y (T, B, output_size) (or the states when there is no output layer),
            states (T, B, hidden_size) the top layer's ``s_t`` for every t, s_n (num_layers, B, hidden_size)
            the final state of every layer. With ``batch_first`` y and states are (B, T, ...).
        """
        if x.dim() != 3 or x.size(-1) != self.input_size:
            raise ValueError(f"expected input (T, B, {self.input_size}), got {tuple(x.shape)}")
        if self.batch_first:
            x = x.transpose(0, 1)
        steps, batch = x.shape[:2]
        state_shape = (self.num_layers, batch, self.hidden_size)
        if h0 is None:
            h0 = x.new_zeros(state_shape)
        elif tuple(h0.shape) != state_shape:
            raise ValueError(f"expected h0 of shape {state_shape}, got {tuple(h0.shape)}")
        f = _NONLINEARITIES[self.nonlinearity]

        layer_input = x  # (T, B, in)
        finals = []
        for k in range(self.num_layers):
            U = getattr(self, f"weight_ih_l{k}")
            W = getattr(self, f"weight_hh_l{k}")
            b = getattr(self, f"bias_ih_l{k}") + getattr(self, f"bias_hh_l{k}")
            s = h0[k]  # (B, H)
            states = []
            for t in range(steps):
                a = b + F.linear(s, W) + F.linear(layer_input[t], U)  # a_t = b + W s_{t-1} + U x_t
                s = f(a)  # s_t = f(a_t)
                states.append(s)
            layer_input = torch.stack(states) if states else x.new_zeros(0, batch, self.hidden_size)
            finals.append(s)
        states_all = layer_input  # (T, B, H)
        s_n = torch.stack(finals)  # (num_layers, B, H)

        if self.output is not None:
            o = self.output(states_all)  # o_t = c + V s_t, (T, B, output_size)
            y = _OUTPUT_ACTIVATIONS[self.output_activation](o)  # y_t = h(o_t)
        else:
            y = states_all
        if self.batch_first:
            y, states_all = y.transpose(0, 1), states_all.transpose(0, 1)
        return y, states_all, s_n

    def recurrent_state_dict(self) -> dict[str, Tensor]:
        """The recurrent part's tensors under ``torch.nn.RNN``'s keys: ``rnn.load_state_dict(it)`` works
        for ``torch.nn.RNN(input_size, hidden_size, num_layers, nonlinearity=...)``. The other way is
        ``elman.load_state_dict(rnn.state_dict(), strict=False)`` (only ``output.*`` is then missing)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("output.")}

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, output_size={self.output_size}, "
            f"num_layers={self.num_layers}, nonlinearity={self.nonlinearity!r}, "
            f"output_activation={self.output_activation!r}, batch_first={self.batch_first}"
        )
