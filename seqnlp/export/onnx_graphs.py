"""The ONNX graphs of every task: wrapper modules that take and return plain tensors, and their export.

Each wrapper calls the trained model's own modules (embeddings, encoders, pooling, decoder step, output
layers), so a graph computes what eager torch computes; only what tracing cannot follow is restated here:

* the tagger's character encoder is a graph of its own (``chars``) that the runtime calls per group of similar
  word lengths, as the eager encoder groups them (data-dependent Python, which a trace would freeze);
* the BiLSTMs run packed (ONNX's bidirectional ``LSTM`` with ``sequence_lens``: one op per layer) where eager
  torch runs them padded, direction by direction (:func:`~seqnlp.nn.padded_rnn.run_padded`, faster for
  training on CPU); both give the same outputs at real positions and the same final states;
* Viterbi decoding is a scripted loop (:func:`viterbi`, an ONNX ``Loop`` over time; equal to
  :meth:`seqnlp.nn.crf.LinearChainCRF.decode`, tested).

Graphs per task (:func:`graphs_of`): ``sentiment`` -- ``classifier`` (src, src_lengths -> logits);
``pos_tagging`` -- ``tagger`` (words, lengths, word_index[, char_feats] -> emissions, tags) and, with character
features, ``chars`` (chars, char_lengths -> char_feats);
``translation`` / ``dialogue`` -- ``encoder`` (src, src_lengths -> h, c, memory, mask, keys) and ``decoder``
(one step: tokens, h, c[, feed][, memory, mask, keys] -> log_probs, new_h, new_c[, new_feed][, attention]; memory,
mask and keys may have fewer rows than h, each shared by a block of rows: a sentence's beam hypotheses);
``char_generator`` -- ``lm`` (tokens (B, T), state -> logits, new state; one step is T = 1) and, for a conditioned
model, ``init`` (cond -> h). Batch, length, source, word-table and character axes are dynamic.

Exported with the TorchScript-based exporter (``dynamo=False``): it handles ``pack_padded_sequence`` (the
ONNX ``LSTM`` op with ``sequence_lens``), the padded runs and the scripted loop with dynamic axes.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..data.batching import Batch
from ..nn.decoders import DecoderState
from ..nn.encoders import RNNEncoder

OPSET = 17

__all__ = ["OPSET", "GraphSpec", "export_graph", "graphs_of", "viterbi"]


def _viterbi(emissions: Tensor, mask: Tensor, start: Tensor, transitions: Tensor, end: Tensor) -> Tensor:
    """The best tag path of every row (B, T), 0 at padding: :meth:`LinearChainCRF.decode` as a script."""
    B, T, K = emissions.size(0), emissions.size(1), emissions.size(2)
    identity = torch.arange(K, device=emissions.device).unsqueeze(0).expand(B, K)
    score = start.unsqueeze(0) + emissions[:, 0]
    back = torch.zeros(T, B, K, dtype=torch.long, device=emissions.device)
    for t in range(1, T):
        best, prev = (score.unsqueeze(2) + transitions.unsqueeze(0)).max(dim=1)
        step = mask[:, t].unsqueeze(1)
        score = torch.where(step, best + emissions[:, t], score)
        back[t] = torch.where(step, prev, identity)  # past a row's end every tag points at itself
    cur = (score + end.unsqueeze(0)).argmax(dim=1)
    tags = torch.zeros(T, B, dtype=torch.long, device=emissions.device)
    tags[T - 1] = cur
    for i in range(1, T):
        cur = back[T - i].gather(1, cur.unsqueeze(1)).squeeze(1)
        tags[T - i - 1] = cur
    return tags.t().masked_fill(~mask, 0)


with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # torch 2.13 calls torch.jit.script deprecated; the TorchScript exporter reads it
    viterbi = torch.jit.script(_viterbi)


@dataclass
class GraphSpec:
    """One graph: its wrapper module, what it takes and gives (``{name: axis names}``; a str axis is dynamic),
    the dtypes of its inputs and an example input (for tracing)."""

    name: str
    module: nn.Module
    inputs: dict[str, list]
    outputs: dict[str, list]
    example: dict[str, Tensor]
    dtypes: dict[str, str] = field(default_factory=dict)
    path: Path | None = None  # where it was written

    def describe(self) -> dict:
        """The ``inputs`` / ``outputs`` entries of the export's config.json."""
        def one(name, shape, tensor=None):
            dtype = str(tensor.dtype).removeprefix("torch.") if tensor is not None else self.dtypes.get(name, "float32")
            return {"name": name, "dtype": dtype, "shape": shape}
        return {"inputs": [one(n, s, self.example[n]) for n, s in self.inputs.items()],
                "outputs": [one(n, s) for n, s in self.outputs.items()]}


