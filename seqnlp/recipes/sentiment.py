"""Sentiment classification (many-to-one): embeddings → (Bi)LSTM → pooling → classifier.

    python recipes/sentiment.py --config recipes/configs/sentiment/sst2.yaml [key.sub=value ...]
    seqnlp predict --model runs/sst2 --input reviews.txt        # or text on stdin
    seqnlp evaluate --model runs/sst2 --split validation
    python recipes/sentiment.py --mode ensemble --model runs/a --ensemble runs/b,runs/c --split test

Data come from a local folder under ``$SEQNLP_DATA`` (``data.name``) or, with ``data.use_hub=true``, from the Hub
id and column mapping in ``data.hub``. Long texts are truncated to ``data.max_len`` tokens (head + tail);
``data.cv_folds=K`` runs K-fold cross-validation and reports mean ± std.

Two ways to start from more than random weights:

* ``init_from=DIR`` fine-tunes a trained sentiment model (or an LM-pretraining checkpoint) on this config's
  data: tokenizer and architecture come from the checkpoint; a different label set re-initialises only the
  classifier head (said in the log).
* ``pretrain.enabled=true`` first trains the classifier's own embeddings and encoder as a (bidirectional)
  language model on the training text, labels unused, plus any ``pretrain.extra_text`` (Dai & Le 2015;
  ULMFiT), then fine-tunes the whole classifier from it (:mod:`seqnlp.tasks.bilm`). With both, and
  ``init_from`` an LM-pretraining checkpoint, the LM stage continues that language model (softmax included)
  on this config's LM text, e.g. a general movie-review LM fine-tuned on SST-2's phrases (ULMFiT's stage 2).

``distill.teachers=[DIR, ...]`` adds knowledge distillation: the trained models' averaged class probabilities on
the training texts become soft targets beside the gold labels (``distill.weight``, ``distill.temperature``).

``train`` ends by scoring the best checkpoint on the test split: ``output_dir/metrics.json`` holds ``accuracy``,
``macro_f1`` and the confusion matrix (rows gold, columns predicted).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..config import ConfigError, from_dict, to_dict
from ..data.errors import DataError
from ..data.loading import DataSpec, load_splits
from ..data.readers import open_text
from ..data.tokenizers import Tokenizer
from ..data.word_vectors import normalize_word, read_embedding_init
from ..metrics import accuracy, confusion_matrix, macro_f1
from ..nn.embeddings import Embeddings
from ..nn.encoders import RNNEncoder
from ..tasks.bilm import EncoderLM
from ..tasks.classifier import SequenceClassifier, pooling_parts
from ..train import checkpoint as ck
from ..train.device import pick_device, seed_everything, set_threads
from ..train.loop import TrainConfig, Trainer
from . import _sentiment_data as sd
from ._common import config_name, prepare_run, recipe_main, record_result, save_result_copy, write_json

TASK = "sentiment"
TOKENIZER_FILE = "tokenizer.json"
LM_STAGE = "lm_pretraining"


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


@dataclass
class ExtraText:
    """Unlabelled text for LM pretraining (only the text field is read)."""

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
    record: bool = False  # also write results/sentiment/<record_name or config-name>.json
    record_name: str = ""  # e.g. sst2_vectors_seed2 for a seed of sst2_vectors.yaml


# -------------------------------------------------------------------------------------------------- model
def build_model(vocab_size: int, num_classes: int, *, emb_size: int, hidden_size: int, num_layers: int = 1,
                cell: str = "lstm", bidirectional: bool = True, pooling: str = "max", dropout: float = 0.5,
                emb_dropout: float = 0.3, rnn_dropout: float = 0.3, word_dropout: float = 0.0, packed: bool = False,
                pad_id: int = 0, unk_id: int = 1, adversarial: float = 0.0) -> SequenceClassifier:
    """The one place where model options become modules (``model_args`` in the checkpoint are its kwargs)."""
    embed = Embeddings(vocab_size, emb_size, pad_id, emb_dropout)
    encoder = RNNEncoder(emb_size, hidden_size, num_layers, cell, bidirectional, rnn_dropout, packed=packed)
    return SequenceClassifier(embed, encoder, num_classes, pooling, dropout, word_dropout, unk_id, pad_id,
                              adv_eps=adversarial)


_REGULARISATION = ("dropout", "emb_dropout", "rnn_dropout", "word_dropout", "packed", "adversarial")  # not architecture


def model_args(m: ModelConfig, tok: Tokenizer, num_classes: int) -> dict:
    pooling_parts(m.pooling)  # fail early on a bad name
    return {"vocab_size": tok.vocab_size, "num_classes": num_classes, "emb_size": m.emb_size,
            "hidden_size": m.hidden_size, "num_layers": m.num_layers, "cell": m.cell,
            "bidirectional": m.bidirectional, "pooling": m.pooling, "dropout": m.dropout,
            "emb_dropout": m.emb_dropout, "rnn_dropout": m.rnn_dropout, "word_dropout": m.word_dropout,
            "packed": m.packed, "pad_id": tok.pad_id, "unk_id": tok.unk_id, "adversarial": m.adversarial}


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
    for word, i in tok.tok.get_vocab().items():
        k = index.get(normalize_word(word))
        if k is not None and i not in (tok.pad_id, tok.unk_id):
            rows.append(i)
            src.append(k)
    with torch.no_grad():
        model.embed.weight[torch.tensor(rows, dtype=torch.long)] = vectors[torch.tensor(src, dtype=torch.long)]
    return len(rows)


def build_lm(model: SequenceClassifier, vocab_size: int, cutoffs: list[int], pad_id: int) -> EncoderLM:
    return EncoderLM(model.embed, model.encoder, vocab_size, cutoffs, pad_id=pad_id)


# ------------------------------------------------------------------------------------------------ logging
class _Notes:
    """Messages said once: to the terminal and, as ``{"event": ...}`` records, to ``output_dir/log.jsonl``."""

    def __init__(self, out: Path | None):
        self.out = out
        self.records: list[dict] = []

    def __call__(self, message: str, event: str = "note", **data) -> None:
        tqdm.write(message, file=sys.stderr)
        rec = {"event": event, "message": message, **data}
        self.records.append(rec)
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            with open(self.out / "log.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")


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


def load_data(d: DataConfig, note) -> tuple[dict[str, list[sd.Example]], list[str]]:
    """Checked ``{split: [(text, label)]}`` and the label set; with ``cv_folds`` everything is in ``train``."""
    cv = d.cv_folds >= 2
    splits, labels = sd.load_labelled(data_spec(d, carve=not cv), d.labels, dict(d.label_map), d.unknown_labels,
                                      note)
    if cv:
        splits = {"train": [ex for examples in splits.values() for ex in examples]}
    else:
        missing = [s for s in ("validation", "test") if s not in splits]
        if missing:
            raise DataError(f"no {' or '.join(missing)} split: name the files in data.splits or carve them out of "
                            f"train with data.carve (e.g. data.carve.test=0.1)", d.hub.name if d.use_hub else d.name)
        splits = {s: splits[s] for s in ("train", "validation", "test")}
    splits["train"] = sd.subsample(splits["train"], d.train_limit, d.seed)
    for s in ("validation", "test"):
        if s in splits:
            splits[s] = sd.subsample(splits[s], d.eval_limit, d.seed)
    return splits, labels


def load_extra_text(extra_text: list[ExtraText], seed: int, field_name: str = "pretrain.extra_text") -> list[str]:
    """The non-blank texts of unlabelled datasets (``pretrain.extra_text``, ``distill.extra_text``)."""
    texts = []
    for extra in extra_text:
        spec = DataSpec(extra.name, format=extra.format, splits=dict(extra.splits), columns=dict(extra.columns))
        for split, examples in load_splits(spec).items():
            if examples and "text" not in examples[0]:
                raise DataError(f"split {split!r} has no text column; set {field_name}[].columns.text",
                                extra.name, field="text")
            texts += sd.subsample([t for ex in examples if (t := ex["text"]) and t.strip()], extra.limit, seed)
    return texts


def encode(tok: Tokenizer, examples: list[sd.Example], labels: list[str], d: DataConfig, split: str,
           note, soft: torch.Tensor | None = None) -> list[sd.Encoded]:
    """``[(ids, label index)]`` (``[(ids, label index, probs)]`` with ``soft`` (N, C) target probabilities);
    truncation and texts without tokens are reported once."""
    ids, n_trunc = sd.encode_texts(tok, [t for t, _ in examples], d.max_len, d.keep_head)
    if n_trunc:
        note(f"{split}: truncated {n_trunc} of {len(examples)} texts to {d.max_len} tokens "
             f"(first {min(d.keep_head, d.max_len)} + last {d.max_len - min(d.keep_head, d.max_len)})",
             event="truncated", split=split, count=n_trunc, total=len(examples))
    index = {lab: i for i, lab in enumerate(labels)}
    if soft is None:
        out = [(x, index[y]) for x, (_, y) in zip(ids, examples) if x]
    else:
        out = [(x, index[y], p) for x, (_, y), p in zip(ids, examples, soft.tolist()) if x]
    if len(out) < len(examples):
        note(f"{split}: skipped {len(examples) - len(out)} texts with no tokens", event="skipped", split=split,
             counts={"no tokens": len(examples) - len(out)})
    if not out:
        raise DataError(f"split {split!r}: no example has any tokens")
    return out


# -------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def class_probs(model: SequenceClassifier, seqs: list[list[int]], pad_id: int, max_tokens: int,
                desc: str = "scoring", progress: bool = True) -> torch.Tensor:
    """Class probabilities (N, C) of token-id lists, in input order (batched by length)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    items = [(s, -1) for s in seqs]
    it = sd.batches(items, [len(s) for s in seqs], sd.collate_classify(pad_id), max_tokens=max_tokens,
                    max_sentences=None, shuffle=False)
    probs = torch.empty(len(seqs), model.num_classes)
    for batch in tqdm(it, desc=desc, leave=False, disable=not progress or len(it) < 4):
        probs[torch.as_tensor(batch.meta["indices"])] = model.predict(batch.to(device)).float().cpu()
    model.train(was_training)
    return probs


