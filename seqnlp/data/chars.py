"""Characters as data: the text of every split, characters <-> ids, and documents cut into pieces.

A plain text file is read whole and its tail is the validation text (char-rnn, nanoGPT); tabular files and
Hub datasets give documents, joined into one stream (``"stream"`` mode), or -- with a condition column --
kept apart (``"documents"`` mode), each ``<s> text </s>`` cut into pieces that start from their condition's
state.

    data = load_char_data("char/tinyshakespeare/input.txt", max_chars=40000)   # data.texts["train"], ...
    codec = CharCodec.train(data.training_text())
    pieces = document_pieces(data.docs["train"], codec, data.conditions, bptt=128)   # documents mode
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .batching import Batch, BatchIterator, TokenBucketSampler, pad
from .errors import DataError
from .loading import DataSpec, data_root, load_splits
from .tokenizers import Tokenizer

STREAM, DOCUMENTS = "stream", "documents"

__all__ = ["DOCUMENTS", "STREAM", "CharCodec", "CharData", "collate_pieces", "document_pieces", "load_char_data",
           "piece_batches", "read_text_file"]


@dataclass
class CharData:
    """A text as splits: ``texts[split]`` (stream mode) or ``docs[split]`` = [(text, condition), ...]."""

    mode: str
    texts: dict[str, str] = field(default_factory=dict)
    docs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    conditions: list[str] = field(default_factory=list)

    def training_text(self) -> str:
        return self.texts["train"] if self.mode == STREAM else "".join(t for t, _ in self.docs["train"])

    def splits(self) -> list[str]:
        return list(self.texts if self.mode == STREAM else self.docs)


def _local_file(name: str) -> Path | None:
    path = Path(name).expanduser()
    for cand in ([path] if path.is_absolute() else [data_root() / path, Path.cwd() / path]):
        if cand.is_file():
            return cand
    return None


def read_text_file(path: Path) -> str:
    """A whole text file (plain or gzip'd), strictly UTF-8; a bad byte is a DataError naming its line."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"corrupt gzip data ({e})", path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"invalid utf-8 text (byte 0x{raw[e.start]:02x}: {e.reason})", path, line) from None
    return text.removeprefix("\ufeff")


def _tail_split(items, fraction: float, where: str):
    """The first ``int(n * (1 - fraction))`` items and the rest (nanoGPT's ``int(n * 0.9)`` for 0.1)."""
    n_train = int(len(items) * (1 - fraction))
    if not 0 < n_train < len(items):
        raise DataError(f"data.validation_fraction={fraction} of {len(items)} leaves an empty split", where)
    return items[:n_train], items[n_train:]


def load_char_data(name: str, *, format: str = "auto", subset: str | None = None,
                   splits: dict[str, str] | None = None, text_column: str = "text", condition_column: str = "",
                   separator: str = "\n", validation_fraction: float = 0.1, max_chars: int = 0) -> CharData:
    """The text of every split; validation is the tail of train when the data has no validation split.

    Args:
        name: a text file (under ``$SEQNLP_DATA``, absolute or relative), a tabular file or directory, or a
            Hub id.
        format: ``auto`` reads a ``.txt``/suffix-less file whole; csv | tsv | jsonl | parquet | ... | txt.
        subset, splits: the Hub config name; our split -> file glob / Hub split (tabular/Hub data).
        text_column, condition_column: tabular/Hub columns of the text and of a condition (e.g. a label):
            with a condition every document is kept apart (``documents`` mode).
        separator: joins the documents of tabular/Hub data into one stream.
        validation_fraction: validation when the data has none: a text file's tail / random documents.
        max_chars: only the first N characters of the text (0: all); documents: of every split.
    """
    if not name:
        raise DataError("no data: set data.name to a text file, a tabular file or directory, or a Hub id")
    local = _local_file(name)
    raw = local is not None and (format == "txt" or (format == "auto" and local.suffix in ("", ".txt")))
    if raw:
        if condition_column:
            raise DataError("data.condition_column needs tabular or Hub data, not a plain text file", local)
        text = read_text_file(local)
        if max_chars:
            text = text[:max_chars]
        if len(text) < 2:
            raise DataError("the text is empty", local)
        train, val = _tail_split(text, validation_fraction, str(local))  # char-rnn / nanoGPT: first 90% / last 10%
        return CharData(STREAM, texts={"train": train, "validation": val})

    columns = {}  # the loader's guesses (text, sentence, ...; label) unless other columns are named
    if text_column != "text" or condition_column not in ("", "label"):
        columns = {"text": text_column, **({"label": condition_column} if condition_column else {})}
    # documents without a validation split: a seeded random fraction of them (files may be sorted by label)
    spec = DataSpec(name, format=format, subset=subset, splits=dict(splits or {}), columns=columns,
                    carve={"validation": validation_fraction})
    found = load_splits(spec)
    if "train" not in found:
        raise DataError(f"no 'train' split (found {sorted(found)}); set data.splits", name)
    docs = {s: [(str(ex["text"]), "" if ex.get("label") is None else str(ex["label"])) for ex in exs]
            for s, exs in found.items() if s in ("train", "validation", "test")}
    if condition_column:
        conditions = sorted({c for _, c in docs["train"]})
        for split, items in docs.items():
            unseen = sorted({c for _, c in items} - set(conditions))
            if unseen:
                raise DataError(f"conditions {unseen} of split {split!r} never occur in train", name,
                                field=condition_column)
        if max_chars:
            docs = {s: _first_chars(items, max_chars) for s, items in docs.items()}
        return CharData(DOCUMENTS, docs=docs, conditions=conditions)
    texts = {s: separator.join(t for t, _ in items) + separator for s, items in docs.items()}
    if max_chars:
        texts = {s: t[:max_chars] for s, t in texts.items()}
    return CharData(STREAM, texts=texts)


def _first_chars(docs: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    out, total = [], 0
    for text, cond in docs:
        if total >= limit:
            break
        out.append((text, cond))
        total += len(text)
    return out


class CharCodec:
    """Characters ↔ ids through the char :class:`Tokenizer` (a dictionary lookup for speed)."""

    def __init__(self, tok: Tokenizer):
        self.tok = tok
        self.vocab = tok.vocab()
        self.chars = {i: s for s, i in self.vocab.items()}
        self.specials = {tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id}

    @classmethod
    def train(cls, text: str, min_freq: int = 1) -> CharCodec:
        chunks = (text[i : i + 65536] for i in range(0, len(text), 65536))
        return cls(Tokenizer.train("char", chunks, vocab_size=1 << 20, min_freq=min_freq))

    def encode(self, text: str) -> list[int]:
        unk, get = self.tok.unk_id, self.vocab.get
        return [get(c, unk) for c in text]

    def encode_strict(self, text: str, what: str = "prompt") -> list[int]:
        """Like :meth:`encode`, but characters outside the vocabulary are a :class:`DataError`."""
        unknown = sorted({c for c in text if c not in self.vocab or self.vocab[c] in self.specials})
        if unknown:
            shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in unknown[:10])
            known = "".join(sorted(c for c, i in self.vocab.items() if i not in self.specials))
            raise DataError(f"{len(unknown)} character(s) outside the model's vocabulary: {shown}; the model "
                            f"knows these {len(known)} characters: {known!r}", field=what)
        return self.encode(text)

    def char(self, i: int) -> str:
        if i == self.tok.unk_id:
            return "\ufffd"
        return "" if i in self.specials else self.chars.get(i, "\ufffd")

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.char(i) for i in ids)

    @property
    def size(self) -> int:
        return self.tok.vocab_size


