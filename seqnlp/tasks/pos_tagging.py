"""Part-of-speech tagging (synchronized many-to-many): the task module (see :mod:`seqnlp.tasks.base`).

One tag per word: word embeddings (of the lowercased, digit-normalised form) concatenated with character
features of the spelling (a char BiLSTM or CNN run once per distinct word), a BiLSTM -- or the lecture's
one-to-one fixed-window MLP, ``model.encoder=window`` -- and a per-token softmax or a linear-chain CRF
(``model.crf``; :class:`~seqnlp.tasks.tagger.SequenceTagger`). Pretrained vectors (``model.pretrained``) add a
fixed table that also extends the vocabulary.

A predict input is a whitespace-tokenised sentence (or a list of tokens); its result is ``{"tokens": [...],
"tags": [...]}`` (a blank line: both empty). ``--format conllu`` writes CoNLL-U with the tags in the model's
``data.tag_field`` column; a ``.conllu``/``.conllu.gz`` input keeps its own tokenisation (one input per sentence)
and is written back byte for byte but for that column (:mod:`seqnlp.data.conllu_io`). ``seqnlp
ensemble`` sums the members' CRF / log-softmax scores and decodes once (a product of experts).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..config import ConfigError
from ..data.batching import BatchIterator, TokenBucketSampler
from ..data.conllu_io import ConlluDocument, is_conllu_path, read_document, write_tagged
from ..data.errors import DataError
from ..data.loading import DataSpec, load_splits
from ..data.readers import write_conllu
from ..data.tagging import Featurizer
from ..metrics import per_class_prf
from ..nn.char_encoder import CharEncoder, WordFeatureCache
from ..nn.crf import LinearChainCRF
from ..nn.embeddings import Embeddings
from ..nn.encoders import RNNEncoder
from ..nn.window import WindowEncoder
from ..train import checkpoint as ck
from ..train.device import autocast, pick_dtype
from ..train.loop import TrainConfig
from .base import as_inputs
from .tagger import SequenceTagger

TASK = "pos_tagging"
ENCODERS = ("bilstm", "window")
CHAR_FEATURES = ("lstm", "cnn", "none")


# ------------------------------------------------------------------------------------------------ configs
@dataclass
class DataConfig:
    name: str = "pos/ud_english_ewt"  # local path under $SEQNLP_DATA, or a Hub id
    format: str = "auto"  # auto | conllu | conll | json | parquet | ... (see seqnlp.data.loading)
    subset: str | None = None  # Hub config name
    splits: dict[str, str] = field(default_factory=dict)  # our split -> file glob / Hub split
    columns: dict[str, str] = field(default_factory=dict)  # {"tokens": ..., "tags": ...} for Hub/tabular data
    carve: dict[str, float] = field(default_factory=dict)  # e.g. {"validation": 0.1} out of train
    seed: int = 0  # seed of the carve-out
    tag_field: str = "upos"  # CoNLL-U: upos | xpos
    token_col: int = 0  # CoNLL column files
    tag_col: int = 1
    max_train_sentences: int = 0  # 0: all (smoke runs use a slice)
    max_eval_sentences: int = 0  # 0: all (validation and test)
    max_tokens: int = 1500  # padded-token budget of a training batch
    max_sentences: int = 0  # sentences per training batch cap (0: none)
    eval_max_tokens: int = 6000  # token budget of evaluation/prediction batches
    max_word_len: int = 30  # longer words keep their first and last 15 characters for char features
    unk_alpha: float = 0.25  # train-time <unk> replacement of word w with prob alpha / (alpha + count(w))
    normalize_words: bool = True  # word embeddings of lowercased forms with digits -> 0 (chars see the form)


@dataclass
class ModelConfig:
    """The tagger's options and, below them, the sizes training fills in from the data."""

    encoder: str = "bilstm"  # bilstm | window (the lecture's one-to-one +-l window MLP)
    word_dim: int = 100  # 0: no word embeddings (char features only)
    char: str = "lstm"  # lstm | cnn | none
    char_dim: int = 50
    char_hidden: int = 50  # per direction (lstm) or filters (cnn)
    char_kernel: int = 3  # cnn width
    hidden: int = 256  # BiLSTM: per direction; window: MLP width
    layers: int = 1  # BiLSTM layers / window MLP layers
    window: int = 2  # window encoder: l words each side
    crf: bool = True  # linear-chain CRF + Viterbi (else per-token softmax)
    dropout: float = 0.33  # token representations, between/after BiLSTM layers, before the output layer
    char_dropout: float = 0.0  # on character embeddings
    pretrained: str = ""  # word2vec-format vectors (recipes/word_vectors.py): fixed vectors added to the
    #   trainable embeddings, and the vocabulary extended to their words ("": none); dim must be word_dim
    pretrained_max_words: int = 0  # keep the first N vectors of the file (0: all)
    # from the data (set by training; 0 until then)
    num_words: int = 0  # word vocabulary, specials included
    num_chars: int = 0  # character vocabulary
    num_tags: int = 0
    fixed_vectors: bool = False  # a (num_words, word_dim) table of fixed pretrained vectors
    trainable_words: int = 0  # trainable embeddings of the first ids only (the training words; 0: all)


