"""Sentiment classification (many-to-one), the task module (the contract: :mod:`seqnlp.tasks.base`).

Embeddings -> (Bi)LSTM -> pooling -> softmax (:class:`~seqnlp.tasks.classifier.SequenceClassifier`) over a word
tokenizer that also holds the text normalisation (:func:`seqnlp.data.classification.build_tokenizer`).

    pred = seqnlp.load("runs/sst2")
    pred.predict(["a gorgeous , witty film", ""])
    # [{"label": "positive", "probs": {"negative": 0.08, "positive": 0.92}}, {"label": None, "probs": None}]

A text without tokens (blank) gives ``{"label": None, "probs": None}``. :func:`evaluate` scores a split of the
model's own data config (accuracy, macro-F1, mean NLL ``loss``, confusion matrix: rows gold, columns
predicted); :func:`ensemble` averages the class probabilities of several models. An LM-pretraining checkpoint
(``RUN/pretrain``) loads too: :func:`evaluate` gives the language model's perplexity on the split's texts, and
``predict`` refuses (it has no classifier head).

Checkpoint facts (``config.json`` ``data``): ``labels``, ``preprocess`` (``max_len``, ``keep_head``), ``fold``;
LM-pretraining checkpoints ``labels``, ``stage`` and ``lm_args`` (:mod:`seqnlp.train.pretrain`).
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..config import ConfigError
from ..data import classification as cd
from ..data.errors import DataError
from ..data.loading import DataSpec
from ..data.tokenizers import Tokenizer
from ..data.word_vectors import normalize_word, read_embedding_init
from ..metrics import accuracy, confusion_matrix, macro_f1
from ..nn.embeddings import Embeddings
from ..nn.encoders import RNNEncoder
from ..train import checkpoint as ck
from ..train.device import autocast, pick_dtype
from ..train.loop import TrainConfig
from ..train.notes import silent
from ..train.pretrain import is_lm_checkpoint, lm_batches, lm_scores
from .base import as_inputs
from .bilm import EncoderLM
from .classifier import SequenceClassifier, pooling_parts

TASK = "sentiment"
TOKENIZER_FILE = "tokenizer.json"


# ------------------------------------------------------------------------------------------------ configs
@dataclass
class HubConfig:
    """The same dataset on the HuggingFace Hub (used with ``data.use_hub=true``)."""

    name: str = ""  # Hub id, e.g. stanfordnlp/sst2
    subset: str = ""
    splits: dict[str, str] = field(default_factory=dict)  # our split -> Hub split (train+validation joins)
    columns: dict[str, str] = field(default_factory=dict)  # text/label -> Hub column


@dataclass
class DataConfig:
    name: str = "sentiment/sst2"  # folder under $SEQNLP_DATA (or a path, or a Hub id)
    format: str = "auto"  # see seqnlp.data.loading.FORMATS (rt_polarity for the .pos/.neg pair)
    splits: dict[str, str] = field(default_factory=dict)  # our split -> file (empty: found by name)
    columns: dict[str, str] = field(default_factory=dict)  # text/label -> column (empty: guessed)
    hub: HubConfig = field(default_factory=HubConfig)
    use_hub: bool = False  # read data.hub instead of the local copy
    carve: dict[str, float] = field(default_factory=lambda: {"validation": 0.1})  # missing splits from train
    seed: int = 0  # of carve-outs, subsamples and folds
    labels: list[str] = field(default_factory=list)  # the known label set, in order (empty: train's labels)
    label_map: dict[str, str] = field(default_factory=dict)  # raw label value -> label name
    unknown_labels: str = "error"  # error | skip: labels outside the known set
    max_len: int = 0  # truncate longer texts to this many tokens (0: no limit)
    keep_head: int = 0  # of which the first keep_head tokens, the rest from the end
    train_limit: int = 0  # a seeded subsample of train (0: all)
    eval_limit: int = 0  # a seeded subsample of validation and test (0: all)
    cv_folds: int = 0  # K >= 2: K-fold cross-validation over train (+ any other splits)
    cv_validation: float = 0.1  # validation fraction of each fold's training part
    max_tokens: int = 4000  # padded tokens per training batch
    max_sentences: int = 64  # examples per training batch
    eval_max_tokens: int = 20000  # padded tokens per evaluation batch


@dataclass
class TokenizerConfig:
    vocab_size: int = 30000
    min_freq: int = 2
    lowercase: bool = True


@dataclass
class ModelConfig:
    """The classifier: the user's options, then the sizes training fills in from the data (``vocab_size``,
    ``num_classes``, ``pad_id``, ``unk_id``). The ``model`` block of a checkpoint's ``config.json``."""

    emb_size: int = 256
    hidden_size: int = 256  # per direction
    num_layers: int = 1
    cell: str = "lstm"  # lstm | gru | rnn
    bidirectional: bool = True
    pooling: str = "max+final"  # final | max | mean | attention, or several joined by '+'
    dropout: float = 0.5  # before the classifier head
    emb_dropout: float = 0.3
    rnn_dropout: float = 0.3  # on the encoder outputs (and between layers)
    word_dropout: float = 0.1  # replace tokens by <unk> while training
    adversarial: float = 0.0  # > 0: adversarial training on the embeddings (Miyato et al. 2017), this size
    packed: bool = False  # PackedSequence (true) or the padded run (false: same results, much faster on CPU)
    pretrained: str = ""  # word2vec-format vectors (recipes/word_vectors.py) that initialise the embeddings
    pretrained_max_words: int = 0  # read only the first N vectors (0: all)
    pretrained_extend_vocab: bool = True  # words with a vector join the vocabulary even when training lacks them
    vocab_size: int = 0  # from the tokenizer (filled in by training)
    num_classes: int = 0  # from the label set (filled in by training)
    pad_id: int = 0
    unk_id: int = 1


