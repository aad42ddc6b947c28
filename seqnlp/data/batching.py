"""Length-bucketed, seeded batching by token budget, with a resumable position.

The sampler turns example lengths into batches of indices: each epoch shuffles with
``seed + epoch``, sorts inside large buckets so that a batch holds similar lengths, cuts
batches so that ``max_len_in_batch * n_examples <= max_tokens`` (padding counted) and at most
``max_sentences`` examples, then shuffles the batch order. ``state_dict()`` holds the epoch and
the number of batches already handed out, so a run resumed mid-epoch sees the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor


class TokenBucketSampler:
    """Yields lists of example indices; every example exactly once per epoch.

    Args:
        lengths: length (in tokens) of each example; for pairs, the larger of both sides.
        max_tokens: padded-token budget of a batch (``None``: no token cap).
        max_sentences: examples per batch cap (``None``: no cap).
        shuffle: shuffle examples and batch order.
        sort: sort by length inside buckets (for evaluation: ``shuffle=False, sort=True`` sorts
            the whole set, so batches hold similar lengths; ``meta["indices"]`` restores order).
        seed: base seed; epoch ``e`` uses ``seed + e``.
        bucket_batches: how many batches' worth of examples are sorted together.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_tokens: int | None = 4096,
        max_sentences: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        bucket_batches: int = 100,
        sort: bool = True,
    ):
        if max_tokens is None and max_sentences is None:
            raise ValueError("give max_tokens, max_sentences or both")
        if len(lengths) == 0:
            raise ValueError("cannot batch an empty dataset")
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)
        self.max_tokens = max_tokens
        self.max_sentences = max_sentences
        self.shuffle = shuffle
        self.seed = seed
        self.bucket_batches = bucket_batches if shuffle else len(self.lengths)
        self.sort = sort
        self.epoch = 0
        self.position = 0
        self._batches: list[list[int]] | None = None

    def _make_batches(self, epoch: int) -> list[list[int]]:
        n = len(self.lengths)
        g = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        lengths = self.lengths[order].clamp(min=1)
        mean_len = float(lengths.float().mean())
        per_batch = self.max_sentences or max(1, int(self.max_tokens / mean_len))
        if self.max_tokens is not None:
            per_batch = min(per_batch, max(1, int(self.max_tokens / mean_len)))
        bucket = max(1, per_batch * self.bucket_batches) if self.shuffle else n
        batches: list[list[int]] = []
        for start in range(0, n, bucket):
            idx = order[start : start + bucket]
            lens = lengths[start : start + bucket]
            if self.sort:  # sort inside the bucket (stable, so equal lengths keep shuffled order)
                srt = torch.sort(lens, stable=True)
                idx, lens = idx[srt.indices], srt.values
            batches.extend(self._cut(idx.tolist(), lens.tolist()))
        if self.shuffle:
            perm = torch.randperm(len(batches), generator=g).tolist()
            batches = [batches[i] for i in perm]
        return batches

    def _cut(self, idx: list[int], lens: list[int]) -> list[list[int]]:
        out, cur, cur_max = [], [], 0
        for i, ln in zip(idx, lens):
            new_max = max(cur_max, ln)
            too_many = self.max_sentences is not None and len(cur) + 1 > self.max_sentences
            too_long = self.max_tokens is not None and new_max * (len(cur) + 1) > self.max_tokens
            if cur and (too_many or too_long):
                out.append(cur)
                cur, new_max = [], ln
            cur.append(i)
            cur_max = new_max
        if cur:
            out.append(cur)
        return out

    def batches(self) -> list[list[int]]:
        if self._batches is None:
            self._batches = self._make_batches(self.epoch)
        return self._batches

    def __len__(self) -> int:
        return len(self.batches())

    def __iter__(self) -> Iterator[list[int]]:
        """Batches of the current epoch from the saved position; then advances the epoch."""
        batches = self.batches()
        while self.position < len(batches):
            b = batches[self.position]
            self.position += 1
            yield b
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.position, self._batches = epoch, 0, None

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state["seed"])
        self.set_epoch(int(state["epoch"]))
        self.position = int(state["position"])


def pad(seqs: Sequence[Sequence[int]], pad_id: int = 0, min_len: int = 1) -> tuple[Tensor, Tensor]:
    """Right-pad id lists: returns ``ids`` (B, T) long and ``lengths`` (B,) long."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    T = max(int(lengths.max()) if len(seqs) else 0, min_len)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        if len(s):
            ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return ids, lengths


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """(B,) lengths → (B, T) bool mask, True at real positions."""
    T = int(lengths.max()) if max_len is None else max_len
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


@dataclass
class Batch:
    """Tensors of one batch by name (``src``, ``src_lengths``, ``tgt``, ``labels``, …).

    Attribute access reads the tensors; ``n_tokens`` names the token counts used for
    throughput (e.g. ``{"source": 1234, "target": 1100}``); ``meta`` holds plain data
    (indices into the dataset, raw texts) that never moves to a device.
    """

    tensors: dict[str, Tensor]
    n_tokens: dict[str, int] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __getattr__(self, name: str) -> Tensor:
        try:
            return self.__dict__["tensors"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def to(self, device: torch.device | str) -> Batch:
        moved = {k: v.to(device, non_blocking=True) for k, v in self.tensors.items()}
        return Batch(moved, self.n_tokens, self.meta)


class BatchIterator:
    """Batches of a dataset for one sampler: ``collate(list_of_examples) -> Batch``.

    Iterating runs the sampler's current epoch from its saved position, so saving
    ``sampler.state_dict()`` after any batch and restoring it resumes exactly there.
    """

    def __init__(self, examples: Sequence, sampler: TokenBucketSampler, collate):
        self.examples = examples
        self.sampler = sampler
        self.collate = collate

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[Batch]:
        for idx in self.sampler:
            batch = self.collate([self.examples[i] for i in idx])
            batch.meta.setdefault("indices", idx)
            yield batch