class _Named(nn.Module):
    """Base of the wrappers: ``forward(*tensors)`` in the order of ``names``, read by name."""

    names: tuple[str, ...] = ()

    def named(self, tensors: tuple) -> dict[str, Tensor]:
        return dict(zip(self.names, tensors))


class ClassifierGraph(_Named):
    names = ("src", "src_lengths")

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *tensors):
        return self.model(Batch(self.named(tensors)))  # logits (B, C)


def char_features(enc, chars: Tensor, lengths: Tensor) -> Tensor:
    """:class:`~seqnlp.nn.char_encoder.CharEncoder` over a (W, L) table in one call: the BiLSTM as one packed
    run (ONNX's bidirectional ``LSTM`` with ``sequence_lens``; the same final states as the eager padded runs).
    The runtime calls this graph per group of similar lengths (:func:`~seqnlp.nn.char_encoder.by_length_groups`),
    as the eager encoder does."""
    if enc.kind != "lstm":
        return enc(chars, lengths)
    x = enc.dropout(enc.embed(chars))
    lengths = lengths.clamp(min=1)
    out, _ = enc.rnn(pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False))
    out, _ = pad_packed_sequence(out, batch_first=True)  # (W, L, 2H)
    # the final states read off the outputs (the exporter fails on a packed run's h_n alone): forward at each
    # word's last character, backward at its first
    H = enc.rnn.hidden_size
    last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, H)
    return torch.cat([out[:, :, :H].gather(1, last).squeeze(1), out[:, 0, H:]], dim=-1)


class CharsGraph(_Named):
    names = ("chars", "char_lengths")

    def __init__(self, char_encoder):
        super().__init__()
        self.char_encoder = char_encoder

    def forward(self, *tensors):
        return char_features(self.char_encoder, *tensors)  # (W, C)


@contextlib.contextmanager
def _packed(model):
    """Every :class:`RNNEncoder` of ``model`` over a ``PackedSequence`` while exporting: one bidirectional ONNX
    ``LSTM`` with ``sequence_lens`` instead of two runs and the reversals of
    :func:`~seqnlp.nn.padded_rnn.run_padded` (equal outputs at real positions and final states, tested)."""
    encoders = [m for m in model.modules() if isinstance(m, RNNEncoder)]
    saved = [m.packed for m in encoders]
    for m in encoders:
        m.packed = True
    try:
        yield
    finally:
        for m, v in zip(encoders, saved):
            m.packed = v


class TaggerGraph(_Named):
    def __init__(self, model):
        super().__init__()
        self.model = model
        self.names = ("words", "lengths", "word_index") + (("char_feats",) if model.char_encoder else ())

    def forward(self, *tensors):
        m = self.model
        batch = Batch(self.named(tensors))
        with _packed(m):
            emissions = m(batch).float()
        mask = m.mask(batch)
        if m.crf is not None:
            tags = viterbi(emissions, mask, m.crf.start_transitions, m.crf.transitions, m.crf.end_transitions)
        else:
            tags = emissions.argmax(-1).masked_fill(~mask, 0)
        return emissions, tags


class EncoderGraph(_Named):
    names = ("src", "src_lengths")

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.attention = model.decoder.attention is not None

    def forward(self, *tensors):
        state = self.model.start(Batch(self.named(tensors)))
        out = [state.h, state.c]
        if self.attention:
            out += [state.memory, state.mask, state.keys]
        return tuple(out)


class DecoderStepGraph(_Named):
    def __init__(self, model):
        super().__init__()
        self.decoder = model.decoder
        self.feeding = model.decoder.input_feeding
        self.attention = model.decoder.attention is not None
        self.names = ("tokens", "h", "c") + (("feed",) if self.feeding else ()) + \
            (("memory", "mask", "keys") if self.attention else ())

    def forward(self, *tensors):
        t = self.named(tensors)
        state = DecoderState(t["h"], t["c"], t.get("feed"), t.get("memory"), t.get("mask"), t.get("keys"))
        logits, new, w = self.decoder.step(t["tokens"], state)
        out = [torch.log_softmax(logits.float(), dim=-1), new.h, new.c]
        if self.feeding:
            out.append(new.feed)
        if self.attention:
            out.append(w)
        return tuple(out)