# what init_from takes from the checkpoint's model; the rest (dropouts, packed, adversarial...) from the config
ARCHITECTURE = ("vocab_size", "emb_size", "hidden_size", "num_layers", "cell", "bidirectional", "pooling",
                "pad_id", "unk_id")


@dataclass
class ExtraText:
    """Unlabelled text (only the text field is read)."""

    name: str = ""
    format: str = "auto"
    splits: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    limit: int = 0  # a seeded subsample of this many texts (0: all)


@dataclass
class PretrainConfig:
    enabled: bool = False
    own_text: bool = True  # use the task's training text (never the test or validation text)
    extra_text: list[ExtraText] = field(default_factory=list)
    max_len: int = 0  # truncation of LM texts (0: data.max_len)
    cutoffs: list[int] = field(default_factory=lambda: [2000, 10000])  # adaptive softmax clusters
    max_tokens: int = 8000
    max_sentences: int = 128
    val_texts: int = 2000  # LM validation texts (from the validation split, or held out of the LM text)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1, scheduler="linear", warmup_steps=200))


@dataclass
class DistillConfig:
    """Knowledge distillation (Hinton et al. 2015): the averaged class probabilities of trained sentiment models
    (``teachers``, at ``temperature``) on the training texts become soft targets beside the gold labels."""

    teachers: list[str] = field(default_factory=list)  # trained sentiment runs (or checkpoints); empty: off
    weight: float = 0.5  # loss = (1 - weight) CE(gold) + weight T^2 CE(teachers' probabilities)
    temperature: float = 1.0  # T: softens teacher and student distributions alike
    # a transfer set (Hinton et al.; Tang et al. 2019): unlabelled texts the teachers label, trained on with the
    # soft targets only, e.g. IMDB reviews cut into sentences
    extra_text: list[ExtraText] = field(default_factory=list)
    sentences: bool = True  # cut the extra texts into sentences of 3..max_words words
    max_words: int = 50
    extra_limit: int = 0  # a seeded subsample of this many extra texts (after the cut; 0: all)


@dataclass
class Config:
    task: str = TASK
    output_dir: str = "runs/sentiment"
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(eval_metric="accuracy", eval_mode="max"))
    init_from: str = ""  # a trained sentiment run/checkpoint (or LM-pretraining checkpoint) to fine-tune
    distill: DistillConfig = field(default_factory=DistillConfig)
    infer_precision: str = "fp32"  # evaluation and prediction: fp32 | bf16 | fp16 | auto


# -------------------------------------------------------------------------------------------------- model
def build_model(m: ModelConfig, *, distill_weight: float = 0.0, distill_temperature: float = 1.0
                ) -> SequenceClassifier:
    """The one place where a model config becomes modules (``distill_*``: the training run's soft-target mix)."""
    try:
        pooling_parts(m.pooling)
    except ValueError as e:
        raise ConfigError(f"model.pooling: {e}") from None
    embed = Embeddings(m.vocab_size, m.emb_size, m.pad_id, m.emb_dropout)
    encoder = RNNEncoder(m.emb_size, m.hidden_size, m.num_layers, m.cell, m.bidirectional, m.rnn_dropout,
                         packed=m.packed)
    return SequenceClassifier(embed, encoder, m.num_classes, m.pooling, m.dropout, m.word_dropout, m.unk_id,
                              m.pad_id, adv_eps=m.adversarial, distill_weight=distill_weight,
                              distill_temperature=distill_temperature)


