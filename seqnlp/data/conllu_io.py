"""CoNLL-U files tagged in place: read a file keeping every line as it is, write it back with one column filled.

:func:`read_document` gives a :class:`ConlluDocument`: a list with one :class:`ConlluSentence` per sentence
(a block with at least one syntactic word -- an integer ID), each a list of the FORMs of its words (what a
tagger takes), holding the block's lines exactly as they were read. Everything else in the file -- blank lines,
comment-only blocks, a missing final newline, CRLF line ends, a byte-order mark -- is kept between the
sentences. :func:`write_tagged` writes the document back with the tags in one column (``upos`` or ``xpos``)
of the word lines only: every other byte, multiword-token (``3-4``) and empty-node (``8.1``) lines, comments
(``# sent_id``, ``# text``), LEMMA/FEATS/HEAD/DEPREL/DEPS/MISC, is written as it was read.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Sequence
from typing import TextIO

from conllu.parser import DEFAULT_FIELDS, ParseException, parse_id_value

from .errors import DataError

__all__ = ["ConlluDocument", "ConlluSentence", "is_conllu_path", "read_document", "write_tagged"]

_COLUMNS = len(DEFAULT_FIELDS)  # 10: ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC
TAG_FIELDS = ("upos", "xpos")


def is_conllu_path(path: str | os.PathLike[str]) -> bool:
    return os.fspath(path).endswith((".conllu", ".conllu.gz"))


class ConlluSentence(list):
    """The FORMs of one sentence's syntactic words (a ``list[str]``), with the sentence block as read.

    ``lines``: the block's lines with their terminators (comments, word, multiword-token and empty-node lines);
    ``word_lines``: the indices into ``lines`` of the syntactic words, in order (one per FORM);
    ``lineno``: the 1-based line number of the block's first line in its file.
    """

    def __init__(self, forms: Sequence[str], lines: Sequence[str], word_lines: Sequence[int], lineno: int = 0):
        super().__init__(forms)
        self.lines = list(lines)
        self.word_lines = list(word_lines)
        self.lineno = lineno

    def tagged_lines(self, tags: Sequence[str], tag_field: str = "upos") -> list[str]:
        """The block's lines with ``tags`` in the ``tag_field`` column of the word lines; the rest as read."""
        if len(tags) != len(self.word_lines):
            raise DataError(f"{len(self.word_lines)} words but {len(tags)} tags", line=self.lineno or None,
                            field="tags")
        column = _tag_column(tag_field)
        out = list(self.lines)
        for i, tag in zip(self.word_lines, tags):
            if not _is_value(tag):
                raise DataError(f"{tag!r} cannot be written as a CoNLL-U field", line=self.lineno + i or None,
                                field=tag_field)
            line = out[i]
            end = "\r\n" if line.endswith("\r\n") else "\n" if line.endswith("\n") else ""
            cols = line[: len(line) - len(end)].split("\t")
            cols[column] = tag
            out[i] = "\t".join(cols) + end
        return out


class ConlluDocument(list):
    """The sentences of a CoNLL-U file (a ``list`` of :class:`ConlluSentence`) and the rest of the file:
    ``pieces`` is the file in order, each piece either text outside any sentence (``str``) or the index of a
    sentence (``int``); ``"".join`` of them, sentences as read, is the file."""

    def __init__(self, sentences: Sequence[ConlluSentence] = (), pieces: Sequence[str | int] = (),
                 path: str | None = None):
        super().__init__(sentences)
        self.pieces = list(pieces)
        self.path = path

    def text(self, tags: Sequence[Sequence[str]] | None = None, tag_field: str = "upos") -> str:
        """The file, with ``tags[i]`` in the ``tag_field`` column of sentence ``i`` (``None``: as read)."""
        if tags is not None and len(tags) != len(self):
            raise DataError(f"{len(self)} sentences but {len(tags)} tag sequences", self.path, field="tags")
        parts: list[str] = []
        for piece in self.pieces:
            if isinstance(piece, str):
                parts.append(piece)
            else:
                s = self[piece]
                parts.extend(s.lines if tags is None else s.tagged_lines(tags[piece], tag_field))
        return "".join(parts)


