"""Many-to-many: encode a source sequence, decode another (translation, dialogue).

``Seq2Seq(src_embed, encoder, bridge, decoder)`` follows the task-model contract
(``forward(batch)``, ``loss(batch) -> (loss, n_items)``) and the search protocol of
:mod:`seqnlp.search` (``start``, ``step``, ``reorder``), so greedy, beam search and sampling
work on it unchanged. :class:`Seq2SeqConfig` is the model config of both seq2seq tasks (the
builder's input and a checkpoint's ``model`` block); :func:`build_seq2seq` the one builder.

What translation's and dialogue's predictors share lives here once: :class:`Seq2SeqPredictor`
(loading, decoding under the inference precision, ``predict`` with one result per input),
:func:`summed_loss` (teacher-forced loss over batches) and :func:`write_nbest` (``--format nbest``).

Batch tensors: ``src (B, S)``, ``src_lengths (B,)``, ``tgt_in (B, T)`` (``<s> y1 .. yn``),
``tgt_out (B, T)`` (``y1 .. yn </s>``), padding id 0.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..config import ConfigError
from ..data.tokenizers import Tokenizer
from ..nn.attention import build_attention
from ..nn.decoders import DecoderState, LSTMDecoder
from ..nn.embeddings import Embeddings
from ..nn.encoders import RNNEncoder
from ..search import SearchConfig, decode_texts
from ..train import checkpoint as ck
from ..train.device import autocast, pick_dtype
from ..train.loop import TrainConfig
from ..train.rundir import one_line
from .base import as_inputs


@dataclass
class Seq2SeqConfig:
    """The seq2seq model's options and, below them, the sizes training fills in from the data."""

    emb_size: int = 256
    hidden_size: int = 256  # encoder: per direction; decoder
    enc_layers: int = 1
    dec_layers: int = 1
    bidirectional: bool = True  # encoder
    attention: str = "bahdanau"  # bahdanau | luong_general | luong_dot | none
    attention_size: int = 0  # Bahdanau's hidden size (0: hidden_size)
    input_feeding: bool = False
    dropout: float = 0.3
    emb_dropout: float = 0.3
    tie_embeddings: bool = True  # decoder embeddings = output layer
    share_src_tgt_embeddings: bool = False  # one embedding table for both sides (needs one joint vocabulary)
    label_smoothing: float = 0.1
    packed: bool = True  # encoder over a PackedSequence; False: over the padded batch (~2x faster on CPU, the
    #   same outputs but no final cell state, so the bridge builds the decoder's c from the final h)
    # from the data (set by training; 0 until then)
    src_vocab: int = 0
    tgt_vocab: int = 0
    pad_id: int = 0


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

    def merge(self, states: list[DecoderState]) -> DecoderState:
        return DecoderState.merge(states)


def build_seq2seq(m: Seq2SeqConfig | int, tgt_vocab: int | None = None, **options: Any) -> Seq2Seq:
    """The one place where a seq2seq model config becomes modules.

    ``build_seq2seq(src_vocab, tgt_vocab, **options)`` is short for
    ``build_seq2seq(Seq2SeqConfig(src_vocab=src_vocab, tgt_vocab=tgt_vocab, **options))``.
    """
    if not isinstance(m, Seq2SeqConfig):
        m = Seq2SeqConfig(src_vocab=m, tgt_vocab=tgt_vocab or 0, **options)
    if not (m.src_vocab and m.tgt_vocab):
        raise ConfigError("model.src_vocab and model.tgt_vocab come from the data: set them (training does)")
    src_embed = Embeddings(m.src_vocab, m.emb_size, m.pad_id, m.emb_dropout)
    tgt_embed = Embeddings(m.tgt_vocab, m.emb_size, m.pad_id, m.emb_dropout)
    if m.share_src_tgt_embeddings:
        if m.src_vocab != m.tgt_vocab:
            raise ValueError("share_src_tgt_embeddings needs one joint vocabulary")
        tgt_embed.lut = src_embed.lut
    encoder = RNNEncoder(m.emb_size, m.hidden_size, m.enc_layers, "lstm", m.bidirectional, m.dropout, packed=m.packed)
    attn = None
    if m.attention != "none":
        attn = build_attention(m.attention, m.hidden_size, encoder.output_size, m.attention_size or m.hidden_size)
    decoder = LSTMDecoder(tgt_embed, m.hidden_size, m.dec_layers, encoder.output_size, attn, m.input_feeding,
                          output_size=m.emb_size, vocab_size=m.tgt_vocab, dropout=m.dropout,
                          tie_embeddings=m.tie_embeddings)
    bridge = Bridge(encoder.output_size, m.hidden_size, m.dec_layers)
    return Seq2Seq(src_embed, encoder, bridge, decoder, m.pad_id, m.label_smoothing)