def build_lm(model: SequenceClassifier, m: ModelConfig, cutoffs: list[int]) -> EncoderLM:
    """The LM-pretraining model: a language-model head on ``model``'s own embeddings and encoder."""
    return EncoderLM(model.embed, model.encoder, m.vocab_size, cutoffs, pad_id=m.pad_id)


def read_pretrained(m: ModelConfig) -> tuple[list[str], torch.Tensor]:
    """``m.pretrained``'s words (as :func:`normalize_word` keys them) and vectors scaled to unit variance;
    read once per process (cross-validation folds share them)."""
    return _read_pretrained_cached(m.pretrained, m.emb_size, m.pretrained_max_words)


@functools.lru_cache(maxsize=2)
def _read_pretrained_cached(path: str, dim: int, max_words: int) -> tuple[list[str], torch.Tensor]:
    return read_embedding_init(path, dim, "model.emb_size", key=normalize_word, max_words=max_words)


def load_pretrained(model: SequenceClassifier, tok: Tokenizer, words: list[str], vectors: torch.Tensor) -> int:
    """Copy the vector of each vocabulary entry (looked up by :func:`normalize_word`) into the embedding
    table; returns how many rows were filled (the others keep their random initialisation)."""
    index = {w: i for i, w in enumerate(words)}
    rows, src = [], []
    for word, i in tok.vocab().items():
        k = index.get(normalize_word(word))
        if k is not None and i not in (tok.pad_id, tok.unk_id):
            rows.append(i)
            src.append(k)
    with torch.no_grad():
        model.embed.weight[torch.tensor(rows, dtype=torch.long)] = vectors[torch.tensor(src, dtype=torch.long)]
    return len(rows)


# --------------------------------------------------------------------------------------------------- data
def data_spec(d: DataConfig, carve: bool = True) -> DataSpec:
    """The DataSpec of the local copy, or of ``d.hub`` when ``d.use_hub``."""
    if d.use_hub:
        if not d.hub.name:
            raise ConfigError("data.use_hub=true needs data.hub.name (a Hub id)")
        return DataSpec(d.hub.name, subset=d.hub.subset or None, splits=dict(d.hub.splits),
                        columns=dict(d.hub.columns), carve=dict(d.carve) if carve else {}, seed=d.seed)
    return DataSpec(d.name, format=d.format, splits=dict(d.splits), columns=dict(d.columns),
                    carve=dict(d.carve) if carve else {}, seed=d.seed)


def data_name(d: DataConfig) -> str:
    return d.hub.name if d.use_hub else d.name


def check_config(cfg: Config) -> None:
    """A ConfigError for an option that cannot be right whatever the data (load_data calls it before reading)."""
    from ..config import check_choice, check_parsed, check_run, check_train_config
    from ..data.loading import check_data_config
    from ..nn.encoders import CELLS

    extra = [(f"{b}.extra_text[{i}]", x) for b in ("pretrain", "distill")
             for i, x in enumerate(getattr(cfg, b).extra_text)]
    for key, d in [("data", cfg.data), ("data.hub", cfg.data.hub), *extra]:
        check_data_config(d, key)
    check_choice(cfg.data.unknown_labels, ("error", "skip"), "data.unknown_labels")
    check_choice(cfg.model.cell, CELLS, "model.cell")
    check_parsed(pooling_parts, cfg.model.pooling, "model.pooling")
    check_run(cfg)
    check_train_config(cfg.pretrain.train, "pretrain.train")


