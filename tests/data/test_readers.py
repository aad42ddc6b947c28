"""Readers on tiny files written by the tests (plus the committed toy CoNLL-U file)."""

import gzip
import io
import pickle
from pathlib import Path

import conllu
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqnlp.data.errors import DataError
from seqnlp.data.readers import (
    open_text,
    read_conll_columns,
    read_conllu,
    read_dailydialog,
    read_lines,
    read_parallel,
    read_rt_polarity,
    write_conllu,
)

TOY = Path(__file__).parent / "toy"


def write(path: Path, text: str | bytes, gz: bool = False) -> Path:
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def row(*cols: str) -> str:
    return "\t".join(cols) + "\n"


def word(i, form, upos="NOUN", xpos="NN") -> str:
    return row(str(i), form, "_", upos, xpos, "_", "_", "_", "_", "_")


# ------------------------------------------------------------------------------------------ errors
def test_data_error_message_and_attributes():
    e = DataError("empty tag", "a/b.conllu", 17, "tags")
    assert str(e) == "a/b.conllu:17: field 'tags': empty tag"
    assert (e.path, e.line, e.field, e.reason) == ("a/b.conllu", 17, "tags", "empty tag")
    assert isinstance(e, ValueError)
    assert str(DataError("bad")) == "bad"
    assert str(DataError("bad", "f.txt")) == "f.txt: bad"
    assert str(DataError("bad", line=3, field="x")) == "line 3: field 'x': bad"
    again = pickle.loads(pickle.dumps(e))
    assert (str(again), again.line, again.field) == (str(e), 17, "tags")


# --------------------------------------------------------------------------------------- open_text
@pytest.mark.parametrize("gz", [False, True])
def test_open_text_plain_and_gzip_crlf_bom(tmp_path, gz):
    path = write(tmp_path / ("a.txt.gz" if gz else "a.txt"), "\ufeffone\r\ntwo \n\nthree\rstill three")
    with open_text(path) as lines:
        assert list(lines) == ["one", "two ", "", "three\rstill three"]


def test_gzip_is_recognised_by_content_not_name(tmp_path):
    path = write(tmp_path / "no_suffix", "a\nb\n", gz=True)
    assert read_lines(path) == ["a", "b"]


@pytest.mark.parametrize("gz", [False, True])
def test_invalid_utf8_names_file_and_line(tmp_path, gz):
    path = write(tmp_path / "bad.txt", b"fine\nalso fine\nbad \xff byte\n", gz=gz)
    with pytest.raises(DataError) as info:
        read_lines(path)
    assert info.value.path == str(path) and info.value.line == 3
    assert str(info.value).startswith(f"{path}:3: invalid utf-8")
    assert "0xff" in str(info.value)


def test_missing_directory_and_corrupt_gzip_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_lines(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="is a directory"):
        read_lines(tmp_path)
    truncated = gzip.compress(b"line\n" * 1000)[:-20]
    with pytest.raises(DataError, match="gzip"):
        read_lines(write(tmp_path / "t.gz", truncated))


def test_read_lines_strips_only_the_newline(tmp_path):
    path = write(tmp_path / "l.txt", " a b \n\n\tc\n")
    assert read_lines(path) == [" a b ", "", "\tc"]
    assert read_lines(write(tmp_path / "empty.txt", "")) == []


# ---------------------------------------------------------------------------------------- parallel
def test_read_parallel(tmp_path):
    src = write(tmp_path / "train.de.gz", "Ein Hund.\nZwei Katzen.\n", gz=True)
    tgt = write(tmp_path / "train.en", "A dog.\nTwo cats.")  # no final newline: still 2 lines
    assert read_parallel(src, tgt) == [
        {"source": "Ein Hund.", "target": "A dog."},
        {"source": "Zwei Katzen.", "target": "Two cats."},
    ]


def test_read_parallel_different_lengths_names_both_files_and_counts(tmp_path):
    src = write(tmp_path / "x.de", "a\nb\nc\n")
    tgt = write(tmp_path / "x.en", "a\nb\n")
    with pytest.raises(DataError) as info:
        read_parallel(src, tgt)
    message = str(info.value)
    assert str(src) in message and str(tgt) in message
    assert "3 lines" in message and "2 lines" in message


# ----------------------------------------------------------------------------------------- CoNLL-U
def test_read_conllu_skips_multiword_tokens_and_empty_nodes():
    sentences = read_conllu(TOY / "tagged.conllu")
    assert sentences == [
        {"tokens": ["Do", "n't", "stop", "."], "tags": ["AUX", "PART", "VERB", "PUNCT"]},
        {
            "tokens": ["Sue", "likes", "tea", "and", "Tom", "coffee"],
            "tags": ["PROPN", "VERB", "NOUN", "CCONJ", "PROPN", "NOUN"],
        },
    ]
    xpos = read_conllu(TOY / "tagged.conllu", tag_field="xpos")
    assert xpos[0]["tags"] == ["VBP", "RB", "VB", "."]


