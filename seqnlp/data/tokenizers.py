"""Tokenizers built on HuggingFace ``tokenizers``: char, word, BPE, Unigram, WordPiece.

Every tokenizer has the same four special tokens at the same ids (``<pad>``=0, ``<unk>``=1,
``<s>``=2, ``</s>``=3) plus optional extras (e.g. a turn separator), and is saved and loaded
as a plain ``tokenizer.json``. Subword kinds use byte-level pre-tokenisation, so any Unicode
text decodes back to exactly the string that was encoded (what sacreBLEU needs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Regex, decoders, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as _HFTokenizer

from .errors import DataError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = [PAD, UNK, BOS, EOS]
KINDS = ("char", "word", "bpe", "unigram", "wordpiece")


class Tokenizer:
    """Thin wrapper over a ``tokenizers.Tokenizer`` with the project's special ids."""

    def __init__(self, tok: _HFTokenizer):
        self.tok = tok
        # text that happens to read "<s>" or "<sep>" stays text: special ids are only ever inserted
        # by code (bos/eos arguments, separators), never matched in user input
        tok.encode_special_tokens = True
        for s in SPECIALS:
            if tok.token_to_id(s) is None:
                raise DataError(f"tokenizer lacks the special token {s!r}")
        self.pad_id = tok.token_to_id(PAD)
        self.unk_id = tok.token_to_id(UNK)
        self.bos_id = tok.token_to_id(BOS)
        self.eos_id = tok.token_to_id(EOS)

    # --- building -------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        kind: str,
        texts: Iterable[str],
        vocab_size: int = 8000,
        min_freq: int = 1,
        extra_specials: Sequence[str] = (),
    ) -> Tokenizer:
        """Train a tokenizer of ``kind`` (one of :data:`KINDS`) on ``texts``.

        ``vocab_size`` caps the vocabulary for every kind (word and char keep the most
        frequent entries); ``min_freq`` drops rarer words/chars/merges.
        """
        specials = SPECIALS + [s for s in extra_specials if s not in SPECIALS]
        if kind == "char":
            tok = _HFTokenizer(models.WordLevel(unk_token=UNK))
            tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
            tok.decoder = decoders.Fuse()
            trainer = trainers.WordLevelTrainer(
                vocab_size=vocab_size, min_frequency=min_freq, special_tokens=specials
            )
        elif kind == "word":
            tok = _HFTokenizer(models.WordLevel(unk_token=UNK))
            tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
            trainer = trainers.WordLevelTrainer(
                vocab_size=vocab_size, min_frequency=min_freq, special_tokens=specials
            )
        elif kind == "bpe":
            tok = _HFTokenizer(models.BPE(unk_token=UNK))
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tok.decoder = decoders.ByteLevel()
            trainer = trainers.BpeTrainer(
                vocab_size=vocab_size,
                min_frequency=min_freq,
                special_tokens=specials,
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                show_progress=False,
            )
        elif kind == "unigram":
            tok = _HFTokenizer(models.Unigram())
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tok.decoder = decoders.ByteLevel()
            trainer = trainers.UnigramTrainer(
                vocab_size=vocab_size,
                special_tokens=specials,
                unk_token=UNK,
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                show_progress=False,
            )
        elif kind == "wordpiece":
            tok = _HFTokenizer(models.WordPiece(unk_token=UNK))
            tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
            tok.decoder = decoders.WordPiece()
            trainer = trainers.WordPieceTrainer(
                vocab_size=vocab_size, min_frequency=min_freq, special_tokens=specials, show_progress=False
            )
        else:
            raise ValueError(f"unknown tokenizer kind {kind!r}; choose one of {KINDS}")
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(tok)

    @classmethod
    def from_tokens(cls, tokens: Iterable[str], extra_specials: Sequence[str] = ()) -> Tokenizer:
        """A closed word-level vocabulary (e.g. tag sets): exactly these tokens after the specials."""
        specials = SPECIALS + [s for s in extra_specials if s not in SPECIALS]
        vocab = {s: i for i, s in enumerate(specials)}
        for t in tokens:
            vocab.setdefault(t, len(vocab))
        tok = _HFTokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tok.add_special_tokens(specials)
        return cls(tok)

    # --- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        self.tok.save(str(path))

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        path = Path(path)
        if not path.is_file():
            raise DataError("tokenizer file not found", path=str(path))
        try:
            return cls(_HFTokenizer.from_file(str(path)))
        except Exception as e:  # tokenizers raises a bare Exception on bad JSON
            raise DataError(f"cannot read tokenizer: {e}", path=str(path)) from None

    # --- use ------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def token_to_id(self, token: str) -> int | None:
        return self.tok.token_to_id(token)

    def id_to_token(self, i: int) -> str | None:
        return self.tok.id_to_token(i)

    def vocab(self) -> dict[str, int]:
        return self.tok.get_vocab()

    def _wrap(self, ids: list[int], bos: bool, eos: bool) -> list[int]:
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
        return self._wrap(self.tok.encode(text, add_special_tokens=False).ids, bos, eos)

    def encode_batch(self, texts: Sequence[str], bos: bool = False, eos: bool = False) -> list[list[int]]:
        encs = self.tok.encode_batch(list(texts), add_special_tokens=False)
        return [self._wrap(e.ids, bos, eos) for e in encs]

    def encode_words(self, words: Sequence[str]) -> list[int]:
        """Ids of pre-split words (word-level vocabularies: one id per word, unknown → ``<unk>``)."""
        get = self.tok.token_to_id
        unk = self.unk_id
        return [i if (i := get(w)) is not None else unk for w in words]

    def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
        """Text of ``ids``; stops at the first ``</s>``. Word kind joins words with spaces."""
        ids = list(ids)
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.tok.decode(ids, skip_special_tokens=skip_special)

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        return [self.decode(ids) for ids in batch]
