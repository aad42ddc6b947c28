"""Masked attention: Bahdanau (additive) and Luong (dot, general).

All take queries for many steps at once: ``query (B, Tq, Q)`` against ``memory (B, S, K)``
with ``mask (B, S)`` (True = real source position) and return ``context (B, Tq, K)`` and
``weights (B, Tq, S)``. Keys can be projected once per source (``precompute``) and reused by
every decoding step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Attention(nn.Module):
    """Base: subclasses define ``scores(query, keys) -> (B, Tq, S)``."""

    def precompute(self, memory: Tensor) -> Tensor:
        return memory

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, query: Tensor, memory: Tensor, mask: Tensor, keys: Tensor | None = None):
        assert query.dim() == 3 and memory.dim() == 3, "query (B,Tq,Q), memory (B,S,K)"
        if keys is None:
            keys = self.precompute(memory)
        s = self.scores(query, keys)  # (B, Tq, S)
        s = s.masked_fill(~mask[:, None, :], torch.finfo(s.dtype).min)
        w = torch.softmax(s, dim=-1)
        return torch.bmm(w, memory), w


class BahdanauAttention(Attention):
    """score(q, k) = v · tanh(W_q q + W_k k)  (Bahdanau et al., 2015)."""

    def __init__(self, query_size: int, key_size: int, hidden_size: int):
        super().__init__()
        self.q_proj = nn.Linear(query_size, hidden_size, bias=False)
        self.k_proj = nn.Linear(key_size, hidden_size, bias=False)
        self.v = nn.Linear(hidden_size, 1, bias=False)

    def precompute(self, memory: Tensor) -> Tensor:
        return self.k_proj(memory)  # (B, S, A)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        q = self.q_proj(query)  # (B, Tq, A)
        return self.v(torch.tanh(q[:, :, None, :] + keys[:, None, :, :])).squeeze(-1)


class LuongAttention(Attention):
    """score(q, k) = q · k (``dot``) or q · W k (``general``)  (Luong et al., 2015)."""

    def __init__(self, query_size: int, key_size: int, method: str = "general"):
        super().__init__()
        if method not in ("dot", "general"):
            raise ValueError(f"Luong method must be dot or general, got {method!r}")
        if method == "dot" and query_size != key_size:
            raise ValueError(f"dot attention needs query_size == key_size ({query_size} != {key_size})")
        self.method = method
        self.k_proj = nn.Linear(key_size, query_size, bias=False) if method == "general" else None

    def precompute(self, memory: Tensor) -> Tensor:
        return self.k_proj(memory) if self.k_proj is not None else memory

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(query, keys.transpose(1, 2))


def build_attention(kind: str, query_size: int, key_size: int, hidden_size: int) -> Attention:
    """``bahdanau`` | ``luong_dot`` | ``luong_general`` (alias ``luong``)."""
    if kind == "bahdanau":
        return BahdanauAttention(query_size, key_size, hidden_size)
    if kind in ("luong", "luong_general"):
        return LuongAttention(query_size, key_size, "general")
    if kind == "luong_dot":
        return LuongAttention(query_size, key_size, "dot")
    raise ValueError(f"unknown attention {kind!r}; choose bahdanau, luong_dot or luong_general")
