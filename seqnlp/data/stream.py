"""Batches of one long token stream for truncated back-propagation through time.

The stream of N ids is cut into ``B`` contiguous rows (``B`` parallel streams, each of ``N // B``
ids, as in pytorch/examples' ``word_language_model``); batch ``k`` of an epoch holds, for every row,
the ``bptt`` ids after the previous batch's, and the targets one id further. A recurrent model that
carries its (detached) state from one batch to the next therefore reads every row as one long text.

Each epoch starts its rows at a seeded random offset in ``[0, bptt)`` (``seed + epoch``), so the
cut points differ between epochs; the first batch of an epoch is marked ``meta["reset"]`` so the model
starts from a fresh state there. :class:`StreamSampler` saves its epoch and position, so a resumed run
sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from .batching import Batch

__all__ = ["StreamSampler", "StreamBatches", "stream_rows"]


def stream_rows(ids: Tensor, num_rows: int) -> Tensor:
    """``ids (N,)`` → ``(num_rows, N // num_rows)``: row r is the r-th contiguous piece of the stream."""
    if ids.dim() != 1:
        raise ValueError(f"expected a 1-D stream of ids, got shape {tuple(ids.shape)}")
    per_row = len(ids) // num_rows
    if per_row < 2:
        raise ValueError(f"a stream of {len(ids)} ids is too short for {num_rows} rows")
    return ids[: num_rows * per_row].view(num_rows, per_row)


class StreamSampler:
    """Yields ``(start, length)`` windows over rows of ``row_len`` ids; resumable.

    Args:
        row_len: ids per row (``N // batch_size``).
        bptt: window length (the last window of an epoch may be shorter).
        shuffle: start each epoch at a seeded random offset in ``[0, bptt)`` (else at 0).
        seed: epoch ``e`` uses ``seed + e``.
    """

    def __init__(self, row_len: int, bptt: int, shuffle: bool = True, seed: int = 0):
        if bptt < 1:
            raise ValueError(f"bptt must be >= 1, got {bptt}")
        if row_len < 2:
            raise ValueError(f"rows of {row_len} ids leave nothing to predict")
        self.row_len = row_len
        self.bptt = bptt
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._windows: list[tuple[int, int]] | None = None

    def _make_windows(self, epoch: int) -> list[tuple[int, int]]:
        offset = 0
        if self.shuffle and self.bptt > 1:
            g = torch.Generator().manual_seed(self.seed + epoch)
            offset = int(torch.randint(0, min(self.bptt, self.row_len - 1), (1,), generator=g))
        last = self.row_len - 1  # the last id of a row is only ever a target
        return [(s, min(self.bptt, last - s)) for s in range(offset, last, self.bptt)]

    def windows(self) -> list[tuple[int, int]]:
        if self._windows is None:
            self._windows = self._make_windows(self.epoch)
        return self._windows

    def __len__(self) -> int:
        return len(self.windows())

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """Windows of the current epoch from the saved position; then advances the epoch."""
        windows = self.windows()
        while self.position < len(windows):
            w = windows[self.position]
            self.position += 1
            yield w
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.position, self._windows = epoch, 0, None

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state["seed"])
        self.set_epoch(int(state["epoch"]))
        self.position = int(state["position"])


class StreamBatches:
    """Training batches of a stream: ``Batch(inputs (B, T), targets (B, T))``, ``meta["reset"]`` on the
    first window of an epoch. Quacks like :class:`~seqnlp.data.batching.BatchIterator` for the Trainer.

    Args:
        ids: the whole stream, (N,) long.
        batch_size: B, the number of parallel rows.
        bptt: T, ids per window.
        shuffle, seed: see :class:`StreamSampler`.
        name: the key of ``Batch.n_tokens`` (throughput is logged as ``{name}_tok_per_s``).
    """

    def __init__(self, ids: Tensor, batch_size: int, bptt: int, shuffle: bool = True, seed: int = 0,
                 name: str = "chars"):
        self.rows = stream_rows(ids, batch_size)
        self.sampler = StreamSampler(self.rows.size(1), bptt, shuffle=shuffle, seed=seed)
        self.name = name

    def __len__(self) -> int:
        return len(self.sampler)

    def batch(self, start: int, length: int, reset: bool = False) -> Batch:
        """The window ``[start, start + length)`` of every row, and its targets one id further."""
        inputs = self.rows[:, start : start + length]
        targets = self.rows[:, start + 1 : start + 1 + length]
        return Batch({"inputs": inputs, "targets": targets}, n_tokens={self.name: targets.numel()},
                     meta={"reset": reset, "start": start})

    def __iter__(self) -> Iterator[Batch]:
        for start, length in self.sampler:
            yield self.batch(start, length, reset=self.sampler.position == 1)
