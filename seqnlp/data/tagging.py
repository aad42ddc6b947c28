"""Tagging data: words, characters and tags <-> ids, and batches for :class:`~seqnlp.tasks.tagger.SequenceTagger`.

A sentence is ``{"tokens": [form, ...], "tags": [tag, ...] | None}``. Word embeddings are looked up by the
normalised form (lowercased, digits -> 0: :func:`~seqnlp.data.word_vectors.normalize_word`); the characters
see the form as written. A checkpoint keeps the vocabularies as :data:`WORDS_FILE` / :data:`CHARS_FILE`
(``tokenizers`` JSON) and the training forms (for ``oov_accuracy``) as :data:`FORMS_FILE`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from ..nn.char_encoder import char_table
from .batching import Batch, pad
from .tokenizers import Tokenizer
from .word_vectors import normalize_word

WORDS_FILE, CHARS_FILE, FORMS_FILE = "words.json", "chars.json", "forms.json"

__all__ = ["CHARS_FILE", "FORMS_FILE", "WORDS_FILE", "Featurizer"]


class Featurizer:
    """Words, characters and tags <-> ids, and batches for :class:`SequenceTagger`.

    Args:
        words: word vocabulary over *normalised* forms (:func:`normalize_word` when ``normalize``): the
            training words first, then words that only pretrained vectors know; ``<unk>`` for the rest.
        chars: character vocabulary (over the forms as written: case and digits stay visible there).
        tags: the tag set, in id order.
        forms: every form seen in training, as written: a token is out of vocabulary (``oov_accuracy``)
            when its form is not among them.
        max_word_len: see :func:`~seqnlp.nn.char_encoder.char_table`.
        normalize: look words up lowercased with digits mapped to 0.
        trainable_words: ids below this are training words (0: unknown; set by :meth:`build`).
    """

    def __init__(self, words: Tokenizer, chars: Tokenizer, tags: Sequence[str], forms: Iterable[str] = (),
                 max_word_len: int = 30, normalize: bool = True, trainable_words: int = 0):
        self.words = words
        self.chars = chars
        self.tags = list(tags)
        self.tag_ids = {t: i for i, t in enumerate(self.tags)}
        self.forms = frozenset(forms)
        self.trainable_words = trainable_words
        self.max_word_len = max_word_len
        self.normalize = normalize

    def norm(self, word: str) -> str:
        return normalize_word(word) if self.normalize else word

    @classmethod
    def build(cls, train: Sequence[dict], max_word_len: int = 30, normalize: bool = True,
              extra_words: Iterable[str] = ()) -> tuple[Featurizer, Counter]:
        """Vocabularies from the training sentences (most frequent first) plus ``extra_words`` (already
        normalised, e.g. those of pretrained vectors); also the counts of the normalised training words."""
        forms = Counter(w for ex in train for w in ex["tokens"])
        char_counts = Counter({c: 0 for w in forms for c in w})
        counts: Counter = Counter()
        for w, n in forms.items():
            counts[normalize_word(w) if normalize else w] += n
            for c in w:
                char_counts[c] += n
        tags = sorted({t for ex in train for t in ex["tags"]})
        vocab = [w for w, _ in counts.most_common()]
        vocab += [w for w in dict.fromkeys(extra_words) if w not in counts]
        words = Tokenizer.from_tokens(vocab)
        chars = Tokenizer.from_tokens([c for c, _ in char_counts.most_common()])
        trainable = 1 + max(words.token_to_id(w) for w in counts)  # specials + training words
        return cls(words, chars, tags, forms, max_word_len, normalize, trainable), counts

    def files(self) -> dict:
        """The checkpoint files of this featurizer (for :func:`~seqnlp.train.checkpoint.save_checkpoint`)."""
        return {WORDS_FILE: self.words.save, CHARS_FILE: self.chars.save, FORMS_FILE: sorted(self.forms)}

    @classmethod
    def load(cls, ckpt: str | Path, tags: Sequence[str], max_word_len: int = 30,
             normalize: bool = True) -> Featurizer:
        """The featurizer saved in checkpoint ``ckpt`` by :meth:`files` (``forms.json`` may be absent)."""
        ckpt = Path(ckpt)
        forms = json.loads((ckpt / FORMS_FILE).read_text()) if (ckpt / FORMS_FILE).is_file() else ()
        return cls(Tokenizer.load(ckpt / WORDS_FILE), Tokenizer.load(ckpt / CHARS_FILE), tags, forms,
                   max_word_len, normalize)

    def unk_prob(self, counts: Counter, alpha: float) -> torch.Tensor:
        """(V,) probability of replacing each word id by ``<unk>`` in training: alpha / (alpha + count)."""
        prob = torch.zeros(self.words.vocab_size)
        if alpha > 0:
            for w, n in counts.items():
                prob[self.words.token_to_id(w)] = alpha / (alpha + n)
        return prob

    def oov(self, sentences: Sequence[dict]) -> list[list[bool]]:
        """For every token: is its form unseen in training?"""
        return [[w not in self.forms for w in ex["tokens"]] for ex in sentences]

    def encode(self, sentences: Sequence[dict]) -> tuple[list[dict], torch.Tensor, torch.Tensor]:
        """Ids of every sentence plus the character table of all distinct forms in ``sentences``.

        Returns:
            examples ``{"words", "types", "tags"}`` (lists of ids; ``types`` index the table; ``tags``
            is None when unlabelled, -1 for a tag unseen in training), the table's ``chars (N, L)`` and
            ``lengths (N,)`` (row 0 is a padding entry).
        """
        types: dict[str, int] = {"": 0}
        word_of_type: list[int] = [0]
        encoded = []
        unk = self.words.unk_id
        get = self.words.tok.token_to_id
        for ex in sentences:
            type_ids = []
            for w in ex["tokens"]:
                t = types.get(w)
                if t is None:
                    t = types[w] = len(types)
                    i = get(self.norm(w))
                    word_of_type.append(unk if i is None else i)
                type_ids.append(t)
            tags = ex.get("tags")
            tag_ids = None if tags is None else [self.tag_ids.get(t, -1) for t in tags]
            encoded.append({"words": [word_of_type[t] for t in type_ids], "types": type_ids, "tags": tag_ids})
        char_get = self.chars.tok.token_to_id
        cunk = self.chars.unk_id
        chars, lengths = char_table(list(types), lambda c: i if (i := char_get(c)) is not None else cunk,
                                    self.max_word_len)
        return encoded, chars, lengths

    @staticmethod
    def collate(examples: Sequence[dict], table_chars: torch.Tensor, table_lengths: torch.Tensor,
                char_feats: torch.Tensor | None = None) -> Batch:
        """A :class:`Batch`: words/lengths/tags, and the characters of the batch's distinct words only --
        or, given ``char_feats`` (N, C) precomputed for the whole table, that table and indices into it."""
        words, lengths = pad([ex["words"] for ex in examples])
        types, _ = pad([ex["types"] for ex in examples])
        tensors = {"words": words, "lengths": lengths}
        if char_feats is not None:
            tensors.update(word_index=types, char_feats=char_feats)
        else:
            uniq, word_index = torch.unique(types, return_inverse=True)  # distinct forms of this batch
            char_lengths = table_lengths[uniq]
            chars = table_chars[uniq, : int(char_lengths.max())]
            tensors.update(word_index=word_index, chars=chars, char_lengths=char_lengths)
        if all(ex["tags"] is not None for ex in examples):
            tensors["tags"] = pad([[max(t, 0) for t in ex["tags"]] for ex in examples])[0]
        n = int(lengths.sum())
        return Batch(tensors, n_tokens={"source": n})
