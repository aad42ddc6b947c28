"""The search methods for any autoregressive model: greedy search, beam search and sampling.

Every function drives a model through the :class:`Decodable` protocol (``start``/``step``/``reorder``) and
works on the whole batch at once. Sentences that finish are dropped from the decoder state with
``reorder``, so later steps only compute what is still needed. Batched results equal the results of
decoding each input alone (up to the model's own floating-point batch effects).

Conventions shared by all functions:

* Outputs exclude BOS and EOS.
* ``max_len`` bounds the number of output tokens (EOS excluded), either one ``int`` for the whole batch
  or a LongTensor of shape (B,) with one bound per input (see :func:`max_lengths`). A hypothesis that
  reaches its bound is ended: greedy search and sampling stop there; beam search forces EOS at the next
  step (as fairseq does), so every finished hypothesis's score includes an EOS log-probability.
* The batch size is taken from ``batch`` (see :func:`batch_size_of`) or given as ``batch_size=``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = [
    "Decodable",
    "batch_size_of",
    "beam_search",
    "filter_logits",
    "greedy",
    "max_lengths",
    "sample",
]


@runtime_checkable
class Decodable(Protocol):
    """What a decoder exposes to search.

    ``state`` is opaque to search: any structure of tensors the model likes, with B rows in whatever
    dimension the model uses, so long as ``reorder`` can select its rows.
    """

    def start(self, batch: Any) -> Any:
        """Encode the source of ``batch`` and return the initial decoder state for its B sequences."""
        ...

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One decoder step.

        Args:
            tokens: shape (B',) long, the previous output token of each row (BOS at the first step).
            state: decoder state for B' rows.

        Returns:
            ``(log_probs, state)``: log_probs of shape (B', V), already log-softmaxed; the new state.
        """
        ...

    def reorder(self, state: Any, index: Tensor) -> Any:
        """Return the state whose row i is row ``index[i]`` of ``state``; index has shape (B'',) long.

        Rows may be repeated (beam expansion) or dropped (finished sentences).
        """
        ...


# ---------------------------------------------------------------------------- helpers
def max_lengths(src_lengths: Tensor, ratio: float, min_len: int = 1, cap: int | None = None) -> Tensor:
    """Per-input output length bounds ``clamp(ceil(ratio * src_len), min_len, cap)``.

    Args:
        src_lengths: shape (B,), source lengths.
        ratio: maximum output/source length ratio (e.g. 1.5 for translation).
        min_len: lower bound of the result (so that short sources may still get an output).
        cap: upper bound of the result, or None.

    Returns:
        LongTensor of shape (B,), to pass as ``max_len``.
    """
    out = torch.ceil(src_lengths.double() * ratio).long().clamp(min=min_len)
    return out if cap is None else out.clamp(max=cap)


def batch_size_of(batch: Any) -> int:
    """Infer the number of sequences in ``batch``.

    In order: a Tensor's first dimension; an int attribute ``batch_size``; ``len(batch)`` for objects
    that define it (but not tuples, lists or dicts); otherwise the first dimension of the first tensor
    found in a tuple, list, dict or dataclass (batch-first convention). Pass ``batch_size=`` to the
    search functions when none of these applies.
    """
    if isinstance(batch, Tensor):
        return batch.size(0)
    size = getattr(batch, "batch_size", None)
    if isinstance(size, int):
        return size
    if hasattr(batch, "__len__") and not isinstance(batch, (tuple, list, dict, str)):
        return len(batch)
    tensor = _first_tensor(batch)
    if tensor is None or tensor.dim() == 0:
        raise TypeError(f"cannot infer the batch size of a {type(batch).__name__}; pass batch_size=")
    return tensor.size(0)


def _first_tensor(obj: Any) -> Tensor | None:
    if isinstance(obj, Tensor):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items = [getattr(obj, f.name) for f in dataclasses.fields(obj)]
    elif isinstance(obj, dict):
        items = list(obj.values())
    elif isinstance(obj, (tuple, list)):
        items = list(obj)
    else:
        return None
    for item in items:
        found = _first_tensor(item)
        if found is not None:
            return found
    return None


def _device_of(state: Any, batch: Any) -> torch.device:
    tensor = _first_tensor(state)
    if tensor is None:
        tensor = _first_tensor(batch)
    return tensor.device if tensor is not None else torch.device("cpu")


