"""SequenceTagger: batching/padding never changes a sentence's tags; the loss is the CRF's or softmax's."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from seqnlp.data.tagging import Featurizer
from seqnlp.tasks.pos_tagging import ModelConfig, build_model

TRAIN = [
    {"tokens": "the dog barks".split(), "tags": ["DET", "NOUN", "VERB"]},
    {"tokens": "a cat sleeps on the mat".split(), "tags": ["DET", "NOUN", "VERB", "ADP", "DET", "NOUN"]},
    {"tokens": "dogs bark".split(), "tags": ["NOUN", "VERB"]},
]
ARGS = dict(word_dim=6, char="lstm", char_dim=4, char_hidden=3, char_kernel=3, hidden=5, layers=1, window=1,
            dropout=0.0, char_dropout=0.0)


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def make(encoder="bilstm", crf=True, char="lstm"):
    feats, counts = Featurizer.build(TRAIN)
    m = ModelConfig(**{**ARGS, "char": char}, encoder=encoder, crf=crf, num_words=feats.words.vocab_size,
                    num_chars=feats.chars.vocab_size, num_tags=len(feats.tags))
    model = build_model(m, unk_prob=feats.unk_prob(counts, 0.25))
    return feats, model.double()


def batch_of(feats, sentences):
    encoded, chars, lengths = feats.encode(sentences)
    return Featurizer.collate(encoded, chars, lengths)


@pytest.mark.parametrize("encoder,crf,char", [("bilstm", True, "lstm"), ("bilstm", False, "cnn"),
                                              ("window", False, "lstm"), ("window", True, "none")])
def test_batched_prediction_equals_one_sentence_at_a_time(encoder, crf, char):
    feats, model = make(encoder, crf, char)
    model.eval()
    sentences = TRAIN + [{"tokens": "an unseen word".split(), "tags": None}]
    batch = batch_of(feats, sentences)
    assert batch.words.shape == (4, 6) and batch.lengths.tolist() == [3, 6, 2, 3]
    pred = model.predict(batch)
    emissions = model(batch)
    for i, s in enumerate(sentences):
        one = batch_of(feats, [s])
        n = len(s["tokens"])
        assert pred[i, :n].tolist() == model.predict(one)[0].tolist()
        assert_close(emissions[i, :n], model(one)[0])
        assert (pred[i, n:] == 0).all()


def test_batch_reads_each_distinct_word_once():
    feats, _ = make()
    batch = batch_of(feats, TRAIN)
    distinct = {w for s in TRAIN for w in s["tokens"]}
    assert batch.chars.size(0) == len(distinct) + 1  # + the padding entry
    first = batch.word_index[0, 0]
    assert batch.word_index[1, 4] == first  # "the" twice, one row
    assert batch.n_tokens == {"source": 11}


def test_crf_loss_is_nll_per_token_and_softmax_loss_is_cross_entropy():
    for crf in (True, False):
        feats, model = make(crf=crf)
        model.eval()  # no <unk> replacement, no dropout
        batch = batch_of(feats, TRAIN)
        loss, n = model.loss(batch)
        assert n == 11
        em = model(batch)
        mask = model.mask(batch)
        if crf:
            expected = model.crf.neg_log_likelihood(em, batch.tags, mask) / 11
        else:
            expected = F.cross_entropy(em[mask], batch.tags[mask])
        assert_close(loss, expected)


def test_unk_replacement_only_in_training():
    feats, model = make()
    model.unk_prob.fill_(1.0)  # every word becomes <unk> in training
    batch = batch_of(feats, TRAIN)
    model.train()
    model.dropout.p = 0.0
    unk_only = model.token_features(batch)[..., : model.word_embed.dim]
    mask = model.mask(batch)
    assert_close(unk_only[mask], model.word_embed.lut.weight[feats.words.unk_id].expand(11, -1))
    model.eval()
    assert not torch.allclose(model.token_features(batch)[..., :6][mask], unk_only[mask])


def test_unseen_tags_and_words_are_encoded_safely():
    feats, _ = make()
    encoded, _, _ = feats.encode([{"tokens": ["zebra", "the"], "tags": ["X", "DET"]}])
    assert encoded[0]["words"][0] == feats.words.unk_id
    assert encoded[0]["tags"] == [-1, feats.tag_ids["DET"]]


def test_precomputed_word_table_features_equal_per_batch_char_features():
    feats, model = make()
    model.eval()
    encoded, chars, lengths = feats.encode(TRAIN)
    table = model.word_table_features(chars, lengths, chunk=4)  # chunked over the table
    per_batch = Featurizer.collate(encoded, chars, lengths)
    precomputed = Featurizer.collate(encoded, chars, lengths, char_feats=table)
    assert "chars" not in precomputed and precomputed.char_feats.shape == (len(chars), 6)
    mask = model.mask(per_batch)
    assert_close(model(precomputed)[mask], model(per_batch)[mask])


@pytest.mark.parametrize("bad", [{"encoder": "gru"}, {"char": "bytes"}, {"num_words": 0}])
def test_bad_model_configs_are_config_errors(bad):
    from seqnlp.config import ConfigError

    m = ModelConfig(**{**ARGS, "num_words": 10, "num_chars": 5, "num_tags": 3, **bad})
    with pytest.raises(ConfigError):
        build_model(m)


def test_featurizer_files_load_back(tmp_path):
    import json

    feats, _ = make()
    for name, value in feats.files().items():
        if callable(value):
            value(tmp_path / name)
        else:
            (tmp_path / name).write_text(json.dumps(value))
    again = Featurizer.load(tmp_path, feats.tags)
    assert again.forms == feats.forms and again.tags == feats.tags
    sentences = TRAIN + [{"tokens": ["Zebra", "2024"], "tags": None}]
    assert again.encode(sentences)[0] == feats.encode(sentences)[0]


def test_a_predictor_keeps_word_features_across_calls_and_tags_as_in_one_call():
    """TaggerPredictor's word-feature cache: a second call over the same words runs no character encoder, and
    sentences tagged a few at a time get the tags of one call over all of them."""
    from seqnlp.tasks.pos_tagging import Config, TaggerPredictor

    feats, model = make()
    pred = TaggerPredictor(model.float().eval(), feats, Config(), torch.device("cpu"))
    sents = [s["tokens"] for s in TRAIN] + ["the cat barks".split(), "a dog on a mat sleeps".split()]
    alone = TaggerPredictor(model, feats, Config(), torch.device("cpu"))
    alone.char_cache.capacity = 0  # no cache: one call's own table
    want = alone.tag(sents)
    got = [t for i in range(0, len(sents), 2) for t in pred.tag(sents[i:i + 2])]
    assert got == want
    misses = pred.char_cache.misses
    assert pred.tag(sents) == want and pred.char_cache.misses == misses  # every word known: nothing encoded
