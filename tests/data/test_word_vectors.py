"""word2vec text format round trip, malformed files, the UD-style word splitter."""

import pytest
import torch

from seqnlp.data.errors import DataError
from seqnlp.data.word_vectors import read_vectors, split_words, write_vectors


@pytest.mark.parametrize("name", ["v.vec", "v.vec.gz"])
def test_round_trip(tmp_path, name):
    words = ["the", "Dog", "dog", "x"]
    m = torch.tensor([[1.0, 2.0], [3.0, 4.5], [5.0, 6.0], [-1.0, 0.25]])
    write_vectors(tmp_path / name, words, m)
    got_words, got = read_vectors(tmp_path / name)
    assert got_words == words
    torch.testing.assert_close(got, m)
    lower_words, lower = read_vectors(tmp_path / name, key=str.lower)  # "Dog" and "dog" collide: first wins
    assert lower_words == ["the", "dog", "x"]
    torch.testing.assert_close(lower[1], m[1])
    assert read_vectors(tmp_path / name, max_words=2)[0] == ["the", "Dog"]


def test_without_header_and_malformed(tmp_path):
    (tmp_path / "a.vec").write_text("a 1 2\nb 3 4\n")
    assert read_vectors(tmp_path / "a.vec")[1].shape == (2, 2)
    (tmp_path / "b.vec").write_text("2 2\na 1 2\nb 3\n")
    with pytest.raises(DataError, match=r"b.vec:3: expected a word and 2 numbers"):
        read_vectors(tmp_path / "b.vec")
    (tmp_path / "c.vec").write_text("a 1 x\n")
    with pytest.raises(DataError, match="not a number"):
        read_vectors(tmp_path / "c.vec")
    with pytest.raises(ValueError):
        write_vectors(tmp_path / "d.vec", ["two words"], torch.zeros(1, 2))


def test_split_words_like_ud_english():
    assert split_words("I don't think it's John's car, is it?") == \
        ["I", "do", "n't", "think", "it", "'s", "John", "'s", "car", ",", "is", "it", "?"]
    assert split_words("We can't, won't!! See http://x.org/a or me@x.com") == \
        ["We", "ca", "n't", ",", "wo", "n't", "!!", "See", "http://x.org/a", "or", "me@x.com"]
    assert split_words("a long-term e-mail, non-stop; $5.00 at 10:30 in the U.S.<br />ok") == \
        ["a", "long", "-", "term", "e-mail", ",", "non-stop", ";", "$", "5.00", "at", "10:30", "in", "the",
         "U.S.", "ok"]