def classification_metrics(gold: list[int], probs: torch.Tensor, labels: list[str]) -> dict:
    pred = probs.argmax(-1).tolist()
    g = [labels[i] for i in gold]
    p = [labels[i] for i in pred]
    nll = -probs[torch.arange(len(gold)), torch.as_tensor(gold)].clamp_min(1e-12).log().mean()
    return {"accuracy": accuracy(g, p), "macro_f1": macro_f1(g, p, labels), "loss": float(nll), "n": len(gold),
            "labels": list(labels), "confusion_matrix": confusion_matrix(g, p, labels)}


def _eval_fn(examples: list[sd.Encoded], labels: list[str], pad_id: int, max_tokens: int, progress: bool):
    seqs, gold = [x for x, _ in examples], [y for _, y in examples]

    def evaluate(model) -> dict[str, float]:
        probs = class_probs(model, seqs, pad_id, max_tokens, "validation", progress)
        m = classification_metrics(gold, probs, labels)
        return {k: m[k] for k in ("accuracy", "macro_f1", "loss")}

    return evaluate


def transfer_texts(dist: DistillConfig, seed: int) -> list[str]:
    """``distill.extra_text``: cut into sentences (``distill.sentences``), subsampled to ``distill.extra_limit``."""
    texts = load_extra_text(dist.extra_text, seed, "distill.extra_text")
    if dist.sentences:
        texts = [s for t in texts for s in sd.split_sentences(t, 3, dist.max_words)]
    return sd.subsample(texts, dist.extra_limit, seed)