@dataclass
class Config:
    task: str = TASK
    output_dir: str = "runs/pos_tagging"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=30, lr=2e-3, eval_metric="accuracy", eval_mode="max",
                                            patience=6, scheduler="plateau", plateau_patience=2,
                                            min_lr_ratio=0.02, clip_grad_norm=5.0, log_every=50)
    )
    infer_precision: str = "fp32"  # fp32 | bf16 | fp16 | auto: evaluation and prediction (pick_dtype)


# ------------------------------------------------------------------------------------------------ model
def check_model_config(m: ModelConfig) -> None:
    """A :class:`ConfigError` for model options this task does not have."""
    if m.encoder not in ENCODERS:
        raise ConfigError(f"model.encoder must be one of {ENCODERS}, got {m.encoder!r}")
    if m.char not in CHAR_FEATURES:
        raise ConfigError(f"model.char must be one of {CHAR_FEATURES}, got {m.char!r}")


def build_model(m: ModelConfig, unk_prob: torch.Tensor | None = None) -> SequenceTagger:
    """The one place where a model config becomes modules. ``m.fixed_vectors``: a (num_words, word_dim)
    table of pretrained vectors (zeros here; filled by the recipe or from the checkpoint), beside trainable
    embeddings of the first ``trainable_words`` ids. ``unk_prob``: train-time ``<unk>`` replacement (not
    saved; see :class:`SequenceTagger`)."""
    check_model_config(m)
    if not (m.num_words and m.num_tags):
        raise ConfigError("model.num_words and model.num_tags come from the data: set them (training does)")
    trainable = m.trainable_words if m.fixed_vectors and m.trainable_words else m.num_words
    word_embed = Embeddings(trainable, m.word_dim) if m.word_dim > 0 else None
    fixed = torch.zeros(m.num_words, m.word_dim) if m.fixed_vectors and m.word_dim > 0 else None
    char_encoder = None
    if m.char != "none":
        char_encoder = CharEncoder(m.num_chars, m.char_dim, m.char_hidden, kind=m.char, kernel_size=m.char_kernel,
                                   dropout=m.char_dropout)
    size = (m.word_dim if m.word_dim > 0 else 0) + (char_encoder.output_size if char_encoder else 0)
    if m.encoder == "bilstm":
        enc = RNNEncoder(size, m.hidden, num_layers=m.layers, cell="lstm", bidirectional=True, dropout=m.dropout,
                         packed=False)
    else:
        enc = WindowEncoder(size, m.window, m.window, m.hidden, num_layers=m.layers, dropout=0.0,
                            activation="tanh")
    # the BiLSTM encoder drops out its own outputs; the window MLP's output is dropped out by the tagger
    return SequenceTagger(word_embed, char_encoder, enc, m.num_tags, crf=m.crf, dropout=m.dropout,
                          output_dropout=m.dropout if m.encoder == "window" else 0.0, unk_prob=unk_prob,
                          fixed_vectors=fixed)


# ------------------------------------------------------------------------------------------------ data
def check_config(cfg: Config) -> None:
    """A :class:`ConfigError` naming the key and its allowed values for an option that cannot be right whatever the
    data (``data.format``, ``data.tag_field``, ``data.carve``, ``model.encoder``, ``train.*`` ...); :func:`load_data`
    calls it before reading anything."""
    from ..config import check_run
    from ..data.loading import check_data_config

    check_data_config(cfg.data)
    check_model_config(cfg.model)
    check_run(cfg)


