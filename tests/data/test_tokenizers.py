import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqnlp.data.errors import DataError
from seqnlp.data.tokenizers import KINDS, SPECIALS, Tokenizer

CORPUS = [
    "Ein Mann fährt ein Fahrrad.",
    "Zwei Hunde spielen im Schnee.",
    "A man rides a bike; the dog runs!",
    "Über 東京 fliegen Vögel 🙂",
] * 5


@pytest.mark.parametrize("kind", KINDS)
def test_specials_have_fixed_ids(kind):
    tok = Tokenizer.train(kind, CORPUS, vocab_size=300)
    assert [tok.token_to_id(s) for s in SPECIALS] == [0, 1, 2, 3]
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)


@pytest.mark.parametrize("kind", ["bpe", "unigram", "char"])
def test_round_trip_on_training_text(kind):
    tok = Tokenizer.train(kind, CORPUS, vocab_size=300)
    for s in CORPUS[:4]:
        assert tok.decode(tok.encode(s, bos=True, eos=True)) == s


def test_word_round_trip_normalises_whitespace():
    tok = Tokenizer.train("word", CORPUS, vocab_size=300)
    assert tok.decode(tok.encode("Zwei  Hunde\tspielen")) == "Zwei Hunde spielen"
    assert tok.encode("Zebra")[0] == tok.unk_id


def test_decode_stops_at_eos():
    tok = Tokenizer.train("char", CORPUS)
    ids = tok.encode("Ein", eos=True) + tok.encode("Mann")
    assert tok.decode(ids) == "Ein"


def test_save_load(tmp_path):
    tok = Tokenizer.train("bpe", CORPUS, vocab_size=300, extra_specials=["<sep>"])
    tok.save(tmp_path / "tokenizer.json")
    back = Tokenizer.load(tmp_path / "tokenizer.json")
    assert back.encode(CORPUS[2]) == tok.encode(CORPUS[2])
    assert back.token_to_id("<sep>") == 4


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.json"):
        Tokenizer.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="bad.json"):
        Tokenizer.load(bad)


def test_from_tokens_closed_vocabulary():
    tags = Tokenizer.from_tokens(["NOUN", "VERB", "ADJ"])
    assert tags.encode_words(["VERB", "ADJ", "XX"]) == [5, 6, tags.unk_id]
    assert tags.id_to_token(4) == "NOUN"


_BPE = Tokenizer.train("bpe", CORPUS, vocab_size=400)
_UNI = Tokenizer.train("unigram", CORPUS, vocab_size=400)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_subword_round_trip_arbitrary_unicode(text):
    # byte-level pre-tokenisation: every string, seen or not, decodes back exactly
    assert _BPE.decode(_BPE.encode(text)) == text
    assert _UNI.decode(_UNI.encode(text)) == text