def lm_state_names(model) -> tuple[str, ...]:
    """The state tensors of a :class:`~seqnlp.tasks.lm.LanguageModel`: LSTM ``h, c``; GRU/RNN ``h``; window
    ``context``."""
    if isinstance(model.rnn, nn.LSTM):
        return ("h", "c")
    if isinstance(model.rnn, (nn.GRU, nn.RNN)):
        return ("h",)
    return ("context",)


class LMGraph(_Named):
    def __init__(self, model):
        super().__init__()
        self.model = model
        self.state = lm_state_names(model)
        self.names = ("tokens",) + self.state

    def forward(self, *tensors):
        t = self.named(tensors)
        state = tuple(t[n] for n in self.state)
        logits, new = self.model(t["tokens"], state if len(state) > 1 else state[0])
        return (logits.float(), *(new if isinstance(new, tuple) else (new,)))


class LMInitGraph(_Named):
    names = ("cond",)

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, cond):
        state = self.model.init_state(cond.size(0), cond)
        return state[0] if isinstance(state, tuple) else state


# ------------------------------------------------------------------------------------------- examples
def _ids(high: int, *shape: int) -> Tensor:
    return torch.randint(1, max(high, 2), shape, dtype=torch.long)


def _lengths(values: list[int]) -> Tensor:
    return torch.tensor(values, dtype=torch.long)


def _check_exportable(model) -> None:
    for m in model.modules():
        if isinstance(m, RNNEncoder) and m.cell == "lstm_explicit":
            raise ValueError("model.cell=lstm_explicit (the lecture's explicit-gates LSTM, a Python loop over "
                             "time) cannot be exported: retrain with cell=lstm (the same maths, fused)")


