"""One-to-many and language modelling: predict each next token from the ones before.

``LanguageModel(embed, encoder, output)`` runs a unidirectional RNN over a stream and
predicts the next token at every position; its hidden state can be carried across batches
(truncated BPTT). An optional conditioning vector (e.g. a style tag) initialises the state,
so one input — a prompt or a tag — generates a whole sequence.

Batch tensors: ``inputs (B, T)``, ``targets (B, T)`` (inputs shifted by one), optional
``cond (B,)`` condition ids.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.embeddings import Embeddings


class LanguageModel(nn.Module):
    """Args:
        embed: token embeddings (E).
        rnn: a batch-first ``nn.LSTM``/``nn.GRU``/``nn.RNN`` (unidirectional) or a
            :class:`~seqnlp.nn.WindowEncoder`-style module ``(x, mask) -> (B, T, H)`` when
            ``stateless`` is set.
        hidden_size: output size H of ``rnn``.
        vocab_size: output classes V.
        dropout: before the output layer.
        tie_embeddings: share ``embed``'s table with the output layer (needs H == E, or a projection).
        num_conditions: size of the condition table (0: unconditioned).
    """

    def __init__(self, embed: Embeddings, rnn: nn.Module, hidden_size: int, vocab_size: int,
                 dropout: float = 0.0, tie_embeddings: bool = False, num_conditions: int = 0,
                 stateless: bool = False, pad_id: int = 0):
        super().__init__()
        self.embed = embed
        self.rnn = rnn
        self.stateless = stateless
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden_size, embed.dim) if tie_embeddings and hidden_size != embed.dim else None
        self.out = nn.Linear(embed.dim if tie_embeddings else hidden_size, vocab_size)
        if tie_embeddings:
            embed.tie(self.out)
        self.cond = None
        if num_conditions:
            layers = getattr(rnn, "num_layers", 1)
            self.cond = nn.Embedding(num_conditions, layers * hidden_size)
        self.pad_id = pad_id

    def init_state(self, batch_size: int, cond: Tensor | None = None, device=None):
        """Initial recurrent state: zeros, or from the condition ids ``cond (B,)``."""
        if self.stateless:
            return None
        if cond is None or self.cond is None:
            return None
        L, H = self.rnn.num_layers, self.rnn.hidden_size
        h = torch.tanh(self.cond(cond)).view(-1, L, H).transpose(0, 1).contiguous()
        return (h, torch.zeros_like(h)) if isinstance(self.rnn, nn.LSTM) else h

    def forward(self, inputs: Tensor, state=None) -> tuple[Tensor, object]:
        """inputs (B, T) → logits (B, T, V), next state (detach it to carry over)."""
        x = self.embed(inputs)
        if self.stateless:
            h, state = self.rnn(x, inputs != self.pad_id), None
        else:
            h, state = self.rnn(x, state)
        h = self.dropout(h)
        if self.proj is not None:
            h = self.proj(h)
        return self.out(h), state

    def loss(self, batch, state=None) -> tuple[Tensor, int]:
        if state is None and "cond" in batch:
            state = self.init_state(len(batch.inputs), batch.cond)
        logits, self.last_state = self(batch.inputs, state)
        n = int((batch.targets != self.pad_id).sum())
        loss = F.cross_entropy(logits.flatten(0, 1).float(), batch.targets.flatten(), ignore_index=self.pad_id)
        return loss, n

    # search protocol (seqnlp.search): state is the recurrent state
    def start(self, batch):
        return self.init_state(len(batch.inputs), batch.cond if "cond" in batch else None)

    def step(self, tokens: Tensor, state):
        logits, state = self(tokens[:, None], state)
        return torch.log_softmax(logits[:, 0].float(), -1), state

    def reorder(self, state, index: Tensor):
        if state is None:
            return None
        if isinstance(state, tuple):
            return tuple(s.index_select(1, index) for s in state)
        return state.index_select(1, index)