def _tag_column(tag_field: str) -> int:
    if tag_field not in TAG_FIELDS:
        raise ValueError(f"tag_field must be one of {TAG_FIELDS}, got {tag_field!r}")
    return DEFAULT_FIELDS.index(tag_field)


def _is_value(value: object) -> bool:
    return (isinstance(value, str) and value != "" and value.strip() == value and "\t" not in value
            and len(value.splitlines()) == 1)


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataError("no such file", path) from None
    except IsADirectoryError:
        raise DataError("is a directory, expected a file", path) from None
    except OSError as e:
        raise DataError(f"cannot open ({e.strerror})", path) from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"corrupt or truncated gzip data ({e})", path) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"invalid utf-8 text (byte 0x{data[e.start]:02x}: {e.reason})", path, line) from None


def read_document(path: str | os.PathLike[str]) -> ConlluDocument:
    """A CoNLL-U file (plain or gzip'd) as a :class:`ConlluDocument`, every line kept as read.

    Lines end at ``\\n`` (a ``\\r`` before it belongs to the line end). A block is a run of non-blank lines; a
    block with a syntactic word is a sentence, any other block (comments only) stays text between sentences.

    Raises:
        DataError: undecodable bytes, a token line without exactly 10 tab-separated columns, an invalid ID or
            an empty FORM -- with the file and line number.
    """
    path = os.fspath(path)
    text = _read_text(path)
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    doc = ConlluDocument(path=path)
    block: list[str] = []  # the current run of non-blank lines
    forms: list[str] = []
    word_lines: list[int] = []
    start = 0

    def flush() -> None:
        nonlocal block, forms, word_lines
        if forms:
            doc.pieces.append(len(doc))
            doc.append(ConlluSentence(forms, block, word_lines, start))
        elif block:
            doc.pieces.append("".join(block))
        block, forms, word_lines = [], [], []

    for lineno, line in enumerate(lines, start=1):
        body = line[:-1] if line.endswith("\n") else line
        body = body[:-1] if body.endswith("\r") else body
        if lineno == 1 and body.startswith("\ufeff"):
            body = body[1:]
        if not body.strip():
            flush()
            doc.pieces.append(line)
            continue
        if not block:
            start = lineno
        block.append(line)
        if body.startswith("#"):
            continue
        cols = body.split("\t")
        if len(cols) != _COLUMNS:
            raise DataError(f"expected {_COLUMNS} tab-separated columns, found {len(cols)}", path, lineno)
        try:
            token_id = parse_id_value(cols[0])
        except ParseException as e:
            raise DataError(str(e), path, lineno, "id") from None
        if token_id is None or token_id == 0:
            raise DataError(f"{cols[0]!r} is not a word ID (expected 1, 2, ..., a range like 1-2 or a decimal like "
                            "8.1)", path, lineno, "id")
        if not isinstance(token_id, int):  # multiword token (1, "-", 2) or empty node (8, ".", 1): kept, not tagged
            continue
        if not cols[1].strip():
            raise DataError("empty word form", path, lineno, "form")
        forms.append(cols[1])
        word_lines.append(len(block) - 1)
    flush()
    # merge neighbouring text pieces (blank lines, comment-only blocks) into one
    merged: list[str | int] = []
    for piece in doc.pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    doc.pieces = merged
    return doc


def write_tagged(sink: TextIO, doc: ConlluDocument, tags: Sequence[Sequence[str]], tag_field: str = "upos") -> None:
    """Write ``doc`` to the open text file ``sink`` with ``tags[i]`` in the ``tag_field`` column of sentence
    ``i``'s words; every other byte as read (see :class:`ConlluDocument`)."""
    sink.write(doc.text(tags, tag_field))