def load_data(cfg: Config) -> dict[str, list[dict]]:
    """train / validation / test as ``{"tokens": [...], "tags": [...]}`` with string tags (test tags may be
    None); empty sentences are dropped, ``data.max_*_sentences`` applied."""
    check_config(cfg)
    d = cfg.data
    spec = DataSpec(d.name, format=d.format, subset=d.subset, splits=dict(d.splits), columns=dict(d.columns),
                    carve=dict(d.carve), seed=d.seed, tag_field=d.tag_field, token_col=d.token_col,
                    tag_col=d.tag_col)
    splits = load_splits(spec)
    for split in ("train", "validation"):
        if split not in splits:
            raise DataError(f"no {split!r} split (found {sorted(splits)}); set data.splits or data.carve", d.name)
    for split, examples in splits.items():
        clean = []
        for i, ex in enumerate(examples):
            tokens, tags = ex.get("tokens"), ex.get("tags")
            if tags is None and split != "test":
                raise DataError(f"example {i + 1} has no tags", f"{d.name}[{split}]", field="tags")
            tokens = [str(t) for t in tokens]
            if tags is not None:
                tags = [str(t) for t in tags]
                if len(tags) != len(tokens):
                    raise DataError(f"example {i + 1}: {len(tokens)} tokens but {len(tags)} tags",
                                    f"{d.name}[{split}]", field="tags")
            if tokens:  # an empty sentence has nothing to tag
                clean.append({"tokens": tokens, "tags": tags})
        limit = d.max_train_sentences if split == "train" else d.max_eval_sentences
        splits[split] = clean[:limit] if limit else clean
    return splits


def labelled_split(cfg: Config, split: str) -> list[dict]:
    """The sentences of ``split``, every one with its tags (a :class:`DataError` otherwise)."""
    splits = load_data(cfg)
    if split not in splits:
        raise DataError(f"no split {split!r} (found {sorted(splits)})", cfg.data.name)
    if any(ex["tags"] is None for ex in splits[split]):
        raise DataError(f"split {split!r} has sentences without tags: nothing to score", cfg.data.name)
    return splits[split]


# ------------------------------------------------------------------------------------------- tagging
def tag_encoded(model: SequenceTagger, encoded: list[dict], chars: torch.Tensor, lengths: torch.Tensor,
                max_tokens: int | None, device: torch.device, progress: bool = False, desc: str = "tagging",
                max_sentences: int | None = None, precision: str = "fp32",
                char_cache: WordFeatureCache | None = None) -> list[list[int]]:
    """Predicted tag ids of every encoded sentence (in input order), in length-sorted batches of at most
    ``max_tokens`` padded tokens / ``max_sentences`` sentences, under the autocast of ``precision``
    (:func:`~seqnlp.train.device.pick_dtype`); ``char_cache``: words' character features kept across calls (a
    predictor's, :class:`~seqnlp.nn.char_encoder.WordFeatureCache`)."""
    out: list[list[int] | None] = [None] * len(encoded)
    if not encoded:
        return []
    was_training = model.training
    model.eval()
    dtype = pick_dtype(precision, device)  # the one precision policy: fp32 where the CPU lacks bf16
    with torch.inference_mode(), autocast(device, dtype):
        table = (chars.to(device), lengths.to(device))
        if char_cache is not None:  # only the words not seen in earlier calls
            char_feats = char_cache.table(model.word_table_features, *table)
        else:
            char_feats = model.word_table_features(*table)  # each distinct word once
        sampler = TokenBucketSampler([max(1, len(ex["words"])) for ex in encoded], max_tokens=max_tokens,
                                     max_sentences=max_sentences, shuffle=False, sort=True)
        batches = BatchIterator(encoded, sampler, lambda exs: Featurizer.collate(exs, chars, lengths, char_feats))
        for batch in tqdm(batches, desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
            pred = model.predict(batch.to(device)).cpu()
            for row, i in enumerate(batch.meta["indices"]):
                out[i] = pred[row, : len(encoded[i]["words"])].tolist()
    model.train(was_training)
    return out  # type: ignore[return-value]


def tagging_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], oov: Sequence[Sequence[bool]],
                    per_tag: bool = True) -> dict:
    """Token accuracy, accuracy on out-of-vocabulary tokens, sentence accuracy and per-tag P/R/F1."""
    g = [t for s in gold for t in s]
    p = [t for s in pred for t in s]
    o = [x for s in oov for x in s]
    if not g:
        raise ValueError("no tokens to score")
    correct = [a == b for a, b in zip(g, p)]
    n_oov = sum(o)
    metrics = {
        "accuracy": sum(correct) / len(g),
        "oov_accuracy": sum(c for c, x in zip(correct, o) if x) / n_oov if n_oov else float("nan"),
        "sentence_accuracy": sum(list(a) == list(b) for a, b in zip(gold, pred)) / len(gold),
        "tokens": len(g),
        "oov_tokens": n_oov,
        "sentences": len(gold),
    }
    if per_tag:
        prf = per_class_prf(g, p)
        metrics["macro_f1"] = sum(v["f1"] for v in prf.values()) / len(prf)
        metrics["per_tag"] = prf
    return metrics