def document_pieces(docs: list[tuple[str, str]], codec: CharCodec, conditions: list[str], bptt: int) -> list[dict]:
    """Every document as ``<s> text </s>`` cut into pieces of at most ``bptt`` predictions, each with its
    condition id; a piece is ``{"ids": [...] (len <= bptt + 1), "cond": int}``."""
    cond_ids = {c: i for i, c in enumerate(conditions)}
    pieces = []
    for text, cond in docs:
        ids = [codec.tok.bos_id, *codec.encode(text), codec.tok.eos_id]
        for s in range(0, len(ids) - 1, bptt):
            pieces.append({"ids": ids[s : s + bptt + 1], "cond": cond_ids.get(cond, 0)})
    return pieces


def collate_pieces(pieces: Sequence[dict]) -> Batch:
    """Pieces as a ``Batch``: ``inputs (B, T)``, ``targets (B, T)`` (inputs shifted by one, padded with 0),
    ``cond (B,)``; every piece starts from its condition's state (``meta["reset"]``)."""
    ids, _ = pad([p["ids"] for p in pieces])
    inputs, targets = ids[:, :-1], ids[:, 1:]
    inputs = inputs.masked_fill(targets == 0, 0)
    n = int((targets != 0).sum())
    return Batch({"inputs": inputs, "targets": targets, "cond": torch.tensor([p["cond"] for p in pieces])},
                 n_tokens={"chars": n}, meta={"reset": True})


def piece_batches(pieces: list[dict], max_tokens: int, *, shuffle: bool = True, seed: int = 0) -> BatchIterator:
    """Length-bucketed batches of about ``max_tokens`` characters of document pieces (seeded, resumable)."""
    sampler = TokenBucketSampler([len(p["ids"]) for p in pieces], max_tokens=max_tokens, shuffle=shuffle, seed=seed)
    return BatchIterator(pieces, sampler, collate_pieces)