def teacher_targets(cfg: Config, texts: list[str], gold: list[int], labels: list[str], out: Path,
                    note) -> torch.Tensor:
    """(N, C) soft targets for ``texts``: the mean over ``cfg.distill.teachers`` of each teacher's class
    probabilities at temperature T (``softmax(log p / T)``). ``gold``: label indices, -1 for unlabelled texts.
    A labelled text a teacher cannot read (no tokens) keeps its gold label as target, an unlabelled one gets
    NaNs. Cached in ``out/teacher_probs.pt`` under the teachers, T and a digest of the texts (a resumed run
    does not score again; changed data or teachers do)."""
    dist = cfg.distill
    if dist.temperature <= 0 or not 0 <= dist.weight <= 1:
        raise ConfigError(f"distill.temperature must be > 0 and distill.weight in [0, 1], got "
                          f"{dist.temperature} and {dist.weight}")
    teachers = [str(ck.resolve(t)) for t in dist.teachers]
    digest = hashlib.sha1("\n".join(texts).encode("utf-8", "surrogatepass")).hexdigest()
    key = {"teachers": teachers, "temperature": dist.temperature, "n": len(texts), "texts": digest}
    cache = out / "teacher_probs.pt"
    if cache.is_file():
        saved = torch.load(cache)
        if saved["key"] == key:
            note(f"distillation: teacher probabilities from {cache}", event="distill_cached")
            return saved["probs"]
    set_threads(cfg.train.threads)
    gold = torch.as_tensor(gold, dtype=torch.long)
    known = gold >= 0
    total = torch.zeros(len(texts), len(labels))
    for path in teachers:
        pred = load_predictor(path, cfg.train.device)
        if pred.labels != list(labels):
            raise ConfigError(f"distill.teachers: {path} predicts {pred.labels}, this config's labels are {labels}")
        probs = pred.probs(texts, max_tokens=cfg.data.eval_max_tokens, progress=cfg.train.progress)
        acc = float((probs.argmax(-1) == gold)[known].float().mean())
        note(f"distillation: teacher {path}: accuracy {acc:.4f} on the {int(known.sum())} labelled training texts",
             event="distill_teacher", teacher=path)
        total += torch.softmax(probs.clamp_min(1e-12).log() / dist.temperature, dim=-1)
    probs = total / len(teachers)
    unread = probs.isnan().any(-1) & known
    probs[unread] = torch.nn.functional.one_hot(gold[unread], len(labels)).float()
    acc = float((probs.argmax(-1) == gold)[known].float().mean())
    note(f"distillation from {len(teachers)} teachers (T={dist.temperature}, weight {dist.weight}): their averaged "
         f"probabilities agree with the gold label on {acc:.4f} of the labelled training texts; {int(unread.sum())} "
         f"texts no teacher could read keep their gold label; {int((~known).sum())} unlabelled texts",
         event="distill", teachers=teachers, agreement=acc, unread=int(unread.sum()), unlabelled=int((~known).sum()))
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"key": key, "probs": probs}, cache)
    return probs


# ------------------------------------------------------------------------------------------- starting point
def _from_checkpoint(cfg: Config, labels: list[str], note) -> tuple[Tokenizer, SequenceClassifier, dict]:
    """Tokenizer, model and model_args from ``cfg.init_from``, fitted to ``labels``."""
    ckpt = ck.resolve(cfg.init_from)
    conf = ck.read_config(ckpt)
    if conf.get("task") != TASK:
        raise ck.CheckpointError(f"init_from={cfg.init_from}: a {conf.get('task')!r} checkpoint, not {TASK!r}")
    tok = Tokenizer.load(ckpt / TOKENIZER_FILE)
    old_labels = list(conf["labels"])
    args = dict(conf["model_args"])
    args.update({k: getattr(cfg.model, k) for k in _REGULARISATION})  # architecture from the checkpoint only
    model = build_model(**{**args, "num_classes": len(old_labels)})
    if conf.get("stage") == LM_STAGE:
        ck.load_weights(build_lm(model, tok.vocab_size, conf["lm_args"]["cutoffs"], tok.pad_id), ckpt)
        note(f"init_from {ckpt}: embeddings and encoder from the pretrained language model; new classifier head "
             f"for {labels}", event="init_from", checkpoint=str(ckpt), head="new")
        model.reset_head(len(labels))
    else:
        ck.load_weights(model, ckpt)
        if old_labels == list(labels):
            note(f"init_from {ckpt}: all weights (same labels {labels})", event="init_from",
                 checkpoint=str(ckpt), head="kept")
        else:
            model.reset_head(len(labels))
            note(f"init_from {ckpt}: label set differs ({old_labels} -> {labels}): re-initialising only the "
                 "classifier head; embeddings and encoder are kept", event="init_from", checkpoint=str(ckpt),
                 head="reinitialised", old_labels=old_labels, labels=list(labels))
    note(f"init_from: tokenizer ({tok.vocab_size} entries) and architecture from the checkpoint "
         "(the config's model sizes are ignored; its dropout values apply)", event="init_from_arch")
    args["num_classes"] = len(labels)
    return tok, model, args