def load_data(cfg: Config, note=silent) -> tuple[dict[str, list[cd.Example]], list[str]]:
    """Checked ``{split: [(text, label)]}`` (train, validation, test) and the label set; with
    ``data.cv_folds`` everything is in ``train``. ``note`` hears what was skipped."""
    check_config(cfg)
    d = cfg.data
    cv = d.cv_folds >= 2
    splits, labels = cd.load_labelled(data_spec(d, carve=not cv), d.labels, dict(d.label_map), d.unknown_labels,
                                      note)
    if cv:
        splits = {"train": [ex for examples in splits.values() for ex in examples]}
    else:
        missing = [s for s in ("validation", "test") if s not in splits]
        if missing:
            raise DataError(f"no {' or '.join(missing)} split: name the files in data.splits or carve them out of "
                            f"train with data.carve (e.g. data.carve.test=0.1)", data_name(d))
        splits = {s: splits[s] for s in ("train", "validation", "test")}
    splits["train"] = cd.subsample(splits["train"], d.train_limit, d.seed)
    for s in ("validation", "test"):
        if s in splits:
            splits[s] = cd.subsample(splits[s], d.eval_limit, d.seed)
    return splits, labels


def split_examples(cfg: Config, labels: list[str], fold: int | None, split: str) -> list[cd.Example]:
    """The raw examples of ``split`` of ``cfg``'s data (fold ``fold`` of its cross-validation, if any)."""
    cfg = replace(cfg, data=replace(cfg.data, labels=list(cfg.data.labels or labels)))
    splits, _ = load_data(cfg)
    d = cfg.data
    if d.cv_folds >= 2:
        splits = cd.cv_fold(splits["train"], d.cv_folds, fold or 0, d.cv_validation, d.seed)
    if split not in splits:
        raise ConfigError(f"no split {split!r}; choose one of {sorted(splits)}")
    return splits[split]


