"""How to decode (:class:`SearchConfig`) and decoding many sources at once (:func:`generate`, :func:`decode_texts`).

Sources are sorted by length and cut into batches of at most ``search.max_tokens`` padded source tokens (so a
batch holds similar lengths); each batch is searched at once by :mod:`seqnlp.search.methods`, and results come
back in input order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from ..data.batching import TokenBucketSampler
from ..data.seq2seq import source_batch
from ..data.tokenizers import Tokenizer
from .beam import beam_search
from .methods import greedy, max_lengths, sample

SEARCH_METHODS = ("greedy", "beam", "sample")

__all__ = ["SEARCH_METHODS", "Decoded", "SearchConfig", "decode_texts", "generate"]


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

    def describe(self) -> str:
        """``beam 5``, ``greedy``, ``sample (temperature 1.0, top-k 0, top-p 0.9)``."""
        if self.method == "beam":
            return f"beam {self.beam_size}"
        if self.method == "sample":
            return f"sample (temperature {self.temperature}, top-k {self.top_k}, top-p {self.top_p})"
        return self.method


@torch.no_grad()
def generate(model, srcs: Sequence[list[int]], search: SearchConfig, *, bos: int, eos: int, pad_id: int = 0,
             device: torch.device | str = "cpu", progress: bool = True,
             desc: str = "decode") -> list[list[tuple[list[int], float]]]:
    """Decode every source; returns, in input order, a list of ``(token ids, score)`` per source.

    Greedy search gives one hypothesis per source with score ``nan``; sampling gives ``search.n_best``
    samples (scores ``nan``); beam search the ``search.n_best`` best, best first (``([], -inf)`` when it
    found nothing finite).
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


@dataclass
class Decoded:
    """Detokenised best hypotheses and n-best lists ``[(text, score), ...]`` of :func:`decode_texts`."""

    best: list[str]
    nbest: list[list[tuple[str, float]]] = field(default_factory=list)


def decode_texts(model, tgt_tok: Tokenizer, srcs: Sequence[list[int]], search: SearchConfig, *,
                 device: torch.device | str = "cpu", progress: bool = True, desc: str = "decode") -> Decoded:
    """:func:`generate` then detokenise: the best hypothesis per source and the n-best lists as text."""
    res = generate(model, srcs, search, bos=tgt_tok.bos_id, eos=tgt_tok.eos_id, pad_id=tgt_tok.pad_id,
                   device=device, progress=progress, desc=desc)
    nbest = [[(tgt_tok.decode(ids), s) for ids, s in r] for r in res]
    return Decoded([n[0][0] for n in nbest], nbest)