@torch.no_grad()
def lm_scores(lm: EncoderLM, batches, progress: bool = False) -> dict[str, float]:
    """Mean per-token loss (nats; both directions' predictions counted) and perplexity of ``lm`` on ``batches``."""
    was_training = lm.training
    lm.eval()
    device = next(lm.parameters()).device
    tot, n = 0.0, 0
    for batch in tqdm(batches, desc="LM validation", leave=False, disable=not progress or len(batches) < 4):
        loss, k = lm.loss(batch.to(device))
        tot, n = tot + float(loss) * k, n + k
    lm.train(was_training)
    return {"loss": tot / max(n, 1), "ppl": math.exp(min(tot / max(n, 1), 50)), "predictions": n}


def _pretrain(model: SequenceClassifier, tok: Tokenizer, texts: list[list[int]], val: list[list[int]],
              cfg: Config, margs: dict, labels: list[str], out: Path, note, init_lm: Path | None = None) -> dict:
    """Train ``model``'s embeddings and encoder as a language model (in place); keep the best weights.

    ``init_lm``: an LM-pretraining checkpoint (with this tokenizer) whose whole LM, softmax included, this
    stage continues from (ULMFiT's second stage: a general LM fine-tuned on the task's text)."""
    p = cfg.pretrain
    lm = build_lm(model, tok.vocab_size, list(p.cutoffs), tok.pad_id)
    done = out / "done.json"
    if done.is_file():
        ck.load_weights(lm, ck.resolve(out))
        note(f"LM pretraining already done in {out}: loaded its best weights", event="pretrain_skipped")
        return json.loads(done.read_text())
    if init_lm is not None:
        cutoffs = list(ck.read_config(init_lm)["lm_args"]["cutoffs"])
        if cutoffs != list(p.cutoffs):
            raise ConfigError(f"init_from={init_lm}: its LM has pretrain.cutoffs={cutoffs}, this config "
                              f"{list(p.cutoffs)}; set pretrain.cutoffs={cutoffs} to continue it")
        ck.load_weights(lm, init_lm)
        note(f"LM pretraining continues the language model of {init_lm} (its adaptive softmax too)",
             event="pretrain_continue", checkpoint=str(init_lm))
    n_tok = sum(len(t) for t in texts)
    note(f"LM pretraining on {len(texts)} texts ({n_tok} tokens), validation {len(val)} texts", event="pretrain",
         texts=len(texts), tokens=n_tok)
    collate = sd.collate_lm(tok.pad_id, tok.bos_id, tok.eos_id)
    train_it = sd.batches(texts, [len(t) + 2 for t in texts], collate, max_tokens=p.max_tokens,
                          max_sentences=p.max_sentences, shuffle=True, seed=p.train.seed)
    val_it = sd.batches(val, [len(t) + 2 for t in val], collate, max_tokens=cfg.data.eval_max_tokens,
                        max_sentences=None, shuffle=False)

    evaluate = functools.partial(lm_scores, batches=val_it, progress=p.train.progress)
    ckpt_conf = {"task": TASK, "stage": LM_STAGE, "config": to_dict(cfg), "model_args": margs,
                 "labels": list(labels), "lm_args": {"cutoffs": list(p.cutoffs)}}
    trainer = Trainer(lm, train_it, p.train, out, evaluate, ckpt_conf, {TOKENIZER_FILE: tok.save})
    summary = trainer.fit()
    ck.load_weights(lm, ck.resolve(out))
    summary.update({"texts": len(texts), "tokens": n_tok, "history": [h for h in trainer.history
                                                                     if h.get("event") == "eval"]})
    write_json(done, summary)
    note(f"LM pretraining: best validation loss {summary['best']:.4f} (ppl {math.exp(summary['best']):.1f}) "
         f"after {summary['steps']} steps, {summary['train_seconds']:.0f} s", event="pretrain_done")
    return summary


