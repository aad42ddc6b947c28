"""Token embeddings with a padding index, dropout and optional tying to an output layer."""

from __future__ import annotations

import math

from torch import Tensor, nn

from .dropout import Dropout


class Embeddings(nn.Module):
    """``ids (B, T) -> (B, T, dim)``; row ``padding_idx`` is zero and gets no gradient.

    Args:
        vocab_size: rows of the table.
        dim: embedding size.
        padding_idx: id of ``<pad>`` (0 in seqnlp tokenizers).
        dropout: dropout on the embedded vectors.
        scale: multiply by sqrt(dim) (as Transformers do; off for RNNs).
    """

    def __init__(self, vocab_size: int, dim: int, padding_idx: int = 0, dropout: float = 0.0, scale: bool = False):
        super().__init__()
        self.lut = nn.Embedding(vocab_size, dim, padding_idx=padding_idx)
        self.dropout = Dropout(dropout)
        self.dim = dim
        self.scale = scale

    @property
    def weight(self) -> nn.Parameter:
        return self.lut.weight

    def forward(self, ids: Tensor) -> Tensor:
        x = self.lut(ids)
        if self.scale:
            x = x * math.sqrt(self.dim)
        return self.dropout(x)

    def tie(self, output: nn.Linear) -> None:
        """Share this table with ``output`` (``output.weight`` is (vocab_size, dim))."""
        if output.weight.shape != self.lut.weight.shape:
            raise ValueError(
                f"cannot tie: output layer weight {tuple(output.weight.shape)} "
                f"!= embedding {tuple(self.lut.weight.shape)}"
            )
        output.weight = self.lut.weight