def graphs_of(task: str, predictor, batch: int = 3, steps: int = 6) -> list[GraphSpec]:
    """The graphs of ``predictor`` (a loaded torch predictor of ``task``) with example inputs of ``batch`` rows
    and ``steps`` positions (lengths ``steps, steps - 2, ..., 1``)."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    lengths = _lengths([max(steps - 2 * i, 1) for i in range(batch - 1)] + [1])
    B, T = batch, steps
    if task == "sentiment":
        model = predictor.model
        _check_exportable(model)
        ex = {"src": _ids(model.embed.lut.num_embeddings, B, T), "src_lengths": lengths}
        return [GraphSpec("classifier", ClassifierGraph(model), {"src": ["batch", "time"], "src_lengths": ["batch"]},
                          {"logits": ["batch", model.num_classes]}, ex)]
    if task == "pos_tagging":
        model = predictor.model
        words = model.fixed_vectors.size(0) if model.fixed_vectors is not None else \
            (model.word_embed.weight.size(0) if model.word_embed is not None else 2)
        W, L = 2 * T, 5
        ex = {"words": _ids(words, B, T), "lengths": lengths, "word_index": torch.randint(0, W, (B, T), generator=g)}
        ins = {"words": ["batch", "time"], "lengths": ["batch"], "word_index": ["batch", "time"]}
        specs = []
        enc = model.char_encoder
        if enc is not None:
            char_lengths = torch.cat([torch.tensor([L]), torch.randint(1, L + 1, (W - 1,), generator=g)])  # one full
            chars = {"chars": _ids(enc.embed.num_embeddings, W, L), "char_lengths": char_lengths}
            specs.append(GraphSpec("chars", CharsGraph(enc), {"chars": ["word_types", "chars"],
                                                              "char_lengths": ["word_types"]},
                                   {"char_feats": ["word_types", enc.output_size]}, chars))
            with torch.no_grad():
                ex["char_feats"] = enc(chars["chars"], chars["char_lengths"])
            ins["char_feats"] = ["word_types", enc.output_size]
        outs = {"emissions": ["batch", "time", model.num_tags], "tags": ["batch", "time"]}
        return [*specs, GraphSpec("tagger", TaggerGraph(model), ins, outs, ex, {"tags": "int64"})]
    if task in ("translation", "dialogue"):
        return _seq2seq_graphs(predictor.model, B, T, lengths)
    if task == "char_generator":
        return _lm_graphs(predictor.model, B, T)
    raise ValueError(f"no ONNX export for task {task!r}")


def _seq2seq_graphs(model, B: int, S: int, lengths: Tensor) -> list[GraphSpec]:
    _check_exportable(model)
    dec = model.decoder
    L, H = dec.num_layers, dec.hidden_size
    src = {"src": _ids(model.src_embed.lut.num_embeddings, B, S), "src_lengths": lengths}
    enc = EncoderGraph(model)
    with torch.no_grad():
        state = model.start(Batch(src))
    state_axes = {"h": [L, "batch", H], "c": [L, "batch", H]}
    new_axes = {f"new_{k}": v for k, v in state_axes.items()}  # an output may not share an input's name
    enc_out = dict(state_axes)
    if enc.attention:
        enc_out.update(memory=["batch", "source", state.memory.size(2)], mask=["batch", "source"],
                       keys=["batch", "source", state.keys.size(2)])
    step = DecoderStepGraph(model)
    ex = {"tokens": _ids(dec.out.out_features, B), "h": state.h, "c": state.c}
    ins = {"tokens": ["batch"], **state_axes}
    outs = {"log_probs": ["batch", dec.out.out_features], **new_axes}
    if step.feeding:
        ex["feed"] = torch.randn(B, dec.output_size)
        ins["feed"] = outs["new_feed"] = ["batch", dec.output_size]
    if step.attention:
        ex.update(memory=state.memory, mask=state.mask, keys=state.keys)
        # the source side may have fewer rows than the decoder (beam hypotheses share their sentence's row)
        ins.update({k: ["memory_rows", *enc_out[k][1:]] for k in ("memory", "mask", "keys")})
        outs["attention"] = ["batch", "source"]
    return [GraphSpec("encoder", enc, {"src": ["batch", "source"], "src_lengths": ["batch"]}, enc_out, src,
                      {"mask": "bool"}),
            GraphSpec("decoder", step, ins, outs, ex)]


def _lm_graphs(model, B: int, T: int) -> list[GraphSpec]:
    names = lm_state_names(model)
    if names == ("context",):
        ctx, E = model.rnn.context, model.embed.dim
        state_ex = {"context": torch.randn(B, ctx, E)}
        axes = {"context": ["batch", ctx, E]}
    else:
        L, H = model.rnn.num_layers, model.rnn.hidden_size
        state_ex = {n: torch.randn(L, B, H) * 0.5 for n in names}
        axes = {n: [L, "batch", H] for n in names}
    ex = {"tokens": _ids(model.vocab_size, B, T), **state_ex}
    specs = [GraphSpec("lm", LMGraph(model), {"tokens": ["batch", "time"], **axes},
                       {"logits": ["batch", "time", model.vocab_size], **{f"new_{k}": v for k, v in axes.items()}}, ex)]
    if model.cond is not None:
        specs.append(GraphSpec("init", LMInitGraph(model), {"cond": ["batch"]}, {"h": axes["h"]},
                               {"cond": torch.zeros(B, dtype=torch.long)}))
    return specs


# ------------------------------------------------------------------------------------------- export
def export_graph(spec: GraphSpec, path: Path) -> None:
    """Write ``spec``'s graph to ``path`` (dynamic axes: the str axes of its inputs and outputs)."""
    dynamic = {n: {i: a for i, a in enumerate(shape) if isinstance(a, str)}
               for n, shape in {**spec.inputs, **spec.outputs}.items()}
    spec.module.eval()
    args = tuple(spec.example[n] for n in spec.inputs)
    with torch.no_grad(), warnings.catch_warnings(), _quiet_stderr():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(spec.module, args, str(path), dynamo=False, opset_version=OPSET,
                          input_names=list(spec.inputs), output_names=list(spec.outputs), dynamic_axes=dynamic,
                          do_constant_folding=True)


@contextlib.contextmanager
def _quiet_stderr():
    """Keep the exporter's C++ notes (``prim::PackPadded`` has no shape inference: harmless, the LSTM op takes
    the lengths) off the terminal; they are written out after all if the export fails."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a captured stderr without a file descriptor
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        failed = True
        try:
            yield
            failed = False
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            if failed:
                tmp.seek(0)
                sys.stderr.write(tmp.read().decode("utf-8", "replace"))