# ------------------------------------------------------------------------------------------------ training
def _fit(cfg: Config, splits: dict[str, list[sd.Example]], labels: list[str], out: Path, note,
         start: tuple[Tokenizer, SequenceClassifier, dict] | None = None, extra_lm: list[str] | None = None,
         fold: int | None = None) -> dict:
    """Train one classifier on ``splits`` in ``out`` and score its best checkpoint on ``splits["test"]``."""
    seed_everything(cfg.train.seed)
    d = cfg.data
    extra_lm = extra_lm or []
    if start is not None:
        tok, model, margs = start
    elif cfg.init_from:
        tok, model, margs = _from_checkpoint(cfg, labels, note)
    else:
        vocab_texts = [t for t, _ in splits["train"]] + extra_lm
        vectors = read_pretrained(cfg.model) if cfg.model.pretrained else None
        extra_words = [w for w in vectors[0] if not any(c.isdigit() for c in w)] \
            if vectors and cfg.model.pretrained_extend_vocab else []
        tok = sd.build_tokenizer(vocab_texts, cfg.tokenizer.vocab_size, cfg.tokenizer.min_freq,
                                 cfg.tokenizer.lowercase, extra_words=extra_words)
        margs = model_args(cfg.model, tok, len(labels))
        model = build_model(**margs)
        if vectors:
            filled = load_pretrained(model, tok, *vectors)
            how = " (training words, then words only the vectors know)" if extra_words else ""
            note(f"pretrained vectors {cfg.model.pretrained}: {filled} of the {tok.vocab_size} vocabulary "
                 f"entries{how} start from their vector", event="pretrained", filled=filled, vocab=tok.vocab_size)
    note(f"vocabulary {tok.vocab_size}, labels {labels}, model {sum(p.numel() for p in model.parameters())} "
         f"parameters", event="model", vocab=tok.vocab_size, labels=list(labels), args=margs)
    soft, transfer = None, []
    if cfg.distill.teachers:
        extra = transfer_texts(cfg.distill, d.seed)
        n = len(splits["train"])
        probs = teacher_targets(cfg, [t for t, _ in splits["train"]] + extra,
                                [labels.index(y) for _, y in splits["train"]] + [-1] * len(extra), labels, out, note)
        soft = probs[:n]
        ids = sd.encode_texts(tok, extra, d.max_len, d.keep_head)[0]
        transfer = [(x, -1, p) for x, p in zip(ids, probs[n:].tolist()) if x and not math.isnan(p[0])]
        if extra:
            note(f"distillation transfer set: {len(transfer)} unlabelled texts with only the teachers' targets",
                 event="distill_transfer", texts=len(transfer))
    enc = {s: encode(tok, ex, labels, d, s, note, soft if s == "train" else None) for s, ex in splits.items()}

    pre = None
    resuming = (out / "checkpoints" / ck.LATEST).exists() and cfg.train.resume
    if cfg.pretrain.enabled and not resuming:
        p = cfg.pretrain
        max_len = p.max_len or d.max_len
        lm_texts = [ex[0] for ex in enc["train"]] if p.own_text else []
        if p.own_text and max_len != d.max_len:
            lm_texts = sd.encode_texts(tok, [t for t, _ in splits["train"]], max_len, d.keep_head)[0]
        extra_ids = [x for x in sd.encode_texts(tok, extra_lm, max_len, d.keep_head)[0] if x]
        lm_val = [x for x, _ in enc["validation"]][: p.val_texts]
        if not p.own_text and extra_ids:  # hold LM validation text out of the extra text
            lm_val, extra_ids = extra_ids[: p.val_texts], extra_ids[p.val_texts:]
        init_lm = None
        if start is None and cfg.init_from and ck.read_config(ck.resolve(cfg.init_from)).get("stage") == LM_STAGE:
            init_lm = ck.resolve(cfg.init_from)
        pre = _pretrain(model, tok, lm_texts + extra_ids, lm_val, cfg, margs, labels, out / "pretrain", note,
                        init_lm)

    ckpt_conf = {"task": TASK, "config": to_dict(cfg), "model_args": margs, "labels": list(labels),
                 "preprocess": {"max_len": d.max_len, "keep_head": d.keep_head}, "fold": fold}
    model.distill_weight, model.distill_temperature = cfg.distill.weight, cfg.distill.temperature
    items = enc["train"] + transfer  # the transfer set only here: not LM text, not in the counts above
    train_it = sd.batches(items, [len(ex[0]) for ex in items], sd.collate_classify(tok.pad_id),
                          max_tokens=d.max_tokens, max_sentences=d.max_sentences, shuffle=True, seed=cfg.train.seed)
    evaluate = _eval_fn(enc["validation"], labels, tok.pad_id, d.eval_max_tokens, cfg.train.progress)
    trainer = Trainer(model, train_it, cfg.train, out, evaluate, ckpt_conf, {TOKENIZER_FILE: tok.save})
    summary = trainer.fit()
    best = ck.resolve(out)
    ck.load_weights(model, best)
    probs = class_probs(model, [x for x, _ in enc["test"]], tok.pad_id, d.eval_max_tokens, "test", cfg.train.progress)
    metrics = classification_metrics([y for _, y in enc["test"]], probs, labels)
    metrics.update({"split": "test", "best_validation": summary["best"], "steps": summary["steps"],
                    "stop_reason": summary["reason"], "train_seconds": round(summary["train_seconds"], 1),
                    "checkpoint": str(best)})
    curves = {"validation": [h for h in trainer.history if h.get("event") == "eval"]}
    if pre is not None:
        metrics["pretrain"] = {k: pre[k] for k in ("best", "steps", "train_seconds", "texts", "tokens")}
        curves["lm_validation"] = pre.get("history", [])
    write_json(out / "curves.json", curves)
    _plot_curves(out, curves, cfg.train.eval_metric)
    return metrics


