"""Exported models on onnxruntime: the sessions, and each task's own predictor driving them.

An export directory (``seqnlp export``) holds ``config.json`` (the checkpoint's, plus an ``export`` block naming
every graph with its inputs, outputs and sha256), the tokenizer / vocabulary files and the ``.onnx`` graphs.
:func:`load_predictor` checks every graph's digest (a truncated, altered or missing file is a
:class:`~seqnlp.train.checkpoint.CheckpointError` naming it), opens the sessions and returns the task's own
predictor class -- ``Predictor``, ``TaggerPredictor``, ``Translator``, ``Responder``, ``CharGenerator`` -- with
an onnxruntime model in place of the torch one. The models here (:class:`OrtClassifier`, :class:`OrtTagger`,
:class:`OrtSeq2Seq`, :class:`OrtLM`) offer what the task code calls on a model (``predict``, ``start`` /
``step`` / ``reorder``, ``forward``, ``init_state`` ...), so tokenisation, featurisation, batching, label maps,
Viterbi's output handling, greedy / beam search / sampling and formatting are the task modules' own, unchanged.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..nn.char_encoder import by_length_groups
from ..nn.decoders import DecoderState
from ..tasks import get_task
from ..train import checkpoint as ck

__all__ = ["OrtClassifier", "OrtGraph", "OrtLM", "OrtSeq2Seq", "OrtTagger", "load_predictor", "open_graphs",
           "verify_graphs"]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_graphs(folder: Path, export: dict) -> None:
    """Every graph the export block lists is in ``folder`` with its recorded sha256."""
    graphs = export.get("graphs")
    if not isinstance(graphs, dict) or not graphs:
        raise ck.CheckpointError(f"{Path(folder) / ck.CONFIG}: its export block lists no graphs")
    for name, g in graphs.items():
        f = Path(folder) / str(g.get("file", ""))
        if not f.is_file():
            raise ck.CheckpointError(f"missing {f} (graph {name!r} of the export's config.json)")
        got = sha256(f)
        if got != g.get("sha256"):
            raise ck.CheckpointError(f"{f} is truncated or altered: its sha256 {got[:12]}... ({f.stat().st_size} "
                                     f"bytes) differs from the {str(g.get('sha256'))[:12]}... recorded by seqnlp "
                                     "export; export the model again")


class OrtGraph:
    """One onnxruntime session: ``graph(name=tensor, ...)`` -> ``{output name: tensor}`` (CPU torch tensors,
    sharing memory with onnxruntime's outputs). Inputs the graph does not take are ignored."""

    def __init__(self, path: Path, threads: int = 0):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(threads, 0)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # threads that spin while waiting cost much on shared cores: the same policy as torch's (seqnlp.cli sets
        # OMP_WAIT_POLICY=PASSIVE unless the environment says otherwise)
        passive = os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0" if passive else "1")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail / InvalidProtobuf / ... types
            raise ck.CheckpointError(f"onnxruntime cannot load {path}: {str(e).splitlines()[0]}") from None
        self.path = Path(path)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, **tensors: Tensor | None) -> dict[str, Tensor]:
        feed = {n: np.ascontiguousarray(tensors[n].detach().cpu().numpy()) for n in self.inputs}
        return {n: torch.from_numpy(v) for n, v in zip(self.outputs, self.session.run(None, feed))}


def open_graphs(folder: Path, export: dict, threads: int = 0) -> dict[str, OrtGraph]:
    verify_graphs(folder, export)
    return {name: OrtGraph(Path(folder) / g["file"], threads) for name, g in export["graphs"].items()}


class _OrtModule(nn.Module):
    """A model without torch parameters (``eval()`` / ``train()`` / ``training`` as the task code expects)."""

    def __init__(self, graphs: dict[str, OrtGraph]):
        super().__init__()
        self.graphs = graphs


# ------------------------------------------------------------------------------------------- task models
class OrtClassifier(_OrtModule):
    """:class:`~seqnlp.tasks.classifier.SequenceClassifier`'s ``forward`` (logits) and ``predict`` (probs)."""

    def __init__(self, graphs, num_classes: int):
        super().__init__(graphs)
        self.num_classes = num_classes

    def forward(self, batch) -> Tensor:
        return self.graphs["classifier"](src=batch.src, src_lengths=batch.src_lengths)["logits"]

    def predict(self, batch) -> Tensor:
        return torch.softmax(self(batch).float(), dim=-1)


