"""Many-to-many: encode a source sequence, decode another (translation, dialogue).

``Seq2Seq(src_embed, encoder, bridge, decoder)`` follows the task-model contract
(``forward(batch)``, ``loss(batch) -> (loss, n_items)``) and the search protocol of
:mod:`seqnlp.search` (``start``, ``step``, ``reorder``), so greedy, beam search and sampling
work on it unchanged.

Batch tensors: ``src (B, S)``, ``src_lengths (B,)``, ``tgt_in (B, T)`` (``<s> y1 .. yn``),
``tgt_out (B, T)`` (``y1 .. yn </s>``), padding id 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.decoders import DecoderState, LSTMDecoder
from ..nn.embeddings import Embeddings
from ..nn.encoders import RNNEncoder


class Bridge(nn.Module):
    """Initial decoder state from the encoder's final states.

    ``final (B, D*H_enc)`` (top layer, directions concatenated) → ``tanh(W final)`` repeated
    for every decoder layer as h; c likewise from the final cell states when available.
    """

    def __init__(self, enc_size: int, dec_hidden: int, dec_layers: int):
        super().__init__()
        self.h = nn.Linear(enc_size, dec_hidden)
        self.c = nn.Linear(enc_size, dec_hidden)
        self.layers = dec_layers

    def forward(self, final_h: Tensor, final_c: Tensor | None) -> tuple[Tensor, Tensor]:
        h = torch.tanh(self.h(final_h))
        c = torch.tanh(self.c(final_c if final_c is not None else final_h))
        rep = lambda x: x[None].expand(self.layers, -1, -1).contiguous()  # noqa: E731
        return rep(h), rep(c)


class Seq2Seq(nn.Module):
    """Encoder–decoder with attention.

    Args:
        src_embed: source embeddings.
        encoder: a (bi)directional :class:`RNNEncoder`.
        bridge: :class:`Bridge` from encoder final states to the decoder's first state.
        decoder: :class:`LSTMDecoder` (holds the target embeddings and output layer).
        pad_id: padding id (ignored by the loss).
        label_smoothing: ε of the label-smoothed cross-entropy.
    """

    def __init__(self, src_embed: Embeddings, encoder: RNNEncoder, bridge: Bridge, decoder: LSTMDecoder,
                 pad_id: int = 0, label_smoothing: float = 0.0):
        super().__init__()
        self.src_embed = src_embed
        self.encoder = encoder
        self.bridge = bridge
        self.decoder = decoder
        self.pad_id = pad_id
        self.label_smoothing = label_smoothing

    # --- contract ------------------------------------------------------------------------
    def start(self, batch) -> DecoderState:
        """Encode ``batch.src`` and return the decoder's first state."""
        enc = self.encoder(self.src_embed(batch.src), batch.src_lengths)
        d = self.encoder.num_directions
        final_h = enc.last_layer_final(d)
        final_c = torch.cat(list(enc.final_c[-d:]), dim=-1) if enc.final_c is not None else None
        h, c = self.bridge(final_h, final_c)
        return self.decoder.init_state(h, c, enc.outputs, enc.mask)

    def forward(self, batch) -> tuple[Tensor, Tensor | None]:
        """Teacher-forced logits (B, T, V) and attention weights (B, T, S)."""
        return self.decoder(batch.tgt_in, self.start(batch))

    def loss(self, batch) -> tuple[Tensor, int]:
        """Label-smoothed cross-entropy per target token; the output layer runs on real (non-pad) positions only."""
        feats, _ = self.decoder.features(batch.tgt_in, self.start(batch))  # (B, T, O)
        keep = batch.tgt_out != self.pad_id  # (B, T)
        logits = self.decoder.logits(feats[keep])  # (N, V)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        n = logits.shape[0]
        loss = F.cross_entropy(logits, batch.tgt_out[keep], label_smoothing=self.label_smoothing if self.training
                               else 0.0, reduction="sum")
        return loss / max(n, 1), n

    # --- search protocol ---------------------------------------------------------------
    def step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        logits, state, _ = self.decoder.step(tokens, state)
        return torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1), state

    def reorder(self, state: DecoderState, index: Tensor) -> DecoderState:
        return state.reorder(index)


def build_seq2seq(src_vocab: int, tgt_vocab: int, *, emb_size: int = 256, hidden_size: int = 256,
                  enc_layers: int = 1, dec_layers: int = 1, cell: str = "lstm", bidirectional: bool = True,
                  attention: str = "bahdanau", attention_size: int = 0, input_feeding: bool = False,
                  dropout: float = 0.2, emb_dropout: float = 0.2, tie_embeddings: bool = True,
                  share_src_tgt_embeddings: bool = False, label_smoothing: float = 0.1,
                  pad_id: int = 0) -> Seq2Seq:
    """The one place that turns seq2seq model options into modules."""
    from ..nn.attention import build_attention

    src_embed = Embeddings(src_vocab, emb_size, pad_id, emb_dropout)
    tgt_embed = Embeddings(tgt_vocab, emb_size, pad_id, emb_dropout)
    if share_src_tgt_embeddings:
        if src_vocab != tgt_vocab:
            raise ValueError("share_src_tgt_embeddings needs one joint vocabulary")
        tgt_embed.lut = src_embed.lut
    encoder = RNNEncoder(emb_size, hidden_size, enc_layers, cell, bidirectional, dropout)
    attn = None
    if attention != "none":
        attn = build_attention(attention, hidden_size, encoder.output_size, attention_size or hidden_size)
    decoder = LSTMDecoder(tgt_embed, hidden_size, dec_layers, encoder.output_size, attn, input_feeding,
                          output_size=emb_size, vocab_size=tgt_vocab, dropout=dropout,
                          tie_embeddings=tie_embeddings)
    bridge = Bridge(encoder.output_size if encoder.cell != "gru" else encoder.output_size, hidden_size, dec_layers)
    return Seq2Seq(src_embed, encoder, bridge, decoder, pad_id, label_smoothing)