def test_read_conllu_gzip_and_comment_only_blocks(tmp_path):
    text = "# newdoc\n\n\n# sent_id = 1\n" + word(1, "Hi", "INTJ", "UH") + "\n" + word(1, "Yes", "INTJ", "UH")
    path = write(tmp_path / "t.conllu.gz", text, gz=True)
    assert read_conllu(path) == [{"tokens": ["Hi"], "tags": ["INTJ"]}, {"tokens": ["Yes"], "tags": ["INTJ"]}]


@pytest.mark.parametrize(
    "bad_line, line_no, what",
    [
        ("2\tcats\t_\tNOUN\t_\t_\t_\t_\t_\n", 3, "expected 10 tab-separated columns, found 9"),
        ("2  cats  _  NOUN  _  _  _  _  _  _\n", 3, "found 1"),  # spaces instead of tabs
        ("two\tcats\t_\tNOUN\t_\t_\t_\t_\t_\t_\n", 3, "'two' is not a valid ID"),
        ("0\tcats\t_\tNOUN\t_\t_\t_\t_\t_\t_\n", 3, "not a word ID"),
        ("2\tcats\t_\t\t_\t_\t_\t_\t_\t_\n", 3, "field 'upos': empty tag"),
        ("2\t\t_\tNOUN\t_\t_\t_\t_\t_\t_\n", 3, "field 'form': empty word form"),
    ],
)
def test_read_conllu_malformed_line_gives_file_and_line(tmp_path, bad_line, line_no, what):
    path = write(tmp_path / "bad.conllu", "# text = two cats\n" + word(1, "two", "NUM", "CD") + bad_line)
    with pytest.raises(DataError) as info:
        read_conllu(path)
    assert info.value.line == line_no and info.value.path == str(path)
    assert str(info.value).startswith(f"{path}:{line_no}: ")
    assert what in str(info.value)


def test_read_conllu_rejects_unknown_tag_field():
    with pytest.raises(ValueError, match="tag_field"):
        read_conllu(TOY / "tagged.conllu", tag_field="deprel")


SENTENCES = [["The", "cat", "sat", "."], ["Hello", "world", "!"], ["New York", "is", "big"]]
TAGS = [["DT", "NN", "VBD", "."], ["UH", "NN", "."], ["NNP", "VBZ", "JJ"]]


@pytest.mark.parametrize("tag_field", ["upos", "xpos"])
def test_write_conllu_round_trips_through_conllu_parse(tmp_path, tag_field):
    path = tmp_path / "out.conllu"
    write_conllu(path, SENTENCES, TAGS, tag_field=tag_field)
    parsed = conllu.parse(path.read_text(encoding="utf-8"))
    assert len(parsed) == 3
    for sentence, words, tags in zip(parsed, SENTENCES, TAGS):
        assert [t["form"] for t in sentence] == words
        assert [t[tag_field] for t in sentence] == tags
        assert [t["id"] for t in sentence] == list(range(1, len(words) + 1))
        assert sentence.metadata["text"] == " ".join(words)
    for line in path.read_text(encoding="utf-8").split("\n"):
        assert line == "" or line.startswith("# ") or len(line.split("\t")) == 10
    assert read_conllu(path, tag_field=tag_field) == [{"tokens": w, "tags": t} for w, t in zip(SENTENCES, TAGS)]


def test_write_conllu_to_gzip_and_file_object(tmp_path):
    write_conllu(tmp_path / "o.conllu.gz", SENTENCES[:1], TAGS[:1])
    assert read_conllu(tmp_path / "o.conllu.gz")[0]["tokens"] == SENTENCES[0]
    buffer = io.StringIO()
    write_conllu(buffer, SENTENCES[:1], TAGS[:1])
    assert conllu.parse(buffer.getvalue())[0][1]["upos"] == "NN"


@pytest.mark.parametrize(
    "sentences, tags, field",
    [
        ([["a", "b"]], [["X"]], "tags"),
        ([[]], [[]], "tokens"),
        ([["a\tb"]], [["X"]], "tokens"),
        ([["a\nb"]], [["X"]], "tokens"),
        ([[""]], [["X"]], "tokens"),
        ([["a"]], [["X Y  Z"]], "tags"),
        ([["a"], ["b"]], [["X"]], "tags"),
    ],
)
def test_write_conllu_rejects_what_cannot_be_written(tmp_path, sentences, tags, field):
    with pytest.raises(DataError) as info:
        write_conllu(tmp_path / "x.conllu", sentences, tags)
    assert info.value.field == field