CHAR_CACHE_WORDS = 20_000  # words whose character features a predictor keeps (~16-18 MB: word_cache_memory.py)


class TaggerPredictor:
    """A trained tagger with its vocabularies: ``predict(["I saw her duck ."])`` ->
    ``[{"tokens": ["I", "saw", "her", "duck", "."], "tags": ["PRON", "VERB", "PRON", "NOUN", "PUNCT"]}]``."""

    def __init__(self, model: SequenceTagger, feats: Featurizer, config: Config, device: torch.device,
                 checkpoint: Path | None = None):
        self.model = model.eval()
        self.feats = feats
        self.config = config
        self.device = device
        self.checkpoint = checkpoint
        self.tags = feats.tags
        # the character features of words seen in earlier calls (a server tags a few sentences a call)
        self.char_cache = WordFeatureCache(CHAR_CACHE_WORDS)

    def predict(self, inputs: Sequence[str | Sequence[str]], progress: bool = False) -> list[dict]:
        """One ``{"tokens", "tags"}`` per input (a whitespace-tokenised string or a list of tokens), in order."""
        token_lists = [s.split() if isinstance(s, str) else list(s) for s in as_inputs(inputs)]
        return [{"tokens": t, "tags": g} for t, g in zip(token_lists, self.tag(token_lists, progress))]

    def tag(self, token_lists: Sequence[Sequence[str]], progress: bool = False,
            desc: str = "predicting") -> list[list[str]]:
        """The tags of each token list (``[]`` for an empty one)."""
        keep = [i for i, t in enumerate(token_lists) if t]
        encoded, chars, lengths = self.feats.encode([{"tokens": list(token_lists[i])} for i in keep])
        ids = tag_encoded(self.model, encoded, chars, lengths, self.config.data.eval_max_tokens, self.device,
                          progress, desc, precision=self.config.infer_precision, char_cache=self.char_cache)
        out: list[list[str]] = [[] for _ in token_lists]
        for i, s in zip(keep, ids):
            out[i] = [self.tags[j] for j in s]
        return out


def load_predictor(ckpt: Path, stored: ck.Stored, cfg: Config, device: torch.device) -> TaggerPredictor:
    feats = Featurizer.load(ckpt, stored.data["tags"], cfg.data.max_word_len, cfg.data.normalize_words)
    model = build_model(stored.model_config(ModelConfig))
    ck.load_weights(model, ckpt)
    return TaggerPredictor(model.to(device), feats, cfg, device, ckpt)


def score(predictor: TaggerPredictor, sentences: list[dict], progress: bool = False, per_tag: bool = True,
          desc: str = "evaluating") -> tuple[dict, list[list[str]]]:
    """Tag ``sentences`` (with gold ``tags``): :func:`tagging_metrics` plus the tagging speed (from raw
    tokens to tags), and the tags."""
    t0 = time.perf_counter()
    pred = predictor.tag([ex["tokens"] for ex in sentences], progress, desc)
    seconds = time.perf_counter() - t0
    metrics = tagging_metrics([ex["tags"] for ex in sentences], pred, predictor.feats.oov(sentences), per_tag)
    metrics["tagging_seconds"] = seconds
    metrics["sentences_per_s"] = len(sentences) / seconds
    metrics["tokens_per_s"] = metrics["tokens"] / seconds
    return metrics, pred


def evaluate(predictor: TaggerPredictor, split: str) -> dict:
    return score(predictor, labelled_split(predictor.config, split), progress=True, desc=split)[0]


def summary(metrics: dict) -> str:
    return json.dumps({k: v for k, v in metrics.items() if k != "per_tag"}, indent=2, default=str)


def format_text(result: dict) -> str:
    return " ".join(f"{w}/{t}" for w, t in zip(result["tokens"], result["tags"]))


# ------------------------------------------------------------------------------------------- CoNLL-U
def read_inputs(path: str) -> ConlluDocument | None:
    """A ``.conllu`` / ``.conllu.gz`` input: one input per sentence, the FORMs of its syntactic words (its
    tokenisation kept), each holding its lines as read (:class:`~seqnlp.data.conllu_io.ConlluDocument`, which
    ``--format conllu`` writes back with only the tag column filled); None for other files."""
    return read_document(path) if is_conllu_path(Path(path).name) else None


