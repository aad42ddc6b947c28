"""The seq2seq data pipeline of translation and dialogue: subword tokenizers, encoding, collation, batches.

Plain values in and out (no task config objects):

* :func:`train_tokenizers` -- subword tokenizers (BPE or Unigram, joint or separate vocabularies) trained on
  the training split's sources and targets; :func:`tokenizer_files` / :func:`load_tokenizers` save and load
  them as ``src_tokenizer.json`` / ``tgt_tokenizer.json`` in a checkpoint.
* :func:`encode_sources` / :func:`encode_pairs` -- text to ids, with truncation of over-long sides counted
  (and, for training, pairs with an empty side skipped and counted) in an :class:`EncodeStats`.
  Sources end in ``</s>`` (so an empty source is one token long and still decodable); targets are stored bare
  and :class:`Seq2SeqCollate` makes ``tgt_in = <s> y`` and ``tgt_out = y </s>``.
* :class:`Seq2SeqCollate` -- id pairs to a :class:`~seqnlp.data.batching.Batch` with ``src``,
  ``src_lengths``, ``tgt_in``, ``tgt_out`` and token counts named ``source`` and ``target``;
  :func:`training_batches` -- the seeded, length-bucketed training batches of such pairs.
* :func:`finish_splits` -- the split checks and limits both tasks apply after loading.

Example::

    src_tok, tgt_tok = train_tokenizers("bpe", 8000, True, [e["source"] for e in train], [...targets])
    pairs, stats = encode_pairs(src_tok, tgt_tok, train, max_src_len=100, max_tgt_len=100, skip_empty=True)
    batches = training_batches(pairs, Seq2SeqCollate(0, 2, 3), max_tokens=2000, seed=1)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .batching import Batch, BatchIterator, TokenBucketSampler, pad
from .errors import DataError
from .tokenizers import Tokenizer

SRC_TOKENIZER = "src_tokenizer.json"
TGT_TOKENIZER = "tgt_tokenizer.json"
SUBWORD_KINDS = ("bpe", "unigram")

__all__ = [
    "SRC_TOKENIZER", "TGT_TOKENIZER", "EncodeStats", "Seq2SeqCollate", "counts_message", "encode_pairs",
    "encode_sources", "finish_splits", "load_tokenizers", "pair_lengths", "source_batch", "tokenizer_files",
    "train_tokenizers", "training_batches",
]  # fmt: skip


# ------------------------------------------------------------------------------------------- tokenizers
def train_tokenizers(kind: str, vocab_size: int, joint: bool, sources: Sequence[str], targets: Sequence[str],
                     min_freq: int = 2, extra_specials: Sequence[str] = ()) -> tuple[Tokenizer, Tokenizer]:
    """Subword tokenizers for both sides, trained on the training texts.

    Args:
        kind: ``bpe`` or ``unigram`` (byte-level: every character, seen or not, round-trips).
        vocab_size: size of each vocabulary (of the one joint vocabulary when ``joint``).
        joint: one vocabulary trained on sources and targets together (returned twice, the same object).
        min_freq: BPE merges seen fewer times are not learnt.
        extra_specials: added special tokens (e.g. a dialogue turn separator).
    """
    if kind not in SUBWORD_KINDS:
        raise ValueError(f"subword tokenizer must be one of {SUBWORD_KINDS}, got {kind!r}")
    if kind == "unigram" and vocab_size < 300:  # the 256 byte symbols and the specials must fit
        raise ValueError(f"a byte-level Unigram vocabulary needs vocab_size >= 300, got {vocab_size}")
    if joint:
        tok = Tokenizer.train(kind, [*sources, *targets], vocab_size, min_freq, extra_specials)
        return tok, tok
    return (Tokenizer.train(kind, sources, vocab_size, min_freq, extra_specials),
            Tokenizer.train(kind, targets, vocab_size, min_freq, extra_specials))


def tokenizer_files(src_tok: Tokenizer, tgt_tok: Tokenizer) -> dict:
    """``extra_files`` for a checkpoint: both tokenizers as ``tokenizers`` JSON files."""
    return {SRC_TOKENIZER: src_tok.save, TGT_TOKENIZER: tgt_tok.save}


def load_tokenizers(ckpt: str | Path) -> tuple[Tokenizer, Tokenizer]:
    """The source and target tokenizers saved in checkpoint directory ``ckpt``."""
    ckpt = Path(ckpt)
    return Tokenizer.load(ckpt / SRC_TOKENIZER), Tokenizer.load(ckpt / TGT_TOKENIZER)


# ------------------------------------------------------------------------------------------- splits
def finish_splits(splits: dict[str, list], name: str, train_limit: int = 0, eval_limit: int = 0) -> dict[str, list]:
    """Loaded splits checked and cut: a train split is required, test falls back to validation (said on
    stderr), ``train_limit`` / ``eval_limit`` keep the first examples (0: all).

    Raises:
        DataError: no train split.
    """
    if "train" not in splits:
        raise DataError(f"no train split (found {sorted(splits)})", name)
    if "test" not in splits:
        print(f"note: {name} has no test split; the validation split is used as test", file=sys.stderr)
        splits["test"] = splits["validation"]
    if train_limit:
        splits["train"] = splits["train"][:train_limit]
    if eval_limit:
        for s in ("validation", "test"):
            splits[s] = splits[s][:eval_limit]
    return splits


# ------------------------------------------------------------------------------------------- encoding
@dataclass
class EncodeStats:
    """What encoding did to a set of examples: counts to log and store."""

    examples: int = 0
    kept: int = 0
    skipped_empty: int = 0  # pairs with an empty source or target (training only)
    src_truncated: int = 0
    tgt_truncated: int = 0
    empty_sources: int = 0  # kept, when not skipping

    def message(self, what: str) -> str:
        return counts_message(what, self.kept, self.examples, [
            (self.skipped_empty, "skipped (empty source or target)"),
            (self.empty_sources, "empty sources (translated as empty input)"),
            (self.src_truncated, "sources truncated"), (self.tgt_truncated, "targets truncated")])


def counts_message(what: str, kept: int, examples: int, counts: Sequence[tuple[int, str]]) -> str:
    """``what: kept/examples examples, N text, ...``, naming only the ``(N, text)`` counts that are not 0."""
    return ", ".join([f"{what}: {kept}/{examples} examples", *(f"{n} {text}" for n, text in counts if n)])


def encode_sources(tok: Tokenizer, texts: Sequence[str], max_len: int,
                   stats: EncodeStats | None = None) -> tuple[list[list[int]], EncodeStats]:
    """Source ids ``x1 .. xn </s>``, at most ``max_len`` ids (longer sources are cut; counted).

    Empty (or all-blank) sources become ``[</s>]``: decodable, counted in ``stats.empty_sources``.
    """
    if max_len < 2:
        raise ValueError(f"max_len must be >= 2 (one token and </s>), got {max_len}")
    stats = stats or EncodeStats()
    out = []
    for ids, text in zip(tok.encode_batch([str(t) for t in texts]), texts):
        stats.examples += 1
        stats.kept += 1
        if not str(text).strip():
            stats.empty_sources += 1
        if len(ids) > max_len - 1:
            stats.src_truncated += 1
            ids = ids[: max_len - 1]
        out.append(ids + [tok.eos_id])
    return out, stats


def encode_pairs(src_tok: Tokenizer, tgt_tok: Tokenizer, examples: Sequence[dict], *, max_src_len: int,
                 max_tgt_len: int, skip_empty: bool = True,
                 where: str = "data") -> tuple[list[tuple[list[int], list[int]]], EncodeStats]:
    """Encode ``{"source", "target"}`` examples as ``(source ids ending in </s>, bare target ids)``.

    Targets longer than ``max_tgt_len - 1`` ids are cut (room for ``</s>``); both truncations are counted.
    With ``skip_empty`` (training), pairs whose source or target is blank are dropped and counted.

    Raises:
        DataError: no pair is left (``where`` names the data).
    """
    if max_tgt_len < 2:
        raise ValueError(f"max_tgt_len must be >= 2, got {max_tgt_len}")
    stats = EncodeStats()
    if skip_empty:
        kept = [e for e in examples if str(e["source"]).strip() and str(e["target"]).strip()]
        stats.skipped_empty = len(examples) - len(kept)
        stats.examples += stats.skipped_empty
        examples = kept
    srcs, stats = encode_sources(src_tok, [e["source"] for e in examples], max_src_len, stats)
    tgts = tgt_tok.encode_batch([str(e["target"]) for e in examples])
    pairs = []
    for s, t in zip(srcs, tgts):
        if len(t) > max_tgt_len - 1:
            stats.tgt_truncated += 1
            t = t[: max_tgt_len - 1]
        pairs.append((s, t))
    if not pairs:
        raise DataError("no usable sentence pairs (all empty?)", where)
    return pairs, stats


# ------------------------------------------------------------------------------------------- batches
class Seq2SeqCollate:
    """``[(src_ids, tgt_ids), ...] -> Batch(src, src_lengths, tgt_in, tgt_out)``; padding ``pad_id``.

    ``n_tokens``: ``source`` = source ids incl. ``</s>``; ``target`` = target ids incl. ``</s>``
    (the tokens the loss is computed on, as Joey NMT counts them).
    """

    def __init__(self, pad_id: int, bos_id: int, eos_id: int):
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id

    @classmethod
    def of(cls, tok: Tokenizer) -> Seq2SeqCollate:
        """The collation with ``tok``'s padding, ``<s>`` and ``</s>`` ids."""
        return cls(tok.pad_id, tok.bos_id, tok.eos_id)

    def __call__(self, pairs: Sequence[tuple[list[int], list[int]]]) -> Batch:
        src, src_lengths = pad([p[0] for p in pairs], self.pad_id)
        tgt_in, _ = pad([[self.bos_id, *p[1]] for p in pairs], self.pad_id)
        tgt_out, tgt_lengths = pad([[*p[1], self.eos_id] for p in pairs], self.pad_id)
        tensors = {"src": src, "src_lengths": src_lengths, "tgt_in": tgt_in, "tgt_out": tgt_out}
        n_tokens = {"source": int(src_lengths.sum()), "target": int(tgt_lengths.sum())}
        return Batch(tensors, n_tokens)


def pair_lengths(pairs: Sequence[tuple[list[int], list[int]]]) -> list[int]:
    """The padded length of each pair in a batch: the longer of its source and its target incl. ``</s>``."""
    return [max(len(s), len(t) + 1) for s, t in pairs]


def training_batches(pairs: Sequence[tuple[list[int], list[int]]], collate: Seq2SeqCollate, *, max_tokens: int,
                     max_sentences: int = 0, seed: int = 1) -> BatchIterator:
    """Shuffled (``seed``), length-bucketed batches of at most ``max_tokens`` padded tokens (the longer side)
    and ``max_sentences`` pairs (0: no cap)."""
    sampler = TokenBucketSampler(pair_lengths(pairs), max_tokens=max_tokens, max_sentences=max_sentences or None,
                                 seed=seed)
    return BatchIterator(pairs, sampler, collate)


def source_batch(srcs: Sequence[list[int]], pad_id: int) -> Batch:
    """A source-only batch (``src``, ``src_lengths``) for search."""
    src, src_lengths = pad(list(srcs), pad_id)
    return Batch({"src": src, "src_lengths": src_lengths}, {"source": int(src_lengths.sum())})
