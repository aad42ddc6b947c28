"""LSTM decoder with attention: teacher-forced forward over the whole target, or ``step()``.

Luong-style data flow (as in Joey NMT's recurrent decoder): the LSTM reads the previous
target embedding (plus, with input feeding, the previous attentional vector), attention uses
the new LSTM output as query, and ``h̃_t = tanh(W_c [s_t; c_t])`` feeds the output layer.

With input feeding off the teacher-forced forward is one fused LSTM call over the whole
target and one batched attention over all steps — no Python loop over time. With input
feeding on, each step needs the previous ``h̃``, so the forward loops over ``step``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .attention import Attention
from .dropout import Dropout
from .embeddings import Embeddings


@dataclass
class DecoderState:
    """Everything one decoding step needs, batch-major except the LSTM state.

    h, c: (L, B, H); feed: (B, O) previous attentional vector or None; memory (M, S, K); mask (M, S); keys
    (M, S, A) attention keys projected once; src_id (B,) the source sentence of each row.

    The source side is shared by rows that come from the same sentence: M divides B and rows ``i * B / M`` to
    ``(i + 1) * B / M - 1`` attend to memory row i (M = B after encoding; M = B / k once beam search has
    expanded each sentence to its k hypotheses, which then attend together). Beam search thus never copies the
    encoder's outputs k times, nor reorders them when hypotheses move within their sentences.
    """

    h: Tensor
    c: Tensor
    feed: Tensor | None
    memory: Tensor | None
    mask: Tensor | None
    keys: Tensor | None
    src_id: Tensor | None = None

    def reorder(self, index: Tensor) -> DecoderState:
        """Select / repeat batch rows (search): row i of the result is row ``index[i]``.

        The source-side tensors follow without copies where they can: if the new rows come in runs of equal
        length that each read one memory row (beam expansion, hypotheses reshuffled or dropped sentence by
        sentence), each run shares that memory row; otherwise every row gets its own.
        """
        out = {"h": self.h.index_select(1, index), "c": self.c.index_select(1, index),
               "feed": None if self.feed is None else self.feed.index_select(0, index),
               "src_id": None if self.src_id is None else self.src_id.index_select(0, index)}
        if self.memory is None:
            return DecoderState(memory=None, mask=None, keys=None, **out)
        rows = self.memory.size(0)
        per = self.h.size(1) // max(rows, 1)  # rows per memory row now
        src = index // per if per > 1 else index  # the memory row each new row reads
        runs, counts = torch.unique_consecutive(src, return_counts=True)
        pick = runs if len(counts) and bool((counts == counts[0]).all()) else src
        if pick.shape == (rows,) and bool(torch.equal(pick, torch.arange(rows, device=pick.device))):
            return DecoderState(memory=self.memory, mask=self.mask, keys=self.keys, **out)
        return DecoderState(memory=self.memory.index_select(0, pick), mask=self.mask.index_select(0, pick),
                            keys=None if self.keys is None else self.keys.index_select(0, pick), **out)

    @staticmethod
    def merge(states: list[DecoderState]) -> DecoderState:
        """One state holding the rows of ``states`` in order (beam search adding sentences while it runs).

        Every state must have the same rows per memory row (k after beam expansion); source sides of different
        lengths are padded to the longest (masked out: the attention of a row is what it was alone)."""
        if len(states) == 1:
            return states[0]
        first = states[0]
        h = torch.cat([s.h for s in states], dim=1)
        c = torch.cat([s.c for s in states], dim=1)
        feed = None if first.feed is None else torch.cat([s.feed for s in states], dim=0)
        src_id, offset = [], 0
        for s in states:
            ids = s.src_id if s.src_id is not None else torch.arange(s.h.size(1), device=s.h.device)
            src_id.append(ids + offset)
            offset += int(ids.max()) + 1 if len(ids) else 0
        out = {"h": h, "c": c, "feed": feed, "src_id": torch.cat(src_id)}
        if first.memory is None:
            return DecoderState(memory=None, mask=None, keys=None, **out)
        per = {s.h.size(1) // max(s.memory.size(0), 1) for s in states if s.memory.size(0)}
        if len(per) > 1:
            raise ValueError(f"cannot merge states with different rows per sentence: {sorted(per)}")
        S = max(s.memory.size(1) for s in states)

        def cat(parts: list[Tensor], value: float | bool = 0) -> Tensor:
            return torch.cat([F.pad(p, (0, 0, 0, S - p.size(1)), value=value) if p.dim() == 3 else
                              F.pad(p, (0, S - p.size(1)), value=value) for p in parts], dim=0)

        memory = cat([s.memory for s in states])
        mask = cat([s.mask for s in states], False)
        keys = None if first.keys is None else cat([s.keys for s in states])
        return DecoderState(memory=memory, mask=mask, keys=keys, **out)


class LSTMDecoder(nn.Module):
    """Attention LSTM decoder.

    Args:
        embed: target embeddings (dim E).
        hidden_size: LSTM size H.
        num_layers: LSTM layers.
        memory_size: encoder output size K (0 with no attention).
        attention: an :class:`Attention` or None (plain LSTM decoder).
        input_feeding: feed h̃_{t-1} into the LSTM input (Luong et al. 2015).
        output_size: size O of the attentional vector h̃ (equal to E to tie embeddings).
        vocab_size: output classes V.
        dropout: on LSTM outputs between layers and before the output layer.
        tie_embeddings: share ``embed``'s table with the output layer (needs O == E).
    """

    def __init__(self, embed: Embeddings, hidden_size: int, num_layers: int, memory_size: int,
                 attention: Attention | None, input_feeding: bool, output_size: int, vocab_size: int,
                 dropout: float = 0.0, tie_embeddings: bool = False):
        super().__init__()
        self.embed = embed
        self.attention = attention
        self.input_feeding = input_feeding
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.output_size = output_size
        rnn_in = embed.dim + (output_size if input_feeding else 0)
        self.rnn = nn.LSTM(rnn_in, hidden_size, num_layers, batch_first=True,
                           dropout=dropout if num_layers > 1 else 0.0)
        ctx = memory_size if attention is not None else 0
        self.combine = nn.Linear(hidden_size + ctx, output_size)
        self.dropout = Dropout(dropout)
        self.out = nn.Linear(output_size, vocab_size)
        if tie_embeddings:
            embed.tie(self.out)

    def init_state(self, h: Tensor, c: Tensor, memory: Tensor | None, mask: Tensor | None) -> DecoderState:
        """State before the first step; h, c (L, B, H) from a bridge."""
        keys = self.attention.precompute(memory) if self.attention is not None else None
        feed = h.new_zeros(h.shape[1], self.output_size) if self.input_feeding else None
        src_id = torch.arange(h.shape[1], device=h.device)
        return DecoderState(h, c, feed, memory, mask, keys, src_id)

    def _attend(self, s: Tensor, state: DecoderState) -> tuple[Tensor, Tensor | None]:
        """s (B, T, H) LSTM outputs → h̃ (B, T, O), weights (B, T, S) or None."""
        if self.attention is None:
            return torch.tanh(self.combine(s)), None
        B, T = s.shape[:2]
        # the rows sharing a memory row (a sentence's beam hypotheses) attend as one query block: (M, B/M * T, H)
        q = s.reshape(state.memory.size(0), -1, s.size(-1))
        ctx, w = self.attention(q, state.memory, state.mask, state.keys)
        ctx, w = ctx.reshape(B, T, -1), w.reshape(B, T, -1)
        return torch.tanh(self.combine(torch.cat([s, ctx], dim=-1))), w

    def features(self, tgt_in: Tensor, state: DecoderState) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: ``tgt_in (B, T)`` (starting with ``<s>``) → attentional vectors h̃ (B, T, O) (dropout
        applied) and attention (B, T, S); :meth:`logits` turns them (or a selection of rows) into scores."""
        emb = self.embed(tgt_in)  # (B, T, E)
        if not self.input_feeding:
            s, _ = self.rnn(emb, (state.h, state.c))  # one fused call over all steps
            att, w = self._attend(self.dropout(s), state)
            return self.dropout(att), w
        outs, ws = [], []
        h, c, feed = state.h, state.c, state.feed
        for t in range(emb.shape[1]):
            x = torch.cat([emb[:, t : t + 1], feed[:, None]], dim=-1)
            s, (h, c) = self.rnn(x, (h, c))
            att, w = self._attend(self.dropout(s), state)
            feed = att[:, 0]
            outs.append(att)
            ws.append(w)
        att = torch.cat(outs, dim=1)
        w = torch.cat(ws, dim=1) if ws[0] is not None else None
        return self.dropout(att), w

    def logits(self, features: Tensor) -> Tensor:
        """Output scores ``(..., V)`` of attentional vectors ``(..., O)`` from :meth:`features`."""
        return self.out(features)

    def forward(self, tgt_in: Tensor, state: DecoderState) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: ``tgt_in (B, T)`` (starting with ``<s>``) → logits (B, T, V), attention (B, T, S)."""
        att, w = self.features(tgt_in, state)
        return self.logits(att), w

    def step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One step: ``tokens (B,)`` → logits (B, V), the next state, attention (B, S) or None."""
        x = self.embed(tokens[:, None])  # (B, 1, E)
        if self.input_feeding:
            x = torch.cat([x, state.feed[:, None]], dim=-1)
        s, (h, c) = self.rnn(x, (state.h, state.c))
        new = DecoderState(h, c, state.feed, state.memory, state.mask, state.keys, state.src_id)
        att, w = self._attend(self.dropout(s), new)
        if self.input_feeding:
            new.feed = att[:, 0]
        return self.out(self.dropout(att[:, 0])), new, (w[:, 0] if w is not None else None)
