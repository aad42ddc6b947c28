"""CharEncoder: one vector per word, equal to encoding each word alone; char_table layout."""

import pytest
import torch
from torch.testing import assert_close

from seqnlp.nn.char_encoder import CharEncoder, char_table

WORDS = ["a", "tagger", "reads", "extraordinarily", "long", "words", "x" * 23, "I"]


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def ids(c: str) -> int:
    return 2 + ord(c) % 20  # 0 = padding, 1 = unknown


def test_char_table_pads_and_keeps_prefix_and_suffix():
    chars, lengths = char_table(["ab", "abcdefghij", ""], ids, max_len=6)
    assert lengths.tolist() == [2, 6, 1]
    assert chars.shape == (3, 6)
    assert chars[0].tolist() == [ids("a"), ids("b"), 0, 0, 0, 0]
    assert chars[1].tolist() == [ids(c) for c in "abchij"]  # first 3 + last 3
    assert chars[2].tolist() == [0] * 6


@pytest.mark.parametrize("kind", ["lstm", "cnn"])
def test_batched_equals_one_word_at_a_time(kind):
    enc = CharEncoder(25, char_dim=6, hidden_size=5, kind=kind).double().eval()
    chars, lengths = char_table(WORDS, ids)
    out = enc(chars, lengths)
    assert out.shape == (len(WORDS), enc.output_size)
    assert enc.output_size == (10 if kind == "lstm" else 5)
    for i, w in enumerate(WORDS):
        c, n = char_table([w], ids)
        assert_close(out[i : i + 1], enc(c, n))


def test_lstm_reads_final_states_of_both_directions():
    enc = CharEncoder(25, char_dim=4, hidden_size=3, kind="lstm").double().eval()
    chars, lengths = char_table(["tag", "tags"], ids)
    out = enc(chars, lengths)
    x = enc.embed(chars[1:2])
    full, (h, _) = enc.rnn(x)  # the unpadded 4-letter word, read by torch directly
    assert_close(out[1], torch.cat([h[0, 0], h[1, 0]]))
    assert not torch.allclose(out[0], out[1])


def test_rejects_bad_shapes_and_kind():
    enc = CharEncoder(10, 4, 3)
    with pytest.raises(ValueError):
        enc(torch.zeros(3, 4, dtype=torch.long), torch.ones(2, dtype=torch.long))
    with pytest.raises(ValueError):
        CharEncoder(10, kind="gru")


def test_word_feature_cache_encodes_only_new_words_and_gives_their_features():
    """WordFeatureCache: a call encodes only the words no earlier call did; every row equals the encoder's
    features of that word; the least recently used words go past the capacity; no char features: None."""
    from seqnlp.nn.char_encoder import WordFeatureCache

    enc = CharEncoder(30, char_dim=5, hidden_size=4, kind="lstm").double().eval()
    seen: list[int] = []

    def encode(chars, lengths):
        seen.append(len(chars))
        return enc(chars, lengths)

    cache = WordFeatureCache(capacity=6)
    first = WORDS[:5]
    chars, lengths = char_table(first, ids)
    with torch.no_grad():
        assert_close(cache.table(encode, chars, lengths), enc(chars, lengths))
        assert seen == [5]
        second = ["long", "a", "new", "tagger"]  # two cached, ... "new" unseen; "tagger" cached
        chars2, lengths2 = char_table(second, ids)
        got = cache.table(encode, chars2, lengths2)
        assert seen == [5, 1]  # only "new"
        assert_close(got, enc(chars2, lengths2))
        assert (cache.hits, cache.misses) == (3, 6) and len(cache.slots) == 6
        third = ["zz", "yy"]  # past the capacity: the least recently used ("reads", "extraordinarily") go
        cache.table(encode, *char_table(third, ids))
        assert len(cache.slots) == 6
        assert tuple(ids(c) for c in "reads") not in cache.slots and tuple(ids(c) for c in "new") in cache.slots
        none = WordFeatureCache()
        assert none.table(lambda c, n: None, chars, lengths) is None and none.disabled


def test_a_call_of_many_words_is_encoded_whole_and_not_kept():
    from seqnlp.nn.char_encoder import WordFeatureCache

    enc = CharEncoder(30, char_dim=5, hidden_size=4, kind="lstm").double().eval()
    cache = WordFeatureCache(capacity=100, max_call_words=4)
    chars, lengths = char_table(WORDS, ids)  # 8 words: more than max_call_words
    with torch.no_grad():
        assert_close(cache.table(enc, chars, lengths), enc(chars, lengths))
    assert len(cache.slots) == 0 and cache.store is None
