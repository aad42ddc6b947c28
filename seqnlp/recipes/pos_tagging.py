"""Part-of-speech tagging: one tag per word (synchronized many-to-many).

Each word is its word embedding concatenated with character features of its spelling (a char BiLSTM or
CNN run once per distinct word of a batch); a BiLSTM contextualises the sentence and each token is tagged
by a softmax, or the whole sentence by a linear-chain CRF with Viterbi decoding (``model.crf``). The
lecture's one-to-one baseline -- a fixed-window MLP over the +-l neighbouring words -- is
``model.encoder=window``. Word embeddings are looked up by the lowercased, digit-normalised form (the
characters keep case and digits); pretrained vectors (``model.pretrained``, built from unlabelled text by
``recipes/word_vectors.py``) can be added as a fixed table that also extends the vocabulary.

    python recipes/pos_tagging.py --config recipes/configs/pos_tagging/ud_ewt.yaml
    python recipes/pos_tagging.py --mode evaluate --model runs/pos_ud_ewt --split validation
    echo "I saw her duck ." | python recipes/pos_tagging.py --mode predict --model runs/pos_ud_ewt
    python recipes/pos_tagging.py --mode ensemble --model runs/a --ensemble runs/b,runs/c --split test

Data: CoNLL-U (UPOS or XPOS, ``data.tag_field``), CoNLL column files (``data.format=conll``), or any
Hub dataset with a token column and a tag column (ClassLabel ids or strings; ``data.columns``).
``metrics.json`` holds token accuracy, accuracy on words unseen in training (``oov_accuracy``) and
per-tag precision/recall/F1, plus the tagging speed. Predict mode reads whitespace-tokenised sentences
(one per line; or a ``.conllu`` file, keeping its tokenisation) and writes CoNLL-U with the tags filled in.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..config import from_dict, to_dict
from ..data.batching import Batch, BatchIterator, TokenBucketSampler, pad
from ..data.errors import DataError
from ..data.loading import DataSpec, load_splits
from ..data.readers import read_conllu, read_lines, write_conllu
from ..data.tokenizers import Tokenizer
from ..data.word_vectors import normalize_word, read_embedding_init
from ..metrics import per_class_prf
from ..nn.char_encoder import CharEncoder, char_table
from ..nn.embeddings import Embeddings
from ..nn.encoders import RNNEncoder
from ..nn.window import WindowEncoder
from ..tasks.tagger import SequenceTagger
from ..train import checkpoint as ck
from ..train.device import autocast, pick_device, pick_dtype, seed_everything, set_threads
from ..train.loop import TrainConfig, Trainer
from ._common import config_name, prepare_run, recipe_main, record_result, save_result_copy, write_json

TASK = "pos_tagging"
WORDS_FILE, CHARS_FILE, FORMS_FILE = "words.json", "chars.json", "forms.json"
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
    infer_precision: str = "fp32"  # fp32 | bf16: autocast for evaluation and prediction (bf16: AMX on new CPUs)
    record: bool = False  # also copy the result to results/pos_tagging/<config-name>.json


# ------------------------------------------------------------------------------------------- features
class Featurizer:
    """Words, characters and tags <-> ids, and batches for :class:`SequenceTagger`.

    Args:
        words: word vocabulary over *normalised* forms (:func:`normalize_word` when ``normalize``): the
            training words first, then words that only pretrained vectors know; ``<unk>`` for the rest.
        chars: character vocabulary (over the forms as written: case and digits stay visible there).
        tags: the tag set, in id order.
        forms: every form seen in training, as written: a token is out of vocabulary (``oov_accuracy``)
            when its form is not among them.
        max_word_len: see :func:`~seqnlp.nn.char_encoder.char_table`.
        normalize: look words up lowercased with digits mapped to 0.
    """

    def __init__(self, words: Tokenizer, chars: Tokenizer, tags: Sequence[str], forms: Iterable[str] = (),
                 max_word_len: int = 30, normalize: bool = True):
        self.words = words
        self.chars = chars
        self.tags = list(tags)
        self.tag_ids = {t: i for i, t in enumerate(self.tags)}
        self.forms = frozenset(forms)
        self.trainable_words = 0  # ids below this are training words (set by build; 0: unknown)
        self.max_word_len = max_word_len
        self.normalize = normalize

    def norm(self, word: str) -> str:
        return normalize_word(word) if self.normalize else word

    @classmethod
    def build(cls, train: Sequence[dict], max_word_len: int = 30, normalize: bool = True,
              extra_words: Iterable[str] = ()) -> tuple[Featurizer, Counter]:
        """Vocabularies from the training sentences (most frequent first) plus ``extra_words`` (already
        normalised, e.g. those of pretrained vectors); also the counts of the normalised training words."""
        forms = Counter(w for ex in train for w in ex["tokens"])
        char_counts = Counter({c: 0 for w in forms for c in w})
        counts: Counter = Counter()
        for w, n in forms.items():
            counts[normalize_word(w) if normalize else w] += n
            for c in w:
                char_counts[c] += n
        tags = sorted({t for ex in train for t in ex["tags"]})
        vocab = [w for w, _ in counts.most_common()]
        vocab += [w for w in dict.fromkeys(extra_words) if w not in counts]
        words = Tokenizer.from_tokens(vocab)
        chars = Tokenizer.from_tokens([c for c, _ in char_counts.most_common()])
        feats = cls(words, chars, tags, forms, max_word_len, normalize)
        feats.trainable_words = 1 + max(words.token_to_id(w) for w in counts)  # specials + training words
        return feats, counts

    def unk_prob(self, counts: Counter, alpha: float) -> torch.Tensor:
        """(V,) probability of replacing each word id by ``<unk>`` in training: alpha / (alpha + count)."""
        prob = torch.zeros(self.words.vocab_size)
        if alpha > 0:
            for w, n in counts.items():
                prob[self.words.token_to_id(w)] = alpha / (alpha + n)
        return prob

    def oov(self, sentences: Sequence[dict]) -> list[list[bool]]:
        """For every token: is its form unseen in training?"""
        return [[w not in self.forms for w in ex["tokens"]] for ex in sentences]

    def encode(self, sentences: Sequence[dict]) -> tuple[list[dict], torch.Tensor, torch.Tensor]:
        """Ids of every sentence plus the character table of all distinct forms in ``sentences``.

        Returns:
            examples ``{"words", "types", "tags"}`` (lists of ids; ``types`` index the table; ``tags``
            is None when unlabelled, -1 for a tag unseen in training), the table's ``chars (N, L)`` and
            ``lengths (N,)`` (row 0 is a padding entry).
        """
        types: dict[str, int] = {"": 0}
        word_of_type: list[int] = [0]
        encoded = []
        unk = self.words.unk_id
        get = self.words.tok.token_to_id
        for ex in sentences:
            type_ids = []
            for w in ex["tokens"]:
                t = types.get(w)
                if t is None:
                    t = types[w] = len(types)
                    i = get(self.norm(w))
                    word_of_type.append(unk if i is None else i)
                type_ids.append(t)
            tags = ex.get("tags")
            tag_ids = None if tags is None else [self.tag_ids.get(t, -1) for t in tags]
            encoded.append({"words": [word_of_type[t] for t in type_ids], "types": type_ids, "tags": tag_ids})
        char_get = self.chars.tok.token_to_id
        cunk = self.chars.unk_id
        chars, lengths = char_table(list(types), lambda c: i if (i := char_get(c)) is not None else cunk,
                                    self.max_word_len)
        return encoded, chars, lengths

    @staticmethod
    def collate(examples: Sequence[dict], table_chars: torch.Tensor, table_lengths: torch.Tensor,
                char_feats: torch.Tensor | None = None) -> Batch:
        """A :class:`Batch`: words/lengths/tags, and the characters of the batch's distinct words only --
        or, given ``char_feats`` (N, C) precomputed for the whole table, that table and indices into it."""
        words, lengths = pad([ex["words"] for ex in examples])
        types, _ = pad([ex["types"] for ex in examples])
        tensors = {"words": words, "lengths": lengths}
        if char_feats is not None:
            tensors.update(word_index=types, char_feats=char_feats)
        else:
            uniq, word_index = torch.unique(types, return_inverse=True)  # distinct forms of this batch
            char_lengths = table_lengths[uniq]
            chars = table_chars[uniq, : int(char_lengths.max())]
            tensors.update(word_index=word_index, chars=chars, char_lengths=char_lengths)
        if all(ex["tags"] is not None for ex in examples):
            tensors["tags"] = pad([[max(t, 0) for t in ex["tags"]] for ex in examples])[0]
        n = int(lengths.sum())
        return Batch(tensors, n_tokens={"source": n})


# ------------------------------------------------------------------------------------------------ model
def model_args_from(cfg: ModelConfig, feats: Featurizer) -> dict:
    """The plain data a checkpoint needs to rebuild the model."""
    if cfg.encoder not in ENCODERS:
        raise ValueError(f"model.encoder must be one of {ENCODERS}, got {cfg.encoder!r}")
    if cfg.char not in CHAR_FEATURES:
        raise ValueError(f"model.char must be one of {CHAR_FEATURES}, got {cfg.char!r}")
    return {"num_words": feats.words.vocab_size, "num_chars": feats.chars.vocab_size, "num_tags": len(feats.tags),
            "word_dim": cfg.word_dim, "char": cfg.char, "char_dim": cfg.char_dim, "char_hidden": cfg.char_hidden,
            "char_kernel": cfg.char_kernel, "encoder": cfg.encoder, "hidden": cfg.hidden, "layers": cfg.layers,
            "window": cfg.window, "crf": cfg.crf, "dropout": cfg.dropout, "char_dropout": cfg.char_dropout,
            "fixed_vectors": bool(cfg.pretrained), "trainable_words": feats.trainable_words}


def build_model(num_words: int, num_chars: int, num_tags: int, word_dim: int, char: str, char_dim: int,
                char_hidden: int, char_kernel: int, encoder: str, hidden: int, layers: int, window: int,
                crf: bool, dropout: float, char_dropout: float, fixed_vectors: bool = False,
                trainable_words: int = 0, unk_prob: torch.Tensor | None = None) -> SequenceTagger:
    """The one place where model arguments become modules. ``fixed_vectors``: a (num_words, word_dim) table
    of pretrained vectors (zeros here; filled by :func:`load_pretrained` or from the checkpoint), beside
    trainable embeddings of the first ``trainable_words`` ids (the training words)."""
    trainable = trainable_words if fixed_vectors and trainable_words else num_words
    word_embed = Embeddings(trainable, word_dim) if word_dim > 0 else None
    fixed = torch.zeros(num_words, word_dim) if fixed_vectors and word_dim > 0 else None
    char_encoder = None
    if char != "none":
        char_encoder = CharEncoder(num_chars, char_dim, char_hidden, kind=char, kernel_size=char_kernel,
                                   dropout=char_dropout)
    size = (word_dim if word_dim > 0 else 0) + (char_encoder.output_size if char_encoder else 0)
    if encoder == "bilstm":
        enc = RNNEncoder(size, hidden, num_layers=layers, cell="lstm", bidirectional=True, dropout=dropout,
                         packed=False)
    else:
        enc = WindowEncoder(size, window, window, hidden, num_layers=layers, dropout=0.0, activation="tanh")
    # the BiLSTM encoder drops out its own outputs; the window MLP's output is dropped out by the tagger
    return SequenceTagger(word_embed, char_encoder, enc, num_tags, crf=crf, dropout=dropout,
                          output_dropout=dropout if encoder == "window" else 0.0, unk_prob=unk_prob,
                          fixed_vectors=fixed)


def read_pretrained(cfg: ModelConfig, normalize: bool) -> tuple[list[str], torch.Tensor] | None:
    """The pretrained vectors of ``cfg.pretrained`` keyed like the word vocabulary, scaled to unit variance."""
    if not cfg.pretrained:
        return None
    return read_embedding_init(cfg.pretrained, cfg.word_dim, "model.word_dim",
                               key=normalize_word if normalize else None, max_words=cfg.pretrained_max_words)


def load_pretrained(model: SequenceTagger, feats: Featurizer, words: list[str], vectors: torch.Tensor) -> int:
    """Copy pretrained vectors into the model's fixed table; words that have one start their trainable
    embedding at zero (the pair sums to the pretrained vector). Returns how many rows were filled."""
    ids = [feats.words.token_to_id(w) for w in words]
    rows = torch.tensor([i for i in ids if i is not None], dtype=torch.long)
    src = torch.tensor([k for k, i in enumerate(ids) if i is not None], dtype=torch.long)
    with torch.no_grad():
        model.fixed_vectors[rows] = vectors[src]
        model.word_embed.lut.weight[rows[rows < model.word_embed.weight.size(0)]] = 0.0
    return len(rows)


# ------------------------------------------------------------------------------------------- tagging
def tag_encoded(model: SequenceTagger, encoded: list[dict], chars: torch.Tensor, lengths: torch.Tensor,
                max_tokens: int | None, device: torch.device, progress: bool = False, desc: str = "tagging",
                max_sentences: int | None = None, precision: str = "fp32") -> list[list[int]]:
    """Predicted tag ids of every encoded sentence (in input order), in length-sorted batches of at most
    ``max_tokens`` padded tokens / ``max_sentences`` sentences; ``precision="bf16"`` runs under autocast."""
    out: list[list[int] | None] = [None] * len(encoded)
    if not encoded:
        return []
    was_training = model.training
    model.eval()
    dtype = pick_dtype(precision, device)  # the one precision policy: fp32 where the CPU lacks bf16
    with torch.inference_mode(), autocast(device, dtype):
        char_feats = model.word_table_features(chars.to(device), lengths.to(device))  # each distinct word once
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


def score(model: SequenceTagger, feats: Featurizer, sentences: list[dict], max_tokens: int,
          device: torch.device, progress: bool = False, per_tag: bool = True, desc: str = "evaluating",
          precision: str = "fp32") -> tuple[dict, list[list[str]]]:
    """Tag ``sentences`` (with gold ``tags``): :func:`tagging_metrics` plus the tagging speed (from raw
    tokens to tags), and the tags."""
    t0 = time.perf_counter()
    encoded, chars, lengths = feats.encode(sentences)
    ids = tag_encoded(model, encoded, chars, lengths, max_tokens, device, progress, desc, precision=precision)
    seconds = time.perf_counter() - t0
    pred = [[feats.tags[i] for i in s] for s in ids]
    gold = [ex["tags"] for ex in sentences]
    oov = feats.oov(sentences)
    metrics = tagging_metrics(gold, pred, oov, per_tag)
    metrics["tagging_seconds"] = seconds
    metrics["sentences_per_s"] = len(sentences) / seconds
    metrics["tokens_per_s"] = metrics["tokens"] / seconds
    return metrics, pred


# ------------------------------------------------------------------------------------------------ data
def load_data(cfg: DataConfig) -> dict[str, list[dict]]:
    """train / validation / test as ``{"tokens": [...], "tags": [...]}`` with string tags."""
    spec = DataSpec(cfg.name, format=cfg.format, subset=cfg.subset, splits=dict(cfg.splits),
                    columns=dict(cfg.columns), carve=dict(cfg.carve), seed=cfg.seed, tag_field=cfg.tag_field,
                    token_col=cfg.token_col, tag_col=cfg.tag_col)
    splits = load_splits(spec)
    for split in ("train", "validation"):
        if split not in splits:
            raise DataError(f"no {split!r} split (found {sorted(splits)}); set data.splits or data.carve",
                            cfg.name)
    for split, examples in splits.items():
        clean = []
        for i, ex in enumerate(examples):
            tokens, tags = ex.get("tokens"), ex.get("tags")
            if tags is None and split != "test":
                raise DataError(f"example {i + 1} has no tags", f"{cfg.name}[{split}]", field="tags")
            tokens = [str(t) for t in tokens]
            if tags is not None:
                tags = [str(t) for t in tags]
                if len(tags) != len(tokens):
                    raise DataError(f"example {i + 1}: {len(tokens)} tokens but {len(tags)} tags",
                                    f"{cfg.name}[{split}]", field="tags")
            if tokens:  # an empty sentence has nothing to tag
                clean.append({"tokens": tokens, "tags": tags})
        limit = cfg.max_train_sentences if split == "train" else cfg.max_eval_sentences
        splits[split] = clean[:limit] if limit else clean
    return splits


# ------------------------------------------------------------------------------------------------ train
def setup_model(cfg: Config, train_sentences: list[dict]) -> tuple[Featurizer, dict, SequenceTagger]:
    """Vocabularies from the training sentences (and pretrained vectors), the model's arguments, and the
    freshly initialised model (pretrained vectors loaded, train-time ``<unk>`` replacement set)."""
    pretrained = read_pretrained(cfg.model, cfg.data.normalize_words)
    feats, counts = Featurizer.build(train_sentences, cfg.data.max_word_len, cfg.data.normalize_words,
                                     extra_words=pretrained[0] if pretrained else ())
    model_args = model_args_from(cfg.model, feats)
    model = build_model(**model_args, unk_prob=feats.unk_prob(counts, cfg.data.unk_alpha))
    if pretrained:
        filled = load_pretrained(model, feats, *pretrained)
        print(f"{TASK}: {filled} pretrained vectors from {cfg.model.pretrained} "
              f"({len(feats.forms)} training forms)", file=sys.stderr)
    return feats, model_args, model


def train(cfg: Config, config_path: str | None = None) -> dict:
    t_start = time.time()
    out = prepare_run(cfg, config_path)
    set_threads(cfg.train.threads)
    seed_everything(cfg.train.seed)  # before any model or data randomness
    splits = load_data(cfg.data)
    feats, model_args, model = setup_model(cfg, splits["train"])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{TASK}: {len(splits['train'])} training sentences, {feats.words.vocab_size} words, "
          f"{feats.chars.vocab_size} chars, {len(feats.tags)} tags, {n_params / 1e6:.2f}M parameters",
          file=sys.stderr)

    encoded, chars, lengths = feats.encode(splits["train"])
    sampler = TokenBucketSampler([len(ex["words"]) for ex in encoded], max_tokens=cfg.data.max_tokens,
                                 max_sentences=cfg.data.max_sentences or None, seed=cfg.train.seed)
    batches = BatchIterator(encoded, sampler, lambda exs: Featurizer.collate(exs, chars, lengths))
    dev = splits["validation"]
    dev_encoded = feats.encode(dev)
    dev_gold = [ex["tags"] for ex in dev]
    dev_oov = feats.oov(dev)
    device = pick_device(cfg.train.device)

    def evaluate(m: SequenceTagger) -> dict:
        ids = tag_encoded(m, *dev_encoded, cfg.data.eval_max_tokens, device, precision=cfg.infer_precision)
        pred = [[feats.tags[i] for i in s] for s in ids]
        metrics = tagging_metrics(dev_gold, pred, dev_oov, per_tag=False)
        return {k: metrics[k] for k in ("accuracy", "oov_accuracy", "sentence_accuracy")}

    ckpt_config = {"task": TASK, "config": to_dict(cfg), "model_args": model_args, "tags": feats.tags,
                   "tag_field": cfg.data.tag_field}
    extra = {WORDS_FILE: feats.words.save, CHARS_FILE: feats.chars.save, FORMS_FILE: sorted(feats.forms)}
    trainer = Trainer(model, batches, cfg.train, out, evaluate, ckpt_config, extra)
    summary = trainer.fit()

    best = ck.resolve(out / "checkpoints")
    ck.load_weights(model, best)
    model.to(device)
    metrics = {"validation": evaluate(model)}
    if "test" in splits and all(ex["tags"] is not None for ex in splits["test"]):
        test, pred = score(model, feats, splits["test"], cfg.data.eval_max_tokens, device, cfg.train.progress,
                           desc="test", precision=cfg.infer_precision)
        metrics.update(test)
        _plot_confusion([t for ex in splits["test"] for t in ex["tags"]], [t for s in pred for t in s],
                        out / "confusion_test.png")
    metrics.update({"train": summary, "parameters": n_params, "best_checkpoint": best.name,
                    "train_tokens_per_s": _mean_train_rate(out / "log.jsonl")})
    write_json(out / "metrics.json", metrics)
    rec = record_result(TASK, config_path, out, metrics, time.time() - t_start)
    if cfg.record:
        save_result_copy(rec, TASK, config_name(config_path))
    print(json.dumps({k: v for k, v in metrics.items() if k != "per_tag"}, indent=2, default=str))
    return metrics


def _mean_train_rate(log: Path) -> float | None:
    """Mean training tokens/s over the logged windows of ``log.jsonl``."""
    rates = []
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("event") == "train" and "source_tok_per_s" in rec:
            rates.append(rec["source_tok_per_s"])
    return sum(rates) / len(rates) if rates else None


def _plot_confusion(gold: list[str], pred: list[str], path: Path) -> None:
    """Row-normalised confusion matrix (gold rows, predicted columns) as a picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..metrics import confusion_matrix

    labels = sorted(set(gold) | set(pred))
    m = torch.tensor(confusion_matrix(gold, pred, labels), dtype=torch.float)
    m = m / m.sum(1, keepdim=True).clamp(min=1)
    size = max(5, 0.3 * len(labels))
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(m.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("test confusion (row-normalised)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- inference
class TaggerPredictor:
    """A trained tagger with its vocabularies: ``predict(["I saw her duck .", ...]) -> [["PRON", ...], ...]``."""

    def __init__(self, model: SequenceTagger, feats: Featurizer, config: Config, device: torch.device):
        self.model = model.eval()
        self.feats = feats
        self.config = config
        self.device = device
        self.tags = feats.tags

    def predict(self, sentences: Sequence[str | Sequence[str]], progress: bool = False) -> list[list[str]]:
        """Tags of each sentence: a whitespace-tokenised string or a list of tokens. Empty -> ``[]``."""
        token_lists = [s.split() if isinstance(s, str) else list(s) for s in sentences]
        keep = [i for i, t in enumerate(token_lists) if t]
        encoded, chars, lengths = self.feats.encode([{"tokens": token_lists[i]} for i in keep])
        ids = tag_encoded(self.model, encoded, chars, lengths, self.config.data.eval_max_tokens, self.device,
                          progress, desc="predicting", precision=self.config.infer_precision)
        out: list[list[str]] = [[] for _ in token_lists]
        for i, s in zip(keep, ids):
            out[i] = [self.feats.tags[j] for j in s]
        return out


def load_predictor(ckpt_dir: str | Path, device: str = "cpu") -> TaggerPredictor:
    ckpt = ck.resolve(ckpt_dir)
    stored = ck.read_config(ckpt)
    cfg = from_dict(Config, stored["config"])
    forms = json.loads((ckpt / FORMS_FILE).read_text()) if (ckpt / FORMS_FILE).is_file() else ()
    feats = Featurizer(Tokenizer.load(ckpt / WORDS_FILE), Tokenizer.load(ckpt / CHARS_FILE), stored["tags"],
                       forms, cfg.data.max_word_len, cfg.data.normalize_words)
    model = build_model(**stored["model_args"])
    ck.load_weights(model, ckpt)
    dev = pick_device(device)
    return TaggerPredictor(model.to(dev), feats, cfg, dev)


def _run_dir(model_dir: str | Path) -> Path:
    """The run directory that holds ``checkpoints/`` (or the checkpoint's own directory)."""
    ckpt = ck.resolve(model_dir)
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt


def evaluate(model_dir: str | Path, args) -> dict:
    """Score a trained model on ``args.split`` of its own dataset; writes ``metrics_<split>.json``."""
    predictor = load_predictor(model_dir, device="auto")
    cfg = predictor.config
    splits = load_data(cfg.data)
    if args.split not in splits:
        raise DataError(f"no split {args.split!r} (found {sorted(splits)})", cfg.data.name)
    metrics, _ = score(predictor.model, predictor.feats, splits[args.split], cfg.data.eval_max_tokens,
                       predictor.device, progress=True, desc=args.split, precision=cfg.infer_precision)
    path = _run_dir(model_dir) / f"metrics_{args.split}.json"
    write_json(path, metrics)
    print(json.dumps({k: v for k, v in metrics.items() if k != "per_tag"}, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return metrics


def predict(model_dir: str | Path, args) -> None:
    """Tag ``args.input`` (whitespace-tokenised lines, or a ``.conllu`` file) and write CoNLL-U."""
    predictor = load_predictor(model_dir, device="auto")
    if args.input != "-" and Path(args.input).name.endswith((".conllu", ".conllu.gz")):
        sentences = [ex["tokens"] for ex in read_conllu(args.input)]
    else:
        lines = read_lines(args.input) if args.input != "-" else sys.stdin.read().splitlines()
        sentences = [line.split() for line in lines]
        sentences = [s for s in sentences if s]
    tags = predictor.predict(sentences, progress=args.output != "-")
    tag_field = predictor.config.data.tag_field
    if args.output == "-":
        write_conllu(sys.stdout, sentences, tags, tag_field=tag_field)
    else:
        write_conllu(args.output, sentences, tags, tag_field=tag_field)
        print(f"tagged {len(sentences)} sentences -> {args.output}", file=sys.stderr)


def _add_args(p) -> None:
    p.add_argument("--ensemble", default="", help="ensemble mode: more trained models (comma-separated) to "
                   "combine with --model (summed CRF/log-softmax scores, one Viterbi pass)")
    p.add_argument("--record", default="", help="ensemble mode: also write results/pos_tagging/NAME.json")


def main(argv: list[str] | None = None) -> int:
    from ._pos_ensemble import ensemble

    try:
        return recipe_main(argv, task=TASK, schema=Config, description=__doc__, train=train, evaluate=evaluate,
                           predict=predict, extra_modes={"ensemble": ensemble}, add_args=_add_args)
    except DataError as e:  # bad input data: say where, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


__all__ = ["Config", "DataConfig", "ModelConfig", "Featurizer", "TaggerPredictor", "build_model", "train",
           "evaluate", "predict", "load_predictor", "main", "tagging_metrics"]