def _as_lengths(max_len: int | Tensor, batch_size: int, device: torch.device) -> Tensor:
    """``max_len`` as a LongTensor of shape (B,) on ``device``."""
    if isinstance(max_len, Tensor):
        if max_len.shape != (batch_size,):
            raise ValueError(f"max_len must have shape ({batch_size},), got {tuple(max_len.shape)}")
        lengths = max_len.to(device=device, dtype=torch.long)
    else:
        lengths = torch.full((batch_size,), int(max_len), dtype=torch.long, device=device)
    if bool((lengths < 0).any()):
        raise ValueError("max_len must be non-negative")
    return lengths


def filter_logits(logits: Tensor, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Top-k and nucleus (top-p) filtering: set the scores of excluded tokens to ``-inf``.

    Args:
        logits: shape (..., V), unnormalised scores or log-probabilities.
        top_k: keep the k highest-scoring tokens (0 = no limit).
        top_p: keep the smallest set of highest-probability tokens whose total probability is at
            least ``top_p`` (1.0 = no limit). The most likely token is always kept.

    Returns:
        a new tensor of shape (..., V); ``logits`` is not modified.
    """
    if top_k < 0 or not 0.0 < top_p <= 1.0:
        raise ValueError(f"need top_k >= 0 and 0 < top_p <= 1, got top_k={top_k}, top_p={top_p}")
    if top_k > 0 and top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # drop a token when the tokens ranked above it already hold top_p of the mass
        drop_sorted = (probs.cumsum(dim=-1) - probs) >= top_p
        drop_sorted[..., 0] = False
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _ngram_ban(history: Tensor, n: int, vocab_size: int) -> Tensor:
    """Tokens that would repeat an n-gram already in each hypothesis.

    Args:
        history: shape (N, t) long, the tokens generated so far (t >= n).
        n: n-gram size.
        vocab_size: V.

    Returns:
        bool tensor of shape (N, V), True where emitting the token would complete a repeated n-gram.
    """
    t = history.size(1)
    windows = history.unfold(1, n, 1)  # (N, t-n+1, n): every n-gram so far
    suffix = history[:, t - n + 1 :]  # (N, n-1): the prefix of the n-gram about to be completed
    match = (windows[:, :, :-1] == suffix.unsqueeze(1)).all(-1)  # (N, t-n+1)
    counts = torch.zeros(history.size(0), vocab_size, dtype=torch.long, device=history.device)
    counts.scatter_add_(1, windows[:, :, -1], match.long())
    return counts > 0


# ---------------------------------------------------------------------------- greedy / sampling
def _decode_pointwise(
    model: Decodable,
    state: Any,
    max_lens: Tensor,
    choose: Callable[[Tensor], Tensor],
    *,
    bos: int,
    eos: int,
) -> list[list[int]]:
    """Shared loop of greedy search and sampling: one token per row and step.

    Args:
        state: decoder state for N rows.
        max_lens: shape (N,) long.
        choose: maps log-probs (N', V) to the next tokens (N',).
    """
    num_rows, device = max_lens.size(0), max_lens.device
    longest = int(max_lens.max()) if num_rows else 0
    out = torch.full((num_rows, longest), eos, dtype=torch.long, device=device)
    rows = torch.arange(num_rows, device=device)  # original row of each live row
    rows = rows[max_lens[rows] > 0]
    if 0 < len(rows) < num_rows:
        state = model.reorder(state, rows)
    tokens = torch.full((len(rows),), bos, dtype=torch.long, device=device)
    for t in range(longest):
        if len(rows) == 0:
            break
        log_probs, state = model.step(tokens, state)  # (N', V)
        tokens = choose(log_probs)
        out[rows, t] = tokens
        live = (tokens != eos) & (max_lens[rows] > t + 1)
        if not bool(live.all()):
            keep = live.nonzero().squeeze(1)
            rows, tokens = rows[keep], tokens[keep]
            if len(rows):
                state = model.reorder(state, keep)
    results = []
    for seq, n in zip(out.tolist(), max_lens.tolist()):
        seq = seq[:n]
        results.append(seq[: seq.index(eos)] if eos in seq else seq)
    return results


@torch.no_grad()
def greedy(
    model: Decodable,
    batch: Any,
    *,
    bos: int,
    eos: int,
    max_len: int | Tensor,
    batch_size: int | None = None,
) -> list[list[int]]:
    """Greedy search: the most probable token at every step.

    Args:
        model: a :class:`Decodable`.
        batch: whatever ``model.start`` takes, holding B inputs.
        bos, eos: begin- and end-of-sequence token ids.
        max_len: maximum number of output tokens, an int or a LongTensor of shape (B,).
        batch_size: B, when it cannot be inferred from ``batch``.

    Returns:
        B token lists, without BOS/EOS.
    """
    state = model.start(batch)
    size = batch_size if batch_size is not None else batch_size_of(batch)
    max_lens = _as_lengths(max_len, size, _device_of(state, batch))
    return _decode_pointwise(model, state, max_lens, lambda lp: lp.argmax(-1), bos=bos, eos=eos)


@torch.no_grad()
def sample(
    model: Decodable,
    batch: Any,
    *,
    bos: int,
    eos: int,
    max_len: int | Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    n: int = 1,
    generator: torch.Generator | None = None,
    batch_size: int | None = None,
) -> list[list[int]]:
    """Ancestral sampling with temperature, top-k and nucleus (top-p) filtering.

    Args:
        model, batch, bos, eos, max_len, batch_size: as in :func:`greedy`.
        temperature: log-probs are divided by it before filtering; must be > 0.
        top_k, top_p: see :func:`filter_logits`.
        n: samples per input.
        generator: a seeded ``torch.Generator`` on the model's device makes the result reproducible.

    Returns:
        B * n token lists ordered input0-sample0, input0-sample1, ..., input1-sample0, ...
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (use greedy for argmax), got {temperature}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    state = model.start(batch)
    size = batch_size if batch_size is not None else batch_size_of(batch)
    device = _device_of(state, batch)
    max_lens = _as_lengths(max_len, size, device)
    if n > 1:
        index = torch.arange(size, device=device).repeat_interleave(n)
        state, max_lens = model.reorder(state, index), max_lens[index]

    def choose(log_probs: Tensor) -> Tensor:
        logits = filter_logits(log_probs / temperature, top_k, top_p)
        return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)

    return _decode_pointwise(model, state, max_lens, choose, bos=bos, eos=eos)