# ------------------------------------------------------------------------------------ CoNLL columns
CONLL2000 = "Confidence NN B-NP\nin IN B-PP\n\n\nthe DT B-NP\npound NN I-NP\n"


def test_read_conll_columns(tmp_path):
    path = write(tmp_path / "train.txt", "-DOCSTART- -X- O\n\n" + CONLL2000)
    assert read_conll_columns(path) == [
        {"tokens": ["Confidence", "in"], "tags": ["NN", "IN"]},
        {"tokens": ["the", "pound"], "tags": ["DT", "NN"]},
    ]
    assert read_conll_columns(path, tag_col=-1)[1]["tags"] == ["B-NP", "I-NP"]


def test_read_conll_columns_wrong_column_count_names_line(tmp_path):
    path = write(tmp_path / "bad.txt", CONLL2000 + "sank VBD\n")
    with pytest.raises(DataError) as info:
        read_conll_columns(path)
    assert info.value.line == 7 and "expected 3" in str(info.value) and "found 2" in str(info.value)
    with pytest.raises(DataError, match="tag_col=5"):
        read_conll_columns(write(tmp_path / "ok.txt", CONLL2000), tag_col=5)


# -------------------------------------------------------------------------------------- DailyDialog
def test_read_dailydialog(tmp_path):
    path = write(
        tmp_path / "dialogues_validation.txt",
        "Hi , Tom . __eou__ Hello ! __eou__\n\nA __eou__  __eou__ C __eou__\nno marker at end\n",
    )
    assert read_dailydialog(path) == [["Hi , Tom .", "Hello !"], ["A", "", "C"], ["no marker at end"]]


# ------------------------------------------------------------------------------------- rt-polarity
def test_read_rt_polarity_utf8_with_c1_controls_is_repaired(tmp_path):
    # NLTK's copy: cp1252 dashes converted to UTF-8 as if latin-1, i.e. U+0096/U+0097 control characters.
    pos = write(tmp_path / "rt-polarity.pos", "a fine film \u0096 really . \ncaf\u00e9 \u0097 good\n")
    neg = write(tmp_path / "rt-polarity.neg", "dull . \n\n")
    assert read_rt_polarity(pos, neg) == [
        {"text": "a fine film \u2013 really .", "label": 1},
        {"text": "caf\u00e9 \u2014 good", "label": 1},
        {"text": "dull .", "label": 0},
    ]


def test_read_rt_polarity_original_cp1252_release(tmp_path):
    pos = write(tmp_path / "p", "it's gr\xe9at \x96 really\r\n".encode("latin-1"))
    neg = write(tmp_path / "n", "\x93bad\x94\r\n".encode("latin-1"))
    assert read_rt_polarity(pos, neg) == [
        {"text": "it's gr\u00e9at \u2013 really", "label": 1},
        {"text": "\u201cbad\u201d", "label": 0},
    ]


# ---------------------------------------------------------------------------- property-based tests
CONLLU_ALPHABET = st.sampled_from(list("0123456789-._#=\t\t\t\n\n \r\\\"'aZé\x85\u2028\x00\x0b") + ["\ufeff"])
CONLLU_CELL = st.one_of(
    st.text(CONLLU_ALPHABET, max_size=6), st.sampled_from(["1", "2", "2-3", "4.1", "0", "_", "NOUN", "x y", ""])
)
CONLLU_LINE = st.one_of(st.lists(CONLLU_CELL, min_size=10, max_size=10), st.lists(CONLLU_CELL, max_size=12)).map(
    "\t".join
)
FUZZ = settings(
    max_examples=150, database=None, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(
    text=st.one_of(
        st.lists(CONLLU_LINE, max_size=8).map("\n".join),
        st.text(max_size=200),
        st.binary(max_size=200),
    ),
    tag_field=st.sampled_from(["upos", "xpos"]),
)
def test_read_conllu_fuzz_parses_or_raises_data_error(tmp_path, text, tag_field):
    path = tmp_path / "fuzz.conllu"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        sentences = read_conllu(path, tag_field=tag_field)
    except DataError as e:
        assert e.path == str(path)
        return
    for sentence in sentences:
        assert len(sentence["tokens"]) == len(sentence["tags"]) > 0
        assert all(isinstance(t, str) and t for t in sentence["tokens"] + sentence["tags"])


@FUZZ
@given(src=st.binary(max_size=60), tgt=st.binary(max_size=60), gz=st.booleans())
def test_read_parallel_fuzz_reads_or_raises_data_error(tmp_path, src, tgt, gz):
    paths = write(tmp_path / "f.src", src, gz=gz), write(tmp_path / "f.tgt", tgt)
    try:
        pairs = read_parallel(*paths)
    except DataError as e:
        assert e.path in {str(p) for p in paths}
        return
    assert len(pairs) == src.count(b"\n") + (not src.endswith(b"\n") and src != b"")
