"""The search methods for any autoregressive model: greedy search and sampling here, beam search in :mod:`.beam`.

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

    Optional: ``merge(states) -> state``, one state with the rows of ``states`` in order, lets
    :class:`~seqnlp.search.beam.BeamSearch` add inputs to a running search (continuous batching).
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
