"""The lecture's fixed-window network: the same MLP applied to a window of neighbouring inputs.

Figure 1 of the lecture predicts ``x_n = f(x_{n-1}, ..., x_{n-l})`` from a window of the ``l`` previous
elements. ``WindowEncoder`` applies one MLP to the window around every position at once:

* ``causal=True``: the window of position n is ``x_{n-l}, ..., x_{n-1}`` (never ``x_n`` or later), for a
  generator that predicts ``x_n`` from what precedes it;
* ``causal=False``: the window is ``x_{n-l}, ..., x_n, ..., x_{n+r}`` (``window_left=l``,
  ``window_right=r``); ``l = r`` gives the ±l window of a tagger, ``r = 0`` the l previous elements plus
  the current one.

Positions outside the sequence, and masked (padding) positions, are read as zero vectors. The windows are
built with ``F.pad`` and one shifted slice per window offset: there is no Python loop over time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dropout import Dropout

__all__ = ["WindowEncoder"]

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


class WindowEncoder(nn.Module):
    """Fixed-window MLP encoder.

    Args:
        input_size: size I of each input vector (e.g. an embedding).
        window_left: l, how many elements before position n the window holds.
        window_right: r, how many elements after n it holds (must be 0 when ``causal``).
        hidden_size: size of every hidden layer, and of the output.
        num_layers: number of ``Linear + activation`` layers in the MLP.
        dropout: dropout on the input of every linear layer (the flattened window included).
        activation: ``"tanh"``, ``"relu"``, ``"sigmoid"`` or ``"gelu"``.
        causal: the window of n is ``x_{n-l} .. x_{n-1}``, excluding ``x_n`` itself.

    Attributes:
        window_size: number of positions in a window (``l`` if causal, else ``l + 1 + r``).
        output_size: ``hidden_size``.
    """

    def __init__(
        self,
        input_size: int,
        window_left: int,
        window_right: int = 0,
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        activation: str = "tanh",
        causal: bool = False,
    ) -> None:
        super().__init__()
        if window_left < 0 or window_right < 0:
            raise ValueError("window_left and window_right must be >= 0")
        if causal and window_right != 0:
            raise ValueError("a causal window cannot look right: window_right must be 0")
        if causal and window_left < 1:
            raise ValueError("a causal window needs window_left >= 1 (it excludes the current position)")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if num_layers < 1:
            raise ValueError("num_layers must be >= 1")
        self.input_size = input_size
        self.window_left = window_left
        self.window_right = window_right
        self.causal = causal
        self.window_size = window_left if causal else window_left + 1 + window_right
        self.output_size = hidden_size
        layers: list[nn.Module] = []
        for k in range(num_layers):
            layers += [
                Dropout(dropout),
                nn.Linear(self.window_size * input_size if k == 0 else hidden_size, hidden_size),
                _ACTIVATIONS[activation](),
            ]
        self.mlp = nn.Sequential(*layers)

    def windows(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """The flattened window of every position.

        Args:
            x: (B, T, I).
            mask: (B, T) bool, True for real tokens; False positions are read as zeros.

        Returns:
            (B, T, window_size * I): for position n, the inputs from oldest (``x_{n-l}``) to newest
            concatenated, zeros where the window leaves the sequence or hits a masked position.
        """
        if x.dim() != 3 or x.size(-1) != self.input_size:
            raise ValueError(f"expected input (B, T, {self.input_size}), got {tuple(x.shape)}")
        batch, steps, _ = x.shape
        if mask is not None:
            if mask.shape != (batch, steps):
                raise ValueError(f"expected mask of shape {(batch, steps)}, got {tuple(mask.shape)}")
            x = x.masked_fill(~mask.bool().unsqueeze(-1), 0.0)
        if self.causal:
            # pad l zeros in front and drop the last step: padded index n + j (j < l) is x_{n-l+j}
            padded = F.pad(x, (0, 0, self.window_left, 0))[:, : steps + self.window_left - 1]
        else:
            padded = F.pad(x, (0, 0, self.window_left, self.window_right))  # (B, T + l + r, I)
        # the window of n is padded[n : n + window_size]: one shifted slice per offset, side by side (the values of
        # padded.unfold(1, window_size, 1).transpose(2, 3).reshape(...); slices also export to ONNX with a dynamic T)
        return torch.cat([padded[:, j : j + steps] for j in range(self.window_size)], dim=-1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Encode every position from its window.

        Args:
            x: (B, T, input_size) batch-first input vectors.
            mask: optional (B, T) bool, True for real tokens.

        Returns:
            (B, T, output_size); zero at masked positions.
        """
        out = self.mlp(self.windows(x, mask))  # (B, T, H)
        if mask is not None:
            out = out.masked_fill(~mask.bool().unsqueeze(-1), 0.0)
        return out

    def extra_repr(self) -> str:
        return (
            f"input_size={self.input_size}, window_left={self.window_left}, "
            f"window_right={self.window_right}, causal={self.causal}"
        )
