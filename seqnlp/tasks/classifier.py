"""Many-to-one: a whole sequence → one label (sentiment).

``SequenceClassifier(embed, encoder, pooling, num_classes)``: embeddings → shared (Bi)RNN
encoder → pooling over time (final state, max, mean or attention) → dropout → linear.
Batch tensors: ``src (B, T)``, ``src_lengths (B,)``, ``labels (B,)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.embeddings import Embeddings
from ..nn.encoders import RNNEncoder

POOLINGS = ("final", "max", "mean", "attention")


class SequenceClassifier(nn.Module):
    def __init__(self, embed: Embeddings, encoder: RNNEncoder, num_classes: int, pooling: str = "max",
                 dropout: float = 0.3):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.embed = embed
        self.encoder = encoder
        self.pooling = pooling
        d = encoder.output_size
        self.attn = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1, bias=False)) \
            if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d, num_classes)

    def pool(self, outputs: Tensor, mask: Tensor, final: Tensor) -> Tensor:
        """outputs (B, T, D), mask (B, T), final (B, D) → (B, D)."""
        if self.pooling == "final":
            return final
        if self.pooling == "max":
            return outputs.masked_fill(~mask[..., None], torch.finfo(outputs.dtype).min).max(1).values
        if self.pooling == "mean":
            m = mask[..., None].to(outputs.dtype)
            return (outputs * m).sum(1) / m.sum(1).clamp(min=1)
        s = self.attn(outputs).squeeze(-1).masked_fill(~mask, torch.finfo(outputs.dtype).min)
        return torch.bmm(torch.softmax(s, -1)[:, None], outputs)[:, 0]

    def forward(self, batch) -> Tensor:
        """Logits (B, C)."""
        enc = self.encoder(self.embed(batch.src), batch.src_lengths)
        pooled = self.pool(enc.outputs, enc.mask, enc.last_layer_final(self.encoder.num_directions))
        return self.head(self.dropout(pooled))

    def loss(self, batch) -> tuple[Tensor, int]:
        return F.cross_entropy(self(batch).float(), batch.labels), len(batch.labels)

    @torch.no_grad()
    def predict(self, batch) -> Tensor:
        """Class probabilities (B, C)."""
        return torch.softmax(self(batch).float(), dim=-1)
