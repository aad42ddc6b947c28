"""Beam search (fairseq-style finishing) for any :class:`~seqnlp.search.methods.Decodable`: :func:`beam_search`
over one batch, and :class:`BeamSearch`, the same search taking new inputs while it runs (continuous batching:
``seqnlp serve`` joins requests to a running search between two decoder steps).

The conventions of :mod:`seqnlp.search.methods` hold (outputs exclude BOS and EOS; ``max_len`` per input).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .methods import Decodable, _as_lengths, _device_of, batch_size_of

__all__ = ["BeamSearch", "beam_search"]


def _ngram_ban(history: Tensor, n: int, vocab_size: int) -> Tensor:
    """Tokens that would repeat an n-gram already in each hypothesis.

    Args:
        history: shape (N, t) long, the tokens generated so far (t >= n), right-aligned: a row with fewer
            tokens starts with -1 (:class:`BeamSearch`); n-grams that reach into them match nothing.
        n: n-gram size.
        vocab_size: V.

    Returns:
        bool tensor of shape (N, V), True where emitting the token would complete a repeated n-gram.
    """
    t = history.size(1)
    windows = history.unfold(1, n, 1)  # (N, t-n+1, n): every n-gram so far
    suffix = history[:, t - n + 1 :]  # (N, n-1): the prefix of the n-gram about to be completed
    match = (windows[:, :, :-1] == suffix.unsqueeze(1)).all(-1)  # (N, t-n+1)
    last = windows[:, :, -1]
    match &= last >= 0
    counts = torch.zeros(history.size(0), vocab_size, dtype=torch.long, device=history.device)
    counts.scatter_add_(1, last.clamp(min=0), match.long())
    return counts > 0


class BeamSearch:
    """Beam search over a changing set of inputs (continuous batching): :meth:`add` inputs between steps,
    :meth:`step` advances every live input by one token and returns those that finished.

    An input joins with its own step count, so inputs that joined at different steps are searched together
    and each gets what it would get searched alone (up to the model's floating-point batch effects): its
    hypotheses, length bound, ``min_len`` and length penalty count its own tokens only. Adding to a search that
    has live inputs needs the model's ``merge(states) -> state`` (the rows of the states in order, see
    :class:`Decodable`); :func:`beam_search` adds one batch and steps until every input is done.

    The arguments are those of :func:`beam_search`.
    """

    def __init__(self, model: Decodable, *, bos: int, eos: int, beam_size: int = 5, length_penalty: float = 1.0,
                 n_best: int = 1, no_repeat_ngram_size: int = 0, min_len: int = 0):
        if not 1 <= n_best <= beam_size:
            raise ValueError(f"need 1 <= n_best <= beam_size, got n_best={n_best}, beam_size={beam_size}")
        self.model, self.bos, self.eos, self.k = model, bos, eos, beam_size
        self.length_penalty, self.n_best = length_penalty, n_best
        self.no_repeat_ngram_size, self.min_len = no_repeat_ngram_size, min_len
        self.state: Any = None
        self.device: torch.device | None = None
        self.ids: list[Any] = []  # (b,) the caller's id of each live input
        self.finished: list[list[tuple[list[int], float]]] = []  # (b,) its finished hypotheses
        self.steps = self.max_lens = self.history = self.scores = self.tokens = None  # tensors, see add()

    def __len__(self) -> int:
        """Live inputs."""
        return len(self.ids)

    @property
    def rows(self) -> int:
        """Decoder rows in the next step (live inputs x beam size)."""
        return len(self.ids) * self.k

    def add(self, batch: Any, max_len: int | Tensor, ids: list[Any] | None = None,
            batch_size: int | None = None) -> None:
        """Start searching the inputs of ``batch`` (``ids``: what :meth:`step` returns with each; default their
        position in the batch). An input whose ``max_len`` is 0 ends at its first step (EOS forced)."""
        k = self.k
        state = self.model.start(batch)
        size = batch_size if batch_size is not None else batch_size_of(batch)
        if size == 0:
            return
        device = _device_of(state, batch)
        max_lens = _as_lengths(max_len, size, device)
        state = self.model.reorder(state, torch.arange(size, device=device).repeat_interleave(k))
        scores = torch.full((size, k), float("-inf"), device=device)  # (b, k) summed log-probs
        scores[:, 0] = 0.0  # one live hypothesis at the start, so the beams stay distinct
        tokens = torch.full((size * k,), self.bos, dtype=torch.long, device=device)
        ids = list(range(size)) if ids is None else list(ids)
        if len(ids) != size:
            raise ValueError(f"{len(ids)} ids for {size} inputs")
        if not self.ids:
            self.state, self.device = state, device
            self.steps = torch.zeros(size, dtype=torch.long, device=device)
            self.max_lens, self.scores, self.tokens = max_lens, scores, tokens
            self.history = torch.zeros(size, k, 0, dtype=torch.long, device=device)  # (b, k, t), newest last
        else:
            merge = getattr(self.model, "merge", None)
            if merge is None:
                raise TypeError(f"{type(self.model).__name__} has no merge(states): inputs can only be added to "
                                "an empty search")
            self.state = merge([self.state, state])
            self.steps = torch.cat([self.steps, self.steps.new_zeros(size)])
            self.max_lens = torch.cat([self.max_lens, max_lens])
            self.scores = torch.cat([self.scores, scores.to(self.scores.dtype)])
            self.tokens = torch.cat([self.tokens, tokens])
            # histories are right-aligned (each input's newest token last); -1 before an input's first token
            blank = self.history.new_full((size, k, self.history.size(2)), -1)
            self.history = torch.cat([self.history, blank])
        self.ids += ids
        self.finished += [[] for _ in range(size)]

    def step(self) -> list[tuple[Any, list[tuple[list[int], float]]]]:
        """One decoder step for every live input; the inputs done after it, as ``(id, hypotheses)`` with up to
        ``n_best`` ``(tokens, score)`` pairs sorted best first (fewer only when constraints leave fewer
        hypotheses with a finite score)."""
        if not self.ids:
            return []
        k, eos, device = self.k, self.eos, self.device
        steps, history = self.steps, self.history
        log_probs, state = self.model.step(self.tokens, self.state)  # (b * k, V)
        num_sent, vocab = len(self.ids), log_probs.size(-1)
        # accumulate in at least float32 even when the model runs in half precision
        log_probs = log_probs.reshape(num_sent, k, vocab).to(torch.promote_types(log_probs.dtype, torch.float32))
        scores = self.scores.to(log_probs.dtype)
        forced = self.max_lens <= steps  # (b,) must end now
        is_eos = torch.arange(vocab, device=device) == eos  # (V,)
        if self.min_len > 0:
            block_eos = is_eos & ((steps < self.min_len) & ~forced).view(-1, 1, 1)
            log_probs = log_probs.masked_fill(block_eos, float("-inf"))
        if bool(forced.any()):
            log_probs = log_probs.masked_fill(forced.view(-1, 1, 1) & ~is_eos, float("-inf"))
        n = self.no_repeat_ngram_size
        if 0 < n <= history.size(2):
            ban = _ngram_ban(history.reshape(num_sent * k, -1), n, vocab).view(num_sent, k, vocab)
            ban &= (steps >= n).view(-1, 1, 1)
            log_probs = log_probs.masked_fill(ban, float("-inf"))

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
        rank = torch.arange(n_cand, device=device)
        ii, rr = (cand_eos & finite & (rank < k)).nonzero(as_tuple=True)  # best first per row
        if len(ii):
            penalty = ((5.0 + steps[ii] + 1).to(top_scores.dtype) / 6.0) ** self.length_penalty
            end_tokens = history[ii, top_beam[ii, rr]].tolist()  # (E, t), right-aligned
            end_scores = (top_scores[ii, rr] / penalty).tolist()
            for i, toks, score, t in zip(ii.tolist(), end_tokens, end_scores, steps[ii].tolist()):
                if len(self.finished[i]) < k:
                    self.finished[i].append((toks[len(toks) - t:] if t else [], score))

        # the next live hypotheses: the best k extensions by a token other than EOS
        live = ~cand_eos & finite
        sel = torch.argsort((~live).long(), dim=1, stable=True)[:, :k]  # live first, in rank order
        scores = torch.where(live.gather(1, sel), top_scores.gather(1, sel), float("-inf"))
        beam, new_tok = top_beam.gather(1, sel), top_tok.gather(1, sel)  # (b, k)
        width = history.size(2)
        history = torch.cat([history.gather(1, beam.unsqueeze(2).expand(-1, -1, width)), new_tok.unsqueeze(2)],
                            dim=2)
        steps = steps + 1

        n_done = torch.tensor([len(f) for f in self.finished], device=device)
        keep = (n_done < k) & ~forced & (scores > float("-inf")).any(dim=1)
        keep_list = keep.tolist()
        done = [(self.ids[i], sorted(self.finished[i], key=lambda h: h[1], reverse=True)[: self.n_best])
                for i, kept in enumerate(keep_list) if not kept]
        if not done:  # every input goes on
            rows = (torch.arange(num_sent, device=device).unsqueeze(1) * k + beam).view(-1)
        else:
            rows = (torch.arange(num_sent, device=device).unsqueeze(1) * k + beam)[keep].view(-1)
            self.ids = [x for x, kept in zip(self.ids, keep_list) if kept]
            self.finished = [f for f, kept in zip(self.finished, keep_list) if kept]
            steps, history, scores, new_tok = steps[keep], history[keep], scores[keep], new_tok[keep]
            self.max_lens = self.max_lens[keep]
        if self.ids:
            longest = int(steps.max())
            self.state = self.model.reorder(state, rows)
            self.history = history[:, :, history.size(2) - longest:]  # columns no live input reads: gone
        else:
            self.state = None
            self.history = history[:, :, :0]
        self.steps, self.scores, self.tokens = steps, scores, new_tok.reshape(-1)
        return done


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
    returned. (:class:`BeamSearch` is the same search with inputs joining while it runs.)

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
    search = BeamSearch(model, bos=bos, eos=eos, beam_size=beam_size, length_penalty=length_penalty, n_best=n_best,
                        no_repeat_ngram_size=no_repeat_ngram_size, min_len=min_len)
    search.add(batch, max_len, batch_size=batch_size)
    out: dict[int, list[tuple[list[int], float]]] = {}
    while len(search):
        out.update(search.step())
    return [out[i] for i in range(len(out))]
