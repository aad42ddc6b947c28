"""Static word vectors: the word2vec text format, a UD-style word splitter for raw text.

    write_vectors(path, words, matrix)      "N D" header, then "word v1 ... vD" per line (.gz by name)
    read_vectors(path, key=None)            -> (words, matrix (N, D) float tensor)
    read_embedding_init(path, dim, name)    -> the same, checked against an embedding size, unit variance
    split_words(text)                       -> UD English-like tokens ("don't" -> "do", "n't")
    normalize_word(word)                    -> the key vectors are stored under ("Feb-02" -> "feb-00")

Vectors are trained by :mod:`seqnlp.tasks.skipgram` (``recipes/word_vectors.py``) and read by the POS
tagging and sentiment recipes (``model.pretrained``) to initialise and extend their word vocabularies.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Callable, Sequence

import torch

from .errors import DataError
from .readers import open_text

__all__ = ["read_vectors", "read_embedding_init", "write_vectors", "split_words", "normalize_word"]

_DIGITS = str.maketrans("123456789", "000000000")


def normalize_word(word: str) -> str:
    """The key of a word's embedding: lowercased, every digit 0 (``"Feb-02"`` -> ``"feb-00"``)."""
    return word.lower().translate(_DIGITS)


def write_vectors(path: str | os.PathLike[str], words: Sequence[str], matrix: torch.Tensor, digits: int = 5) -> None:
    """word2vec text format; gzip'd when ``path`` ends in ``.gz``. Words must not contain whitespace."""
    if matrix.dim() != 2 or matrix.size(0) != len(words):
        raise ValueError(f"matrix {tuple(matrix.shape)} does not fit {len(words)} words")
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="\n") as f:
        f.write(f"{len(words)} {matrix.size(1)}\n")
        for w, row in zip(words, matrix.tolist()):
            if not w or any(c.isspace() for c in w):
                raise ValueError(f"cannot write the word {w!r} (empty or with whitespace)")
            f.write(w + " " + " ".join(f"{x:.{digits}g}" for x in row) + "\n")


def read_vectors(path: str | os.PathLike[str], key: Callable[[str], str] | None = None,
                 max_words: int = 0) -> tuple[list[str], torch.Tensor]:
    """Read word2vec text vectors (header line optional; plain or gzip'd).

    Args:
        key: maps each word before it is stored (e.g. the tagger's normalisation); when two words map to
            the same key, the first (in file order, usually the more frequent) wins.
        max_words: keep only the first this many lines (0: all).

    Raises:
        DataError: a line with a different number of values than the others, or a value that is not a
            number, with the file and line.
    """
    words: list[str] = []
    rows: list[list[float]] = []
    seen: set[str] = set()
    dim = None
    lines = open_text(path)
    for line in lines:
        parts = line.rstrip().split(" ")
        if lines.lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
            dim = int(parts[1])
            continue
        if not line.strip():
            continue
        if dim is None:
            dim = len(parts) - 1
        if len(parts) != dim + 1:
            raise DataError(f"expected a word and {dim} numbers, found {len(parts)} fields", path, lines.lineno)
        word = key(parts[0]) if key is not None else parts[0]
        if word in seen:
            continue
        try:
            rows.append([float(x) for x in parts[1:]])
        except ValueError:
            raise DataError("a vector value is not a number", path, lines.lineno) from None
        seen.add(word)
        words.append(word)
        if max_words and len(words) >= max_words:
            break
    if not words:
        raise DataError("no vectors found", path)
    return words, torch.tensor(rows, dtype=torch.float)


# Longest first: URLs and e-mail addresses, clitics (split off as UD English does: do|n't, John|'s),
# numbers with separators, words with inner hyphens/apostrophes/periods, runs of the same punctuation.
_WORD = re.compile(
    r"""(?:https?://|www\.)\S+[^\s.,;:!?)'"]      # URL
      | [\w.+-]+@[\w-]+(?:\.[\w-]+)+              # e-mail
      | (?<=\w)n't\b | \bca(?=n't\b) | \bwo(?=n't\b) | \w+(?=n't\b)
      | '(?:s|re|ll|ve|d|m)\b                     # clitic
      | \d+(?:[.,:/-]\d+)*                        # numbers, times, dates
      | (?:[A-Za-z]\.){2,}                        # U.S. e.g.
      | \w+(?:-\w+|['’](?!(?:s|re|ll|ve|d|m)\b)\w+)*  # words (inner hyphens, apostrophes but clitics)
      | ([^\w\s])\1*                              # punctuation (a run of one character)
    """,
    re.VERBOSE | re.IGNORECASE,
)
_MARKUP = re.compile(r"<br\s*/?>|&(?:quot|amp|lt|gt);", re.IGNORECASE)
_HYPHENATED = re.compile(r"[^\W\d_]+(?:-\w+)+")
# UD English-EWT splits hyphenated compounds (long - term) but keeps words with these prefixes whole
_PREFIXES = frozenset("anti co cross e ex mid multi neo non post pre pro re self semi sub ultra un".split())


def split_words(text: str) -> list[str]:
    """Raw English text as UD English-like tokens (``"I don't"`` -> ``["I", "do", "n't"]``).

    A rough approximation of the treebank's tokenisation, for unlabelled text that trains word vectors;
    HTML line breaks and entities are dropped.
    """
    text = _MARKUP.sub(" ", text)
    out = []
    for m in _WORD.finditer(text):
        w = m.group(0)
        if _HYPHENATED.fullmatch(w) and w.split("-", 1)[0].lower() not in _PREFIXES:
            for i, part in enumerate(w.split("-")):
                out += [part] if i == 0 else ["-", part]
        else:
            out.append(w)
    return out


def read_embedding_init(path: str | os.PathLike[str], dim: int, dim_name: str,
                        key: Callable[[str], str] | None = None, max_words: int = 0) -> tuple[list[str], torch.Tensor]:
    """:func:`read_vectors` for initialising an embedding table of width ``dim`` (the config key ``dim_name``,
    named in the error when the file's width differs), scaled to unit variance like ``nn.Embedding``'s own
    initialisation."""
    words, vectors = read_vectors(path, key=key, max_words=max_words)
    if vectors.size(1) != dim:
        raise DataError(f"vectors have {vectors.size(1)} dimensions but {dim_name}={dim}", path)
    return words, vectors / vectors.std().clamp(min=1e-6)