def _plot_curves(out: Path, curves: dict, metric: str) -> None:
    """``curves.png``: validation metric (and LM validation perplexity) against steps."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        return
    panels = [(k, v) for k, v in curves.items() if v]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    for ax, (name, hist) in zip(axes[0], panels):
        key = "ppl" if name == "lm_validation" else metric
        ax.plot([h["step"] for h in hist], [h.get(key) for h in hist], marker="o")
        ax.set_xlabel("step")
        ax.set_ylabel(f"{name} {key}")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=100)
    plt.close(fig)


def _train_cv(cfg: Config, examples: list[sd.Example], labels: list[str], out: Path, note) -> dict:
    """K-fold cross-validation: K short trainings in ``out/fold{k}``; mean ± std of the test-fold scores.

    With LM pretraining, the LM is trained once, on ``pretrain.extra_text`` only (the task's own text would
    include every test fold), and each fold starts from it."""
    k = cfg.data.cv_folds
    start = None
    if cfg.pretrain.enabled or cfg.init_from:
        seed_everything(cfg.train.seed)
        if cfg.init_from:
            tok, model, margs = _from_checkpoint(cfg, labels, note)
        else:
            extra = load_extra_text(cfg.pretrain.extra_text, cfg.data.seed)
            if not extra:
                raise ConfigError("cross-validation with pretrain.enabled needs pretrain.extra_text (the task's "
                                  "own text would include the test folds)")
            tok = sd.build_tokenizer(extra, cfg.tokenizer.vocab_size, cfg.tokenizer.min_freq, cfg.tokenizer.lowercase)
            margs = model_args(cfg.model, tok, len(labels))
            model = build_model(**margs)
            p = cfg.pretrain
            ids = [x for x in sd.encode_texts(tok, extra, p.max_len or cfg.data.max_len, cfg.data.keep_head)[0] if x]
            _pretrain(model, tok, ids[p.val_texts:], ids[: p.val_texts], cfg, margs, labels, out / "pretrain", note)
        start_state = copy.deepcopy(model.state_dict())
        start = (tok, model, margs)
    folds = []
    for fold in range(k):
        if start is not None:
            start[1].load_state_dict(start_state)
        fold_cfg = copy.deepcopy(cfg)
        fold_cfg.pretrain.enabled = False
        fold_cfg.train.seed = cfg.train.seed + fold
        parts = sd.cv_fold(examples, k, fold, cfg.data.cv_validation, cfg.data.seed)
        note(f"fold {fold + 1}/{k}: train {len(parts['train'])}, validation {len(parts['validation'])}, "
             f"test {len(parts['test'])}", event="fold", fold=fold)
        m = _fit(fold_cfg, parts, labels, out / f"fold{fold}", note, start=start, fold=fold)
        note(f"fold {fold + 1}/{k}: test accuracy {m['accuracy']:.4f}", event="fold_done", fold=fold,
             accuracy=m["accuracy"])
        folds.append(m)
    accs = torch.tensor([m["accuracy"] for m in folds], dtype=torch.float64)
    f1s = torch.tensor([m["macro_f1"] for m in folds], dtype=torch.float64)
    cm = [[sum(m["confusion_matrix"][i][j] for m in folds) for j in range(len(labels))] for i in range(len(labels))]
    return {"accuracy": float(accs.mean()), "accuracy_std": float(accs.std()) if k > 1 else 0.0,
            "macro_f1": float(f1s.mean()), "macro_f1_std": float(f1s.std()) if k > 1 else 0.0,
            "confusion_matrix": cm, "labels": list(labels), "n": sum(m["n"] for m in folds), "cv_folds": k,
            "split": f"{k}-fold cross-validation",
            "folds": [{key: m[key] for key in ("accuracy", "macro_f1", "n", "best_validation", "steps",
                                               "train_seconds")} for m in folds]}


def train(cfg: Config, config_path: str | None = None) -> dict:
    """Train (optionally LM-pretrain, or fine-tune from ``init_from``), then score the test split."""
    t0 = time.time()
    out = prepare_run(cfg, config_path)
    note = _Notes(out)
    splits, labels = load_data(cfg.data, note)
    if cfg.data.cv_folds >= 2:
        if cfg.distill.teachers:
            raise ConfigError("distill.teachers with data.cv_folds: the teachers would have seen the test folds")
        metrics = _train_cv(cfg, splits["train"], labels, out, note)
    else:
        extra = load_extra_text(cfg.pretrain.extra_text, cfg.data.seed) if cfg.pretrain.enabled else []
        metrics = _fit(cfg, splits, labels, out, note, extra_lm=extra)
    metrics["notes"] = [r["message"] for r in note.records if r["event"] in ("skipped", "truncated", "init_from")]
    write_json(out / "metrics.json", metrics)
    acc = f"{metrics['accuracy']:.4f}" + (f" ± {metrics['accuracy_std']:.4f}" if "accuracy_std" in metrics else "")
    tqdm.write(f"{metrics['split']}: accuracy {acc}, macro-F1 {metrics['macro_f1']:.4f} "
               f"(metrics in {out / 'metrics.json'})")
    rec = record_result(TASK, config_path, out, metrics, time.time() - t0)
    if cfg.record:
        save_result_copy(rec, TASK, cfg.record_name or config_name(config_path))
    return metrics


# --------------------------------------------------------------------------------------- using a trained model
class Predictor:
    """A trained sentiment model with its tokenizer and labels (what ``seqnlp.load`` returns).

    ``predict(["a fine film", ...])`` → ``[{"label": "positive", "probs": {"negative": 0.1, "positive": 0.9}}]``;
    a text with no tokens (empty or blank) gives ``{"label": None, "probs": None}``.
    """

    def __init__(self, model: SequenceClassifier, tokenizer: Tokenizer, labels: list[str], max_len: int = 0,
                 keep_head: int = 0, config: dict | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.max_len, self.keep_head = max_len, keep_head
        self.config = config or {}

    def encode(self, texts: list[str]) -> list[list[int]]:
        return sd.encode_texts(self.tokenizer, texts, self.max_len, self.keep_head)[0]

    def probs(self, texts: list[str], max_tokens: int = 20000, progress: bool = False) -> torch.Tensor:
        """(N, C) class probabilities; rows of texts without tokens are NaN."""
        ids = self.encode(texts)
        keep = [i for i, x in enumerate(ids) if x]
        out = torch.full((len(texts), len(self.labels)), float("nan"))
        if keep:
            out[keep] = class_probs(self.model, [ids[i] for i in keep], self.tokenizer.pad_id, max_tokens,
                                    "predict", progress)
        return out

    def predict(self, texts: str | list[str], progress: bool = False) -> list[dict]:
        texts = [texts] if isinstance(texts, str) else list(texts)
        res = []
        for row in self.probs(texts, progress=progress).tolist():
            if math.isnan(row[0]):
                res.append({"label": None, "probs": None})
            else:
                best = max(range(len(row)), key=row.__getitem__)
                res.append({"label": self.labels[best], "probs": dict(zip(self.labels, row))})
        return res


def load_predictor(ckpt_dir, device: str = "cpu") -> Predictor:
    ckpt = ck.resolve(ckpt_dir)
    conf = ck.read_config(ckpt)
    if conf.get("stage") == LM_STAGE:
        raise ck.CheckpointError(f"{ckpt} is an LM-pretraining checkpoint, not a classifier: use the run directory "
                                 "(or fine-tune from it with init_from=...)")
    model = build_model(**conf["model_args"])
    ck.load_weights(model, ckpt)
    pre = conf.get("preprocess", {})
    return Predictor(model.to(pick_device(device)), Tokenizer.load(ckpt / TOKENIZER_FILE), conf["labels"],
                     pre.get("max_len", 0), pre.get("keep_head", 0), conf)


def _add_args(p) -> None:
    p.add_argument("--format", choices=("jsonl", "tsv"), default="jsonl",
                   help="predict output: jsonl ({text, label, probs} per line) or tsv (label, one probability "
                   "column per class, text; with a header)")
    p.add_argument("--device", default="cpu", help="device for evaluate/predict/ensemble (cpu, cuda, auto)")
    p.add_argument("--ensemble", default="", help="ensemble mode: more trained models (comma-separated) whose "
                   "class probabilities are averaged with --model's")
    p.add_argument("--record", default="", help="ensemble mode: also write results/sentiment/NAME.json")


def predict(model_dir, args) -> None:
    """Label each non-blank line of ``args.input`` (``-``: stdin); blank lines are skipped and counted."""
    pred = load_predictor(model_dir, getattr(args, "device", "cpu"))
    lines = list(sys.stdin) if args.input == "-" else list(open_text(args.input))
    lines = [line.rstrip("\r\n") for line in lines]
    texts = [t for t in lines if t.strip()]
    results = pred.predict(texts, progress=True)
    n_blank = len(lines) - len(texts)
    n_empty = sum(r["label"] is None for r in results)
    fmt = getattr(args, "format", "jsonl")
    sink = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    try:
        if fmt == "tsv":
            sink.write("\t".join(["label", *(f"p_{lab}" for lab in pred.labels), "text"]) + "\n")
        for text, r in zip(texts, results):
            if r["label"] is None:
                continue
            if fmt == "tsv":
                probs = [f"{r['probs'][lab]:.4f}" for lab in pred.labels]
                sink.write("\t".join([r["label"], *probs, text.replace("\t", " ")]) + "\n")
            else:
                sink.write(json.dumps({"text": text, "label": r["label"],
                                       "probs": {k: round(v, 5) for k, v in r["probs"].items()}}) + "\n")
    finally:
        if sink is not sys.stdout:
            sink.close()
    if n_blank or n_empty:
        tqdm.write(f"predict: skipped {n_blank} blank lines and {n_empty} texts without tokens", file=sys.stderr)


def _split_examples(pred: Predictor, overrides: list[str], split: str) -> tuple[Config, list[sd.Example]]:
    """The raw examples of ``split`` of ``pred``'s own data config (with ``overrides`` applied)."""
    return _config_split(pred.config, pred.labels, overrides, split)