class OrtTagger(_OrtModule):
    """:class:`~seqnlp.tasks.tagger.SequenceTagger` as :func:`~seqnlp.tasks.pos_tagging.tag_encoded` uses it:
    ``word_table_features`` runs the ``chars`` graph over the input's word table (a BiLSTM's words grouped by
    length, as in eager torch), batches then carry those features; ``predict`` -> tag ids."""

    def __init__(self, graphs, char_kind: str | None = None):
        super().__init__(graphs)
        self.char_kind = char_kind

    def word_table_features(self, chars: Tensor, lengths: Tensor) -> Tensor | None:
        if "chars" not in self.graphs:
            return None
        graph = self.graphs["chars"]

        def encode(idx: Tensor | None, lens: Tensor) -> Tensor:
            rows = chars if idx is None else chars[idx]
            return graph(chars=rows[:, : int(lens.max())], char_lengths=lens)["char_feats"]

        lengths = lengths.clamp(min=1)
        if self.char_kind == "lstm":
            return by_length_groups(lengths, encode)
        return encode(None, lengths)

    def _run(self, batch) -> dict[str, Tensor]:
        graph = self.graphs["tagger"]
        feed = {n: getattr(batch, n) for n in graph.inputs if n != "char_feats"}
        if "char_feats" in graph.inputs:  # precomputed for the whole table (inference), or this batch's words
            feed["char_feats"] = batch.char_feats if "char_feats" in batch else \
                self.word_table_features(batch.chars, batch.char_lengths)
        return graph(**feed)

    def forward(self, batch) -> Tensor:
        return self._run(batch)["emissions"]

    def predict(self, batch) -> Tensor:
        return self._run(batch)["tags"]

    @staticmethod
    def mask(batch) -> Tensor:
        T = batch.words.size(1)
        return torch.arange(T)[None, :] < batch.lengths[:, None]


class OrtSeq2Seq(_OrtModule):
    """The search protocol of :class:`~seqnlp.tasks.seq2seq.Seq2Seq` (``start``, ``step``, ``reorder``) on an
    encoder graph and a one-step decoder graph; the state is a :class:`~seqnlp.nn.decoders.DecoderState` whose
    ``reorder`` beam search uses as with torch. ``forward`` (teacher forced through the step graph) gives the
    log-probabilities and attention of a target, and ``loss`` its per-token NLL (dialogue perplexity)."""

    def __init__(self, graphs, feed_size: int = 0, pad_id: int = 0):
        super().__init__(graphs)
        self.feed_size, self.pad_id = feed_size, pad_id

    def start(self, batch) -> DecoderState:
        out = self.graphs["encoder"](src=batch.src, src_lengths=batch.src_lengths)
        h = out["h"]
        feed = h.new_zeros(h.shape[1], self.feed_size) if self.feed_size else None
        return DecoderState(h, out["c"], feed, out.get("memory"), out.get("mask"), out.get("keys"),
                            torch.arange(h.shape[1]))

    def step_with_attention(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState, Tensor | None]:
        out = self.graphs["decoder"](tokens=tokens, h=state.h, c=state.c, feed=state.feed, memory=state.memory,
                                     mask=state.mask, keys=state.keys)
        new = DecoderState(out["new_h"], out["new_c"], out.get("new_feed"), state.memory, state.mask, state.keys,
                           state.src_id)
        return out["log_probs"], new, out.get("attention")

    def step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        log_probs, state, _ = self.step_with_attention(tokens, state)
        return log_probs, state

    def reorder(self, state: DecoderState, index: Tensor) -> DecoderState:
        return state.reorder(index)

    def merge(self, states: list[DecoderState]) -> DecoderState:
        return DecoderState.merge(states)

    def forward(self, batch) -> tuple[Tensor, Tensor | None]:
        state = self.start(batch)
        steps, weights = [], []
        for t in range(batch.tgt_in.size(1)):
            lp, state, w = self.step_with_attention(batch.tgt_in[:, t], state)
            steps.append(lp)
            weights.append(w)
        return torch.stack(steps, 1), (torch.stack(weights, 1) if weights and weights[0] is not None else None)

    def loss(self, batch) -> tuple[Tensor, int]:
        log_probs, _ = self(batch)
        keep = batch.tgt_out != self.pad_id
        nll = -log_probs.gather(2, batch.tgt_out.unsqueeze(2)).squeeze(2)[keep]
        return nll.sum() / max(len(nll), 1), len(nll)


