"""Synchronized many-to-many: one tag per input token (part-of-speech tagging).

``SequenceTagger(word_embed, char_encoder, encoder, num_tags, crf)``: each token is represented by its
word embedding concatenated with character-level features of its spelling (:class:`~seqnlp.nn.CharEncoder`),
then contextualised by a shared encoder -- a BiLSTM (:class:`~seqnlp.nn.RNNEncoder`) or the lecture's
one-to-one fixed window (:class:`~seqnlp.nn.WindowEncoder`, each tag from the +-l words around it) -- and
scored per token: either independently (softmax, cross-entropy) or jointly by a linear-chain CRF
(:class:`~seqnlp.nn.LinearChainCRF`, Viterbi decoding).

Batch tensors:
    ``words (B, T)`` word ids (0 = padding), ``lengths (B,)``,
    ``word_index (B, T)`` row of each token in the batch's word table (padding: any valid row),
    ``chars (W, L)``, ``char_lengths (W,)`` characters of the W distinct words of the batch,
    ``tags (B, T)`` gold tag ids (training; padding ignored);
    or, instead of ``chars``/``char_lengths``, ``char_feats (W, C)`` computed once for a whole word table
    by :meth:`SequenceTagger.word_table_features` (inference).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.char_encoder import CharEncoder
from ..nn.crf import LinearChainCRF
from ..nn.dropout import Dropout
from ..nn.embeddings import Embeddings
from ..nn.encoders import RNNEncoder
from ..nn.window import WindowEncoder

__all__ = ["SequenceTagger"]


class SequenceTagger(nn.Module):
    """Args:
        word_embed: word embeddings (E), or ``None`` for character features only.
        char_encoder: character-level word features (C), or ``None`` for word embeddings only.
        encoder: an :class:`RNNEncoder` (``(x, lengths)``) or a :class:`WindowEncoder` (``(x, mask)``)
            taking inputs of size E + C.
        num_tags: K.
        crf: score tag sequences with a linear-chain CRF (else per-token softmax).
        dropout: on the token representations (E + C), the encoder's input.
        output_dropout: on the encoder's outputs, before the output layer (0 when the encoder drops
            out its own outputs, as :class:`RNNEncoder` does).
        unk_id: the ``<unk>`` word id used by ``unk_prob``.
        unk_prob: optional (V,) probability, per word id, of replacing the word by ``<unk>`` during
            training (e.g. ``alpha / (alpha + count)``), so that the ``<unk>`` embedding is trained on
            rare words and the char features learn to stand alone; not saved.
        fixed_vectors: optional (V, E) pretrained word vectors, kept fixed (a saved buffer) and added to
            the trainable embeddings: words never seen in training still get a meaningful vector. The
            trainable table may then be smaller (the first V' < V ids: the training words); ids past it
            have only their fixed vector.
    """

    def __init__(self, word_embed: Embeddings | None, char_encoder: CharEncoder | None, encoder: nn.Module,
                 num_tags: int, crf: bool = True, dropout: float = 0.33, output_dropout: float = 0.0, unk_id: int = 1,
                 unk_prob: Tensor | None = None, fixed_vectors: Tensor | None = None):
        super().__init__()
        if word_embed is None and char_encoder is None:
            raise ValueError("a tagger needs word embeddings, character features or both")
        if not isinstance(encoder, RNNEncoder | WindowEncoder):
            raise TypeError(f"encoder must be an RNNEncoder or a WindowEncoder, got {type(encoder).__name__}")
        self.word_embed = word_embed
        self.char_encoder = char_encoder
        self.encoder = encoder
        self.num_tags = num_tags
        self.dropout = Dropout(dropout)
        self.output_dropout = Dropout(output_dropout)
        self.out = nn.Linear(encoder.output_size, num_tags)
        self.crf = LinearChainCRF(num_tags) if crf else None
        self.unk_id = unk_id
        if fixed_vectors is not None:
            if word_embed is None or fixed_vectors.size(1) != word_embed.dim or \
                    fixed_vectors.size(0) < word_embed.weight.size(0):
                raise ValueError(f"fixed_vectors {tuple(fixed_vectors.shape)} do not fit the word embeddings "
                                 f"{tuple(word_embed.weight.shape) if word_embed is not None else None}")
            self.register_buffer("fixed_vectors", fixed_vectors.float())
        else:
            self.fixed_vectors = None
        if word_embed is not None and unk_prob is not None:
            self.register_buffer("unk_prob", unk_prob.float(), persistent=False)
        else:
            self.unk_prob = None

    @property
    def input_size(self) -> int:
        return (self.word_embed.dim if self.word_embed is not None else 0) + \
            (self.char_encoder.output_size if self.char_encoder is not None else 0)

    def token_features(self, batch) -> Tensor:
        """Word embedding + character features of every token: (B, T, E + C)."""
        parts = []
        if self.word_embed is not None:
            words = batch.words
            if self.training and self.unk_prob is not None:
                drop = torch.rand(words.shape, device=words.device) < self.unk_prob[words]
                words = words.masked_fill(drop & (words != 0), self.unk_id)
            if self.fixed_vectors is not None:
                trainable = words.masked_fill(words >= self.word_embed.weight.size(0), 0)  # 0: padding, zero
                emb = self.word_embed(trainable) + self.fixed_vectors[words]
            else:
                emb = self.word_embed(words)
            parts.append(emb)
        if self.char_encoder is not None:
            if "char_feats" in batch:  # precomputed by word_table_features (inference)
                table = batch.char_feats
            else:
                table = self.char_encoder(batch.chars, batch.char_lengths)  # (W, C): each distinct word once
            parts.append(table[batch.word_index])  # (B, T, C)
        return self.dropout(torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0])

    @torch.no_grad()
    def word_table_features(self, chars: Tensor, lengths: Tensor, chunk: int = 16384) -> Tensor | None:
        """Character features of a whole word table at once, ``(N, C)`` (``None`` without char features).

        For inference over many batches: each distinct word of the whole input is read once, and batches
        then carry ``char_feats`` (this table) with ``word_index`` into it instead of ``chars``.
        """
        if self.char_encoder is None:
            return None
        parts = [self.char_encoder(chars[i : i + chunk], lengths[i : i + chunk]) for i in range(0, len(chars), chunk)]
        return torch.cat(parts, dim=0)

    def forward(self, batch) -> Tensor:
        """Emission scores (B, T, K); rows at padded positions are meaningless."""
        x = self.token_features(batch)
        mask = self.mask(batch)
        if isinstance(self.encoder, WindowEncoder):
            h = self.encoder(x, mask)
        else:
            h = self.encoder(x, batch.lengths).outputs
        return self.out(self.output_dropout(h))

    @staticmethod
    def mask(batch) -> Tensor:
        """(B, T) bool, True at real tokens."""
        T = batch.words.size(1)
        return torch.arange(T, device=batch.words.device)[None, :] < batch.lengths[:, None]

    def loss(self, batch) -> tuple[Tensor, int]:
        """Mean loss per token: CRF negative log-likelihood of the gold paths / tokens, or cross-entropy."""
        emissions = _full_precision(self(batch))
        mask = self.mask(batch)
        n = int(mask.sum())
        if self.crf is not None:
            return self.crf.neg_log_likelihood(emissions, batch.tags, mask) / n, n
        gold = batch.tags.masked_fill(~mask, -100)
        return F.cross_entropy(emissions.flatten(0, 1), gold.flatten(), ignore_index=-100), n

    @torch.no_grad()
    def predict(self, batch) -> Tensor:
        """Tag ids (B, T): the Viterbi path under the CRF, else the per-token argmax; 0 at padding."""
        emissions = _full_precision(self(batch))
        mask = self.mask(batch)
        if self.crf is not None:
            return self.crf.decode(emissions, mask)
        return emissions.argmax(-1).masked_fill(~mask, 0)


def _full_precision(x: Tensor) -> Tensor:
    """Scores in at least float32 (the CRF's sums and log-sum-exps under bf16/fp16 autocast)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
