"""Readers for the plain-text formats of our datasets; each returns a list of plain dicts.

Every reader goes through :func:`open_text`, so ``.gz`` files are read transparently (recognised by their
magic bytes) and undecodable bytes are reported as a :class:`DataError` naming the file and line. Anything
else wrong with the input (ragged columns, bad CoNLL-U IDs, misaligned parallel files) is a ``DataError``
too, never a ``KeyError``/``IndexError`` from inside a reader.

    read_lines(path)                               -> ["line", ...]
    read_parallel(src, tgt)                        -> [{"source": str, "target": str}, ...]
    read_conllu(path, tag_field="upos")            -> [{"tokens": [str], "tags": [str]}, ...]
    read_conll_columns(path, token_col, tag_col)   -> [{"tokens": [str], "tags": [str]}, ...]
    read_dailydialog(path)                         -> [["turn", ...], ...]
    read_rt_polarity(pos_path, neg_path)           -> [{"text": str, "label": 1 | 0}, ...]
    write_conllu(path_or_file, sentences, tags)    -> None
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Iterator, Sequence
from typing import TextIO

from conllu.parser import DEFAULT_FIELDS, ParseException, parse_id_value

from seqnlp.config import check_choice
from seqnlp.data.errors import DataError

__all__ = [
    "TextLines",
    "open_text",
    "read_lines",
    "read_parallel",
    "read_conllu",
    "write_conllu",
    "read_conll_columns",
    "read_dailydialog",
    "read_rt_polarity",
]

PathLike = str | os.PathLike[str]

_GZIP_MAGIC = b"\x1f\x8b"
_CONLLU_COLUMNS = len(DEFAULT_FIELDS)  # 10: ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC
_TAG_FIELDS = ("upos", "xpos")


class TextLines:
    """The lines of a text file (gzip'd or not), decoded strictly, without their line terminators.

    Lines end at ``\\n`` only (a ``\\r`` before it is dropped too, so CRLF files read like LF files;
    a lone ``\\r`` or a Unicode line separator stays inside its line, so line numbers agree with ``wc -l``
    and with editors). A UTF-8 byte-order mark at the start is dropped. ``lineno`` is the 1-based number
    of the line last yielded. Use as an iterator, optionally inside ``with``.

    Only ASCII-compatible encodings (utf-8, cp1252, latin-1, ...) are supported.
    """

    def __init__(self, path: PathLike, encoding: str = "utf-8"):
        self.path = os.fspath(path)
        self.encoding = encoding
        self.lineno = 0
        try:
            raw = open(self.path, "rb")
        except FileNotFoundError:
            raise DataError("no such file", self.path) from None
        except IsADirectoryError:
            raise DataError("is a directory, expected a file", self.path) from None
        except OSError as e:
            raise DataError(f"cannot open ({e.strerror})", self.path) from None
        self._raw = raw
        self._stream: io.BufferedIOBase = raw
        if raw.read(2) == _GZIP_MAGIC:
            raw.seek(0)
            self._stream = gzip.GzipFile(fileobj=raw, mode="rb")
        else:
            raw.seek(0)

    def __iter__(self) -> Iterator[str]:
        try:
            for raw_line in self._iter_raw():
                self.lineno += 1
                if raw_line.endswith(b"\n"):
                    raw_line = raw_line[:-2] if raw_line.endswith(b"\r\n") else raw_line[:-1]
                try:
                    line = raw_line.decode(self.encoding)
                except UnicodeDecodeError as e:
                    raise DataError(
                        f"invalid {self.encoding} text (byte 0x{raw_line[e.start]:02x} at byte {e.start + 1} "
                        f"of the line: {e.reason})",
                        self.path,
                        self.lineno,
                    ) from None
                if self.lineno == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                yield line
        finally:
            self.close()

    def _iter_raw(self) -> Iterator[bytes]:
        it = iter(self._stream)
        while True:
            try:
                raw_line = next(it)
            except StopIteration:
                return
            except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
                raise DataError(f"corrupt or truncated gzip data ({e})", self.path, self.lineno + 1) from None
            yield raw_line

    def close(self) -> None:
        self._stream.close()
        self._raw.close()

    def __enter__(self) -> TextLines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_text(path: PathLike, encoding: str = "utf-8") -> TextLines:
    """Open ``path`` (plain or gzip'd) for reading lines; see :class:`TextLines`.

    Raises:
        DataError: the file is missing, unreadable, not valid ``encoding`` (naming the line) or corrupt gzip.
    """
    return TextLines(path, encoding)


def read_lines(path: PathLike) -> list[str]:
    """One example per line: all lines of ``path``, with only the line terminator removed."""
    return list(open_text(path))


def read_parallel(src_path: PathLike, tgt_path: PathLike) -> list[dict]:
    """Line-aligned parallel text: ``[{"source": line_i of src, "target": line_i of tgt}, ...]``.

    Raises:
        DataError: the files have different line counts (both files and counts are named).
    """
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise DataError(
            f"parallel files differ in length: {len(src)} lines here but {len(tgt)} lines in "
            f"{os.fspath(tgt_path)} (line i of each file must be the same sentence)",
            src_path,
        )
    return [{"source": s, "target": t} for s, t in zip(src, tgt)]


def read_conllu(path: PathLike, tag_field: str = "upos") -> list[dict]:
    """Sentences of a CoNLL-U file as ``{"tokens": [FORM, ...], "tags": [UPOS or XPOS, ...]}``.

    Only syntactic words (integer IDs) are kept: multiword-token lines (``3-4``) and empty nodes (``8.1``)
    are legitimate CoNLL-U and are skipped. Comment lines and comment-only blocks are skipped. IDs are
    interpreted with the ``conllu`` package's parser; an unannotated tag (``_``) is kept as ``"_"``.

    Raises:
        DataError: a token line without exactly 10 tab-separated columns, an invalid ID, an empty FORM or
            tag -- with the file and line number.
    """
    check_choice(tag_field, _TAG_FIELDS, "tag_field")  # a ConfigError (a ValueError)
    tag_index = DEFAULT_FIELDS.index(tag_field)
    path = os.fspath(path)
    sentences: list[dict] = []
    tokens: list[str] = []
    tags: list[str] = []
    lines = open_text(path)
    for line in lines:
        if not line.strip():
            if tokens:
                sentences.append({"tokens": tokens, "tags": tags})
                tokens, tags = [], []
            continue
        if line.startswith("#"):
            continue
        columns = line.split("\t")
        if len(columns) != _CONLLU_COLUMNS:
            raise DataError(
                f"expected {_CONLLU_COLUMNS} tab-separated columns, found {len(columns)}", path, lines.lineno
            )
        try:
            token_id = parse_id_value(columns[0])
        except ParseException as e:
            raise DataError(str(e), path, lines.lineno, "id") from None
        if token_id is None or token_id == 0:
            raise DataError(
                f"{columns[0]!r} is not a word ID (expected 1, 2, ..., a range like 1-2 or a decimal like 8.1)",
                path,
                lines.lineno,
                "id",
            )
        if not isinstance(token_id, int):  # multiword token (1, "-", 2) or empty node (8, ".", 1)
            continue
        form, tag = columns[1], columns[tag_index]
        if not form.strip():
            raise DataError("empty word form", path, lines.lineno, "form")
        if not tag.strip():
            raise DataError("empty tag", path, lines.lineno, tag_field)
        tokens.append(form)
        tags.append(tag)
    if tokens:
        sentences.append({"tokens": tokens, "tags": tags})
    return sentences


def write_conllu(
    path_or_file: PathLike | TextIO,
    sentences: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    tag_field: str = "upos",
) -> None:
    """Write tagged sentences as CoNLL-U: 10 columns, ``_`` in the unknown ones, ``# sent_id``/``# text``.

    ``path_or_file`` is a path (written as UTF-8; gzip'd if it ends in ``.gz``) or an open text file.

    Raises:
        DataError: a sentence and its tags differ in length, a sentence is empty, or a token/tag is empty
            or contains a tab, a line break or surrounding/double spaces (which CoNLL-U readers split on).
    """
    check_choice(tag_field, _TAG_FIELDS, "tag_field")  # a ConfigError (a ValueError)
    if len(sentences) != len(tags):
        raise DataError(f"{len(sentences)} sentences but {len(tags)} tag sequences", field="tags")
    blocks = []
    for i, (words, word_tags) in enumerate(zip(sentences, tags)):
        where = f"sentence {i}"
        if len(words) != len(word_tags):
            raise DataError(f"{where}: {len(words)} tokens but {len(word_tags)} tags", field="tags")
        if not words:
            raise DataError(f"{where}: no tokens (CoNLL-U sentences need at least one word)", field="tokens")
        for field, values in (("tokens", words), ("tags", word_tags)):
            for value in values:
                if not _is_conllu_value(value):
                    raise DataError(f"{where}: {value!r} cannot be written as a CoNLL-U field", field=field)
        rows = [f"# sent_id = {i + 1}", f"# text = {' '.join(words)}"]
        for j, (word, tag) in enumerate(zip(words, word_tags), start=1):
            cols = [str(j), word] + ["_"] * (_CONLLU_COLUMNS - 2)
            cols[DEFAULT_FIELDS.index(tag_field)] = tag
            rows.append("\t".join(cols))
        blocks.append("\n".join(rows) + "\n\n")
    text = "".join(blocks)
    if isinstance(path_or_file, str | os.PathLike):
        opener = gzip.open if os.fspath(path_or_file).endswith(".gz") else open
        with opener(path_or_file, "wt", encoding="utf-8", newline="\n") as f:
            f.write(text)
    else:
        path_or_file.write(text)


def _is_conllu_value(value: str) -> bool:
    return (
        isinstance(value, str)
        and value.strip() == value
        and value != ""
        and "  " not in value
        and len(value.splitlines()) == 1  # no \n, \r, \v, \f, \x1c-\x1e, \x85, \u2028, \u2029
        and "\t" not in value
    )


def read_conll_columns(path: PathLike, token_col: int = 0, tag_col: int = 1) -> list[dict]:
    """CoNLL-2000/2003-style column files: one token per line, whitespace-separated columns, a blank line
    between sentences; ``-DOCSTART-`` lines are skipped. Negative column indices count from the end.

    Returns ``[{"tokens": [column token_col], "tags": [column tag_col]}, ...]``.

    Raises:
        DataError: a line whose column count differs from the file's first token line, or too few columns
            for ``token_col``/``tag_col`` -- with the line number.
    """
    path = os.fspath(path)
    sentences: list[dict] = []
    tokens: list[str] = []
    tags: list[str] = []
    n_columns = first_line = None
    lines = open_text(path)
    for line in lines:
        columns = line.split()
        if not columns:
            if tokens:
                sentences.append({"tokens": tokens, "tags": tags})
                tokens, tags = [], []
            continue
        if columns[0] == "-DOCSTART-":
            continue
        if n_columns is None:
            n_columns, first_line = len(columns), lines.lineno
            for name, col in (("token_col", token_col), ("tag_col", tag_col)):
                if not -n_columns <= col < n_columns:
                    raise DataError(f"{name}={col} but the file has {n_columns} columns", path, lines.lineno)
        elif len(columns) != n_columns:
            raise DataError(
                f"expected {n_columns} whitespace-separated columns (as on line {first_line}), found {len(columns)}",
                path,
                lines.lineno,
            )
        tokens.append(columns[token_col])
        tags.append(columns[tag_col])
    if tokens:
        sentences.append({"tokens": tokens, "tags": tags})
    return sentences


def read_dailydialog(path: PathLike) -> list[list[str]]:
    """DailyDialog ``dialogues_<split>.txt``: one dialogue per line, each turn followed by ``__eou__``.

    Returns one list of turns per non-blank line; turns are stripped, the empty piece after the final
    ``__eou__`` is dropped, and empty turns in the middle are kept as ``""`` (the caller decides).
    """
    dialogues = []
    for line in open_text(path):
        if not line.strip():
            continue
        turns = [turn.strip() for turn in line.split("__eou__")]
        if turns[-1] == "":
            turns.pop()
        dialogues.append(turns)
    return dialogues


# The original rt-polarity release is cp1252 (with CRLF); NLTK's copy was converted to UTF-8 as if it were
# ISO-8859-1, which turned cp1252's dashes and quotes (0x91-0x97) into C1 control characters. Both are
# repaired here: cp1252 files are decoded as cp1252, and C1 controls in UTF-8 files are mapped through cp1252.
def _c1_to_cp1252() -> dict[int, str]:
    table = {}
    for code in range(0x80, 0xA0):
        try:
            table[code] = bytes([code]).decode("cp1252")
        except UnicodeDecodeError:  # 0x81, 0x8d, 0x8f, 0x90, 0x9d are undefined in cp1252: keep them
            pass
    return table


_C1_TO_CP1252 = _c1_to_cp1252()


def _read_polarity_file(path: PathLike) -> list[str]:
    try:
        lines = read_lines(path)
    except DataError as e:
        if not e.reason.startswith("invalid utf-8"):
            raise
        lines = list(open_text(path, encoding="cp1252"))
    return [text for line in lines if (text := line.translate(_C1_TO_CP1252).strip())]


def read_rt_polarity(pos_path: PathLike, neg_path: PathLike) -> list[dict]:
    """Rotten Tomatoes sentence polarity v1.0: ``[{"text": str, "label": 1}, ...]`` for the positive file
    then ``label 0`` for the negative one (1 = positive, as in SST-2 and IMDB). Blank lines are skipped,
    snippets are stripped.

    Reads both NLTK's UTF-8 copy and the original cp1252 release; cp1252 punctuation that NLTK's conversion
    turned into C1 control characters (e.g. ``\\x96``) is restored (``–``).
    """
    examples = [{"text": text, "label": 1} for text in _read_polarity_file(pos_path)]
    examples += [{"text": text, "label": 0} for text in _read_polarity_file(neg_path)]
    return examples
