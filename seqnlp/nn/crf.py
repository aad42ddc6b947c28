"""Linear-chain conditional random field for sequence tagging.

The CRF scores a tag sequence ``y_1..y_n`` for emissions ``e`` (one row of tag scores per token) as

    score(y) = start[y_1] + sum_t e[t, y_t] + sum_{t>1} transitions[y_{t-1}, y_t] + end[y_n]

and defines ``p(y | x) = exp(score(y)) / Z`` with ``Z`` the sum over all ``K ** n`` tag paths, computed by
the forward algorithm. Every computation is batched: the only Python loop runs over time steps, which
the forward and Viterbi recursions require.

Batches are batch-first. Padding is described by a boolean ``mask`` of shape ``(batch, seq_len)`` that
must be left-aligned: each row is ``True`` for its first ``length`` positions and ``False`` after, and
every sequence has at least one token.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LinearChainCRF(nn.Module):
    """A linear-chain CRF over ``num_tags`` tags.

    Parameters:
        transitions: shape (num_tags, num_tags); ``transitions[i, j]`` scores moving from tag i to tag j.
        start_transitions: shape (num_tags,); score of starting a sequence with each tag.
        end_transitions: shape (num_tags,); score of ending a sequence with each tag.

    ``forward`` is :meth:`log_likelihood`. Emissions come from the tagger (e.g. a linear layer over
    BiLSTM states) and are unnormalised scores.
    """

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags must be positive, got {num_tags}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise all transition scores uniformly in [-0.1, 0.1]."""
        for p in (self.transitions, self.start_transitions, self.end_transitions):
            nn.init.uniform_(p, -0.1, 0.1)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    # ------------------------------------------------------------------ checks
    def _check(self, emissions: Tensor, mask: Tensor | None, tags: Tensor | None = None) -> Tensor:
        """Validate shapes and the mask; return the mask as a bool tensor of shape (B, T)."""
        if emissions.dim() != 3 or emissions.size(2) != self.num_tags:
            raise ValueError(
                f"emissions must have shape (batch, seq_len, {self.num_tags}), got {tuple(emissions.shape)}"
            )
        batch, seq_len = emissions.shape[:2]
        if seq_len == 0:
            raise ValueError("emissions must have at least one time step")
        if tags is not None and tags.shape != (batch, seq_len):
            raise ValueError(f"tags must have shape {(batch, seq_len)}, got {tuple(tags.shape)}")
        if mask is None:
            return torch.ones(batch, seq_len, dtype=torch.bool, device=emissions.device)
        if mask.shape != (batch, seq_len):
            raise ValueError(f"mask must have shape {(batch, seq_len)}, got {tuple(mask.shape)}")
        mask = mask.bool()
        if not bool(mask[:, 0].all()):
            raise ValueError("mask must be True at the first position of every sequence (empty sequences)")
        if bool((mask[:, 1:] & ~mask[:, :-1]).any()):
            raise ValueError("mask must be left-aligned: True for the first `length` positions, then False")
        return mask

    # ------------------------------------------------------------------ scores
    def _path_score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Unnormalised score of the given tag paths: shape (B,)."""
        tags = tags.masked_fill(~mask, 0)  # padded tags may hold any value (e.g. -100)
        maskf = mask.to(emissions.dtype)
        emit = emissions.gather(2, tags.unsqueeze(-1)).squeeze(-1)  # (B, T)
        score = self.start_transitions[tags[:, 0]] + (emit * maskf).sum(1)
        trans = self.transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
        score = score + (trans * maskf[:, 1:]).sum(1)
        last = mask.sum(1, keepdim=True) - 1  # (B, 1) index of each sequence's last token
        return score + self.end_transitions[tags.gather(1, last).squeeze(1)]

    def log_partition(self, emissions: Tensor, mask: Tensor | None = None) -> Tensor:
        """Log of the partition function ``Z`` by the forward algorithm.

        Args:
            emissions: shape (B, T, K), unnormalised tag scores.
            mask: shape (B, T) bool, left-aligned; ``None`` means no padding.

        Returns:
            shape (B,): ``log Z`` for each sequence.
        """
        mask = self._check(emissions, mask)
        alpha = self.start_transitions + emissions[:, 0]  # (B, K)
        for t in range(1, emissions.size(1)):
            # (B, K, 1) + (K, K) + (B, 1, K) -> logsumexp over the previous tag -> (B, K)
            nxt = torch.logsumexp(alpha.unsqueeze(2) + self.transitions + emissions[:, t].unsqueeze(1), dim=1)
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
        return torch.logsumexp(alpha + self.end_transitions, dim=1)

    def log_likelihood(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """Log-probability of the gold tag paths.

        Args:
            emissions: shape (B, T, K).
            tags: shape (B, T) long; values at padded positions are ignored.
            mask: shape (B, T) bool, left-aligned; ``None`` means no padding.

        Returns:
            shape (B,): ``score(tags) - log Z`` for each sequence.
        """
        mask = self._check(emissions, mask, tags)
        return self._path_score(emissions, tags, mask) - self.log_partition(emissions, mask)

    forward = log_likelihood

    def neg_log_likelihood(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """Training loss: the negative log-likelihood summed over the batch (a scalar).

        Divide by the number of sequences (or tokens) for a mean.
        """
        return -self.log_likelihood(emissions, tags, mask).sum()

    # ------------------------------------------------------------------ decoding
    @torch.no_grad()
    def decode(
        self, emissions: Tensor, mask: Tensor | None = None, return_scores: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Viterbi decoding: the highest-scoring tag path of every sequence.

        Args:
            emissions: shape (B, T, K).
            mask: shape (B, T) bool, left-aligned; ``None`` means no padding.
            return_scores: also return the unnormalised score of each best path.

        Returns:
            tags of shape (B, T) long, 0 at padded positions; with ``return_scores`` the pair
            ``(tags, scores)`` where scores has shape (B,).
        """
        mask = self._check(emissions, mask)
        batch, seq_len, num_tags = emissions.shape
        identity = torch.arange(num_tags, device=emissions.device).expand(batch, num_tags)
        score = self.start_transitions + emissions[:, 0]  # (B, K)
        backpointers = []  # backpointers[t-1][b, j]: best previous tag when tag j is at position t
        for t in range(1, seq_len):
            best, prev = (score.unsqueeze(2) + self.transitions).max(dim=1)  # (B, K) each
            step_mask = mask[:, t].unsqueeze(1)
            score = torch.where(step_mask, best + emissions[:, t], score)
            # past a sequence's end, point each tag at itself so backtracking carries the last tag through
            backpointers.append(torch.where(step_mask, prev, identity))
        best_scores, last_tag = (score + self.end_transitions).max(dim=1)  # (B,)
        path = [last_tag]
        for bp in reversed(backpointers):
            path.append(bp.gather(1, path[-1].unsqueeze(1)).squeeze(1))
        tags = torch.stack(path[::-1], dim=1).masked_fill(~mask, 0)  # (B, T)
        return (tags, best_scores) if return_scores else tags