def _config_split(conf: dict, labels: list[str], overrides: list[str], split: str) -> tuple[Config, list[sd.Example]]:
    """The raw examples of ``split`` of a checkpoint's data config ``conf["config"]`` (``overrides`` applied)."""
    from omegaconf import OmegaConf

    stored = conf["config"]
    if overrides:
        stored = OmegaConf.to_container(OmegaConf.merge(OmegaConf.create(stored), OmegaConf.from_dotlist(overrides)))
    cfg = from_dict(Config, stored)
    d = cfg.data
    d.labels = d.labels or list(labels)
    splits, _ = load_data(d, _Notes(None))
    if d.cv_folds >= 2:
        splits = sd.cv_fold(splits["train"], d.cv_folds, conf.get("fold") or 0, d.cv_validation, d.seed)
    if split not in splits:
        raise ConfigError(f"no split {split!r}; choose one of {sorted(splits)}")
    return cfg, splits[split]


def _run_dir(model_dir) -> Path:
    ckpt = ck.resolve(model_dir)
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt


def _score(pred: Predictor, cfg: Config, examples: list[sd.Example], split: str) -> tuple[torch.Tensor, list[int]]:
    """Class probabilities of ``examples`` under ``pred`` (its own tokenizer) and the gold label ids."""
    encoded = encode(pred.tokenizer, examples, pred.labels, cfg.data, split, _Notes(None))
    probs = class_probs(pred.model, [x for x, _ in encoded], pred.tokenizer.pad_id, cfg.data.eval_max_tokens, split)
    return probs, [y for _, y in encoded]


def evaluate(model_dir, args) -> dict:
    """Score a trained model on ``args.split`` of its own data config (overrides like ``data.name=...`` apply);
    writes ``metrics_<split>.json`` next to the checkpoints' run directory. For an LM-pretraining checkpoint
    (``runs/x/pretrain``): the language model's perplexity on the split's texts (labels unused)."""
    if ck.read_config(ck.resolve(model_dir)).get("stage") == LM_STAGE:
        return _evaluate_lm(model_dir, args)
    pred = load_predictor(model_dir, getattr(args, "device", "cpu"))
    cfg, examples = _split_examples(pred, list(getattr(args, "overrides", []) or []), args.split)
    probs, gold = _score(pred, cfg, examples, args.split)
    metrics = classification_metrics(gold, probs, pred.labels)
    d = cfg.data
    metrics.update({"split": args.split, "checkpoint": str(ck.resolve(model_dir)),
                    "data": d.hub.name if d.use_hub else d.name})
    write_json(_run_dir(model_dir) / f"metrics_{args.split}.json", metrics)
    print(json.dumps({k: metrics[k] for k in ("split", "accuracy", "macro_f1", "n", "confusion_matrix")}))
    return metrics