def train_defaults(**options: Any) -> TrainConfig:
    """The training-loop options both seq2seq tasks start from (Adam at 1e-3, the rate halved after a validation
    plateau, gradients clipped to norm 1), with the task's own ``options``."""
    return TrainConfig(**{"optimizer": "adam", "lr": 1e-3, "scheduler": "plateau", "plateau_factor": 0.5,
                          "plateau_patience": 1, "clip_grad_norm": 1.0, **options})


@torch.no_grad()
def summed_loss(model: Seq2Seq, batches: Iterable, device: torch.device, progress: bool = False,
                desc: str = "loss") -> tuple[float, int]:
    """``(sum of loss x n_items, sum of n_items)`` of the model over ``batches``, teacher forced, in eval mode
    (the loss without label smoothing: summed negative log-likelihood in nats, and the target tokens)."""
    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    for batch in tqdm(batches, total=len(batches) if hasattr(batches, "__len__") else None, desc=desc,
                      disable=not progress, leave=False, dynamic_ncols=True):
        loss, k = model.loss(batch.to(device))
        total += float(loss) * k
        n += k
    model.train(was_training)
    return total, n


# ------------------------------------------------------------------------------------------- predictor
class Seq2SeqPredictor:
    """A trained seq2seq model with its tokenizers, run config (``.config``) and search, ready to decode.

    Subclasses say how inputs become source ids (:meth:`encode`) and under which key a result holds its best
    hypothesis (``result_key``); ``predict`` gives ``{result_key: best text, "nbest": [{"text", "score"}]}``
    per input, in order, and ``{result_key: "", "nbest": []}`` for an empty input. Scores are those of beam
    search (length-penalised log-probabilities); greedy search and sampling give ``None``.
    """

    result_key = "text"
    strip = False  # strip white space off hypotheses
    desc = "decode"  # progress bar label

    def __init__(self, model: Seq2Seq, src_tok: Tokenizer, tgt_tok: Tokenizer, config: Any, checkpoint: Path,
                 device: torch.device):
        self.model, self.src_tok, self.tgt_tok = model.eval(), src_tok, tgt_tok
        self.config, self.checkpoint, self.device = config, Path(checkpoint), device
        self.search: SearchConfig = config.search
        self.amp_dtype = pick_dtype(config.infer_precision, device)  # None: fp32

    @classmethod
    def load(cls, ckpt: Path, stored: ck.Stored, cfg: Any, device: torch.device, src_tok: Tokenizer,
             tgt_tok: Tokenizer):
        """The model of checkpoint ``ckpt`` (its config block ``stored.model``) on ``device``, with ``cfg``."""
        model = build_seq2seq(stored.model_config(Seq2SeqConfig))
        ck.load_weights(model, ckpt)
        return cls(model.to(device), src_tok, tgt_tok, cfg, ckpt, device)

    def encode(self, inputs: list) -> tuple[list[list[int]], list[bool]]:
        """Source ids of every input and whether each input is empty (nothing to answer)."""
        raise NotImplementedError

    def decode(self, srcs: Sequence[list[int]], search: SearchConfig | None = None,
               progress: bool = False) -> list[list[tuple[str, float]]]:
        """The n-best ``(text, score)`` lists of source ids ``srcs`` (default search: the config's)."""
        with autocast(self.device, self.amp_dtype):
            nbest = decode_texts(self.model, self.tgt_tok, srcs, search or self.search, device=self.device,
                                 progress=progress, desc=self.desc).nbest
        if self.strip:
            nbest = [[(h.strip(), s) for h, s in n] for n in nbest]
        return nbest

    def predict(self, inputs, progress: bool = False, *, search: SearchConfig | None = None) -> list[dict]:
        """One result per input, in order (see the class docstring)."""
        inputs = as_inputs(inputs)
        srcs, empty = self.encode(inputs)
        keep = [i for i, e in enumerate(empty) if not e]
        results = [{self.result_key: "", "nbest": []} for _ in inputs]
        for i, nbest in zip(keep, self.decode([srcs[i] for i in keep], search, progress)):
            results[i] = self._result(nbest)
        return results

    def _result(self, nbest: list[tuple[str, float]]) -> dict:
        return {self.result_key: nbest[0][0],
                "nbest": [{"text": t, "score": float(s) if math.isfinite(s) else None} for t, s in nbest]}

    def stream(self, search: SearchConfig | None = None) -> DecodeStream | None:
        """A :class:`DecodeStream` of this model (continuous batching for a server), or ``None`` where the
        search cannot take inputs while it runs (greedy search, sampling: the server batches those whole)."""
        search = search or self.search
        if search.method != "beam" or not hasattr(self.model, "merge"):
            return None
        return DecodeStream(self, search)


