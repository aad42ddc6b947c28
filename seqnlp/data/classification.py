"""Text classification data (the sentiment task): labelled and unlabelled text loaded and checked, the word
tokenizer, head + tail truncation, encoding, batches (classifier and language-model), cross-validation folds and
sentence cutting. Everything here works on plain lists and values; the task module and recipe wire it together.

    splits, labels = load_labelled(spec, labels, label_map, "error", note)   # {split: [(text, label)]}
    tok = build_tokenizer(texts, vocab_size=30000, min_freq=2)
    encoded = encode_examples(tok, splits["train"], labels, max_len, keep_head, "train", note)
    it = batches(encoded, [len(x) for x, *_ in encoded], collate_classify(tok.pad_id), max_tokens=4000, ...)

``note(message, event=..., **data)`` is the caller's reporter (what was skipped or truncated, said once).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Sequence

import torch
from tokenizers import Regex, models, normalizers, pre_tokenizers, trainers
from tokenizers import Tokenizer as _HFTokenizer

from .batching import Batch, BatchIterator, TokenBucketSampler, pad
from .errors import DataError
from .loading import DataSpec, load_splits
from .tokenizers import SPECIALS, UNK, Tokenizer

# Words, PTB-style clitics ("do n't", "it 's") and single punctuation marks: SST-2/RT (already tokenised) and
# IMDB (raw) come out the same way, so vocabularies and checkpoints transfer between them.
_WORD_PATTERN = r"n't\b|'(?:s|re|ve|ll|d|m)\b|\w+?(?=n't\b)|\w+|[^\w\s]"
_HTML_BREAK = r"<br\s*/?>"

Example = tuple[str, str]  # (text, label name)
Encoded = tuple  # (token ids, label index) or (token ids, label index, teacher class probabilities)


# ------------------------------------------------------------------------------------------- tokenizer
def build_tokenizer(texts: Sequence[str], vocab_size: int, min_freq: int, lowercase: bool = True,
                    extra_words: Sequence[str] = ()) -> Tokenizer:
    """A word-level tokenizer whose ``tokenizer.json`` also holds the text normalisation (HTML line breaks
    removed, NFKC, optional lowercasing) and the word/punctuation splitting, so raw text at prediction time
    is treated exactly as the training text was. Word ids are ordered by frequency (specials first).

    ``extra_words`` (e.g. the words of pretrained vectors) are appended after the training words, beyond
    ``vocab_size``, so that words unseen in training still get their own row; words the normalisation or
    splitting would never produce as one token are left out."""
    tok = _HFTokenizer(models.WordLevel(unk_token=UNK))
    steps = [normalizers.Replace(Regex(_HTML_BREAK), " "), normalizers.NFKC()]
    if lowercase:
        steps.append(normalizers.Lowercase())
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(_WORD_PATTERN), behavior="isolated")]
    )
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_freq, special_tokens=SPECIALS,
                                        show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    if extra_words:
        vocab = tok.get_vocab()
        for w in extra_words:
            pieces = tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(w))
            if w not in vocab and [p for p, _ in pieces] == [w]:
                vocab[w] = len(vocab)
        tok.model = models.WordLevel(vocab=vocab, unk_token=UNK)
    return Tokenizer(tok)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(]*[A-Z0-9])")


def split_sentences(text: str, min_words: int = 3, max_words: int = 0) -> list[str]:
    """The sentences of a raw review (split after ``.!?`` before a capital or digit; HTML breaks removed) with
    ``min_words``..``max_words`` whitespace-separated words (``max_words`` 0: no upper limit)."""
    out = []
    for sent in _SENTENCE_END.split(re.sub(_HTML_BREAK, " ", text)):
        n = len(sent.split())
        if n >= min_words and (max_words <= 0 or n <= max_words):
            out.append(" ".join(sent.split()))
    return out


def truncate(ids: list[int], max_len: int, keep_head: int) -> list[int]:
    """At most ``max_len`` ids: the first ``keep_head`` and the last ``max_len - keep_head`` (0: no limit)."""
    if max_len <= 0 or len(ids) <= max_len:
        return ids
    head = min(keep_head, max_len)
    return ids[:head] + ids[len(ids) - (max_len - head):]


def encode_texts(tok: Tokenizer, texts: Sequence[str], max_len: int, keep_head: int) -> tuple[list[list[int]], int]:
    """Token ids of ``texts`` (truncated head + tail) and how many were truncated."""
    out, n_truncated = [], 0
    for ids in tok.encode_batch(list(texts)):
        if 0 < max_len < len(ids):
            n_truncated += 1
            ids = truncate(ids, max_len, keep_head)
        out.append(ids)
    return out, n_truncated


# ----------------------------------------------------------------------------------------- loading
def load_labelled(spec: DataSpec, labels: Sequence[str], label_map: dict[str, str], unknown_labels: str,
                  note: Callable[..., None]) -> tuple[dict[str, list[Example]], list[str]]:
    """Load ``spec`` and check its examples: ``({split: [(text, label), ...]}, label set)``.

    Labels are turned into strings and mapped through ``label_map`` (e.g. ``{"0": "negative"}``). The label set
    is ``labels`` when given, else the sorted labels of the train split. Examples with an empty text or no label
    are skipped and counted; a label outside the set raises (``unknown_labels="error"``) or is skipped and
    counted (``"skip"``). Every skip count is reported once per split through ``note``.

    Raises:
        DataError: no ``label`` field (naming the dataset and how to map the column), a label outside the set,
            a split left empty by the skips; and whatever :func:`load_splits` raises.
    """
    if unknown_labels not in ("error", "skip"):
        raise ValueError(f"data.unknown_labels must be 'error' or 'skip', got {unknown_labels!r}")
    raw = load_splits(spec)
    if "train" not in raw:
        raise DataError(f"no train split (found {sorted(raw)}); set data.splits", spec.name)
    for split, examples in raw.items():
        if examples and "label" not in examples[0]:
            raise DataError(f"split {split!r} has no label column (fields found: {sorted(examples[0])}); "
                            "map it with data.columns.label=COLUMN", spec.name, field="label")
        if examples and "text" not in examples[0]:
            raise DataError(f"split {split!r} has no text column (fields found: {sorted(examples[0])}); "
                            "map it with data.columns.text=COLUMN", spec.name, field="text")

    def name_of(value) -> str | None:
        if value is None:
            return None
        key = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value).strip()
        return label_map.get(key, key)

    known = list(labels) or sorted({n for ex in raw["train"] if (n := name_of(ex["label"])) is not None})
    known_set = set(known)
    out = {}
    for split, examples in raw.items():
        kept, skipped, unknown = [], Counter(), Counter()
        for i, ex in enumerate(examples):
            text, label = ex["text"], name_of(ex["label"])
            if text is None or not str(text).strip():
                skipped["empty text"] += 1
            elif label is None or label == "":
                skipped["no label"] += 1
            elif label not in known_set:
                if unknown_labels == "error":
                    raise DataError(f"split {split!r}, example {i + 1}: label {ex['label']!r} is not in the known "
                                    f"label set {known} (set data.labels / data.label_map, or "
                                    "data.unknown_labels=skip to skip such examples)", spec.name, field="label")
                unknown[label] += 1
            else:
                kept.append((str(text), label))
        if unknown:
            skipped[f"label outside {known} ({dict(unknown)})"] = sum(unknown.values())
        if skipped:
            what = ", ".join(f"{n} {why}" for why, n in skipped.items())
            note(f"{split}: skipped {sum(skipped.values())} of {len(examples)} examples ({what})",
                 event="skipped", split=split, counts=dict(skipped))
        if not kept:
            raise DataError(f"split {split!r}: no usable examples left (all {len(examples)} skipped)", spec.name)
        out[split] = kept
    return out, known


def subsample(examples: list, n: int, seed: int) -> list:
    """A seeded random ``n`` of ``examples`` in their original order (all when ``n <= 0`` or too few)."""
    if n <= 0 or n >= len(examples):
        return examples
    keep = sorted(random.Random(seed).sample(range(len(examples)), n))
    return [examples[i] for i in keep]


def cv_fold(examples: list, k: int, fold: int, validation: float, seed: int) -> dict[str, list]:
    """Fold ``fold`` of ``k``-fold cross-validation: seeded shuffle, the fold's slice is ``test``, a seeded
    ``validation`` fraction of the rest is ``validation``, the remainder ``train``."""
    if not 0 <= fold < k or k < 2:
        raise ValueError(f"fold {fold} of {k} folds")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    bounds = [round(i * len(order) / k) for i in range(k + 1)]
    test = order[bounds[fold]:bounds[fold + 1]]
    rest = order[:bounds[fold]] + order[bounds[fold + 1]:]
    random.Random(seed + 1 + fold).shuffle(rest)
    n_val = max(1, round(validation * len(rest)))
    return {"train": [examples[i] for i in sorted(rest[n_val:])],
            "validation": [examples[i] for i in sorted(rest[:n_val])],
            "test": [examples[i] for i in sorted(test)]}


def load_texts(sources, seed: int, field_name: str) -> list[str]:
    """The non-blank texts of unlabelled datasets: ``sources`` are items with ``name``, ``format``, ``splits``,
    ``columns`` and ``limit`` (a seeded subsample of each split; 0: all), ``field_name`` names them in errors."""
    texts = []
    for src in sources:
        spec = DataSpec(src.name, format=src.format, splits=dict(src.splits), columns=dict(src.columns))
        for split, examples in load_splits(spec).items():
            if examples and "text" not in examples[0]:
                raise DataError(f"split {split!r} has no text column; set {field_name}[].columns.text",
                                src.name, field="text")
            texts += subsample([t for ex in examples if (t := ex["text"]) and t.strip()], src.limit, seed)
    return texts


def encode_examples(tok: Tokenizer, examples: Sequence[Example], labels: Sequence[str], max_len: int,
                    keep_head: int, split: str, note: Callable[..., None],
                    soft: torch.Tensor | None = None) -> list[Encoded]:
    """``[(ids, label index)]`` (``[(ids, label index, probs)]`` with ``soft`` (N, C) target probabilities);
    texts without tokens are dropped; truncation and the drops are reported once through ``note``.

    Raises:
        DataError: no example of ``split`` has any tokens.
    """
    ids, n_trunc = encode_texts(tok, [t for t, _ in examples], max_len, keep_head)
    if n_trunc:
        head = min(keep_head, max_len)
        note(f"{split}: truncated {n_trunc} of {len(examples)} texts to {max_len} tokens "
             f"(first {head} + last {max_len - head})", event="truncated", split=split, count=n_trunc,
             total=len(examples))
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


# ----------------------------------------------------------------------------------------- batches
def collate_classify(pad_id: int) -> Callable[[list[Encoded]], Batch]:
    """``[(ids, label), ...]`` → ``Batch(src (B, T), src_lengths (B,), labels (B,))``; label -1 = none.
    Items ``(ids, label, probs)`` (a teacher's class probabilities, for distillation) add ``soft (B, C)``."""

    def collate(items: list[Encoded]) -> Batch:
        src, lengths = pad([it[0] for it in items], pad_id)
        labels = torch.tensor([it[1] for it in items], dtype=torch.long)
        tensors = {"src": src, "src_lengths": lengths, "labels": labels}
        if len(items[0]) > 2:
            tensors["soft"] = torch.tensor([it[2] for it in items], dtype=torch.float32)
        return Batch(tensors, n_tokens={"source": int(lengths.sum())})

    return collate


def collate_lm(pad_id: int, bos_id: int, eos_id: int) -> Callable[[list[list[int]]], Batch]:
    """``[ids, ...]`` → ``Batch(src (B, T), src_lengths (B,))`` with every sequence wrapped in ``<s> … </s>``."""

    def collate(items: list[list[int]]) -> Batch:
        src, lengths = pad([[bos_id, *ids, eos_id] for ids in items], pad_id)
        return Batch({"src": src, "src_lengths": lengths}, n_tokens={"source": int(lengths.sum())})

    return collate


def batches(items: list, lengths: Sequence[int], collate, *, max_tokens: int, max_sentences: int | None,
            shuffle: bool, seed: int = 0) -> BatchIterator:
    """Token-budget batches (shuffled and bucketed for training; sorted by length for evaluation)."""
    sampler = TokenBucketSampler(lengths, max_tokens=max_tokens, max_sentences=max_sentences or None,
                                 shuffle=shuffle, seed=seed)
    return BatchIterator(items, sampler, collate)


__all__ = ["Encoded", "Example", "batches", "build_tokenizer", "collate_classify", "collate_lm", "cv_fold",
           "encode_examples", "encode_texts", "load_labelled", "load_texts", "split_sentences", "subsample",
           "truncate"]