def write_conllu_results(sink, inputs: list, results: list[dict], predictor: TaggerPredictor | None = None) -> None:
    """``--format conllu``, the tags in the ``data.tag_field`` column of ``predictor`` (UPOS without one). A
    CoNLL-U input (:func:`read_inputs`) is written back as it was read, byte for byte, but for that column of its
    word lines (multiword tokens, empty nodes, comments, the other columns, blank lines kept); other inputs
    become fresh CoNLL-U sentences (blank inputs have no sentence there)."""
    tag_field = predictor.config.data.tag_field if predictor is not None else "upos"
    if isinstance(inputs, ConlluDocument):
        write_tagged(sink, inputs, [r["tags"] for r in results], tag_field)
        return
    kept = [r for r in results if r["tokens"]]
    write_conllu(sink, [r["tokens"] for r in kept], [r["tags"] for r in kept], tag_field=tag_field)


OUTPUT_FORMATS = {"conllu": write_conllu_results}


# ------------------------------------------------------------------------------------------- ensemble
def ensemble_tag(predictors: Sequence[TaggerPredictor], sentences: Sequence[Sequence[str]],
                 max_tokens: int = 6000, progress: bool = False, precision: str = "fp32") -> list[list[str]]:
    """Tag token lists with the summed scores of ``predictors``: a CRF member adds its emission and
    transition scores, a softmax member its per-token log-probabilities; one Viterbi pass over the sums.
    Members may differ in vocabularies, pretrained vectors, encoders or seeds but must share the tag set."""
    tags = predictors[0].tags
    for p in predictors[1:]:
        if p.tags != tags:
            raise DataError(f"ensemble members must share the tag set: {p.tags} != {tags}", str(p.checkpoint))
    device = predictors[0].device
    dtype = pick_dtype(precision, device)
    members = []
    with torch.inference_mode(), autocast(device, dtype):
        for p in predictors:
            encoded, chars, lengths = p.feats.encode([{"tokens": list(s)} for s in sentences])
            p.model.eval()
            char_feats = p.model.word_table_features(chars.to(device), lengths.to(device))
            members.append((p.model.to(device), encoded, chars, lengths, char_feats))
        crf = LinearChainCRF(len(tags)).to(device)
        for param in crf.parameters():
            param.zero_()
        for model, *_ in members:
            if model.crf is not None:
                crf.transitions += model.crf.transitions
                crf.start_transitions += model.crf.start_transitions
                crf.end_transitions += model.crf.end_transitions
        sampler = TokenBucketSampler([max(1, len(s)) for s in sentences], max_tokens=max_tokens, shuffle=False,
                                     sort=True)
        out: list[list[str]] = [[] for _ in sentences]
        for idx in tqdm(list(sampler), desc="ensemble", disable=not progress, leave=False, dynamic_ncols=True):
            total = None
            for model, encoded, chars, lengths, char_feats in members:
                batch = Featurizer.collate([encoded[i] for i in idx], chars, lengths, char_feats).to(device)
                scores = model(batch).float()
                if model.crf is None:
                    scores = scores.log_softmax(-1)
                total = scores if total is None else total + scores
                mask = model.mask(batch)
            pred = crf.decode(total, mask).cpu()
            for row, i in enumerate(idx):
                out[i] = [tags[t] for t in pred[row, : len(sentences[i])].tolist()]
    return out


def ensemble(predictors: Sequence[TaggerPredictor], split: str) -> dict:
    """``seqnlp ensemble``: the members together on ``split`` of the first member's data (OOV: its forms)."""
    first = predictors[0]
    cfg = first.config
    data = labelled_split(cfg, split)
    t0 = time.perf_counter()
    pred = ensemble_tag(predictors, [ex["tokens"] for ex in data], cfg.data.eval_max_tokens, progress=True,
                        precision=cfg.infer_precision)
    seconds = time.perf_counter() - t0
    metrics = tagging_metrics([ex["tags"] for ex in data], pred, first.feats.oov(data))
    metrics.update(members=[str(p.checkpoint) for p in predictors], tagging_seconds=seconds,
                   sentences_per_s=len(data) / seconds)
    return metrics


__all__ = ["CHAR_FEATURES", "ENCODERS", "Config", "DataConfig", "ModelConfig", "TaggerPredictor", "build_model",
           "check_model_config", "ensemble", "ensemble_tag", "evaluate", "format_text", "load_data",
           "load_predictor", "read_inputs", "score", "summary", "tag_encoded", "tagging_metrics",
           "OUTPUT_FORMATS"]