class DecodeStream:
    """Beam search that takes new requests while it runs (``seqnlp serve``'s continuous batching).

    :meth:`add` puts a request's inputs into the running search (encoded, and joined at the next step);
    :meth:`step` advances every live input by one token and returns the requests whose inputs are all done, each
    with the results ``predictor.predict(inputs)`` gives (the same hypotheses: every input is searched as if
    alone, up to floating-point batch effects). Empty inputs are answered at once. Not thread-safe: one caller
    drives it."""

    def __init__(self, predictor: Seq2SeqPredictor, search: SearchConfig):
        from ..search.beam import BeamSearch

        self.p, self.search = predictor, search
        self._new = lambda: BeamSearch(predictor.model, bos=predictor.tgt_tok.bos_id, eos=predictor.tgt_tok.eos_id,
                                       beam_size=search.beam_size, length_penalty=search.length_penalty,
                                       n_best=search.n_best, no_repeat_ngram_size=search.no_repeat_ngram_size)
        self.beam = self._new()
        self._open: dict[Any, tuple[list, int]] = {}  # request -> (its results, inputs still searched)

    def __len__(self) -> int:
        """Inputs being searched."""
        return len(self.beam)

    @property
    def rows(self) -> int:
        """Decoder rows of the next step."""
        return self.beam.rows

    def add(self, requests: Sequence[tuple[Any, Sequence]]) -> tuple[list[tuple[Any, list[dict]]],
                                                                     list[tuple[Any, Exception]]]:
        """Start the inputs of ``requests`` (``(id, inputs)`` pairs), encoded as one batch. Returns the requests
        answered at once (``(id, results)``: none of their inputs needs searching) and those refused
        (``(id, exception)``: a bad input; nothing of that request is started)."""
        from ..data.seq2seq import source_batch
        from ..search.methods import max_lengths

        p = self.p
        done, failed, srcs, ids = [], [], [], []
        for request, inputs in requests:
            try:
                if request in self._open:
                    raise ValueError(f"request {request!r} is already being searched")
                inputs = as_inputs(inputs)
                enc, empty = p.encode(inputs)
            except Exception as e:  # noqa: BLE001  (this request's inputs only)
                failed.append((request, e))
                continue
            results: list = [{p.result_key: "", "nbest": []} for _ in inputs]
            keep = [i for i, e in enumerate(empty) if not e]
            if not keep:
                done.append((request, results))
                continue
            self._open[request] = (results, len(keep))
            srcs += [enc[i] for i in keep]
            ids += [(request, i) for i in keep]
        if srcs:
            batch = source_batch(srcs, p.tgt_tok.pad_id).to(p.device)
            s = self.search
            max_len = max_lengths(batch.src_lengths, s.max_len_ratio, s.min_max_len, s.max_output_len)
            try:
                with torch.inference_mode(), autocast(p.device, p.amp_dtype):
                    self.beam.add(batch, max_len, ids=ids)
            except Exception as e:  # noqa: BLE001  (the model failed on these: none of them is searched)
                for request in dict.fromkeys(r for r, _ in ids):
                    del self._open[request]
                    failed.append((request, e))
        return done, failed

    def step(self) -> list[tuple[Any, list[dict]]]:
        """One decoder step; the requests that are now complete, as ``(request, results)``."""
        if not len(self.beam):
            return []
        with torch.inference_mode(), autocast(self.p.device, self.p.amp_dtype):
            done = self.beam.step()
        out = []
        for (request, i), hyps in done:
            results, left = self._open[request]
            nbest = [(self.p.tgt_tok.decode(ids), score) for ids, score in hyps] or [("", -math.inf)]
            if self.p.strip:
                nbest = [(h.strip(), sc) for h, sc in nbest]
            results[i] = self.p._result(nbest)
            if left == 1:
                del self._open[request]
                out.append((request, results))
            else:
                self._open[request] = (results, left - 1)
        return out

    def drop(self) -> list[Any]:
        """Give up every request being searched (after a model error); their ids."""
        requests = list(self._open)
        self._open.clear()
        self.beam = self._new()
        return requests


def write_nbest(sink, lines: list, results: list[dict], predictor: Any = None) -> None:
    """``--format nbest``: ``i ||| hypothesis ||| score`` per hypothesis (``i`` counts inputs from 0; score
    ``nan`` where the search gives none); an input without hypotheses (a blank one) has one line with an
    empty hypothesis, so every input is there."""
    for i, r in enumerate(results):
        for h in r["nbest"] or [{"text": "", "score": None}]:
            score = "nan" if h["score"] is None else f"{h['score']:.4f}"
            sink.write(f"{i} ||| {one_line(h['text'])} ||| {score}\n")


def note_truncated(count: int, total: int, what: str) -> None:
    """One line on stderr when inputs were cut to the model's length limit (say nothing when none were)."""
    if count:
        print(f"note: {count} of {total} inputs {what}", file=sys.stderr)


__all__ = ["Bridge", "DecodeStream", "Seq2Seq", "Seq2SeqConfig", "Seq2SeqPredictor", "build_seq2seq", "note_truncated",
           "summed_loss", "train_defaults", "write_nbest"]