class OrtLM(_OrtModule):
    """:class:`~seqnlp.tasks.lm.LanguageModel`'s ``init_state``, ``forward`` (a (B, T) block, the state carried)
    and ``step`` on the ``lm`` graph (and ``init`` for a conditioned model)."""

    def __init__(self, graphs, state_names: list[str], state_shape: list, conditioned: bool):
        super().__init__(graphs)
        self.state_names = list(state_names)
        self.state_shape = state_shape  # e.g. [layers, "batch", hidden] or ["batch", context, embed]
        self.cond = conditioned or None  # the task code asks `model.cond is not None`
        self.rnn = None  # no torch LSTM: `seqnlp gates` needs the run directory
        self.state_dim = self.state_shape.index("batch")

    def init_state(self, batch_size: int, cond: Tensor | None = None):
        if cond is None or not self.cond:
            if self.cond:
                raise ValueError("this model was trained with conditions: give cond (B,)")
            return None
        h = self.graphs["init"](cond=cond)["h"]
        return (h, torch.zeros_like(h)) if self.state_names == ["h", "c"] else h

    def _zeros(self, batch_size: int) -> tuple[Tensor, ...]:
        shape = [batch_size if a == "batch" else int(a) for a in self.state_shape]
        return tuple(torch.zeros(shape) for _ in self.state_names)

    def forward(self, inputs: Tensor, state=None):
        parts = self._zeros(inputs.size(0)) if state is None else state if isinstance(state, tuple) else (state,)
        out = self.graphs["lm"](tokens=inputs, **dict(zip(self.state_names, parts)))
        new = tuple(out[f"new_{n}"] for n in self.state_names)
        return out["logits"], new if len(new) > 1 else new[0]

    def step(self, tokens: Tensor, state):
        logits, state = self(tokens[:, None], state)
        return torch.log_softmax(logits[:, 0].float(), -1), state

    def reorder(self, state, index: Tensor):
        if isinstance(state, tuple):
            return tuple(s.index_select(self.state_dim, index) for s in state)
        return state.index_select(self.state_dim, index)


# ------------------------------------------------------------------------------------------- predictors
def _shape_of(export: dict, graph: str, name: str, outputs: bool = False) -> list:
    for io in export["graphs"][graph]["outputs" if outputs else "inputs"]:
        if io["name"] == name:
            return io["shape"]
    raise ck.CheckpointError(f"the export's config.json: graph {graph!r} has no {name!r}")


def load_predictor(folder: Path, stored: ck.Stored, cfg, threads: int = 0):
    """The task's predictor on the graphs of export directory ``folder`` (``stored``: its config.json read,
    ``cfg``: its run config with the caller's overrides)."""
    folder = Path(folder)
    export = stored.export or {}
    if export.get("format") != "onnx":
        raise ck.CheckpointError(f"{folder / ck.CONFIG}: export format {export.get('format')!r}; this seqnlp runs "
                                 "'onnx' exports")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ck.CheckpointError(f"{folder} is an ONNX export: install onnxruntime (pip install "
                                 "'seqnlp[onnx]') to run it") from None
    if cfg.infer_precision not in ("fp32", "auto"):
        print(f"note: {folder} runs its exported graphs ({export.get('quantize') or 'fp32'}); "
              f"infer_precision={cfg.infer_precision} does not apply", file=sys.stderr)
    cfg.infer_precision = "fp32"  # the task code's autocast stays off: onnxruntime runs the graphs as exported
    graphs = open_graphs(folder, export, threads)
    cpu = torch.device("cpu")
    task = stored.task
    api = get_task(task).api
    if task == "sentiment":
        from ..data.tokenizers import Tokenizer

        model = OrtClassifier(graphs, len(stored.data["labels"]))
        pre = stored.data.get("preprocess") or {}
        return api.Predictor(model, Tokenizer.load(folder / api.TOKENIZER_FILE), stored.data["labels"], cfg, folder,
                             max_len=pre.get("max_len", 0), keep_head=pre.get("keep_head", 0),
                             fold=stored.data.get("fold"))
    if task == "pos_tagging":
        from ..data.tagging import Featurizer

        feats = Featurizer.load(folder, stored.data["tags"], cfg.data.max_word_len, cfg.data.normalize_words)
        return api.TaggerPredictor(OrtTagger(graphs, stored.model.get("char")), feats, cfg, cpu, folder)
    if task in ("translation", "dialogue"):
        from ..data.seq2seq import load_tokenizers
        from ..data.tokenizers import Tokenizer

        feed = _shape_of(export, "decoder", "feed")[1] if "feed" in graphs["decoder"].inputs else 0
        model = OrtSeq2Seq(graphs, int(feed), int(stored.model.get("pad_id", 0)))
        if task == "translation":
            src_tok, tgt_tok = load_tokenizers(folder)
            return api.Translator(model, src_tok, tgt_tok, cfg, folder, cpu)
        tok = Tokenizer.load(folder / api.TOKENIZER)
        return api.Responder(model, tok, tok, cfg, folder, cpu)
    if task == "char_generator":
        from ..data.chars import CharCodec
        from ..data.tokenizers import Tokenizer

        names = [n for n in graphs["lm"].inputs if n != "tokens"]
        model = OrtLM(graphs, names, _shape_of(export, "lm", names[0]), "init" in graphs)
        codec = CharCodec(Tokenizer.load(folder / api.TOKENIZER_FILE))
        return api.CharGenerator(model, codec, stored.data["mode"], stored.data.get("conditions", []), cpu, cfg,
                                 folder)
    raise ck.CheckpointError(f"{folder}: no ONNX runtime for task {task!r}")