def _evaluate_lm(model_dir, args) -> dict:
    """Perplexity of an LM-pretraining checkpoint on ``args.split``'s texts, cut as its pretraining cut them;
    writes ``metrics_lm_<split>.json`` in the LM's directory."""
    ckpt = ck.resolve(model_dir)
    conf = ck.read_config(ckpt)
    tok = Tokenizer.load(ckpt / TOKENIZER_FILE)
    model = build_model(**conf["model_args"])
    lm = build_lm(model, tok.vocab_size, conf["lm_args"]["cutoffs"], tok.pad_id)
    ck.load_weights(lm, ckpt)
    lm.to(pick_device(getattr(args, "device", "cpu")))
    cfg, examples = _config_split(conf, conf["labels"], list(getattr(args, "overrides", []) or []), args.split)
    d, p = cfg.data, cfg.pretrain
    ids = [x for x in sd.encode_texts(tok, [t for t, _ in examples], p.max_len or d.max_len, d.keep_head)[0] if x]
    if not ids:
        raise DataError(f"split {args.split!r} has no texts with tokens to score")
    batches = sd.batches(ids, [len(x) + 2 for x in ids], sd.collate_lm(tok.pad_id, tok.bos_id, tok.eos_id),
                         max_tokens=d.eval_max_tokens, max_sentences=None, shuffle=False)
    scores = lm_scores(lm, batches, progress=True)
    metrics = {"split": args.split, "texts": len(ids), "tokens": sum(len(x) for x in ids), **scores,
               "checkpoint": str(ckpt), "data": d.hub.name if d.use_hub else d.name}
    write_json(_run_dir(model_dir) / f"metrics_lm_{args.split}.json", metrics)
    print(json.dumps({k: metrics[k] for k in ("split", "texts", "tokens", "loss", "ppl")}))
    return metrics


def ensemble(model_dir, args) -> dict:
    """``--mode ensemble``: average the class probabilities of ``--model`` and the ``--ensemble`` models on
    ``--split`` of the first model's data config. Each member reads the texts with its own tokenizer, so
    members may differ in vocabulary, vectors, sizes or seeds; they must share the label set. Writes
    ``metrics_ensemble_<split>.json`` beside the first model (with every member's own score) and, with
    ``--record NAME``, ``results/sentiment/NAME.json``."""
    t0 = time.time()
    dirs = [str(model_dir)] + [d for d in (getattr(args, "ensemble", "") or "").split(",") if d]
    if len(dirs) < 2:
        raise ConfigError("--mode ensemble needs --ensemble DIR[,DIR...] besides --model")
    device = getattr(args, "device", "cpu")
    preds = [load_predictor(d, device) for d in dirs]
    for d, p in zip(dirs[1:], preds[1:]):
        if p.labels != preds[0].labels:
            raise ConfigError(f"ensemble members must share the label set: {d} has {p.labels}, "
                              f"{dirs[0]} has {preds[0].labels}")
    cfg, examples = _split_examples(preds[0], list(getattr(args, "overrides", []) or []), args.split)
    total, gold, members = None, None, []
    for d, p in zip(dirs, preds):
        probs, g = _score(p, cfg, examples, args.split)
        if gold is not None and g != gold:
            raise DataError(f"ensemble member {d} dropped different examples of split {args.split!r} than {dirs[0]}")
        gold = g
        one = classification_metrics(g, probs, p.labels)
        members.append({"model": d, "accuracy": one["accuracy"], "macro_f1": one["macro_f1"]})
        total = probs if total is None else total + probs
    metrics = classification_metrics(gold, total / len(preds), preds[0].labels)
    accs = torch.tensor([m["accuracy"] for m in members], dtype=torch.float64)
    metrics.update(split=args.split, members=members, member_accuracy_mean=float(accs.mean()),
                   member_accuracy_std=float(accs.std()) if len(accs) > 1 else 0.0)
    path = _run_dir(model_dir) / f"metrics_ensemble_{args.split}.json"
    write_json(path, metrics)
    if getattr(args, "record", ""):
        out = path.parent / f"ensemble_{args.split}"  # not the first model's own result.json
        out.mkdir(exist_ok=True)
        rec = record_result(TASK, None, out, metrics, time.time() - t0, {"ensemble": dirs})
        save_result_copy(rec, TASK, args.record)
    print(json.dumps({k: metrics[k] for k in ("split", "accuracy", "macro_f1", "n", "member_accuracy_mean",
                                              "member_accuracy_std", "confusion_matrix")}))
    print(f"wrote {path}", file=sys.stderr)
    return metrics


def main(argv: list[str] | None = None) -> int:
    try:
        return recipe_main(argv, task=TASK, schema=Config, description=__doc__, train=train, evaluate=evaluate,
                           predict=predict, extra_modes={"ensemble": ensemble}, add_args=_add_args)
    except (DataError, ck.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


__all__ = ["Config", "DataConfig", "ModelConfig", "PretrainConfig", "TokenizerConfig", "ExtraText", "HubConfig",
           "build_model", "train", "evaluate", "ensemble", "predict", "load_predictor", "Predictor", "main"]
