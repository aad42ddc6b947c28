"""The seq2seq data pipeline shared by the translation and dialogue recipes.

What both recipes need, with plain values in and out (no recipe config objects):

* :func:`train_tokenizers` -- subword tokenizers (BPE or Unigram, joint or separate vocabularies) trained on
  the training split's sources and targets; :func:`tokenizer_files` / :func:`load_tokenizers` save and load
  them as ``src_tokenizer.json`` / ``tgt_tokenizer.json`` in a checkpoint.
* :func:`encode_sources` / :func:`encode_pairs` -- text to ids, with truncation of over-long sides counted
  (and, for training, pairs with an empty side skipped and counted) in an :class:`EncodeStats`.
  Sources end in ``</s>`` (so an empty source is one token long and still decodable); targets are stored bare
  and :class:`Seq2SeqCollate` makes ``tgt_in = <s> y`` and ``tgt_out = y </s>``.
* :class:`Seq2SeqCollate` -- id lists to a :class:`~seqnlp.data.batching.Batch` with ``src``,
  ``src_lengths``, ``tgt_in``, ``tgt_out`` and token counts named ``source`` and ``target``.
* :class:`SearchConfig` and :func:`generate` -- greedy / beam / sampling over many sources, batched by a
  token budget on sources sorted by length, returned in input order.
* :func:`score` -- sacreBLEU (cased, detokenised, 13a) and chrF with their signatures.

Example (what a recipe does)::

    src_tok, tgt_tok = train_tokenizers("bpe", 8000, True, [e["source"] for e in train], [...targets])
    pairs, stats = encode_pairs(src_tok, tgt_tok, train, max_src_len=100, max_tgt_len=100, skip_empty=True)
    collate = Seq2SeqCollate(pad_id=src_tok.pad_id)
    ...
    srcs, stats = encode_sources(src_tok, [e["source"] for e in test], max_len=100)
    nbest = generate(model, srcs, SearchConfig(method="beam", beam_size=5), bos=..., eos=...)
    metrics = score([tgt_tok.decode(h[0][0]) for h in nbest], [e["target"] for e in test])
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data.batching import Batch, TokenBucketSampler, pad
from ..data.errors import DataError
from ..data.tokenizers import Tokenizer
from ..metrics import bleu, chrf
from ..search import beam_search, greedy, max_lengths, sample

log = logging.getLogger(__name__)

SRC_TOKENIZER = "src_tokenizer.json"
TGT_TOKENIZER = "tgt_tokenizer.json"
SUBWORD_KINDS = ("bpe", "unigram")
SEARCH_METHODS = ("greedy", "beam", "sample")

__all__ = [
    "SRC_TOKENIZER", "TGT_TOKENIZER", "EncodeStats", "SearchConfig", "Seq2SeqCollate", "Translations",
    "decode_texts", "encode_pairs", "encode_sources", "generate", "load_tokenizers", "score", "source_batch",
    "tokenizer_files", "train_tokenizers",
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
        parts = [f"{what}: {self.kept}/{self.examples} examples"]
        if self.skipped_empty:
            parts.append(f"{self.skipped_empty} skipped (empty source or target)")
        if self.empty_sources:
            parts.append(f"{self.empty_sources} empty sources (translated as empty input)")
        if self.src_truncated:
            parts.append(f"{self.src_truncated} sources truncated")
        if self.tgt_truncated:
            parts.append(f"{self.tgt_truncated} targets truncated")
        return ", ".join(parts)


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


class Seq2SeqCollate:
    """``[(src_ids, tgt_ids), ...] -> Batch(src, src_lengths, tgt_in, tgt_out)``; padding ``pad_id``.

    ``n_tokens``: ``source`` = source ids incl. ``</s>``; ``target`` = target ids incl. ``</s>``
    (the tokens the loss is computed on, as Joey NMT counts them).
    """

    def __init__(self, pad_id: int, bos_id: int, eos_id: int):
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id

    def __call__(self, pairs: Sequence[tuple[list[int], list[int]]]) -> Batch:
        src, src_lengths = pad([p[0] for p in pairs], self.pad_id)
        tgt_in, _ = pad([[self.bos_id, *p[1]] for p in pairs], self.pad_id)
        tgt_out, tgt_lengths = pad([[*p[1], self.eos_id] for p in pairs], self.pad_id)
        tensors = {"src": src, "src_lengths": src_lengths, "tgt_in": tgt_in, "tgt_out": tgt_out}
        n_tokens = {"source": int(src_lengths.sum()), "target": int(tgt_lengths.sum())}
        return Batch(tensors, n_tokens)


def source_batch(srcs: Sequence[list[int]], pad_id: int) -> Batch:
    """A source-only batch (``src``, ``src_lengths``) for search."""
    src, src_lengths = pad(list(srcs), pad_id)
    return Batch({"src": src, "src_lengths": src_lengths}, {"source": int(src_lengths.sum())})


# ------------------------------------------------------------------------------------------- search
@dataclass
class SearchConfig:
    """How to decode (``search.*`` in translation and dialogue configs)."""

    method: str = "beam"  # greedy | beam | sample
    beam_size: int = 5
    length_penalty: float = 1.0  # GNMT alpha (0: raw log-probability)
    n_best: int = 1  # hypotheses returned per input (beam), samples per input (sample)
    max_len_ratio: float = 2.0  # output tokens <= ceil(ratio * source tokens) ...
    min_max_len: int = 10  # ... but at least this many ...
    max_output_len: int = 200  # ... and at most this many
    no_repeat_ngram_size: int = 0
    temperature: float = 1.0  # sample only
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 1
    max_tokens: int = 3000  # source tokens per decoding batch (beam rows = beam_size x this)

    def __post_init__(self):
        if self.method not in SEARCH_METHODS:
            raise ValueError(f"search.method must be one of {SEARCH_METHODS}, got {self.method!r}")


@torch.no_grad()
def generate(model, srcs: Sequence[list[int]], search: SearchConfig, *, bos: int, eos: int, pad_id: int = 0,
             device: torch.device | str = "cpu", progress: bool = True,
             desc: str = "decode") -> list[list[tuple[list[int], float]]]:
    """Decode every source; returns, in input order, a list of ``(token ids, score)`` per source.

    Sources are sorted by length and cut into batches of at most ``search.max_tokens`` padded source tokens
    (so batches hold similar lengths); the whole batch is searched at once. Greedy search gives one
    hypothesis per source with score ``nan``; sampling gives ``search.n_best`` samples.
    """
    if not srcs:
        return []
    was_training = model.training
    model.eval()
    sampler = TokenBucketSampler([len(s) for s in srcs], max_tokens=search.max_tokens, shuffle=False, sort=True)
    gen = torch.Generator(device=device).manual_seed(search.seed) if search.method == "sample" else None
    out: list = [None] * len(srcs)
    bar = tqdm(total=len(srcs), desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    for idx in sampler.batches():
        batch = source_batch([srcs[i] for i in idx], pad_id).to(device)
        max_len = max_lengths(batch.src_lengths, search.max_len_ratio, search.min_max_len, search.max_output_len)
        common = dict(bos=bos, eos=eos, max_len=max_len)
        if search.method == "greedy":
            res = [[(h, math.nan)] for h in greedy(model, batch, **common)]
        elif search.method == "beam":
            res = beam_search(model, batch, beam_size=search.beam_size, length_penalty=search.length_penalty,
                              n_best=search.n_best, no_repeat_ngram_size=search.no_repeat_ngram_size, **common)
        else:
            hyps = sample(model, batch, temperature=search.temperature, top_k=search.top_k, top_p=search.top_p,
                          n=search.n_best, generator=gen, **common)
            n = search.n_best
            res = [[(h, math.nan) for h in hyps[i * n : (i + 1) * n]] for i in range(len(idx))]
        for i, r in zip(idx, res):
            out[i] = r if r else [([], -math.inf)]  # beam search found nothing finite: empty output
        bar.update(len(idx))
    bar.close()
    model.train(was_training)
    return out


# ------------------------------------------------------------------------------------------- scoring
def score(hyps: Sequence[str], refs: Sequence[str]) -> dict:
    """sacreBLEU (cased, detokenised, 13a tokenizer) and chrF of detokenised hypotheses against references.

    Returns ``{"bleu", "chrf", "signature", "chrf_signature"}``; ``signature`` is BLEU's.
    """
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    b, b_sig = bleu(hyps, refs)
    c, c_sig = chrf(hyps, refs)
    return {"bleu": round(b, 2), "chrf": round(c, 2), "signature": b_sig, "chrf_signature": c_sig}


@dataclass
class Translations:
    """Detokenised best hypotheses (and n-best lists) of :func:`decode_texts`."""

    best: list[str]
    nbest: list[list[tuple[str, float]]] = field(default_factory=list)


def decode_texts(model, tgt_tok: Tokenizer, srcs: Sequence[list[int]], search: SearchConfig, *,
                 device: torch.device | str = "cpu", progress: bool = True, desc: str = "decode") -> Translations:
    """:func:`generate` then detokenise: best hypothesis per source and the n-best lists as text."""
    res = generate(model, srcs, search, bos=tgt_tok.bos_id, eos=tgt_tok.eos_id, pad_id=tgt_tok.pad_id,
                   device=device, progress=progress, desc=desc)
    nbest = [[(tgt_tok.decode(ids), s) for ids, s in r] for r in res]
    return Translations([n[0][0] for n in nbest], nbest)
