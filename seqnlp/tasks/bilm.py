"""Language-model pretraining of a classifier's own encoder (Dai & Le 2015; ULMFiT, Howard & Ruder 2018).

``EncoderLM(embed, encoder, vocab_size)`` puts a language-model head on the *same* embedding and
:class:`~seqnlp.nn.encoders.RNNEncoder` objects a :class:`~seqnlp.tasks.classifier.SequenceClassifier`
holds, so training it on unlabelled text pretrains the classifier in place; fine-tuning then starts from
those weights (the LM head is dropped).

Design: with a bidirectional encoder, the forward direction's output at position ``t`` has read tokens
``0..t`` and predicts token ``t+1``; the backward direction's output at ``t`` has read ``t..T-1`` and
predicts token ``t-1`` (a bidirectional LM in the style of ELMo, with one output layer shared by both
directions). Each sequence is wrapped in ``<s> … </s>`` so that every real token is a target of both
directions. This is only sound when each direction never sees the other: true for a *single-layer*
bidirectional RNN (fused ``nn.LSTM`` runs the two directions independently) and for a unidirectional
encoder of any depth (forward LM only). In a fused bidirectional stack of two or more layers, layer 2's
forward cell reads layer 1's backward outputs, which have already seen the token to predict, so such an
encoder is refused. (Separate forward and backward stacks would lift this; one bidirectional layer is
what the CPU budgets here can train anyway.)

The output layer is :class:`torch.nn.AdaptiveLogSoftmaxWithLoss` when ``cutoffs`` are given (word ids of
seqnlp's word-level tokenizers are ordered by frequency, which adaptive softmax expects), else a full
softmax. Batch tensors: ``src (B, T)`` (``<s> x1 .. xn </s>``, right-padded), ``src_lengths (B,)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.embeddings import Embeddings
from ..nn.encoders import RNNEncoder


class EncoderLM(nn.Module):
    """Args:
        embed: the classifier's embeddings.
        encoder: the classifier's encoder: unidirectional (any depth) or bidirectional with one layer.
        vocab_size: output classes V.
        cutoffs: adaptive-softmax cluster boundaries (ids), e.g. ``(2000, 10000)``; those ``>= V - 1`` are
            dropped, and none left means a full softmax.
        div_value: adaptive-softmax size reduction per tail cluster.
        pad_id: padding id (never a target).
    """

    def __init__(self, embed: Embeddings, encoder: RNNEncoder, vocab_size: int, cutoffs: Sequence[int] = (),
                 div_value: float = 4.0, pad_id: int = 0):
        super().__init__()
        if encoder.num_directions == 2 and encoder.num_layers > 1:
            raise ValueError(
                f"a fused bidirectional encoder with {encoder.num_layers} layers cannot be trained as a language "
                "model: from layer 2 on, each direction sees the other's outputs, i.e. the token it predicts. "
                "Use num_layers=1 or a unidirectional encoder."
            )
        self.embed = embed
        self.encoder = encoder
        self.hidden_size = encoder.hidden_size
        self.vocab_size = vocab_size
        self.pad_id = pad_id
        cutoffs = sorted(c for c in cutoffs if 0 < c < vocab_size - 1)
        if cutoffs and self.hidden_size // int(div_value ** len(cutoffs)) < 1:
            raise ValueError(f"adaptive softmax with {len(cutoffs)} tail clusters and div_value={div_value} leaves "
                             f"no dimensions of hidden_size={self.hidden_size}: use fewer cutoffs")
        if cutoffs:
            self.out = nn.AdaptiveLogSoftmaxWithLoss(self.hidden_size, vocab_size, cutoffs, div_value=div_value)
        else:
            self.out = nn.Linear(self.hidden_size, vocab_size)

    def directions(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """``src (B, T)`` → forward states (B, T, H), backward states (B, T, H) or None, mask (B, T)."""
        enc = self.encoder(self.embed(src), lengths)
        H = self.hidden_size
        bwd = enc.outputs[..., H:] if self.encoder.num_directions == 2 else None
        return enc.outputs[..., :H], bwd, enc.mask

    def _states_and_targets(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Hidden rows (N, H) and their target ids (N,) over both directions, padding left out."""
        fwd, bwd, mask = self.directions(src, lengths)
        valid = mask[:, 1:]  # (B, T-1): position t+1 is real; then t is too
        states = [fwd[:, :-1][valid]]  # forward at t predicts t+1
        targets = [src[:, 1:][valid]]
        if bwd is not None:
            states.append(bwd[:, 1:][valid])  # backward at t+1 predicts t
            targets.append(src[:, :-1][valid])
        return torch.cat(states), torch.cat(targets)

    def loss(self, batch) -> tuple[Tensor, int]:
        """Mean negative log-likelihood per predicted token (both directions), and the token count."""
        h, tgt = self._states_and_targets(batch.src, batch.src_lengths)
        h = h.float()
        if isinstance(self.out, nn.AdaptiveLogSoftmaxWithLoss):
            # torch's adaptive softmax copies its clusters' log-probs into a float32 output, which fails when
            # autocast (precision=bf16/fp16) gives them in 16 bits: this layer runs in float32.
            with torch.autocast(h.device.type, enabled=False):
                loss = self.out(h, tgt).loss
        else:
            loss = F.cross_entropy(self.out(h), tgt)
        return loss, int(tgt.numel())

    def log_probs(self, h: Tensor) -> Tensor:
        """``h (..., H)`` → log-probabilities over the vocabulary (..., V)."""
        flat = h.reshape(-1, self.hidden_size).float()
        if isinstance(self.out, nn.AdaptiveLogSoftmaxWithLoss):
            with torch.autocast(flat.device.type, enabled=False):  # as in loss()
                lp = self.out.log_prob(flat)
        else:
            lp = torch.log_softmax(self.out(flat), dim=-1)
        return lp.view(*h.shape[:-1], self.vocab_size)

    @torch.no_grad()
    def predict(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        """Next-token log-probs ``fwd (B, T, V)`` (row t: p(x_{t+1} | x_0..x_t)) and previous-token log-probs
        ``bwd (B, T, V)`` (row t: p(x_{t-1} | x_t..x_end)), or None for a unidirectional encoder."""
        fwd, bwd, _ = self.directions(src, lengths)
        return self.log_probs(fwd), None if bwd is None else self.log_probs(bwd)