# -------------------------------------------------------------------------------------------- scoring
@torch.no_grad()
def class_probs(model: SequenceClassifier, seqs: list[list[int]], pad_id: int, max_tokens: int,
                desc: str = "scoring", progress: bool = True, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Class probabilities (N, C) of token-id lists, in input order (batched by length; ``dtype``: autocast)."""
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))  # an onnxruntime model has none
    it = cd.batches([(s, -1) for s in seqs], [len(s) for s in seqs], cd.collate_classify(pad_id),
                    max_tokens=max_tokens, max_sentences=None, shuffle=False)
    probs = torch.empty(len(seqs), model.num_classes)
    for batch in tqdm(it, desc=desc, leave=False, disable=not progress or len(it) < 4):
        with autocast(device, dtype):
            probs[torch.as_tensor(batch.meta["indices"])] = model.predict(batch.to(device)).float().cpu()
    model.train(was_training)
    return probs


def classification_metrics(gold: list[int], probs: torch.Tensor, labels: list[str]) -> dict:
    """accuracy, macro_f1, loss (mean NLL of the gold labels), n, labels, confusion_matrix (rows gold)."""
    pred = probs.argmax(-1).tolist()
    g = [labels[i] for i in gold]
    p = [labels[i] for i in pred]
    nll = -probs[torch.arange(len(gold)), torch.as_tensor(gold)].clamp_min(1e-12).log().mean()
    return {"accuracy": accuracy(g, p), "macro_f1": macro_f1(g, p, labels), "loss": float(nll), "n": len(gold),
            "labels": list(labels), "confusion_matrix": confusion_matrix(g, p, labels)}


# --------------------------------------------------------------------------------------------- predictors
class Predictor:
    """A trained sentiment model with its tokenizer and labels (what :func:`seqnlp.load` returns).

    ``predict(texts)`` -> one ``{"label", "probs"}`` per text (None and None for a text without tokens); a text
    longer than the model's ``data.max_len`` tokens is truncated (its first ``keep_head`` and last tokens), and
    ``predict`` says how many were on stderr, once per call; ``probs(texts)`` -> (N, C) class probabilities (NaN
    rows for texts without tokens). ``last_truncated``: how many texts the last call truncated.
    """

    def __init__(self, model: SequenceClassifier, tokenizer: Tokenizer, labels: list[str], config: Config,
                 checkpoint: Path, *, max_len: int = 0, keep_head: int = 0, fold: int | None = None,
                 dtype: torch.dtype | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.config, self.checkpoint = config, checkpoint
        self.max_len, self.keep_head, self.fold = max_len, keep_head, fold
        self.dtype = dtype
        self.last_truncated = 0

    def encode(self, texts: list[str]) -> list[list[int]]:
        ids, self.last_truncated = cd.encode_texts(self.tokenizer, texts, self.max_len, self.keep_head)
        return ids

    def probs(self, texts: list[str], max_tokens: int | None = None, progress: bool = False) -> torch.Tensor:
        ids = self.encode(texts)
        keep = [i for i, x in enumerate(ids) if x]
        out = torch.full((len(texts), len(self.labels)), float("nan"))
        if keep:
            out[keep] = class_probs(self.model, [ids[i] for i in keep], self.tokenizer.pad_id,
                                    max_tokens or self.config.data.eval_max_tokens, "predict", progress, self.dtype)
        return out

    def predict(self, inputs, progress: bool = False) -> list[dict]:
        texts = as_inputs(inputs)
        texts = [t if isinstance(t, str) else " ".join(t) for t in texts]
        probs = self.probs(texts, progress=progress)
        if self.last_truncated:
            print(f"note: {self.last_truncated} of {len(texts)} inputs were longer than data.max_len={self.max_len} "
                  f"tokens and were truncated (to their first {min(self.keep_head, self.max_len)} and last "
                  f"{self.max_len - min(self.keep_head, self.max_len)} tokens)", file=sys.stderr)
        res = []
        for row in probs.tolist():
            if row[0] != row[0]:  # NaN: no tokens
                res.append({"label": None, "probs": None})
            else:
                best = max(range(len(row)), key=row.__getitem__)
                res.append({"label": self.labels[best], "probs": dict(zip(self.labels, row))})
        return res


class LMPredictor:
    """An LM-pretraining checkpoint (``RUN/pretrain``): :func:`evaluate` gives its perplexity; it has no
    classifier head, so ``predict`` is a CheckpointError."""

    def __init__(self, lm: EncoderLM, tokenizer: Tokenizer, labels: list[str], config: Config, checkpoint: Path,
                 dtype: torch.dtype | None = None):
        self.lm, self.tokenizer, self.labels = lm.eval(), tokenizer, list(labels)
        self.config, self.checkpoint, self.dtype, self.fold = config, checkpoint, dtype, None

    def predict(self, inputs, progress: bool = False) -> list[dict]:
        as_inputs(inputs)
        raise ck.CheckpointError(f"{self.checkpoint} is an LM-pretraining checkpoint, not a classifier: use the run "
                                 "directory (or fine-tune from it with init_from=...); seqnlp evaluate gives its "
                                 "perplexity")


def load_predictor(ckpt: Path, stored: ck.Stored, cfg: Config, device: torch.device) -> Predictor | LMPredictor:
    m = stored.model_config(ModelConfig)
    tok = Tokenizer.load(ckpt / TOKENIZER_FILE)
    dtype = pick_dtype(cfg.infer_precision, device)
    model = build_model(m)
    if is_lm_checkpoint(stored.data):
        lm = build_lm(model, m, list(stored.data["lm_args"]["cutoffs"]))
        ck.load_weights(lm, ckpt)
        return LMPredictor(lm.to(device), tok, stored.data.get("labels") or [], cfg, ckpt, dtype)
    ck.load_weights(model, ckpt)
    pre = stored.data.get("preprocess") or {}
    return Predictor(model.to(device), tok, stored.data["labels"], cfg, ckpt, max_len=pre.get("max_len", 0),
                     keep_head=pre.get("keep_head", 0), fold=stored.data.get("fold"), dtype=dtype)


# ------------------------------------------------------------------------------------------- evaluation
def _score(pred: Predictor, d: DataConfig, examples: list[cd.Example], split: str) -> tuple[torch.Tensor, list[int]]:
    """Class probabilities of ``examples`` under ``pred`` (its own tokenizer) and the gold label ids."""
    encoded = cd.encode_examples(pred.tokenizer, examples, pred.labels, d.max_len, d.keep_head, split, silent)
    probs = class_probs(pred.model, [x for x, _ in encoded], pred.tokenizer.pad_id, d.eval_max_tokens, split,
                        dtype=pred.dtype)
    return probs, [y for _, y in encoded]


def evaluate(predictor: Predictor | LMPredictor, split: str) -> dict:
    """Accuracy, macro-F1, loss and confusion matrix on ``split`` of the predictor's data config; for an
    LM-pretraining checkpoint the language model's loss and perplexity on the split's texts (labels unused),
    cut as its pretraining cut them."""
    cfg = predictor.config
    examples = split_examples(cfg, predictor.labels, predictor.fold, split)
    if isinstance(predictor, LMPredictor):
        return _evaluate_lm(predictor, [t for t, _ in examples], split)
    probs, gold = _score(predictor, cfg.data, examples, split)
    return {**classification_metrics(gold, probs, predictor.labels), "split": split, "data": data_name(cfg.data)}


def _evaluate_lm(pred: LMPredictor, texts: list[str], split: str) -> dict:
    d, p, tok = pred.config.data, pred.config.pretrain, pred.tokenizer
    ids = [x for x in cd.encode_texts(tok, texts, p.max_len or d.max_len, d.keep_head)[0] if x]
    if not ids:
        raise DataError(f"split {split!r} has no texts with tokens to score")
    batches = lm_batches(ids, cd.collate_lm(tok.pad_id, tok.bos_id, tok.eos_id), max_tokens=d.eval_max_tokens)
    scores = lm_scores(pred.lm, batches, progress=True, dtype=pred.dtype)
    return {"split": split, "texts": len(ids), "tokens": sum(len(x) for x in ids), **scores, "data": data_name(d)}


def ensemble(predictors: list[Predictor], split: str) -> dict:
    """The averaged class probabilities of ``predictors`` on ``split`` of the first one's data config. Each
    member reads the texts with its own tokenizer, so members may differ in vocabulary, vectors, sizes or
    seeds; they must share the label set. Every member's own score is kept (``members``)."""
    first = predictors[0]
    for p in predictors:
        if isinstance(p, LMPredictor):
            raise ConfigError(f"ensemble members must be classifiers: {p.checkpoint} is an LM-pretraining checkpoint")
        if p.labels != first.labels:
            raise ConfigError(f"ensemble members must share the label set: {p.checkpoint} has {p.labels}, "
                              f"{first.checkpoint} has {first.labels}")
    d = first.config.data
    examples = split_examples(first.config, first.labels, first.fold, split)
    total, gold, members = None, None, []
    for p in predictors:
        probs, g = _score(p, d, examples, split)
        if gold is not None and g != gold:
            raise DataError(f"ensemble member {p.checkpoint} dropped different examples of split {split!r} than "
                            f"{first.checkpoint}")
        gold = g
        one = classification_metrics(g, probs, p.labels)
        members.append({"model": str(p.checkpoint), "accuracy": one["accuracy"], "macro_f1": one["macro_f1"]})
        total = probs if total is None else total + probs
    metrics = classification_metrics(gold, total / len(predictors), first.labels)
    accs = torch.tensor([m["accuracy"] for m in members], dtype=torch.float64)
    metrics.update(split=split, data=data_name(d), members=members, member_accuracy_mean=float(accs.mean()),
                   member_accuracy_std=float(accs.std()) if len(accs) > 1 else 0.0)
    return metrics


# ------------------------------------------------------------------------------------------------- output
SUMMARY_KEYS = ("split", "accuracy", "accuracy_std", "macro_f1", "n", "member_accuracy_mean", "member_accuracy_std",
                "texts", "tokens", "loss", "ppl", "confusion_matrix")


def summary(metrics: dict) -> str:
    """What ``seqnlp evaluate`` / ``ensemble`` print: the headline metrics as one JSON line."""
    return json.dumps({k: metrics[k] for k in SUMMARY_KEYS if k in metrics})


def format_text(result: dict) -> str:
    """The label (empty for a text without tokens)."""
    return result["label"] or ""


def write_tsv(sink, lines: list[str], results: list[dict], predictor: Predictor) -> None:
    """``--format tsv``: a header ``label  p_<label>...  text``, then one row per input (empty label and
    probabilities for a text without tokens)."""
    labels = predictor.labels
    sink.write("\t".join(["label", *(f"p_{lab}" for lab in labels), "text"]) + "\n")
    for line, r in zip(lines, results):
        probs = [f"{r['probs'][lab]:.4f}" if r["probs"] else "" for lab in labels]
        sink.write("\t".join([r["label"] or "", *probs, " ".join(line.replace("\t", " ").splitlines())]) + "\n")


OUTPUT_FORMATS = {"tsv": write_tsv}

__all__ = ["ARCHITECTURE", "Config", "DataConfig", "DistillConfig", "ExtraText", "HubConfig", "LMPredictor",
           "ModelConfig", "OUTPUT_FORMATS", "PretrainConfig", "Predictor", "TASK", "TOKENIZER_FILE",
           "TokenizerConfig", "build_lm", "build_model", "class_probs", "classification_metrics", "data_name",
           "data_spec", "ensemble", "evaluate", "format_text", "load_data", "load_predictor", "load_pretrained",
           "read_pretrained", "split_examples", "summary"]
