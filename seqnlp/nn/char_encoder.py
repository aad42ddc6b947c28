"""Character-level word features: one vector per word from its characters.

A tagger that sees only word ids knows nothing about a word it never saw in training; the spelling
(suffixes like *-ly*, *-ed*, capitals, digits, hyphens) still says a lot about its tag. Following
Plank et al. (2016) and Lample et al. (2016), :class:`CharEncoder` reads every word's characters with a
bidirectional LSTM (the last forward state and the last backward state, concatenated) or with a CNN
(convolution + max over positions), and the tagger concatenates that vector to the word embedding.

It encodes a *table of words* at once: ``chars (W, L)`` holds the character ids of W words (in a
batch, the distinct words of the batch, so a word that occurs 50 times is read once), padded to the
longest; the LSTM runs over all of them at once (:func:`~seqnlp.nn.padded_rnn.run_padded`), with no
Python loop over words.
:func:`char_table` builds such a table from strings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .dropout import Dropout
from .padded_rnn import run_padded

__all__ = ["CharEncoder", "WordFeatureCache", "by_length_groups", "char_table", "CHAR_KINDS"]

CHAR_KINDS = ("lstm", "cnn")


class CharEncoder(nn.Module):
    """``chars (W, L), lengths (W,) -> (W, output_size)``: one feature vector per word.

    Args:
        num_chars: size of the character vocabulary (id ``padding_idx`` is padding).
        char_dim: size of the character embeddings.
        hidden_size: per direction for ``lstm`` (output ``2 * hidden_size``); number of filters for
            ``cnn`` (output ``hidden_size``).
        kind: ``"lstm"`` (a BiLSTM, final states of both directions) or ``"cnn"`` (one convolution of
            width ``kernel_size``, tanh, max over the word's positions).
        kernel_size: CNN window width in characters (odd).
        dropout: dropout on the character embeddings.
        padding_idx: the padding character id.

    Attributes:
        output_size: size of each word's vector.
    """

    LENGTH_GROUPS = (4, 7, 11, 16)  # words of lengths 1-3, 4-6, 7-10, 11-15, 16+ run as separate groups

    def __init__(
        self,
        num_chars: int,
        char_dim: int = 50,
        hidden_size: int = 50,
        kind: str = "lstm",
        kernel_size: int = 3,
        dropout: float = 0.0,
        padding_idx: int = 0,
    ) -> None:
        super().__init__()
        if kind not in CHAR_KINDS:
            raise ValueError(f"kind must be one of {CHAR_KINDS}, got {kind!r}")
        if kind == "cnn" and kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.kind = kind
        self.embed = nn.Embedding(num_chars, char_dim, padding_idx=padding_idx)
        self.dropout = Dropout(dropout)
        if kind == "lstm":
            self.rnn = nn.LSTM(char_dim, hidden_size, batch_first=True, bidirectional=True)
            self.output_size = 2 * hidden_size
        else:
            self.conv = nn.Conv1d(char_dim, hidden_size, kernel_size, padding=kernel_size // 2)
            self.output_size = hidden_size

    def forward(self, chars: Tensor, lengths: Tensor) -> Tensor:
        """Encode W words.

        Args:
            chars: (W, L) long character ids, padded with ``padding_idx`` after each word.
            lengths: (W,) long, characters per word (>= 1).

        Returns:
            (W, output_size).
        """
        if chars.dim() != 2 or lengths.shape != chars.shape[:1]:
            raise ValueError(f"expected chars (W, L) and lengths (W,), got {tuple(chars.shape)} and "
                             f"{tuple(lengths.shape)}")
        x = self.dropout(self.embed(chars))  # (W, L, C)
        if self.kind == "lstm":
            return self._lstm(x, lengths.clamp(min=1))
        y = torch.tanh(self.conv(x.transpose(1, 2)))  # (W, H, L)
        mask = torch.arange(chars.size(1), device=chars.device)[None, :] < lengths[:, None]  # (W, L)
        return y.masked_fill(~mask[:, None, :], float("-inf")).max(dim=2).values  # (W, H)

    def _lstm(self, x: Tensor, lengths: Tensor) -> Tensor:
        """BiLSTM final states (W, 2H), the words grouped by length (:func:`by_length_groups`)."""
        def encode(idx: Tensor, lens: Tensor) -> Tensor:
            _, h = run_padded(self.rnn, x[idx, : int(lens.max())], lens)  # h: (2, n, H) at the last char
            return torch.cat([h[0], h[1]], dim=-1)

        return by_length_groups(lengths, encode, self.LENGTH_GROUPS)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, output_size={self.output_size}"


def by_length_groups(lengths: Tensor, encode: Callable[[Tensor, Tensor], Tensor],
                     groups: Sequence[int] = CharEncoder.LENGTH_GROUPS) -> Tensor:
    """Encode W words group by group of similar length, each group padded only to its own longest word (a
    batch's one 30-character URL no longer makes every word cost 30 steps).

    Args:
        lengths: (W,) characters per word (>= 1).
        encode: ``encode(idx, lens) -> (n, D)`` for the words ``idx`` (n,) of lengths ``lens`` (n,).
        groups: group boundaries (``CharEncoder.LENGTH_GROUPS``: lengths 1-3, 4-6, 7-10, 11-15, 16+).

    Returns:
        (W, D) in the input order. The eager encoder and the ONNX runtime (``seqnlp.export``) both run this.
    """
    group = torch.bucketize(lengths, lengths.new_tensor(list(groups)), right=True)  # (W,)
    order = torch.argsort(group, stable=True)
    counts = torch.bincount(group, minlength=len(groups) + 1).tolist()
    parts, start = [], 0
    for n in counts:
        if n:
            idx = order[start : start + n]
            parts.append(encode(idx, lengths[idx]))
            start += n
    out = torch.cat(parts, dim=0)  # rows in `order`
    return out[torch.argsort(order)]  # back to the input order


def char_table(
    words: Sequence[str], char_id: Callable[[str], int], max_len: int = 0, pad_id: int = 0
) -> tuple[Tensor, Tensor]:
    """Character ids of ``words`` as a padded table for :class:`CharEncoder`.

    Args:
        words: the words (each a non-empty string).
        char_id: maps one character to its id (unknown characters to the ``<unk>`` id).
        max_len: longer words keep their first ``ceil(max_len / 2)`` and last ``floor(max_len / 2)``
            characters (prefix and suffix carry the signal); 0: no limit.
        pad_id: id written after each word.

    Returns:
        ``chars`` (W, L) long and ``lengths`` (W,) long; an empty word gets one padding character.
    """
    rows = []
    for w in words:
        if max_len and len(w) > max_len:
            w = w[: (max_len + 1) // 2] + w[len(w) - max_len // 2 :]
        rows.append([char_id(c) for c in w] or [pad_id])
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    width = int(lengths.max()) if rows else 1
    chars = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        chars[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return chars, lengths


class WordFeatureCache:
    """Character features of the words an inference predictor has already read, kept across calls.

    A server tags a few sentences per call, so each call's word table is small and the same frequent words are
    encoded again and again; with their features kept, a call runs the character encoder only over the words it
    has not seen. Only for a model whose weights no longer change (a predictor). ``capacity`` words at most
    (the least recently used go first), their features in one ``(capacity, C)`` tensor (per word: its features
    and its key, no tensor of its own). A call of more than ``max_call_words`` distinct words (a whole file at
    once) is encoded whole and kept out of the cache: it reads each of its words once anyway, and keeping its
    rare words would cost memory and push out the frequent ones. ``table(encode, chars, lengths)`` is ``encode(chars,
    lengths)`` -- the model's ``word_table_features`` -- with the rows already known taken from the cache (a
    word's features are those of the call that first encoded it: equal up to floating-point batch effects).
    """

    def __init__(self, capacity: int = 20_000, max_call_words: int = 2048):
        from collections import OrderedDict

        self.capacity, self.max_call_words = capacity, max_call_words
        self.slots: OrderedDict[tuple[int, ...], int] = OrderedDict()  # word (its char ids) -> row of store
        self.store: Tensor | None = None
        self.hits = self.misses = 0
        self.disabled = False  # the model has no character features

    def clear(self) -> None:
        self.slots.clear()
        self.store = None

    def table(self, encode: Callable[[Tensor, Tensor], Tensor | None], chars: Tensor,
              lengths: Tensor) -> Tensor | None:
        if self.disabled or self.capacity <= 0 or len(chars) > self.max_call_words:
            return None if self.disabled else encode(chars, lengths)
        keys = [tuple(row[:n]) for row, n in zip(chars.tolist(), lengths.tolist())]
        slots = self.slots
        known = [(i, slots[k]) for i, k in enumerate(keys) if k in slots]
        missing = [i for i, k in enumerate(keys) if k not in slots]
        self.hits += len(known)
        self.misses += len(missing)
        feats = None
        if missing:
            index = torch.tensor(missing, dtype=torch.long, device=chars.device)
            feats = encode(chars.index_select(0, index), lengths.index_select(0, index.to(lengths.device)))
            if feats is None:
                self.disabled = True
                return None
        if not known:
            out = feats
        else:
            assert self.store is not None
            rows = torch.tensor([s for _, s in known], dtype=torch.long, device=self.store.device)
            got = self.store.index_select(0, rows)
            if feats is None:
                out = got
            else:
                out = feats.new_empty(len(keys), feats.size(1))
                out[torch.tensor([i for i, _ in known], device=out.device)] = got.to(out.dtype)
                out[torch.tensor(missing, device=out.device)] = feats
            for i, _ in known:
                slots.move_to_end(keys[i])
        if feats is not None:
            self._insert([keys[i] for i in missing], feats)
        return out

    def _insert(self, keys: list[tuple[int, ...]], feats: Tensor) -> None:
        """Keep ``feats`` (n, C) of ``keys`` (the last ``capacity`` of them), evicting the least recently used."""
        if len(keys) > self.capacity:
            keys, feats = keys[-self.capacity :], feats[-self.capacity :]
        if self.store is None or self.store.shape[1:] != feats.shape[1:] or self.store.dtype != feats.dtype:
            self.slots.clear()
            self.store = feats.new_empty(self.capacity, *feats.shape[1:])
        slots, used = self.slots, len(self.slots)
        rows = []
        for k in keys:
            if k in slots:  # twice in one table (two forms with the same characters after truncation)
                rows.append(slots[k])
                continue
            if used < self.capacity:
                row, used = used, used + 1
            else:
                _, row = slots.popitem(last=False)
            slots[k] = row
            rows.append(row)
        self.store[torch.tensor(rows, dtype=torch.long, device=self.store.device)] = feats