# ---------------------------------------------------------------------------- beam search
@torch.no_grad()
def beam_search(
    model: Decodable,
    batch: Any,
    *,
    bos: int,
    eos: int,
    max_len: int | Tensor,
    beam_size: int = 5,
    length_penalty: float = 1.0,
    n_best: int = 1,
    no_repeat_ngram_size: int = 0,
    min_len: int = 0,
    batch_size: int | None = None,
) -> list[list[tuple[list[int], float]]]:
    """Batched beam search with fairseq-style finishing.

    Each input keeps ``beam_size`` live hypotheses, ranked by their summed log-probability. At every
    step the best ``2 * beam_size`` extensions of all live hypotheses are taken: an extension by EOS
    that ranks within the first ``beam_size`` finishes its hypothesis (it then gets its final score,
    the summed log-probability including EOS divided by the GNMT length penalty
    ``((5 + L) / 6) ** length_penalty``, L = output length + 1 for EOS); the best ``beam_size``
    extensions by other tokens become the next live hypotheses. An input is done once it has
    ``beam_size`` finished hypotheses (fairseq's default early stopping) or has reached its
    ``max_len``, when EOS is forced; the ``n_best`` finished ones with the highest final scores are
    returned.

    Args:
        model, batch, bos, eos, max_len, batch_size: as in :func:`greedy`.
        beam_size: live hypotheses per input.
        length_penalty: GNMT alpha; 0 ranks by the plain summed log-probability.
        n_best: hypotheses returned per input, at most ``beam_size``.
        no_repeat_ngram_size: if > 0, no hypothesis may contain the same n-gram of this size twice.
        min_len: EOS is blocked until a hypothesis has this many tokens (unless ``max_len`` forces it).

    Returns:
        for each of the B inputs, up to ``n_best`` pairs ``(tokens, score)`` sorted best first (fewer
        only when constraints leave fewer hypotheses with a finite score).
    """
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"need 1 <= n_best <= beam_size, got n_best={n_best}, beam_size={beam_size}")
    k = beam_size
    state = model.start(batch)
    size = batch_size if batch_size is not None else batch_size_of(batch)
    device = _device_of(state, batch)
    max_lens = _as_lengths(max_len, size, device)
    state = model.reorder(state, torch.arange(size, device=device).repeat_interleave(k))

    sent = torch.arange(size, device=device)  # (b,) original input of each live sentence
    history = torch.zeros(size, k, 0, dtype=torch.long, device=device)  # (b, k, t) tokens so far
    scores = torch.full((size, k), float("-inf"), device=device)  # (b, k) summed log-probs
    scores[:, 0] = 0.0  # one live hypothesis at the start, so the beams stay distinct
    tokens = torch.full((size * k,), bos, dtype=torch.long, device=device)
    finished: list[list[tuple[list[int], float]]] = [[] for _ in range(size)]
    rank = torch.arange(2 * k, device=device)

    for t in range(int(max_lens.max()) + 1 if size else 0):
        log_probs, state = model.step(tokens, state)  # (b * k, V)
        num_sent, vocab = scores.size(0), log_probs.size(-1)
        # accumulate in at least float32 even when the model runs in half precision
        log_probs = log_probs.reshape(num_sent, k, vocab).to(
            torch.promote_types(log_probs.dtype, torch.float32)
        )
        scores = scores.to(log_probs.dtype)
        forced = max_lens[sent] <= t  # (b,) must end now
        is_eos = torch.arange(vocab, device=device) == eos  # (V,)
        if t < min_len:
            block_eos = is_eos & ~forced.view(-1, 1, 1)
            log_probs = log_probs.masked_fill(block_eos, float("-inf"))
        if bool(forced.any()):
            log_probs = log_probs.masked_fill(forced.view(-1, 1, 1) & ~is_eos, float("-inf"))
        if 0 < no_repeat_ngram_size <= t:
            ban = _ngram_ban(history.reshape(num_sent * k, t), no_repeat_ngram_size, vocab)
            log_probs = log_probs.masked_fill(ban.view(num_sent, k, vocab), float("-inf"))

        # the best 2k of all k * V extensions are among the best 2k of each beam: select per beam first
        # (exact, and cheaper than adding the scores to and sorting all k * V candidates)
        per_beam = min(2 * k, vocab)
        # over the rows of a 2-D view: torch's CPU topk is markedly slower along the last axis of a 3-D tensor
        flat_lp, flat_tok = log_probs.reshape(num_sent * k, vocab).topk(per_beam, dim=1)
        beam_lp, beam_tok = flat_lp.view(num_sent, k, per_beam), flat_tok.view(num_sent, k, per_beam)
        cand = (scores.unsqueeze(2) + beam_lp).view(num_sent, k * per_beam)
        n_cand = min(2 * k, k * vocab)
        top_scores, top_idx = cand.topk(n_cand, dim=1)  # (b, n_cand), best first
        top_beam = top_idx // per_beam
        top_tok = beam_tok.view(num_sent, k * per_beam).gather(1, top_idx)
        finite = top_scores > float("-inf")
        cand_eos = top_tok == eos

        # bookkeeping of finished hypotheses (the only per-hypothesis Python)
        ii, rr = (cand_eos & finite & (rank[:n_cand] < k)).nonzero(as_tuple=True)  # best first per row
        if len(ii):
            penalty = ((5.0 + t + 1) / 6.0) ** length_penalty
            end_tokens = history[ii, top_beam[ii, rr]].tolist()  # (E, t)
            end_scores = (top_scores[ii, rr] / penalty).tolist()
            for src, toks, score in zip(sent[ii].tolist(), end_tokens, end_scores):
                if len(finished[src]) < k:
                    finished[src].append((toks, score))

        # the next live hypotheses: the best k extensions by a token other than EOS
        live = ~cand_eos & finite
        sel = torch.argsort((~live).long(), dim=1, stable=True)[:, :k]  # live first, in rank order
        scores = torch.where(live.gather(1, sel), top_scores.gather(1, sel), float("-inf"))
        beam, new_tok = top_beam.gather(1, sel), top_tok.gather(1, sel)  # (b, k)
        history = torch.cat(
            [history.gather(1, beam.unsqueeze(2).expand(-1, -1, t)), new_tok.unsqueeze(2)], dim=2
        )

        n_done = torch.tensor([len(finished[s]) for s in sent.tolist()], device=device)
        keep = (n_done < k) & ~forced & (scores > float("-inf")).any(dim=1)
        if not bool(keep.any()):
            break
        rows = (torch.arange(num_sent, device=device).unsqueeze(1) * k + beam)[keep].view(-1)
        state = model.reorder(state, rows)
        sent, history, scores = sent[keep], history[keep], scores[keep]
        tokens = new_tok[keep].view(-1)

    return [sorted(done, key=lambda h: h[1], reverse=True)[:n_best] for done in finished]
